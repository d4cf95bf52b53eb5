//! The audit log: one record for every RPC, written before the caller gets an answer, and kept tamper-evident.
//!
//! [`layer::AuditLayer`] wraps the whole gRPC service, so no handler can forget: it opens an [`AuditSlot`] for each
//! call, handlers add what only they know (the request's key fields, the copy id), and the layer writes the row when
//! the handler answers, turning a failure to write it into an error for the caller. The exceptions are calls whose
//! record must commit in the same transaction as the change they made (a new copy, a cancellation): the store
//! writes it there and marks the slot as written.
//!
//! Rows are append-only in the database and hash-chained ([`chain`]): [`verify`] walks the chain and names the first
//! row that breaks it. [`AuditFilter`] and [`summary`] are the compliance reports' questions.

pub mod chain;
pub mod filter;
pub mod layer;
pub mod record;
pub mod summary;
pub mod verify;

pub use filter::AuditFilter;
pub use layer::AuditLayer;
pub use record::{AuditRecord, AuditSlot, Decision};
pub use verify::{verify, Verdict};
