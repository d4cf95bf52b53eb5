//! One request in, one answer out: the simulator without HTTP.
//!
//! The order is fixed and the same for every operation: log the call as it arrives, resolve the operation,
//! identify the caller (and verify its signature), count the call, apply the caller's rate quota, fire a fault if
//! one is due, then run the operation against the store. Everything here is synchronous; each lock is taken for
//! one step and released before the next, and never across an await — the server sleeps for added latency and
//! drops connections after `handle` returns.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use chrono::Utc;
use serde_json::Value;

use super::config::{CopyBehaviour, SimConfig};
use super::error::ApiError;
use super::faults::{Disruption, Fault, Faults, RandomFaults};
use super::identity::{Accounts, Caller};
use super::observe::{CallRecord, Finished, Observations, PlannedCopy, PENDING};
use super::ops::{Context, Operation, Output};
use super::policy::PolicyDocument;
use super::protocol::{header_text, target_operation, TARGET_PREFIX};
use super::quota::{QuotaState, Quotas};
use super::seed::SeedProjectPolicy;
use super::signature::ReceivedRequest;
use super::state::Store;
use super::stats::OperationStats;

/// The outcome logged for a call whose connection was closed before the operation ran.
pub const DROPPED_CONNECTION: &str = Fault::DROPPED_CONNECTION;

pub struct Engine {
    accounts: Accounts,
    copy: CopyBehaviour,
    store: Mutex<Store>,
    observations: Mutex<Observations>,
    faults: Mutex<Faults>,
    quotas: Mutex<QuotaState>,
}

/// What the server does with a request: answer it (after `latency`), or close the connection without a word.
pub struct Answer {
    pub result: Result<Value, ApiError>,
    pub latency: Duration,
    pub close_connection: bool,
}

/// What one call turned out to be, for the log.
#[derive(Default)]
struct Trace {
    operation: String,
    account_id: Option<String>,
    key: Value,
}

enum Fate {
    Answer(Result<Output, ApiError>),
    DropRequest,
}

struct Processed {
    fate: Fate,
    latency: Duration,
    drop_response: bool,
}

impl Processed {
    fn answer(result: Result<Output, ApiError>) -> Self {
        Processed { fate: Fate::Answer(result), latency: Duration::ZERO, drop_response: false }
    }
}

impl Engine {
    /// The simulator's starting state, from a configuration whose seed and policies passed validation.
    pub fn new(config: &SimConfig, policies: &[(SeedProjectPolicy, PolicyDocument)]) -> Self {
        Engine {
            accounts: Accounts::new(&config.seed.accounts),
            copy: CopyBehaviour::from_config(config),
            store: Mutex::new(Store::from_seed(config.seed.resolve(), policies, Utc::now().timestamp_millis())),
            observations: Mutex::new(Observations::new(config.call_log_capacity)),
            faults: Mutex::new(Faults::new(config.faults.clone(), config.rng_seed)),
            quotas: Mutex::new(QuotaState::new(config.quotas.clone())),
        }
    }

    /// Handles one awsJson request.
    pub fn handle(&self, request: &ReceivedRequest<'_>) -> Answer {
        let received = Instant::now();
        let raw_target = header_text(request.headers, "x-amz-target").unwrap_or_default();
        let mut trace = Trace {
            operation: raw_target.strip_prefix(TARGET_PREFIX).unwrap_or(&raw_target).to_owned(),
            ..Trace::default()
        };
        let call = lock(&self.observations).begin(CallRecord {
            at: Utc::now(),
            account_id: None,
            operation: trace.operation.clone(),
            key: Value::Null,
            outcome: PENDING.to_owned(),
            attempt: header_text(request.headers, "amz-sdk-request"),
            invocation_id: header_text(request.headers, "amz-sdk-invocation-id"),
            response_dropped: false,
            copy: None,
        });

        let processed = self.process(request, received, &mut trace);

        let dropped_request = matches!(processed.fate, Fate::DropRequest);
        let (result, copy): (Result<Value, ApiError>, Option<PlannedCopy>) = match processed.fate {
            Fate::Answer(Ok(output)) => (Ok(output.body), output.copy),
            Fate::Answer(Err(err)) => (Err(err), None),
            Fate::DropRequest => (Ok(Value::Null), None),
        };
        let outcome = match (dropped_request, &result) {
            (true, _) => DROPPED_CONNECTION,
            (false, Ok(_)) => "ok",
            (false, Err(err)) => err.code.name(),
        };
        let close_connection = dropped_request || processed.drop_response;
        tracing::info!(
            operation = %raw_target,
            account = trace.account_id.as_deref().unwrap_or("-"),
            outcome,
            response_dropped = processed.drop_response,
            "rekognition call"
        );
        if let Err(err) = &result {
            tracing::debug!(error = %err, "rekognition call failed");
        }
        let counted_account = trace.account_id.clone().unwrap_or_default();
        lock(&self.observations).finish(
            call,
            (&counted_account, &trace.operation),
            Finished {
                account_id: trace.account_id,
                key: trace.key,
                outcome,
                response_dropped: processed.drop_response,
                copy,
            },
        );
        Answer { result, latency: processed.latency, close_connection }
    }

    /// The steps, stopping at the first error; what they learn on the way (caller, key) goes into `trace`.
    fn process(&self, request: &ReceivedRequest<'_>, received: Instant, trace: &mut Trace) -> Processed {
        let operation = target_operation(request.headers).and_then(Operation::from_name);
        if let Ok(operation) = &operation {
            trace.key = operation.key_params(request.body);
        }
        let caller = self.accounts.identify(request, SystemTime::now());
        trace.account_id = caller.as_ref().ok().map(|caller| caller.account_id.clone());
        let call_index =
            lock(&self.observations).count(trace.account_id.as_deref().unwrap_or_default(), &trace.operation, received);
        let (operation, caller) = match (operation, caller) {
            (Err(err), _) | (_, Err(err)) => return Processed::answer(Err(err)),
            (Ok(operation), Ok(caller)) => (operation, caller),
        };
        let admitted = lock(&self.quotas).admit(&caller.account_id, operation.name(), received);
        if !admitted {
            return Processed::answer(Err(ApiError::throughput_exceeded()));
        }

        let decision = lock(&self.faults).decide(&caller.account_id, operation.name(), call_index);
        let (fate, drop_response) = match decision.disruption {
            Disruption::Error(err) => (Fate::Answer(Err(err)), false),
            Disruption::DropRequest => (Fate::DropRequest, false),
            Disruption::DropResponse => (self.run(operation, &caller, request.body), true),
            Disruption::None => (self.run(operation, &caller, request.body), false),
        };
        Processed { fate, latency: decision.latency, drop_response }
    }

    fn run(&self, operation: Operation, caller: &Caller, body: &[u8]) -> Fate {
        let context = Context {
            caller,
            now_millis: Utc::now().timestamp_millis(),
            copy: &self.copy,
            max_copies_in_progress: lock(&self.quotas).quotas().max_copies_in_progress_for(&caller.account_id),
        };
        // Operations check before they change anything, so a panicking one leaves the store usable.
        Fate::Answer(operation.run(&mut lock(&self.store), &context, body))
    }

    pub fn calls(&self) -> Vec<CallRecord> {
        lock(&self.observations).calls()
    }

    pub fn call_count(&self, operation: &str) -> usize {
        lock(&self.observations).call_count(operation)
    }

    pub fn stats(&self) -> Vec<OperationStats> {
        lock(&self.observations).stats()
    }

    /// Who the simulator knows: seeded keys, issued temporary credentials, roles.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    pub fn inject_fault(&self, fault: Fault) {
        lock(&self.faults).inject(fault);
    }

    /// See [`Faults::hold_in_transit`].
    pub fn hold_in_transit(&self, operation: &str, delays: Vec<Duration>) {
        lock(&self.faults).hold_in_transit(operation, delays);
    }

    /// How long a request with these headers is held up in transit before it arrives, if at all.
    pub fn transit_delay(&self, headers: &axum::http::HeaderMap) -> Option<Duration> {
        let target = header_text(headers, "x-amz-target")?;
        lock(&self.faults).take_transit_delay(target.strip_prefix(TARGET_PREFIX).unwrap_or(&target))
    }

    pub fn random_faults(&self) -> RandomFaults {
        lock(&self.faults).random().clone()
    }

    pub fn set_random_faults(&self, random: RandomFaults) -> Result<(), String> {
        random.validate()?;
        lock(&self.faults).set_random(random);
        Ok(())
    }

    pub fn quotas(&self) -> Quotas {
        lock(&self.quotas).quotas().clone()
    }

    pub fn set_quotas(&self, quotas: Quotas) -> Result<(), String> {
        quotas.validate()?;
        lock(&self.quotas).replace(quotas);
        Ok(())
    }

    /// Clears the call log, the stats and pending injected faults.
    pub fn reset_observations(&self) {
        lock(&self.observations).reset();
        lock(&self.faults).clear_pending();
    }

    /// Sets a version's status from now on, as StartProjectVersion, StopProjectVersion or the console would out of
    /// band (the simulator does not implement those): `RUNNING` makes DeleteProjectVersion refuse it, `STOPPED`
    /// lets it go. Refuses a version that does not exist or a status botocore does not name.
    pub fn set_version_status(&self, arn: &str, status: &str) -> Result<(), String> {
        let arn = super::arn::ProjectVersionArn::parse(arn).map_err(|err| err.to_string())?;
        let status = super::lifecycle::VersionStatus::parse(status).ok_or_else(|| format!("no status {status:?}"))?;
        let mut store = lock(&self.store);
        let project = store.project_named_mut(&arn.project).ok_or_else(|| format!("no project of {arn}"))?;
        let version = project
            .versions
            .named_mut(&arn.version_name)
            .filter(|version| version.arn == arn)
            .ok_or_else(|| format!("no version {arn}"))?;
        version.lifecycle = super::lifecycle::Lifecycle::Fixed(status);
        Ok(())
    }

    pub fn project_count(&self) -> usize {
        lock(&self.store).project_count()
    }
}

/// A panic while holding one of these locks cannot leave its data half-written in a way that matters (operations
/// check before they change anything; the log and counters are updated in single steps), so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
