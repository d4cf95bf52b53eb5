//! Admission: which calls this replica takes on at all, decided before anything costly (the audit write above
//! all, which every call that is taken on makes, and which all callers share).
//!
//! A caller is its principal once authenticated, or its address when its credentials are missing or refused. Each
//! has a rate of its own ([`limits`]); calls beyond it, and calls beyond the replica's concurrency limit, are shed:
//! answered `RESOURCE_EXHAUSTED` with a `RetryInfo` saying when to come back, without an audit row. That is the
//! point: a flood of refused calls, each audited, made every caller wait behind its rows. What the audit log
//! misses of a shed call is a call that was never served; the replica logs each caller it sheds (at most once a
//! minute per caller) with the count of calls shed.

pub mod layer;
pub mod limits;
pub mod settings;

pub use layer::AdmissionLayer;
pub use limits::{Admission, Caller, Permit, Shed, StreamPlace};
pub use settings::AdmissionSettings;
