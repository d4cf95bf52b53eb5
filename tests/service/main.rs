//! End-to-end tests of the service: real PostgreSQL, the Rekognition simulator, the real AWS SDK, and gRPC
//! clients over loopback. One binary, so the (slow to link) dependencies are linked once.

#[path = "../support/mod.rs"]
mod support;

mod helpers;

mod accept_bench;
mod admission;
mod api_bench;
mod audit;
mod audit_chain;
mod authn;
mod authz;
mod aws_errors;
mod cancel;
mod cli;
mod cli_fake_server;
mod config_check;
mod copy_flow;
mod dashboard;
mod deploy;
mod expiry;
mod flood_bench;
mod following;
mod group_commit;
mod health;
mod idempotency;
mod leadership;
mod leases;
mod listener;
mod listing;
mod pacing;
mod preflight;
mod reporting;
mod rollouts;
mod telemetry;
mod unreadable_rows;
mod validation;
mod watch;
mod watch_bench;
mod web;

/// A Rekognition client acting as `account` against the test's simulator (for doing things behind the service).
pub fn aws_sdk_client(app: &helpers::TestApp, account: &str) -> aws_sdk_rekognition::Client {
    let seed = app.seed.accounts.iter().find(|a| a.account_id == account).expect("seeded account");
    let secret = seed.secret_access_key.clone().unwrap_or_default();
    support::sdk_client(&app.sim.endpoint_url(), &seed.access_key_id, &secret, None)
}
