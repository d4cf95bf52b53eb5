//! Seeded randomness: the same `rng_seed` gives the same copy durations, outcomes and faults.

use std::time::{Duration, Instant};

use aws_sdk_rekognition::types::ProjectVersionStatus;
use modelcopy::simulator::{DurationDistribution, PlannedCopy, RandomFaults, SimConfig};

use crate::helpers::*;

fn random_copies(rng_seed: u64) -> SimConfig {
    SimConfig {
        rng_seed,
        copy_durations: Some(DurationDistribution::Uniform { min_millis: 50, max_millis: 400 }),
        copy_failure_rate: 0.5,
        copy_failure_message: "Simulated: the output bucket refused the write.".into(),
        ..config(Duration::from_secs(2))
    }
}

/// Starts eight copies (in parallel, so arrival order varies) and returns what the simulator planned for each.
async fn eight_copies(sim: &Sim) -> Vec<PlannedCopy> {
    let client = sim.client_without_retries(KEY_A);
    let dest = sim.project_arn(ACCOUNT_A, REGION, "dest");
    let copies = (0..8).map(|i| {
        let (client, dest) = (client.clone(), dest.clone());
        async move { copy_source_v1(sim, &client, &dest, &format!("r{i}")).await }
    });
    for result in futures::future::join_all(copies).await {
        result.expect("copy starts");
    }
    let mut planned: Vec<PlannedCopy> = sim.handle.calls().into_iter().filter_map(|call| call.copy).collect();
    planned.sort_by(|a, b| a.version_arn.rsplit('/').nth(1).cmp(&b.version_arn.rsplit('/').nth(1)));
    planned
}

/// What matters of a plan: the version name, the duration and the end.
fn essentials(planned: &[PlannedCopy]) -> Vec<(String, u64, String)> {
    planned
        .iter()
        .map(|p| {
            let name = p.version_arn.rsplit('/').nth(1).unwrap().to_owned();
            (name, p.duration_millis, p.final_status.clone())
        })
        .collect()
}

#[tokio::test]
async fn same_seed_same_durations_and_outcomes() {
    let first = Sim::start_with(random_copies(7)).await;
    let second = Sim::start_with(random_copies(7)).await;
    let other = Sim::start_with(random_copies(8)).await;

    let plans = essentials(&eight_copies(&first).await);
    assert_eq!(plans, essentials(&eight_copies(&second).await));
    assert_ne!(plans, essentials(&eight_copies(&other).await));
    assert!(plans.iter().all(|(_, ms, _)| (50..=400).contains(ms)), "{plans:?}");
    let failed = plans.iter().filter(|(_, _, end)| end == "COPYING_FAILED").count();
    assert!((1..8).contains(&failed), "about half of 8 fail: {plans:?}");
}

#[tokio::test]
async fn versions_end_as_planned_after_their_duration() {
    let sim = Sim::start_with(random_copies(11)).await;
    let started = Instant::now();
    let plans = eight_copies(&sim).await;
    let client = sim.client_without_retries(KEY_A);
    let dest = sim.project_arn(ACCOUNT_A, REGION, "dest");

    tokio::time::sleep(Duration::from_millis(500)).await;
    for plan in &plans {
        let name = plan.version_arn.rsplit('/').nth(1).unwrap();
        let version = describe_version(&client, &dest, name).await;
        let expected = ProjectVersionStatus::from(plan.final_status.as_str());
        assert_eq!(version.status(), Some(&expected), "{plan:?}");
        if expected == ProjectVersionStatus::CopyingFailed {
            assert_eq!(version.status_message(), Some("Simulated: the output bucket refused the write."));
        }
    }
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn same_seed_same_random_faults() {
    let faulty = |rng_seed| SimConfig {
        rng_seed,
        faults: RandomFaults { throttling: 0.3, internal_error: 0.2, ..RandomFaults::default() },
        ..config(Duration::from_secs(2))
    };
    let outcomes = |sim: Sim| async move {
        let client = sim.client_without_retries(KEY_A);
        for _ in 0..30 {
            let _ = client.describe_projects().send().await;
        }
        sim.handle.calls().into_iter().map(|call| call.outcome).collect::<Vec<_>>()
    };
    let first = outcomes(Sim::start_with(faulty(3)).await).await;
    assert_eq!(first, outcomes(Sim::start_with(faulty(3)).await).await);
    assert_ne!(first, outcomes(Sim::start_with(faulty(4)).await).await);
    let count = |name: &str| first.iter().filter(|o| *o == name).count();
    assert!(count("ThrottlingException") > 0 && count("InternalServerError") > 0 && count("ok") > 0);
    assert_eq!(count("ok") + count("ThrottlingException") + count("InternalServerError"), 30);
}
