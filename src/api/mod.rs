//! The gRPC API: thin handlers that turn protobuf into domain types, call the store or the watch hub, and turn
//! the answer back. Authentication and the audit record happen around them, in tower layers ([`crate::auth`],
//! [`crate::audit`]); authorization, which needs the validated request, is one call of each handler
//! ([`context::Call::authorize`]); errors become gRPC statuses in one place ([`error`]).

pub mod audit_events;
pub mod context;
pub mod convert;
pub mod error;
pub mod rollouts;
pub mod service;
pub mod visible_page;

pub use error::ApiError;
pub use service::ModelCopyService;
