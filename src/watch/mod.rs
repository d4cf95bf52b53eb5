//! Fan-out of copy state changes to watching clients.
//!
//! Every transition is a row of `copy_events`; its insert NOTIFYs, and PostgreSQL delivers notifications at commit,
//! in commit order, to every replica. One [`hub::WatchHub`] per replica listens, reads each change once, and hands
//! it to that replica's watchers, so watchers see changes made by any replica. A watcher starts
//! ([`stream`]) by subscribing to the hub, then reading its starting state and the changes after it from the
//! database, then joining the fan-out ([`fanout`]), which encodes each change once and asks the policies once per
//! viewer. A watcher that cannot keep up is cut off ([`outlet`]) and resumes with `after_sequence`
//! ([`Start::After`]), as does one whose replica lost the database.

pub mod fanout;
pub mod hub;
pub mod outlet;
pub mod retention;
pub mod stream;

pub use fanout::{Encode, Target, Viewer, Watcher};
pub use hub::{HubMessage, StoredEvent, WatchHub};
pub use outlet::WatchStream;
pub use retention::WatchSettings;
pub use stream::{watch, Start, WatchError, WatchItem};
