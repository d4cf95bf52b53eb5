//! One request in, one answer out: the simulator without HTTP.
//!
//! The order is fixed and the same for every operation: log the call as it arrives, resolve the operation, identify
//! the caller, fire a pending fault if one matches, then run the operation against the store. Everything here is
//! synchronous; each lock is taken for one step and released before the next, and never across an await.

use std::sync::{Mutex, MutexGuard};

use axum::http::HeaderMap;
use chrono::Utc;
use serde_json::Value;

use super::config::{CopyBehaviour, SimConfig};
use super::error::ApiError;
use super::identity::{Accounts, Caller};
use super::observe::{CallRecord, Fault, Observations, PENDING};
use super::ops::{Context, Operation};
use super::protocol::{header_text, target_operation, TARGET_PREFIX};
use super::state::Store;

pub struct Engine {
    accounts: Accounts,
    copy: CopyBehaviour,
    store: Mutex<Store>,
    observations: Mutex<Observations>,
}

impl Engine {
    /// The simulator's starting state; the seed must have passed [`Seed::validate`](super::Seed::validate).
    pub fn new(config: &SimConfig) -> Self {
        Engine {
            accounts: Accounts::new(&config.seed.accounts),
            copy: CopyBehaviour::from_config(config),
            store: Mutex::new(Store::from_seed(&config.seed)),
            observations: Mutex::new(Observations::default()),
        }
    }

    /// Handles one awsJson request.
    pub fn handle(&self, headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
        let now = Utc::now();
        let raw_target = header_text(headers, "x-amz-target").unwrap_or_default();
        let call = self.observations().begin(CallRecord {
            at: now,
            account_id: None,
            operation: raw_target
                .strip_prefix(TARGET_PREFIX)
                .unwrap_or(&raw_target)
                .to_owned(),
            key: Value::Null,
            outcome: PENDING.to_owned(),
            attempt: header_text(headers, "amz-sdk-request"),
            invocation_id: header_text(headers, "amz-sdk-invocation-id"),
        });

        // The steps stop at the first error; what they learned on the way (caller, key) is logged either way.
        let mut caller: Option<Caller> = None;
        let mut key = Value::Null;
        let result = (|| {
            let operation = Operation::from_name(target_operation(headers)?)?;
            key = operation.key_params(body);
            let who = caller.insert(
                self.accounts
                    .identify(header_text(headers, "authorization").as_deref())?,
            );
            if let Some(fault) = self
                .observations()
                .take_fault(operation.name(), &who.account_id)
            {
                return Err(fault);
            }
            let context = Context {
                caller: who,
                now_millis: now.timestamp_millis(),
                copy: &self.copy,
            };
            // Operations check before they change anything, so a panicking one leaves the store usable.
            let mut store = self
                .store
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            operation.run(&mut store, &context, body)
        })();

        let outcome = match &result {
            Ok(_) => "ok",
            Err(err) => err.code.name(),
        };
        let account_id = caller.map(|caller| caller.account_id);
        tracing::info!(
            operation = %raw_target,
            account = account_id.as_deref().unwrap_or("-"),
            outcome,
            "rekognition call"
        );
        if let Err(err) = &result {
            tracing::debug!(error = %err, "rekognition call failed");
        }
        self.observations().finish(call, account_id, key, outcome);
        result
    }

    pub fn calls(&self) -> Vec<CallRecord> {
        self.observations().calls()
    }

    pub fn call_count(&self, operation: &str) -> usize {
        self.observations().call_count(operation)
    }

    pub fn inject_fault(&self, fault: Fault) {
        self.observations().inject(fault);
    }

    pub fn reset_observations(&self) {
        self.observations().reset();
    }

    /// A panic while logging cannot leave the log half-written in a way that matters, so poisoning is ignored.
    fn observations(&self) -> MutexGuard<'_, Observations> {
        self.observations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
