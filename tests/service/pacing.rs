//! An account's pace holds as Rekognition receives the calls, not only as they leave: a call held up on its way
//! (the network, a busy sender) must not let the next one arrive within the same quota period.

use std::sync::Arc;
use std::time::Duration;

use modelcopy::dispatch::gate::Gate;
use modelcopy::dispatch::term::Term;
use modelcopy::rekognition::{AccountLimits, AwsCallError};
use modelcopy::simulator::{self, OperationQuotas, Quotas, Rate, SimConfig, SimHandle};
use tokio::task::JoinSet;

use crate::helpers::{seed, DEST_ACCOUNT};

const COPY: &str = "CopyProjectVersion";

/// A simulator whose accounts may call CopyProjectVersion twice a second, one at a time (AWS's default quota).
async fn simulator_at_two_copies_a_second() -> SimHandle {
    let rate = Rate { per_second: 2.0, burst: 1 };
    let quotas = Quotas {
        default: OperationQuotas { rate: [(COPY.to_owned(), rate)].into(), ..OperationQuotas::default() },
        ..Quotas::default()
    };
    simulator::start(SimConfig { seed: seed(), quotas, ..SimConfig::default() }).await.expect("simulator")
}

fn dest_client(sim: &SimHandle) -> aws_sdk_rekognition::Client {
    let account = seed().accounts.into_iter().find(|a| a.account_id == DEST_ACCOUNT).unwrap();
    crate::support::sdk_client(
        &sim.endpoint_url(),
        &account.access_key_id,
        &account.secret_access_key.unwrap_or_default(),
        Some(aws_sdk_rekognition::config::retry::RetryConfig::disabled()),
    )
}

/// One CopyProjectVersion, paced by `gate` as the dispatcher paces its calls: admitted with a slot of the
/// account's lane (or waiting as long as the gate says), then sent with it. What it asks for does not matter (the
/// simulator counts a call against the quota before it looks at it): only when it arrives.
async fn paced_copy(gate: &Gate, client: &aws_sdk_rekognition::Client, n: usize) {
    let ticket = loop {
        match gate.admit_copy() {
            Ok(ticket) => break ticket,
            Err(wait) => tokio::time::sleep(wait).await,
        }
    };
    let call = client
        .copy_project_version()
        .source_project_arn("arn:aws:rekognition:us-east-1:111111111111:project/p/1")
        .source_project_version_arn("arn:aws:rekognition:us-east-1:111111111111:project/p/version/v/1")
        .destination_project_arn("arn:aws:rekognition:us-east-1:222222222222:project/q/1")
        .version_name(format!("paced-{n}"))
        .output_config(aws_sdk_rekognition::types::OutputConfig::builder().s3_bucket("b").build())
        .send();
    let _ = ticket.call(async { call.await.map_err(AwsCallError::from) }).await;
}

#[tokio::test]
async fn a_call_held_up_on_its_way_does_not_bring_the_next_one_within_its_quota_period() {
    let sim = simulator_at_two_copies_a_second().await;
    let client = dest_client(&sim);
    let term = Arc::new(Term::new(Duration::from_secs(3600)));
    term.confirmed(tokio::time::Instant::now());
    let limits = AccountLimits { copy_per_second: 2.0, ..AccountLimits::default() };
    let gate = Arc::new(Gate::new(&DEST_ACCOUNT.parse().unwrap(), &limits, term, tokio::time::Instant::now()));
    // The first call is held up 400 ms on its way; at 2 calls a second they leave 510 ms apart.
    sim.hold_in_transit(COPY, vec![Duration::from_millis(400)]);

    // As the dispatcher makes them: each submission is a task of its own, paced by the account's gate.
    let mut calls = JoinSet::new();
    for n in 0..3 {
        let (gate, client) = (gate.clone(), client.clone());
        calls.spawn(async move { paced_copy(&gate, &client, n).await });
    }
    while calls.join_next().await.is_some() {}

    let stats = sim.stats();
    let copies = stats.iter().find(|s| s.account_id == DEST_ACCOUNT && s.operation == COPY).expect("calls made");
    assert_eq!(copies.calls, 3);
    assert_eq!(copies.throughput_exceeded, 0, "a call arrived within the quota period of another: {stats:?}");
    assert!(copies.max_calls_in_one_second <= 2, "{stats:?}");
}
