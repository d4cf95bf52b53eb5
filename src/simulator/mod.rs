//! A local Amazon Rekognition Custom Labels, speaking the real awsJson1.1 protocol.
//!
//! No machine here reaches AWS, so the service, its tests and demos talk to this simulator instead, through the
//! real clients: `aws-sdk-rekognition` and boto3 pointed at it with `endpoint_url`. It lives apart from the
//! service code and imports nothing from it, so it cannot drift towards what the service expects rather than what
//! AWS does.
//!
//! # What is modelled
//!
//! - The wire protocol: `POST /`, `x-amz-target: RekognitionService.<Operation>`, JSON bodies with AWS member names;
//!   errors as `{"__type", "message"}` plus `x-amzn-errortype`, HTTP 500 for `ThrottlingException` and
//!   `InternalServerError`, 400 otherwise; `x-amzn-requestid` on every answer; timestamps as epoch seconds.
//!   Unknown operations answer `UnknownOperationException`.
//! - Identity: the account is the one the seed maps the SigV4 access key id to; the region is the credential
//!   scope's. No `Authorization` → `MissingAuthenticationTokenException`; an unknown key →
//!   `UnrecognizedClientException`.
//! - Input constraints from the service model (required members, lengths, patterns, ranges, list sizes, enums) →
//!   `ValidationException`, all violations in one message, as AWS words them.
//! - `CreateProject`, `DescribeProjects` (caller's account and region, newest first, paginated),
//!   `CopyProjectVersion` (ownership of the destination → `AccessDeniedException`, same region →
//!   `InvalidParameterException`, existence → `ResourceNotFoundException`, free version name →
//!   `ResourceInUseException`) and `DescribeProjectVersions` (newest first, `NextToken`,
//!   `InvalidPaginationTokenException`).
//! - Copy progress: a copy is `COPYING_IN_PROGRESS` for the configured duration, then `COPYING_COMPLETED`, or
//!   `COPYING_FAILED` with a `StatusMessage` when its version name starts with the failure prefix. Status is
//!   computed from the clock when described; nothing runs in the background.
//! - For tests: a call log (account, operation, key parameters, outcome, SDK attempt and invocation id) and fault
//!   injection (the next N calls of an operation fail with a given error), from Rust ([`SimHandle`]) or over HTTP
//!   (`GET /_sim/calls`, `POST /_sim/faults`, `POST /_sim/reset` on the same port).
//!
//! # Defaults
//!
//! [`SimConfig::default`]: listens on `127.0.0.1:0`, copies take 2 s, version names starting with `fail-` fail,
//! empty seed (no accounts: every call is `UnrecognizedClientException` until a seed adds some). Seeded projects
//! and versions without a creation time get deterministic ones (from 2024-01-01T00:00:00Z, in seed order), and
//! seeded versions are `TRAINING_COMPLETED` unless the seed says otherwise.
//!
//! # Not modelled yet
//!
//! - SigV4 signature verification (the secret keys in the seed are kept for it).
//! - Project policies (`PutProjectPolicy`, `ListProjectPolicies`, `DeleteProjectPolicy`): cross-account copies are
//!   allowed without one; `DeleteProjectVersion` and every other operation answer `UnknownOperationException`.
//! - Service-side throttling, quotas and limits (`LimitExceededException`, `ServiceQuotaExceededException`,
//!   `ProvisionedThroughputExceededException`) other than by injected faults; idempotency of repeated copies.
//! - Checks on the source version's status (a copy may start from a version that is still copying or failed),
//!   and on S3 buckets and KMS keys (accepted as given). Tags are checked, not kept.
//! - Datasets, training, running models, and persistence: state lives in memory and is lost on exit.

mod admin;
mod arn;
mod config;
mod engine;
mod error;
mod identity;
mod lifecycle;
mod observe;
mod ops;
mod pagination;
mod protocol;
mod seed;
mod server;
mod state;
mod validate;

pub use config::SimConfig;
pub use observe::{CallRecord, Fault};
pub use seed::{Seed, SeedAccount, SeedError, SeedProject, SeedVersion};
pub use server::{start, SimHandle};
