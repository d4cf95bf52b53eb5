//! Faults beyond error answers: dropped connections and added latency, injected or random.

use std::time::{Duration, Instant};

use modelcopy::simulator::{Fault, Latency, RandomFaults, SimConfig};

use crate::helpers::*;

#[tokio::test]
async fn a_dropped_connection_gets_no_answer_and_changes_nothing() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let client = sim.client_without_retries(KEY_A);
    let dest = sim.project_arn(ACCOUNT_A, REGION, "dest");
    sim.handle.inject_fault(Fault::new("CopyProjectVersion", Fault::DROPPED_CONNECTION, 1));

    let err = copy_source_v1(&sim, &client, &dest, "dropped").await.unwrap_err();

    assert!(err.as_service_error().is_none(), "no answer, so no service error: {err:?}");
    assert!(err.raw_response().is_none(), "{err:?}");
    let versions = client.describe_project_versions().project_arn(&dest).send().await.unwrap();
    assert!(versions.project_version_descriptions().is_empty());
    let calls = sim.handle.calls();
    assert_eq!(calls[0].outcome, "DroppedConnection");
    assert!(!calls[0].response_dropped);
}

#[tokio::test]
async fn a_dropped_response_hides_a_copy_that_did_start() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let client = sim.client_without_retries(KEY_A);
    let dest = sim.project_arn(ACCOUNT_A, REGION, "dest");
    sim.handle.inject_fault(Fault::new("CopyProjectVersion", Fault::DROPPED_RESPONSE, 1));

    let err = copy_source_v1(&sim, &client, &dest, "lost-answer").await.unwrap_err();
    assert!(err.as_service_error().is_none(), "{err:?}");

    // The copy exists: a client that retries blindly now meets ResourceInUseException.
    let version = describe_version(&client, &dest, "lost-answer").await;
    assert!(version.project_version_arn().is_some());
    let again = copy_source_v1(&sim, &client, &dest, "lost-answer").await.unwrap_err().into_service_error();
    assert!(again.is_resource_in_use_exception(), "{again:?}");
    let copy = &sim.handle.calls()[0];
    assert_eq!((copy.outcome.as_str(), copy.response_dropped), ("ok", true));
    assert_eq!(copy.copy.as_ref().map(|c| c.version_arn.as_str()), version.project_version_arn());
}

#[tokio::test]
async fn the_sdk_retries_a_dropped_connection_by_default() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    sim.handle.inject_fault(Fault::new("DescribeProjects", Fault::DROPPED_CONNECTION, 1));
    sim.client(KEY_A).describe_projects().send().await.expect("the retry is answered");
    let outcomes: Vec<String> = sim.handle.calls().into_iter().map(|c| c.outcome).collect();
    assert_eq!(outcomes, ["DroppedConnection", "ok"]);
}

#[tokio::test]
async fn random_latency_slows_only_the_chosen_operations() {
    let sim = Sim::start_with(SimConfig {
        faults: RandomFaults {
            latency: Latency { min_millis: 300, max_millis: 350 },
            operations: vec!["DescribeProjects".into()],
            ..RandomFaults::default()
        },
        ..config(Duration::from_secs(2))
    })
    .await;
    let client = sim.client_without_retries(KEY_A);

    let started = Instant::now();
    client.describe_projects().send().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());

    let started = Instant::now();
    client.describe_project_versions().project_arn(sim.project_arn(ACCOUNT_A, REGION, "many")).send().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(300), "{:?}", started.elapsed());
}

#[tokio::test]
async fn random_drops_happen_at_their_share() {
    let sim = Sim::start_with(SimConfig {
        rng_seed: 5,
        faults: RandomFaults { drop_request: 0.5, ..RandomFaults::default() },
        ..config(Duration::from_secs(2))
    })
    .await;
    let client = sim.client_without_retries(KEY_A);
    let mut failed = 0;
    for _ in 0..20 {
        if client.describe_projects().send().await.is_err() {
            failed += 1;
        }
    }
    let dropped = sim.handle.calls().iter().filter(|call| call.outcome == "DroppedConnection").count();
    assert_eq!(failed, dropped);
    assert!((3..=17).contains(&dropped), "{dropped} of 20 at 50%");

    sim.handle.set_random_faults(RandomFaults::default()).unwrap();
    client.describe_projects().send().await.expect("faults switched off");
}
