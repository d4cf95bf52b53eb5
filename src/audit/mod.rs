//! The audit log's work above the store: one record for every RPC, written before the caller gets an answer, and
//! the check that the log is still what was written.
//!
//! [`layer::AuditLayer`] wraps the whole gRPC service, so no handler can forget: it opens an [`AuditSlot`] for each
//! call, handlers add what only they know (the request's key fields, the copy id), and the layer writes the row when
//! the handler answers, turning a failure to write it into an error for the caller. The exceptions are calls whose
//! record must commit in the same transaction as the change they made (a new copy, a cancellation): the store
//! writes it there and marks the slot as written.
//!
//! Rows are append-only in the database and hash-chained: [`verify()`] walks the chain and names the first row that
//! breaks it. What a row says, how it is hashed and what the reports ask are the store's row types
//! ([`crate::store::audit`]): the store writes and reads them, so they sit on its floor, below this module. They are
//! re-exported here for the callers that think of them as the audit log's.

pub mod layer;
pub mod slot;
pub mod verify;

pub use crate::store::audit::{chain, summary, AuditFilter, AuditRecord, Decision};
pub use layer::{AuditLayer, HeldForTheCall};
pub use slot::AuditSlot;
pub use verify::{verify, Verdict};
