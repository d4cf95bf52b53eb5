//! modelcopy: a gRPC front door to Amazon Rekognition Custom Labels model copies.
//!
//! The module tree follows a request's path: it enters [`api`], is authenticated and authorized in [`auth`],
//! stored with its [`audit`] record in [`store`], picked up by [`dispatch`], sent through [`rekognition`], followed
//! until it ends, and fanned out to clients in [`watch`]. The Rekognition [`simulator`] lives apart from the service.

pub mod api;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod devenv;
pub mod dispatch;
pub mod domain;
pub mod proto;
pub mod rekognition;
pub mod shutdown;
pub mod simulator;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod watch;
