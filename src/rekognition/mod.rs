//! Calls to Amazon Rekognition through `aws-sdk-rekognition`: one client per configured account, the operations a
//! copy needs (and its deletion when it expires), and the sorting of AWS errors into "retry later" and "this copy has failed".
//!
//! The SDK's own retries are turned off: every attempt must be counted and paced by the dispatcher (by default the
//! SDK retries a throttled call twice within about a second, by itself and invisible to any limiter), which retries
//! with backoff and jitter.

pub mod clients;
pub mod copy;
pub mod delete;
pub mod error;
pub mod projects;
pub mod settings;
pub mod status;

pub use clients::Clients;
pub use error::{AwsCallError, Retry};
pub use settings::{AccountLimits, AccountSettings};
pub use status::VersionStatus;
