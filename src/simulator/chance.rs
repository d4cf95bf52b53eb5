//! Seeded randomness: copy durations, copy failures and random faults that a test can reproduce.
//!
//! Every random decision draws from its own generator, seeded from the configured `rng_seed` and the name of the
//! decision (for a copy: its destination project and version name; for a fault: the account, the operation and
//! how many calls of it the account made before). So the same seed gives the same durations, outcomes and faults
//! for the same calls *whatever the order in which concurrent clients' calls interleave*, which a single shared
//! generator could not promise.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A generator for one decision: `seed` and `parts` together name it.
pub fn rng_for(seed: u64, parts: &[&[u8]]) -> StdRng {
    let mut hasher = Sha256::new();
    hasher.update(seed.to_le_bytes());
    for part in parts {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") are different decisions.
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    StdRng::from_seed(hasher.finalize().into())
}

/// How long copies take: a distribution in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DurationDistribution {
    /// Always the same.
    Fixed { millis: u64 },
    /// Uniform between the bounds, both included.
    Uniform { min_millis: u64, max_millis: u64 },
    /// Exponential with this mean (many short copies, a few long ones), clamped to the bounds.
    Exponential {
        mean_millis: u64,
        #[serde(default)]
        min_millis: u64,
        #[serde(default)]
        max_millis: Option<u64>,
    },
}

impl DurationDistribution {
    pub fn fixed(duration: Duration) -> Self {
        DurationDistribution::Fixed { millis: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX) }
    }

    /// Checks the bounds, so a bad configuration fails at start-up.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            DurationDistribution::Fixed { .. } => Ok(()),
            DurationDistribution::Uniform { min_millis, max_millis } if min_millis > max_millis => {
                Err(format!("uniform copy durations: min_millis {min_millis} > max_millis {max_millis}"))
            }
            DurationDistribution::Exponential { min_millis, max_millis: Some(max_millis), .. }
                if min_millis > max_millis =>
            {
                Err(format!("exponential copy durations: min_millis {min_millis} > max_millis {max_millis}"))
            }
            _ => Ok(()),
        }
    }

    pub fn sample(&self, rng: &mut StdRng) -> Duration {
        let millis = match *self {
            DurationDistribution::Fixed { millis } => millis,
            DurationDistribution::Uniform { min_millis, max_millis } => {
                rng.random_range(min_millis..=max_millis.max(min_millis))
            }
            DurationDistribution::Exponential { mean_millis, min_millis, max_millis } => {
                // Inverse transform: -mean * ln(1 - u), with u in [0, 1) so the logarithm is finite.
                let u: f64 = rng.random();
                let drawn = -(mean_millis as f64) * (1.0 - u).ln();
                let clamped = drawn.max(min_millis as f64);
                let clamped = max_millis.map_or(clamped, |max| clamped.min(max as f64));
                clamped.round() as u64
            }
        };
        Duration::from_millis(millis)
    }
}

/// Whether an event with probability `share` (0 to 1) happens, drawn from `rng`.
pub fn happens(rng: &mut StdRng, share: f64) -> bool {
    share > 0.0 && rng.random::<f64>() < share
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_same_draws() {
        let draw = |parts: &[&[u8]]| rng_for(7, parts).random::<u64>();
        assert_eq!(draw(&[b"a", b"b"]), draw(&[b"a", b"b"]));
        assert_ne!(draw(&[b"a", b"b"]), draw(&[b"ab"]));
        assert_ne!(rng_for(7, &[b"x"]).random::<u64>(), rng_for(8, &[b"x"]).random::<u64>());
    }

    #[test]
    fn uniform_stays_within_bounds() {
        let dist = DurationDistribution::Uniform { min_millis: 100, max_millis: 200 };
        for i in 0..200u32 {
            let d = dist.sample(&mut rng_for(1, &[&i.to_le_bytes()]));
            assert!((100..=200).contains(&(d.as_millis() as u64)), "{d:?}");
        }
    }

    #[test]
    fn exponential_is_clamped_and_has_about_its_mean() {
        let dist = DurationDistribution::Exponential { mean_millis: 1_000, min_millis: 10, max_millis: Some(10_000) };
        let samples: Vec<u64> =
            (0..2_000u32).map(|i| dist.sample(&mut rng_for(3, &[&i.to_le_bytes()])).as_millis() as u64).collect();
        assert!(samples.iter().all(|ms| (10..=10_000).contains(ms)));
        let mean = samples.iter().sum::<u64>() as f64 / samples.len() as f64;
        assert!((800.0..1_200.0).contains(&mean), "mean {mean}");
    }

    #[test]
    fn inverted_bounds_are_rejected() {
        let dist = DurationDistribution::Uniform { min_millis: 2, max_millis: 1 };
        assert!(dist.validate().is_err());
    }

    #[test]
    fn distribution_json_is_tagged_by_kind() {
        let dist: DurationDistribution =
            serde_json::from_str(r#"{"kind": "uniform", "min_millis": 1, "max_millis": 5}"#).unwrap();
        assert_eq!(dist, DurationDistribution::Uniform { min_millis: 1, max_millis: 5 });
    }

    #[test]
    fn share_zero_never_happens_and_one_always_does() {
        let mut rng = rng_for(0, &[]);
        assert!((0..100).all(|_| !happens(&mut rng, 0.0)));
        assert!((0..100).all(|_| happens(&mut rng, 1.0)));
    }
}
