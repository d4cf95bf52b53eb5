//! Fan-out of copy state changes to watching clients.
//!
//! Every transition is a row of `copy_events`; its insert NOTIFYs, and PostgreSQL delivers notifications at commit,
//! in commit order, to every replica. One [`hub::WatchHub`] per replica listens and broadcasts each stored event
//! to that replica's watchers, so watchers see changes made by any replica. A watcher subscribes *before* reading
//! the current state and drops what that state already covers, so nothing falls between the two. A watcher that
//! falls behind, or a hub that lost its connection, catches up from the database rather than skipping events; a
//! watcher that resumes after a change it saw ([`Start::After`]) starts that way, with no current state.

pub mod hub;
pub mod retention;
pub mod stream;

pub use hub::{HubMessage, StoredEvent, WatchHub};
pub use retention::WatchSettings;
pub use stream::{watch_copy, watch_filter, Start, WatchError, WatchItem};
