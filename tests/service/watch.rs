use std::time::Duration;

use futures::StreamExt;
use modelcopy::proto::{self, watch_copy_request::Target, CopyState};
use tonic_types::StatusExt;

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
    let target =
        || proto::WatchCopyRequest { target: Some(Target::CopyId(copy.copy_id.clone())), after_sequence: None };
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
        .watch_copy(proto::WatchCopyRequest {
            target: Some(Target::CopyId(copy.copy_id.clone())),
            after_sequence: None,
        })
        .await
        .unwrap()
        .into_inner();
    let events = collect(stream).await;
    assert_eq!(events.len(), 1);
    assert!(events[0].snapshot);
    assert_eq!(events[0].copy.as_ref().unwrap().state(), CopyState::Succeeded);

    let status = client
        .watch_copy(proto::WatchCopyRequest {
            target: Some(Target::CopyId(uuid::Uuid::new_v4().to_string())),
            after_sequence: None,
        })
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
    let mut stream = client
        .watch_copy(proto::WatchCopyRequest { target: Some(Target::Filter(filter)), after_sequence: None })
        .await
        .unwrap()
        .into_inner();
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

/// A client on a connection of its own with small HTTP/2 windows: when it stops reading, the service can send it
/// only a few kilobytes more.
async fn small_window_client(
    app: &TestApp,
) -> proto::model_copy_client::ModelCopyClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, modelcopy::cli::connect::CallMetadata>,
> {
    let channel = tonic::transport::Endpoint::from_shared(app.endpoint.clone())
        .unwrap()
        .initial_stream_window_size(Some(16 * 1024))
        .initial_connection_window_size(Some(16 * 1024))
        .connect()
        .await
        .unwrap();
    let metadata = modelcopy::cli::connect::CallMetadata::new(Some("alice"), None).unwrap();
    proto::model_copy_client::ModelCopyClient::with_interceptor(channel, metadata)
}

/// `n` copies queued and then cancelled behind the service, in two statements: `2 n` changes for watchers.
async fn queued_then_cancelled(app: &TestApp, n: usize) -> Vec<String> {
    let ids = app.queue_behind(n as i64, "alice", "lag").await;
    sqlx::query("INSERT INTO copy_events (copy_id, to_state) SELECT id, 'QUEUED' FROM unnest($1::uuid[]) AS id")
        .bind(&ids)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "WITH cancelled AS (
             UPDATE copy_jobs SET state = 'CANCELLED', completed_at = now(), updated_at = now()
              WHERE id = ANY($1) AND state = 'QUEUED' RETURNING id
         )
         INSERT INTO copy_events (copy_id, from_state, to_state) SELECT id, 'QUEUED', 'CANCELLED' FROM cancelled",
    )
    .bind(&ids)
    .execute(&app.pool)
    .await
    .unwrap();
    ids.iter().map(ToString::to_string).collect()
}

/// A filter watcher that stops reading is cut off once its stream's queue is full, without holding up a watcher
/// that keeps reading; its stream delivers what was queued, then RESOURCE_EXHAUSTED with the last sequence sent,
/// and a watch resumed after that sequence gets every change that followed: every one of more than 5,000, once, in
/// order, across the cut. (Before the fan-out, a watcher that fell behind read the changes it missed from the
/// database itself; before that, a catch-up sent at most 1,000 copies as they were, and skipped the rest.)
#[tokio::test]
async fn a_slow_filter_watcher_is_cut_off_without_stalling_a_fast_one_and_resumes_with_every_change() {
    const COPIES: usize = 2_600;
    let app = TestApp::spawn_without_dispatch().await;
    let client = app.client("alice").await;
    // The watcher on a connection of its own with small HTTP/2 windows: once it stops reading, the service's sends
    // stop after a few kilobytes, and its stream's queue fills.
    let mut watcher = small_window_client(&app).await;
    let filter = proto::CopyFilter { destination_account_id: DEST_ACCOUNT.into(), ..Default::default() };
    let watch =
        |after_sequence| proto::WatchCopyRequest { target: Some(Target::Filter(filter.clone())), after_sequence };
    let mut stream = watcher.watch_copy(watch(None)).await.unwrap().into_inner();
    // A second watcher that keeps reading, and must get every change while the first one is stalled.
    let mut keeping_up = client.clone().watch_copy(watch(None)).await.unwrap().into_inner();
    let kept_up = tokio::spawn(async move {
        let mut changes = 0;
        while changes < 2 * COPIES {
            match tokio::time::timeout(Duration::from_secs(60), keeping_up.next()).await {
                Ok(Some(Ok(event))) if !event.snapshot => changes += 1,
                Ok(Some(Ok(_))) => {}
                other => panic!("the reading watcher stopped after {changes} changes: {other:?}"),
            }
        }
    });

    // Not reading meanwhile: 2 changes a copy, far beyond a stream's queue (1,024). Written behind the service, so
    // that the test loads the machine with the watching, not with thousands of calls.
    let created = queued_then_cancelled(&app, COPIES).await;
    kept_up.await.expect("the reading watcher saw every change while the other did not read");

    let mut seen: std::collections::HashMap<String, Vec<CopyState>> = std::collections::HashMap::new();
    let mut last_seq = 0;
    let mut cut = 0;
    let mut received = 0;
    while received < 2 * COPIES {
        let item = tokio::time::timeout(Duration::from_secs(60), stream.next())
            .await
            .unwrap_or_else(|_| panic!("only {received} of {} changes arrived", 2 * COPIES))
            .expect("an error or a change, not the end of the stream");
        let event = match item {
            Ok(event) => event,
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
                let info = status.get_details_error_info().expect("an ErrorInfo");
                assert_eq!(info.reason, "SLOW_CONSUMER");
                assert_eq!(info.metadata["last_sequence"], last_seq.to_string(), "the last change it was sent");
                cut += 1;
                stream = watcher.watch_copy(watch(Some(last_seq))).await.unwrap().into_inner();
                continue;
            }
        };
        assert!(!event.snapshot, "{event:?}");
        assert!(event.sequence > last_seq, "in order, once: {} after {last_seq}", event.sequence);
        last_seq = event.sequence;
        let copy = event.copy.unwrap();
        seen.entry(copy.copy_id.clone()).or_default().push(copy.state());
        received += 1;
    }
    assert!(cut >= 1, "the stalled watcher was cut off");
    assert_eq!(seen.len(), COPIES);
    for copy_id in &created {
        assert_eq!(seen[copy_id], [CopyState::Queued, CopyState::Cancelled], "{copy_id}");
    }
    app.stop().await;
}

/// Catching up "after event N" is exact only if no event numbered below N can commit after it: every path that
/// records an event (the dispatcher's transitions, new copies, cancellations) holds the copy events' lock from
/// taking its number until it commits. Held by the test, each of them waits for it.
#[tokio::test]
async fn every_path_that_records_an_event_waits_for_the_copy_events_lock() {
    let app = TestApp::spawn_without_dispatch().await;
    let mut client = app.client("alice").await;
    let moved = TestApp::submit(&mut client, app.copy_request("moved")).await;
    let cancelled = TestApp::submit(&mut client, app.copy_request("cancelled")).await;
    let store = Store::from_pool(app.pool.clone());
    let held = app.hold_advisory_lock(modelcopy::store::locks::COPY_EVENTS).await;
    let id = moved.copy_id.parse().unwrap();
    let transition = tokio::spawn(async move {
        jobs::transition(&store, id, DomainState::Queued, &Change::to(DomainState::Submitting), None).await
    });
    app.until_advisory_waiters(1).await;
    let create = tokio::spawn({
        let mut client = client.clone();
        let request = app.copy_request("created");
        async move { client.copy_model_version(request).await }
    });
    app.until_advisory_waiters(2).await;
    held.commit().await.unwrap();
    transition.await.unwrap().unwrap().expect("moved once the lock is free");
    create.await.unwrap().expect("created once the lock is free");

    let held = app.hold_advisory_lock(modelcopy::store::locks::COPY_EVENTS).await;
    let cancel = tokio::spawn({
        let mut client = client.clone();
        let copy_id = cancelled.copy_id.clone();
        async move { client.cancel_copy(proto::CancelCopyRequest { copy_id, reason: String::new() }).await }
    });
    app.until_advisory_waiters(1).await;
    held.commit().await.unwrap();
    cancel.await.unwrap().expect("cancelled once the lock is free");
    app.stop().await;
}

/// On a partition, a LISTEN connection neither fails nor delivers. A watcher must not be left in silence: its
/// stream ends with UNAVAILABLE once the hub's heartbeat has not come back, and a new watch after the partition
/// sees changes again.
#[tokio::test]
async fn a_watcher_is_told_when_its_replica_loses_the_database_and_can_watch_again_after() {
    use crate::support::proxy::Path;
    let (app, proxy) = TestApp::spawn_behind_proxy(Duration::from_millis(1_000)).await;
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, app.copy_request("watched")).await;
    let watch = || proto::WatchCopyRequest { target: Some(Target::CopyId(copy.copy_id.clone())), after_sequence: None };
    let mut stream = client.watch_copy(watch()).await.unwrap().into_inner();
    assert!(stream.next().await.unwrap().unwrap().snapshot);

    proxy.set(Path::BlackHole);
    let told = tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("the watcher is told, not left in silence")
        .expect("an item, not the end of the stream");
    assert_eq!(told.unwrap_err().code(), tonic::Code::Unavailable);

    proxy.set(Path::Pass);
    let mut again = None;
    for _ in 0..100 {
        if let Ok(stream) = client.watch_copy(watch()).await {
            again = Some(stream.into_inner());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut again = again.expect("watching works again after the partition");
    assert!(again.next().await.unwrap().unwrap().snapshot);
    // Whether or not the hub listens again before this change, the watcher gets it: from the hub, or from the
    // catch-up the hub asks for once it listens again.
    client
        .cancel_copy(proto::CancelCopyRequest { copy_id: copy.copy_id.clone(), reason: String::new() })
        .await
        .unwrap();
    let change = tokio::time::timeout(Duration::from_secs(20), again.next())
        .await
        .expect("the change reaches the new watcher")
        .unwrap()
        .unwrap();
    assert_eq!(change.copy.unwrap().state(), CopyState::Cancelled);
    app.stop().await;
}

/// Every transaction that records an event takes the copy events' lock before any row lock. A group commit does
/// (chain, events, then the account's queue counter as it inserts); a dispatcher's transition once locked its copy
/// and, through the counter's trigger, the counter first, and the two deadlocked (seen in the fleet tests:
/// "deadlock detected", a CopyModelVersion answered UNAVAILABLE). Here the test's own session takes the group
/// commit's part, in its order.
#[tokio::test]
async fn a_transition_and_a_group_commit_take_their_locks_in_one_order() {
    let app = TestApp::spawn_without_dispatch().await;
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, app.copy_request("moving")).await;
    let store = Store::from_pool(app.pool.clone());

    let mut commit = app.hold_advisory_lock(modelcopy::store::locks::COPY_EVENTS).await;
    let id = copy.copy_id.parse().unwrap();
    let transition = tokio::spawn(async move {
        jobs::transition(&store, id, DomainState::Queued, &Change::to(DomainState::Submitting), None).await
    });
    // Until the transition waits for the events' lock (whatever it has locked by then).
    app.until_advisory_waiters(1).await;
    // What a group commit's insert does next: the account's queue counter.
    sqlx::query("UPDATE account_queue_depth SET queued = queued WHERE account = $1")
        .bind(DEST_ACCOUNT)
        .execute(&mut *commit)
        .await
        .expect("the counter is free: the transition took nothing before the events' lock");
    commit.commit().await.unwrap();
    transition.await.unwrap().expect("no deadlock").expect("moved");
    app.stop().await;
}

/// A client that stops reading must not keep the service from stopping: once the stop is asked for, the service
/// is gone within its shutdown grace, whatever its clients do. (Before, a watch stream blocked on a full client
/// window held the server's graceful shutdown for ever.)
#[tokio::test]
async fn a_watcher_that_stops_reading_cannot_hold_the_shutdown() {
    let app = TestApp::spawn_without_dispatch().await;
    let mut watcher = small_window_client(&app).await;
    let filter = proto::CopyFilter { destination_account_id: DEST_ACCOUNT.into(), ..Default::default() };
    let stream = watcher
        .watch_copy(proto::WatchCopyRequest { target: Some(Target::Filter(filter.clone())), after_sequence: None });
    let _stalled = stream.await.unwrap().into_inner();
    // A reader that keeps up shows when the hub has passed everything on (and so filled the stalled one's buffers).
    let mut reader = app
        .client("alice")
        .await
        .watch_copy(proto::WatchCopyRequest { target: Some(Target::Filter(filter)), after_sequence: None })
        .await
        .unwrap()
        .into_inner();
    queued_then_cancelled(&app, 600).await;
    for _ in 0..1_200 {
        tokio::time::timeout(Duration::from_secs(60), reader.next()).await.unwrap().unwrap().unwrap();
    }
    drop(reader);
    tokio::time::timeout(Duration::from_secs(60), app.stop()).await.expect("stopped within its grace, not held");
}

/// The hub's LISTEN connection is reset (PostgreSQL restarting, a middlebox) and a new connection takes a moment:
/// a change committed meanwhile still reaches the watcher, on the same stream. The hub now listens again itself and
/// only then has its watchers catch up; before, it asked for the catch-up first and left listening again to the
/// driver, and the fleet's fault test (`restarts_and_a_partition_…`) saw watchers skip a change after each restart.
/// (This test passed before that fix too: here the watcher's catch-up happens to wait for the same held connections
/// as the new LISTEN. The fleet test is the one that failed, three runs of three.)
#[tokio::test]
async fn a_change_made_while_the_hub_listens_again_still_reaches_the_watchers() {
    use crate::support::proxy::Path;
    let (app, proxy) = TestApp::spawn_behind_proxy(Duration::from_millis(2_000)).await;
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, app.copy_request("relisten")).await;
    let everything =
        proto::WatchCopyRequest { target: Some(Target::Filter(proto::CopyFilter::default())), after_sequence: None };
    let mut stream = client.watch_copy(everything).await.unwrap().into_inner();
    assert!(stream.next().await.unwrap().unwrap().snapshot);

    // New connections wait; the open ones (the pool's, which the watcher's catch-up reads use) pass. The hub's
    // LISTEN connection, alone, is reset.
    proxy.set(Path::HoldNew);
    let ports: Vec<i32> = sqlx::query_scalar(
        "SELECT client_port FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(ports.len(), 1, "the hub's one listening session");
    assert!(proxy.reset(ports[0] as u16), "the proxy carries it");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A change while this replica does not listen.
    let store = Store::from_pool(app.pool.clone());
    let id = copy.copy_id.parse().unwrap();
    jobs::transition(&store, id, DomainState::Queued, &Change::to(DomainState::Submitting), None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.set(Path::Pass);

    let change = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the change reaches the watcher")
        .expect("an item")
        .expect("not an error: the hub listened again in time");
    assert_eq!(change.previous_state(), CopyState::Queued);
    assert_eq!(change.copy.unwrap().state(), CopyState::Submitting);
    app.stop().await;
}

/// The latest change's number, as a client that has seen everything so far holds it.
async fn latest_sequence(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COALESCE(max(seq), 0) FROM copy_events").fetch_one(&app.pool).await.unwrap()
}

/// A filter watcher resumes after a gap holding 10,000 changes: it gets every one of them, in order, no snapshot,
/// then the changes made after it resumed, with no gap and none twice across the switch.
#[tokio::test]
async fn a_resumed_filter_watch_gets_every_change_of_a_long_gap_in_order_then_live_ones() {
    const GAP: usize = 10_000;
    let options = crate::helpers::Options { dispatch: false, max_queued: Some(100_000), ..Default::default() };
    let app = TestApp::spawn_with(options).await;
    let mut client = app.client("alice").await;
    TestApp::submit(&mut client, app.copy_request("seen")).await;
    let seen = latest_sequence(&app).await;

    // The gap: 10,000 changes committed while the client was away (one event each for copies queued behind the
    // service, numbered in one statement under the copy events' lock, as every writer of events takes it).
    let ids = app.queue_behind(GAP as i64, "alice", "gap").await;
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(modelcopy::store::locks::COPY_EVENTS)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO copy_events (copy_id, to_state)
         SELECT id, 'QUEUED' FROM unnest($1::uuid[]) WITH ORDINALITY AS t (id, n) ORDER BY n",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let missed: Vec<i64> = sqlx::query_scalar("SELECT seq FROM copy_events WHERE seq > $1 ORDER BY seq")
        .bind(seen)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(missed.len(), GAP);

    let resume = proto::WatchCopyRequest {
        target: Some(Target::Filter(proto::CopyFilter::default())),
        after_sequence: Some(seen as u64),
    };
    let mut stream = client.watch_copy(resume).await.unwrap().into_inner();
    let first = stream.next().await.expect("an event").unwrap();
    // A change after the resume: it must come after the whole gap, once.
    let live = TestApp::submit(&mut client, app.copy_request("live")).await;
    let mut received = vec![first];
    tokio::time::timeout(Duration::from_secs(60), async {
        while received.last().and_then(|e| e.copy.as_ref()).map(|c| c.copy_id.as_str()) != Some(&live.copy_id) {
            received.push(stream.next().await.expect("more events").unwrap());
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the gap and the live change within 60 s; {} received", received.len()));

    assert!(received.iter().all(|e| !e.snapshot), "a resumed watch sends no snapshot");
    let sequences: Vec<i64> = received.iter().map(|e| e.sequence as i64).collect();
    assert_eq!(&sequences[..GAP], &missed[..], "every change of the gap, in order, once");
    assert_eq!(sequences.len(), GAP + 1, "then the live one, once: {:?}", &sequences[GAP..]);
    assert!(sequences[GAP] > missed[GAP - 1]);
    app.stop().await;
}

/// A watch of one copy resumed after a change it saw: the next change, no snapshot; resumed after the copy's last
/// change once it has ended: the stream ends at once, empty. A resume from beyond the latest change is refused,
/// naming the field.
#[tokio::test]
async fn a_resumed_copy_watch_starts_after_its_sequence_and_a_future_one_is_refused() {
    let app = TestApp::spawn_without_dispatch().await;
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, app.copy_request("resumed")).await;
    let queued_at = latest_sequence(&app).await;
    let resume = |after: i64| proto::WatchCopyRequest {
        target: Some(Target::CopyId(copy.copy_id.clone())),
        after_sequence: Some(after as u64),
    };
    let mut stream = client.watch_copy(resume(queued_at)).await.unwrap().into_inner();
    let store = Store::from_pool(app.pool.clone());
    let id = copy.copy_id.parse().unwrap();
    jobs::transition(&store, id, DomainState::Queued, &Change::to(DomainState::Cancelled), None).await.unwrap();
    let events = collect(stream).await;
    let states: Vec<_> =
        events.iter().map(|e| (e.snapshot, e.previous_state(), e.copy.as_ref().unwrap().state())).collect();
    assert_eq!(states, [(false, CopyState::Queued, CopyState::Cancelled)], "only the change after it");
    let ended_at = events[0].sequence as i64;

    stream = client.watch_copy(resume(ended_at)).await.unwrap().into_inner();
    assert!(collect(stream).await.is_empty(), "it had ended by then: nothing more will come");

    let beyond = latest_sequence(&app).await + 1_000;
    let refused = client.watch_copy(resume(beyond)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("after_sequence"), "{refused:?}");
    app.stop().await;
}

/// What a resume from pruned history gets: OUT_OF_RANGE, with an ErrorInfo naming the oldest change still held.
fn assert_pruned(refused: &tonic::Status, oldest_held: i64) {
    use tonic_types::StatusExt;
    assert_eq!(refused.code(), tonic::Code::OutOfRange, "{refused:?}");
    assert!(refused.message().contains("after_sequence"), "{refused:?}");
    let info = refused.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, "HISTORY_PRUNED");
    assert_eq!(info.metadata.get("oldest_held"), Some(&oldest_held.to_string()), "{info:?}");
}

/// Once the history is pruned, a resume from before the mark is refused with the documented status, one from the
/// mark on is served: every change after it, then live ones.
#[tokio::test]
async fn a_resume_from_pruned_history_is_out_of_range_and_one_from_the_mark_is_served() {
    let app = TestApp::spawn_without_dispatch().await;
    let mut client = app.client("alice").await;
    TestApp::submit(&mut client, app.copy_request("old-1")).await;
    let early = latest_sequence(&app).await;
    TestApp::submit(&mut client, app.copy_request("old-2")).await;
    let latest = latest_sequence(&app).await;
    let store = Store::from_pool(app.pool.clone());
    let through = events::prune(&store, Duration::ZERO).await.unwrap().expect("the history moved");
    assert_eq!(through, latest, "everything committed before now");
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM copy_events").fetch_one(&app.pool).await.unwrap();
    assert_eq!(held, 0);

    let resume = |after: i64| proto::WatchCopyRequest {
        target: Some(Target::Filter(proto::CopyFilter::default())),
        after_sequence: Some(after as u64),
    };
    assert_pruned(&client.watch_copy(resume(early)).await.unwrap_err(), through + 1);

    let mut stream = client.watch_copy(resume(through)).await.unwrap().into_inner();
    // A watch of one copy whose changes were all pruned starts from the mark: its next change reaches it, even
    // through a catch-up (a hub's resync reads from the mark, which is not refused).
    let old = sqlx::query_scalar::<_, uuid::Uuid>("SELECT id FROM copy_jobs WHERE version_name = 'old-1'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
        .to_string();
    let by_id = proto::WatchCopyRequest { target: Some(Target::CopyId(old.clone())), after_sequence: None };
    let mut one = client.watch_copy(by_id).await.unwrap().into_inner();
    let snapshot = one.next().await.unwrap().unwrap();
    assert!(snapshot.snapshot && snapshot.sequence as i64 == through, "{snapshot:?}");
    let live = TestApp::submit(&mut client, app.copy_request("new")).await;
    let event = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(event.copy.unwrap().copy_id, live.copy_id);
    assert!(!event.snapshot && event.sequence as i64 > through);
    // The hubs' listening sessions end (as on a restart): the change below reaches the watcher by a catch-up.
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND query LIKE 'LISTEN %'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    client.cancel_copy(proto::CancelCopyRequest { copy_id: old, reason: String::new() }).await.unwrap();
    let cancelled = tokio::time::timeout(Duration::from_secs(10), one.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(cancelled.copy.unwrap().state(), CopyState::Cancelled);
    app.stop().await;
}

/// The service prunes by itself, every `prune_interval_secs`, what is older than `history_retention_secs`.
#[tokio::test]
async fn the_service_prunes_history_older_than_its_retention() {
    let watch =
        modelcopy::watch::WatchSettings { history_retention_secs: 1, prune_interval_secs: 1, ..Default::default() };
    let options = crate::helpers::Options { dispatch: false, watch: Some(watch), ..Default::default() };
    let app = TestApp::spawn_with(options).await;
    let mut client = app.client("alice").await;
    TestApp::submit(&mut client, app.copy_request("aging")).await;
    let seq = latest_sequence(&app).await;
    let store = Store::from_pool(app.pool.clone());
    let mut through = 0;
    for _ in 0..100 {
        through = events::pruned_through(&store).await.unwrap();
        if through >= seq {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(through >= seq, "pruned within 10 s: through {through}, the change {seq}");
    let resume =
        proto::WatchCopyRequest { target: Some(Target::Filter(proto::CopyFilter::default())), after_sequence: Some(0) };
    assert_pruned(&client.watch_copy(resume).await.unwrap_err(), through + 1);
    app.stop().await;
}

/// Watchers start a few at a time (`WatchHub::start_turn`: 32 turns), so that thousands opening at once do not
/// each hold their start-up's memory while they wait for the database. A watcher whose client does not take its
/// snapshot gives its turn back while it waits: 40 such clients (more than there are turns) must not keep a 41st
/// watcher from starting.
#[tokio::test]
async fn watchers_stuck_on_their_snapshot_do_not_keep_others_from_starting() {
    let watch = modelcopy::watch::WatchSettings { stream_buffer: 8, ..Default::default() };
    let app =
        TestApp::spawn_with(crate::helpers::Options { dispatch: false, watch: Some(watch), ..Default::default() })
            .await;
    // A snapshot far larger than a stream's queue and a small window hold.
    app.queue_behind(400, "alice", "live").await;
    let everything =
        || proto::WatchCopyRequest { target: Some(Target::Filter(proto::CopyFilter::default())), after_sequence: None };
    let mut stuck = Vec::new();
    for _ in 0..40 {
        let mut client = small_window_client(&app).await;
        let opened = tokio::time::timeout(Duration::from_secs(30), client.watch_copy(everything()))
            .await
            .expect("a stuck watcher's turn went back: this one started")
            .unwrap();
        // Never read.
        stuck.push((client, opened.into_inner()));
    }
    let mut reader = app.client("alice").await;
    let mut stream = tokio::time::timeout(Duration::from_secs(30), reader.watch_copy(everything()))
        .await
        .expect("started while 40 others are stuck")
        .unwrap()
        .into_inner();
    for received in 0..400 {
        let event = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .unwrap_or_else(|_| panic!("only {received} of 400 snapshot copies"))
            .unwrap()
            .unwrap();
        assert!(event.snapshot);
    }
    drop(stuck);
    app.stop().await;
}
