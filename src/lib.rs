//! modelcopy: a gRPC front door to Amazon Rekognition Custom Labels model copies.
//!
//! The module tree follows a request's path: it enters [`api`], is authenticated and authorized in [`auth`],
//! stored with its [`audit`] record in [`store`], picked up by [`dispatch`], sent through [`rekognition`], followed
//! until it ends, and fanned out to clients in [`watch`]. The Rekognition [`simulator`] lives apart from the service.

pub mod admission;
pub mod api;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod connection;
pub mod devenv;
pub mod dispatch;
pub mod domain;
pub mod health;
pub mod preflight;
pub mod proto;
pub mod rekognition;
pub mod runtime;
pub mod shutdown;
pub mod simulator;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod watch;
pub mod web;

/// mimalloc for every binary and test of the crate. Why: under load, glibc's malloc, free and their consolidation
/// of freed chunks took about a quarter of the CPU of the service's threads (perf over the accept benchmark), the
/// writer's thread included, whose time every caller in a batch waits on. Here, in the library, so that the
/// benchmarks, which run the service in the test binary, measure the allocator the service runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
