//! End-to-end tests of the service: real PostgreSQL, the Rekognition simulator, the real AWS SDK, and gRPC
//! clients over loopback. One binary, so the (slow to link) dependencies are linked once.

mod helpers;

mod api_bench;
mod audit;
mod audit_chain;
mod authn;
mod authz;
mod aws_errors;
mod cancel;
mod cli;
mod copy_flow;
mod idempotency;
mod leadership;
mod listing;
mod reporting;
mod telemetry;
mod validation;
mod watch;

/// A Rekognition client acting as `account` against the test's simulator (for doing things behind the service).
pub fn aws_sdk_client(app: &helpers::TestApp, account: &str) -> aws_sdk_rekognition::Client {
    let seed = app.seed.accounts.iter().find(|a| a.account_id == account).expect("seeded account");
    let config = aws_sdk_rekognition::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_rekognition::config::Region::new(helpers::REGION))
        .endpoint_url(app.sim.endpoint_url())
        .credentials_provider(aws_credential_types::Credentials::new(
            &seed.access_key_id,
            seed.secret_access_key.clone().unwrap_or_default(),
            None,
            None,
            "test",
        ))
        .build();
    aws_sdk_rekognition::Client::from_conf(config)
}
