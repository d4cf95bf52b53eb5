//! A local Amazon Rekognition Custom Labels, speaking the real awsJson1.1 protocol.
//!
//! No machine here reaches AWS, so the service, its tests and demos talk to this simulator instead, through the
//! real clients: `aws-sdk-rekognition` and boto3 pointed at it with `endpoint_url`. It lives apart from the
//! service code and imports nothing from it, so it cannot drift towards what the service expects rather than what
//! AWS does. A lenient simulator proves nothing: where it matters (who may copy what, quotas, faults) it refuses
//! what AWS refuses, in AWS's words, and lets tests see exactly what it was sent.
//!
//! # What is modelled
//!
//! - **Wire protocol**: `POST /`, `x-amz-target: RekognitionService.<Operation>`, JSON bodies with AWS member
//!   names; errors as `{"__type", "message"}` plus `x-amzn-errortype`; HTTP 500 for `ThrottlingException` and
//!   `InternalServerError`, 400 for every other error (as the API reference lists them); `x-amzn-requestid` on
//!   every answer; timestamps as epoch seconds. Unknown operations answer `UnknownOperationException`.
//! - **Identity** (`identity.rs`, `signature.rs`): the account is the one the seed maps the SigV4 access key id to;
//!   the region is the credential scope's. No `Authorization` → `MissingAuthenticationTokenException`; an unknown
//!   key → `UnrecognizedClientException`; a malformed header or no `x-amz-date` → `IncompleteSignatureException`.
//!   When the seed gives the key a secret, the request is signed again with it by `aws-sigv4` and the signatures
//!   compared: a mismatch, another service in the scope, or an `x-amz-date` more than 15 minutes away →
//!   `InvalidSignatureException`.
//! - **Input constraints** from the service model (required members, lengths, patterns, ranges, list sizes,
//!   enums) → `ValidationException`, all violations in one message, as AWS words them.
//! - **Operations**: `CreateProject`; `DescribeProjects` (caller's account and region, newest first, paginated);
//!   `CopyProjectVersion`; `DescribeProjectVersions` (newest first, as documented; `VersionNames`; `NextToken`;
//!   `InvalidPaginationTokenException`); `DeleteProjectVersion`; `PutProjectPolicy`, `ListProjectPolicies`,
//!   `DeleteProjectPolicy` (policy name, revision id, document).
//! - **STS AssumeRole** (`sts.rs`): the query protocol with XML answers, signed for `sts`; roles are the seed's
//!   (`roles` of an account), assumable by any seeded caller; another role → `AccessDenied` (403). The temporary
//!   credentials sign Rekognition calls in the role's account, with their session token (`x-amz-security-token`)
//!   required.
//! - **Copy rules**, in this order: the caller owns the destination (`AccessDeniedException`); source and
//!   destination share a region (`InvalidParameterException`); destination project, source project and source
//!   version exist (`ResourceNotFoundException`); the source project's policies allow it (`policy.rs`:
//!   another account needs an `Allow` for `rekognition:CopyProjectVersion` on the source version; an explicit
//!   `Deny` refuses anyone, owner included → `AccessDeniedException` with IAM's wording); the version name is free
//!   in the destination (`ResourceInUseException`); the destination account is under its copies-in-progress quota
//!   (`LimitExceededException`).
//! - **Quotas** (`quota.rs`), per account and operation: transactions per second as token buckets (burst, refill
//!   rate) → `ProvisionedThroughputExceededException` (HTTP 400); copies in progress per destination account →
//!   `LimitExceededException` (HTTP 400). Both are checked before anything changes.
//! - **Time and outcomes** (`chance.rs`): a copy is `COPYING_IN_PROGRESS` for a duration drawn from a configured
//!   distribution (fixed, uniform, exponential), then `COPYING_COMPLETED` or `COPYING_FAILED` with a
//!   `StatusMessage` — failed when its name starts with the failure prefix, or by a configured share. Draws are
//!   seeded (`rng_seed`) and keyed by destination and version name, so the same seed gives the same durations and
//!   outcomes whatever the order of the calls. Status is computed from the clock when described; nothing runs in
//!   the background.
//! - **Faults** (`faults.rs`): injected for the next N calls of an operation (any error name, or a dropped
//!   connection before or after the operation runs), and random by configured shares (`ThrottlingException` and
//!   `InternalServerError` with HTTP 500, dropped requests, dropped responses) plus added latency, drawn per
//!   account, operation and call number from the seed.
//! - **What tests see** (`observe.rs`, `stats.rs`, `admin.rs`): the call log (time, account, operation, key
//!   parameters, outcome, SDK attempt and invocation id, dropped response, the planned duration and end of a copy);
//!   per account and operation the calls received, throttles served and the busiest sliding second; from Rust
//!   ([`SimHandle`]) or over HTTP on the same port (`/_sim/calls`, `/_sim/stats`, `/_sim/faults`,
//!   `/_sim/faults/random`, `/_sim/quotas`, `/_sim/reset`).
//! - **Scale**: projects, versions and copies in progress are indexed (`state.rs`), so no request scans the world;
//!   `rekognition-sim bench` measures the request rate (see `BENCHMARKS.md`).
//!
//! # Defaults
//!
//! [`SimConfig::default`]: listens on `127.0.0.1:0`; copies take 2 s; version names starting with `fail-` fail,
//! no other copy does; no quotas, no faults, no latency; `rng_seed` 0; the call log keeps the last 100,000 calls;
//! an empty seed (no accounts: every call is `UnrecognizedClientException` until a seed adds some); and
//! `require_project_policy: false`, so code written before policies were modelled keeps working. The
//! `rekognition-sim` binary has the same defaults except `require_project_policy: true`, as on AWS. Seeded
//! projects and versions without a creation time get deterministic ones (from 2024-01-01T00:00:00Z, in seed
//! order); seeded versions are `TRAINING_COMPLETED` unless the seed says otherwise.
//!
//! # Where AWS's documentation is silent, the simulator chooses
//!
//! - Existence is checked before policies: copying another account's *missing* project or version answers
//!   `ResourceNotFoundException`, not `AccessDeniedException` (AWS may well hide existence; tests get the more
//!   helpful answer).
//! - A policy principal matches the caller when it names the caller's *account* in any form (`"2222…"`,
//!   `arn:aws:iam::2222…:root`, `…:role/Admin`) or is `"*"`: the simulator knows accounts, not IAM users and roles.
//!   Policy resources match the source *version* ARN, with IAM wildcards. A statement with a `Condition` is read
//!   strictly: a conditional `Deny` applies, a conditional `Allow` does not. `Effect` is case-insensitive.
//! - `PutProjectPolicy` with a `PolicyRevisionId` for a policy name that does not exist →
//!   `ResourceNotFoundException`; a sixth policy on a project → `ServiceQuotaExceededException`. Revision ids are
//!   32 hex digits, new at every put. `ListProjectPolicies` lists in policy-name order. Only the project's owner
//!   may put, list or delete its policies (`AccessDeniedException` for others, before existence is checked).
//! - `DeleteProjectVersion` refuses a version that is `COPYING_IN_PROGRESS` (as it refuses training and running
//!   ones) with `ResourceInUseException`; it removes the version at once and answers `DELETING`, so the name is
//!   free again immediately. StartProjectVersion and StopProjectVersion are not served: `PUT /_sim/version-status`
//!   (`SimHandle::set_version_status`) sets a version's status from then on, as they (or the console) would.
//! - `LimitExceededException` comes after every other copy check (only a copy that would start counts), and the
//!   limit counts copies *into* the account (the caller's), failed-to-be ones included while in progress.
//! - Quotas apply to the caller's account after it authenticates; rejected calls take no token. A per-account
//!   quota overrides the default one operation by operation. `InvalidSignatureException` is HTTP 400.
//! - A call is counted in the stats when received, whatever its outcome; calls that did not authenticate are
//!   counted under the empty account id. The busiest second is the largest number of calls in any window
//!   `[t − 1 s, t]`. `reset` clears the log, the stats and pending injected faults (so random fault sequences
//!   restart), not the world, quotas or random fault settings.
//! - A dropped response is sent after the added latency; added latency delays the answer, not the operation.
//!
//! # Deliberately not modelled
//!
//! - IAM identity policies, users, roles, sessions (`x-amz-security-token` is signed through but not checked),
//!   `Condition` evaluation, and service-linked permissions on S3 buckets and KMS keys (accepted as given).
//! - `ServiceQuotaExceededException` for anything but the number of policies; quotas on anything but rates and
//!   copies in progress. Idempotency of repeated copies (a second copy of a name is `ResourceInUseException`).
//! - Checks on the source version's status (a copy may start from a version that is still copying or failed).
//!   Tags are checked, not kept.
//! - Datasets, training, running models and every other Rekognition operation; persistence: state lives in memory
//!   and is lost on exit.
//! - The call log keeps the most recent `call_log_capacity` calls; older ones are dropped (stats stay exact).

mod admin;
mod arn;
pub mod bench;
mod chance;
mod config;
mod config_file;
mod connection;
mod engine;
mod error;
mod faults;
mod identity;
mod lifecycle;
mod observe;
mod ops;
mod pagination;
mod policy;
mod protocol;
mod quota;
mod seed;
mod server;
mod signature;
mod state;
mod stats;
mod sts;
mod validate;

pub use chance::DurationDistribution;
pub use config::{ConfigError, SimConfig};
pub use config_file::SimConfigFile;
pub use faults::{Fault, Latency, RandomFaults};
pub use observe::{CallRecord, PlannedCopy, DEFAULT_CALL_LOG_CAPACITY};
pub use policy::COPY_ACTION;
pub use quota::{OperationQuotas, Quotas, Rate};
pub use seed::{Seed, SeedAccount, SeedError, SeedFile, SeedPolicy, SeedProject, SeedProjectPolicy, SeedVersion};
pub use server::{start, SimHandle};
pub use stats::OperationStats;
