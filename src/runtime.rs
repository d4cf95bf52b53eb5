//! The service's tokio runtime.
//!
//! Why not `#[tokio::main]`'s defaults: tokio runs a task woken by the running task next, in the worker's "LIFO
//! slot", ahead of everything queued. A watch change wakes thousands of streams at once; each stream hands its
//! event to its HTTP/2 connection, which wakes the connection's task, which then ran at once and wrote that one
//! event to the socket, even with the connection's frames gathered (`crate::connection`): 10,000 streams over 100
//! connections made about 8,000 sends per change (`perf stat` over the watch fan-out benchmark), each waking the
//! client for one message, and cost the replica half again as much CPU per delivered event. Without the slot, a
//! connection's task runs after the streams queued before it and writes their events together: about 480 sends
//! per change.

/// A multi-threaded runtime with every driver, and without the LIFO slot where this build allows it (the
/// `tokio_unstable` cfg, set in `.cargo/config.toml`).
pub fn build() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    builder.build()
}
