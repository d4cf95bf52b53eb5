//! Rekognition's quotas, per account and per operation: transactions per second, and copies in progress.
//!
//! AWS enforces a transactions-per-second quota per account, region and operation; a call above it is refused with
//! `ProvisionedThroughputExceededException` (HTTP 400). The simulator models each quota as a token bucket that
//! starts full: `burst` tokens, refilled at `per_second`; a call finding it empty is refused and takes no token.
//! Refused calls are answered at once, before any fault or operation runs, as a throttle would be.
//!
//! `max_copies_in_progress` caps the copies in `COPYING_IN_PROGRESS` in the destination account; the copy
//! operation applies it (it needs the store), with `LimitExceededException`.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Per account and operation quotas. Default: none (unlimited) unless configured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quotas {
    /// The quotas of every account that `per_account` does not override.
    pub default: OperationQuotas,
    /// Per account id: each operation listed in `rate`, and `max_copies_in_progress` when set, override `default`.
    pub per_account: BTreeMap<String, OperationQuotas>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OperationQuotas {
    /// Transactions per second with burst, per operation name ("CopyProjectVersion", "DescribeProjectVersions", ...):
    /// a token bucket; a call finding it empty is refused with ProvisionedThroughputExceededException (HTTP 400,
    /// "The number of requests exceeded your throughput limit.").
    pub rate: BTreeMap<String, Rate>,
    /// Copies in COPYING_IN_PROGRESS at once in the destination account; one more CopyProjectVersion →
    /// LimitExceededException (HTTP 400).
    pub max_copies_in_progress: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Quotas {
    /// The rate that applies to this account's calls of this operation, if any.
    pub fn rate_for(&self, account_id: &str, operation: &str) -> Option<Rate> {
        self.per_account
            .get(account_id)
            .and_then(|quotas| quotas.rate.get(operation))
            .or_else(|| self.default.rate.get(operation))
            .copied()
    }

    /// The cap on copies in progress in this (destination) account, if any.
    pub fn max_copies_in_progress_for(&self, account_id: &str) -> Option<u32> {
        self.per_account
            .get(account_id)
            .and_then(|quotas| quotas.max_copies_in_progress)
            .or(self.default.max_copies_in_progress)
    }

    /// Checks every rate, so a bad configuration fails at start-up.
    pub fn validate(&self) -> Result<(), String> {
        let all = std::iter::once(("default", &self.default))
            .chain(self.per_account.iter().map(|(account, quotas)| (account.as_str(), quotas)));
        for (whose, quotas) in all {
            for (operation, rate) in &quotas.rate {
                if !(rate.per_second.is_finite() && rate.per_second > 0.0) || rate.burst == 0 {
                    return Err(format!("quota of {whose} for {operation}: per_second must be > 0 and burst >= 1"));
                }
            }
        }
        Ok(())
    }
}

/// One token bucket.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Self {
        Bucket { tokens: f64::from(rate.burst), refilled_at: now }
    }

    /// Takes a token if there is one.
    fn try_take(&mut self, rate: Rate, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(f64::from(rate.burst));
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The configured quotas and the state of their buckets: one bucket per account and operation that has a rate.
#[derive(Debug, Default)]
pub struct QuotaState {
    quotas: Quotas,
    buckets: HashMap<(String, String), Bucket>,
}

impl QuotaState {
    pub fn new(quotas: Quotas) -> Self {
        QuotaState { quotas, buckets: HashMap::new() }
    }

    pub fn quotas(&self) -> &Quotas {
        &self.quotas
    }

    /// Replaces the quotas; every bucket starts full again.
    pub fn replace(&mut self, quotas: Quotas) {
        self.quotas = quotas;
        self.buckets.clear();
    }

    /// Whether this call may go on: true when no rate applies, or a token was taken.
    pub fn admit(&mut self, account_id: &str, operation: &str, now: Instant) -> bool {
        let Some(rate) = self.quotas.rate_for(account_id, operation) else {
            return true;
        };
        self.buckets
            .entry((account_id.to_owned(), operation.to_owned()))
            .or_insert_with(|| Bucket::full(rate, now))
            .try_take(rate, now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn quotas() -> Quotas {
        let rate = |per_second, burst| Rate { per_second, burst };
        Quotas {
            default: OperationQuotas {
                rate: BTreeMap::from([("CopyProjectVersion".to_owned(), rate(2.0, 3))]),
                max_copies_in_progress: Some(5),
            },
            per_account: BTreeMap::from([(
                "222222222222".to_owned(),
                OperationQuotas {
                    rate: BTreeMap::from([("DescribeProjectVersions".to_owned(), rate(1.0, 1))]),
                    max_copies_in_progress: None,
                },
            )]),
        }
    }

    #[test]
    fn per_account_overrides_per_operation_and_falls_back_to_default() {
        let quotas = quotas();
        assert_eq!(
            quotas.rate_for("222222222222", "DescribeProjectVersions"),
            Some(Rate { per_second: 1.0, burst: 1 })
        );
        assert_eq!(quotas.rate_for("222222222222", "CopyProjectVersion").map(|r| r.burst), Some(3));
        assert_eq!(quotas.rate_for("111111111111", "DescribeProjectVersions"), None);
        assert_eq!(quotas.max_copies_in_progress_for("222222222222"), Some(5));
        assert_eq!(Quotas::default().max_copies_in_progress_for("1"), None);
    }

    #[test]
    fn burst_then_refill_at_the_rate() {
        let mut state = QuotaState::new(quotas());
        let start = Instant::now();
        let admitted = (0..5).filter(|_| state.admit("111111111111", "CopyProjectVersion", start)).count();
        assert_eq!(admitted, 3, "the burst");
        let later = start + Duration::from_millis(500);
        assert!(state.admit("111111111111", "CopyProjectVersion", later), "one token after 0.5 s at 2/s");
        assert!(!state.admit("111111111111", "CopyProjectVersion", later));
    }

    #[test]
    fn accounts_have_separate_buckets_and_unlimited_operations_pass() {
        let mut state = QuotaState::new(quotas());
        let now = Instant::now();
        for _ in 0..3 {
            assert!(state.admit("111111111111", "CopyProjectVersion", now));
        }
        assert!(!state.admit("111111111111", "CopyProjectVersion", now));
        assert!(state.admit("333333333333", "CopyProjectVersion", now));
        assert!((0..100).all(|_| state.admit("111111111111", "DescribeProjects", now)));
    }

    #[test]
    fn zero_rates_are_rejected() {
        let mut quotas = quotas();
        quotas.default.rate.get_mut("CopyProjectVersion").unwrap().burst = 0;
        assert!(quotas.validate().is_err());
        assert!(self::quotas().validate().is_ok());
    }

    #[test]
    fn quotas_json_reads_with_defaults() {
        let quotas: Quotas = serde_json::from_str(
            r#"{"per_account": {"1": {"rate": {"CopyProjectVersion": {"per_second": 0.5, "burst": 1}}}}}"#,
        )
        .unwrap();
        assert_eq!(quotas.default, OperationQuotas::default());
        assert_eq!(quotas.rate_for("1", "CopyProjectVersion").unwrap().per_second, 0.5);
    }
}
