//! Quotas: transactions per second per account and operation, and copies in progress per destination account.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_rekognition::error::ProvideErrorMetadata;
use aws_sdk_rekognition::types::ProjectVersionStatus;
use modelcopy::simulator::{OperationQuotas, OperationStats, Quotas, Rate};

use crate::helpers::*;

fn rate(per_second: f64, burst: u32) -> Rate {
    Rate { per_second, burst }
}

fn quotas_for(account: &str, operation: &str, rate: Rate) -> Quotas {
    Quotas {
        default: OperationQuotas::default(),
        per_account: BTreeMap::from([(
            account.to_owned(),
            OperationQuotas { rate: BTreeMap::from([(operation.to_owned(), rate)]), max_copies_in_progress: None },
        )]),
    }
}

fn stats_of(sim: &Sim, account: &str, operation: &str) -> OperationStats {
    sim.handle
        .stats()
        .into_iter()
        .find(|stats| stats.account_id == account && stats.operation == operation)
        .unwrap_or_else(|| panic!("no stats for {account} {operation}"))
}

#[tokio::test]
async fn calls_beyond_the_burst_are_throughput_exceeded_until_tokens_refill() {
    let sim = Sim::start_with(modelcopy::simulator::SimConfig {
        quotas: quotas_for(ACCOUNT_A, "DescribeProjects", rate(2.0, 3)),
        ..config(Duration::from_secs(2))
    })
    .await;
    let client = sim.client_without_retries(KEY_A);

    let mut outcomes = Vec::new();
    for _ in 0..6 {
        outcomes.push(match client.describe_projects().send().await {
            Ok(_) => "ok".to_owned(),
            Err(err) => {
                let status = err.raw_response().map(|r| r.status().as_u16());
                assert_eq!(status, Some(400));
                let err = err.into_service_error();
                assert!(err.is_provisioned_throughput_exceeded_exception(), "{err:?}");
                assert!(err.message().unwrap().starts_with("The number of requests exceeded your throughput limit."));
                "throttled".to_owned()
            }
        });
    }
    // Six calls in well under a second: the burst of 3, then (at most one refilled token) refusals.
    assert_eq!(&outcomes[..3], ["ok", "ok", "ok"]);
    let refused = outcomes.iter().filter(|o| *o == "throttled").count();
    assert!((2..=3).contains(&refused), "{outcomes:?}");

    // Other accounts and operations are not limited.
    sim.client_without_retries(KEY_B).describe_projects().send().await.expect("B has no quota");
    let a = stats_of(&sim, ACCOUNT_A, "DescribeProjects");
    assert_eq!(a.calls, 6);
    assert_eq!(a.throughput_exceeded, refused as u64);
    assert_eq!(a.limit_exceeded, 0);
    assert_eq!(a.max_calls_in_one_second, 6, "refused calls count as received");

    // At 2 per second, a token is back after half a second.
    tokio::time::sleep(Duration::from_millis(600)).await;
    client.describe_projects().send().await.expect("a token refilled");
}

#[tokio::test]
async fn the_sdk_retries_throughput_exceeded_by_default() {
    let sim = Sim::start_with(modelcopy::simulator::SimConfig {
        quotas: quotas_for(ACCOUNT_A, "DescribeProjects", rate(5.0, 1)),
        ..config(Duration::from_secs(2))
    })
    .await;
    let client = sim.client(KEY_A);
    client.describe_projects().send().await.unwrap();

    // The bucket is empty; the SDK's standard retries (with backoff) wait for a token on their own.
    client.describe_projects().send().await.expect("retried until admitted");

    let outcomes: Vec<String> = sim.handle.calls().into_iter().map(|c| c.outcome).collect();
    assert_eq!(outcomes.first().map(String::as_str), Some("ok"));
    assert_eq!(outcomes.last().map(String::as_str), Some("ok"));
    assert!(
        outcomes.contains(&"ProvisionedThroughputExceededException".to_owned()),
        "the second call was throttled at least once: {outcomes:?}"
    );
}

#[tokio::test]
async fn quotas_can_be_changed_while_running() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let client = sim.client_without_retries(KEY_A);
    for _ in 0..5 {
        client.describe_projects().send().await.expect("no quota yet");
    }
    let quotas = Quotas {
        default: OperationQuotas {
            rate: BTreeMap::from([("DescribeProjects".to_owned(), rate(0.5, 1))]),
            max_copies_in_progress: None,
        },
        per_account: BTreeMap::new(),
    };
    sim.handle.set_quotas(quotas.clone()).unwrap();
    assert_eq!(sim.handle.quotas(), quotas);
    client.describe_projects().send().await.expect("the new bucket starts full");
    let err = client.describe_projects().send().await.unwrap_err().into_service_error();
    assert!(err.is_provisioned_throughput_exceeded_exception());
    assert!(sim.handle.set_quotas(quotas_for(ACCOUNT_A, "DescribeProjects", rate(0.0, 1))).is_err());
}

#[tokio::test]
async fn copies_in_progress_are_capped_per_destination_account() {
    let copy_duration = Duration::from_millis(700);
    let mut quotas = Quotas::default();
    quotas.default.max_copies_in_progress = Some(2);
    let sim = Sim::start_with(modelcopy::simulator::SimConfig { quotas, ..config(copy_duration) }).await;
    let client = sim.client_without_retries(KEY_A);
    let dest = sim.project_arn(ACCOUNT_A, REGION, "dest");

    copy_source_v1(&sim, &client, &dest, "first").await.expect("1 of 2");
    copy_source_v1(&sim, &client, &dest, "second").await.expect("2 of 2");
    let err = copy_source_v1(&sim, &client, &dest, "third").await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
    let err = err.into_service_error();
    assert!(err.is_limit_exceeded_exception(), "{err:?}");
    assert_eq!(err.code(), Some("LimitExceededException"));

    // Another destination account has its own count.
    copy_source_v1(&sim, &sim.client_without_retries(KEY_B), &sim.project_arn(ACCOUNT_B, REGION, "b-dest"), "b-first")
        .await
        .expect("B has no copies in progress");

    let stats = stats_of(&sim, ACCOUNT_A, "CopyProjectVersion");
    assert_eq!((stats.calls, stats.limit_exceeded, stats.throughput_exceeded), (3, 1, 0));

    // When the first copies end, there is room again.
    for _ in 0..40 {
        let version = describe_version(&client, &dest, "second").await;
        if version.status() != Some(&ProjectVersionStatus::CopyingInProgress) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    copy_source_v1(&sim, &client, &dest, "third").await.expect("the earlier copies ended");
}

#[tokio::test]
async fn the_busiest_second_is_what_the_client_sent() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let client = sim.client_without_retries(KEY_A);
    // Two bursts of 4, 1.2 s apart: no one-second window holds more than 4.
    for burst in 0..2 {
        if burst > 0 {
            tokio::time::sleep(Duration::from_millis(1_200)).await;
        }
        let calls = (0..4).map(|_| client.describe_projects().send());
        for result in futures::future::join_all(calls).await {
            result.expect("no quota");
        }
    }
    let stats = stats_of(&sim, ACCOUNT_A, "DescribeProjects");
    assert_eq!(stats.calls, 8);
    assert_eq!(stats.max_calls_in_one_second, 4);
}
