//! The audit log: one record for every RPC, written before the caller gets an answer.
//!
//! [`layer::AuditLayer`] wraps the whole gRPC service, so no handler can forget: it opens an [`AuditSlot`] for each
//! call, handlers add what only they know (the request's key fields, the copy id), and the layer writes the row when
//! the handler answers, turning a failure to write it into an error for the caller. The one exception is
//! CopyModelVersion, whose record must commit in the same transaction as the copy it creates: the store writes it
//! there and marks the slot as written.

pub mod layer;
pub mod record;

pub use layer::AuditLayer;
pub use record::{AuditRecord, AuditSlot, Decision};
