use std::time::Duration;

use futures::StreamExt;
use modelcopy::proto::{self, watch_copy_request::Target, CopyState};

use modelcopy::domain::CopyState as DomainState;
use modelcopy::store::{events, jobs, Change, Report, Store};

use crate::helpers::{TestApp, DEST_ACCOUNT};

async fn collect(mut stream: tonic::Streaming<proto::CopyEvent>) -> Vec<proto::CopyEvent> {
    let mut events = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = stream.next().await {
            events.push(event.unwrap());
        }
    })
    .await
    .expect("a single-copy watch ends after the copy ends");
    events
}

#[tokio::test]
async fn two_concurrent_watchers_each_see_every_change_in_order() {
    let app = TestApp::spawn_without_dispatch().await;
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, app.copy_request("watched")).await;
    let target = || proto::WatchCopyRequest { target: Some(Target::CopyId(copy.copy_id.clone())) };
    // Both watch from QUEUED, before anything moves: each must then see the whole life.
    let first = client.watch_copy(target()).await.unwrap().into_inner();
    let second = app.client("dashboard").await.watch_copy(target()).await.unwrap().into_inner();
    let (first, second) = tokio::join!(collect(first), async {
        let replica = app.spawn_replica().await;
        let events = collect(second).await;
        replica.stop().await.unwrap();
        events
    });

    for events in [&first, &second] {
        let mut states: Vec<_> = events.iter().map(|e| (e.snapshot, e.copy.as_ref().unwrap().state())).collect();
        // A change of Rekognition's status message while copying is a COPYING -> COPYING event; timing decides
        // whether one happens.
        states.dedup();
        assert_eq!(
            states,
            [
                (true, CopyState::Queued),
                (false, CopyState::Submitting),
                (false, CopyState::Copying),
                (false, CopyState::Succeeded)
            ]
        );
        let mut previous: Vec<_> = events.iter().skip(1).map(|e| e.previous_state()).collect();
        previous.dedup();
        assert_eq!(previous, [CopyState::Queued, CopyState::Submitting, CopyState::Copying]);
        let seqs: Vec<u64> = events.iter().map(|e| e.sequence).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    }
    let seqs = |events: &[proto::CopyEvent]| events.iter().map(|e| e.sequence).collect::<Vec<_>>();
    assert_eq!(seqs(&first), seqs(&second), "both saw the same stored history");
    app.stop().await;
}

#[tokio::test]
async fn watching_a_copy_that_ended_sends_its_state_and_ends() {
    let app = TestApp::spawn().await;
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, app.copy_request("done")).await;
    app.wait_until_ended(&mut client, &copy.copy_id).await;
    let stream = client
        .watch_copy(proto::WatchCopyRequest { target: Some(Target::CopyId(copy.copy_id.clone())) })
        .await
        .unwrap()
        .into_inner();
    let events = collect(stream).await;
    assert_eq!(events.len(), 1);
    assert!(events[0].snapshot);
    assert_eq!(events[0].copy.as_ref().unwrap().state(), CopyState::Succeeded);

    let status = client
        .watch_copy(proto::WatchCopyRequest { target: Some(Target::CopyId(uuid::Uuid::new_v4().to_string())) })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn a_filter_watch_sees_live_copies_then_only_matching_changes() {
    let app = TestApp::spawn_without_dispatch().await;
    let mut client = app.client("alice").await;
    let before = TestApp::submit(&mut client, app.copy_request("before")).await;

    let filter = proto::CopyFilter {
        states: vec![CopyState::Queued as i32, CopyState::Succeeded as i32],
        destination_account_id: DEST_ACCOUNT.into(),
        ..Default::default()
    };
    let mut stream =
        client.watch_copy(proto::WatchCopyRequest { target: Some(Target::Filter(filter)) }).await.unwrap().into_inner();
    let first = stream.next().await.unwrap().unwrap();
    assert!(first.snapshot);
    assert_eq!(first.copy.unwrap().copy_id, before.copy_id);

    let after = TestApp::submit(&mut client, app.copy_request("after")).await;
    // A copy into another account does not match.
    let mut elsewhere = app.copy_request("elsewhere");
    elsewhere.destination_project_arn = app.source_project();
    client.copy_model_version(elsewhere).await.unwrap();
    let replica = app.spawn_replica().await;

    // Expected, in some interleaving: `after` queued, then both copies succeeded. SUBMITTING and COPYING are
    // filtered out, and so is everything about the copy into the source account.
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while seen.len() < 3 {
            let event = stream.next().await.unwrap().unwrap();
            let copy = event.copy.unwrap();
            let state = copy.state();
            seen.push((copy.copy_id, state));
        }
    })
    .await
    .expect("three matching changes");
    assert!(seen.contains(&(after.copy_id.clone(), CopyState::Queued)), "{seen:?}");
    assert!(seen.contains(&(after.copy_id.clone(), CopyState::Succeeded)), "{seen:?}");
    assert!(seen.contains(&(before.copy_id.clone(), CopyState::Succeeded)), "{seen:?}");
    assert!(seen.iter().all(|(_, state)| matches!(state, CopyState::Queued | CopyState::Succeeded)));
    replica.stop().await.unwrap();
    app.stop().await;
}

/// A watcher starts from a copy and the number of its latest change; the two must describe the same moment, or a
/// change committed between reading them is either skipped or sent twice. Changes are committed as fast as
/// possible while the pair is read over and over; every pair read must agree with the change it names.
#[tokio::test]
async fn a_snapshot_and_its_change_number_always_agree() {
    let app = TestApp::spawn_without_dispatch().await;
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, app.copy_request("busy")).await;
    let store = Store::from_pool(app.pool.clone());
    let id = copy.copy_id.parse().unwrap();
    jobs::transition(&store, id, DomainState::Queued, &Change::to(DomainState::Submitting), None).await.unwrap();
    jobs::transition(&store, id, DomainState::Submitting, &Change::to(DomainState::Copying), None).await.unwrap();

    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..300 {
                let report = Report {
                    rekognition_status: Some("COPYING_IN_PROGRESS".into()),
                    rekognition_status_message: Some(format!("step {i}")),
                    ..Report::default()
                };
                let change = Change { report, ..Change::to(DomainState::Copying) };
                jobs::transition(&store, id, DomainState::Copying, &change, None).await.unwrap().expect("moved");
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() {
        let at = jobs::get_at(&store, id).await.unwrap().expect("the copy exists");
        let named = events::by_seq(&store, at.last_seq).await.unwrap().expect("the named change exists");
        assert_eq!(named.copy_id, id);
        assert_eq!(
            named.report.rekognition_status_message, at.job.report.rekognition_status_message,
            "the copy as read is the copy right after change #{}",
            at.last_seq
        );
        reads += 1;
    }
    writer.await.unwrap();
    assert!(reads > 0, "the pair was read while changes were being committed");
    app.stop().await;
}
