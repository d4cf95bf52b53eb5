//! One leader per account across replicas, decided by PostgreSQL; a dead leader's accounts are free at once.

use modelcopy::domain::AccountId;
use modelcopy::store::{Leadership, Store};

use crate::helpers::{TestApp, DEST_ACCOUNT, SOURCE_ACCOUNT};

#[tokio::test]
async fn an_account_has_one_leader_and_a_dead_leader_frees_it() {
    let app = TestApp::spawn_without_dispatch().await;
    let store = Store::from_pool(app.pool.clone());
    let mut first = Leadership::open(&store, std::time::Duration::from_secs(5)).await.unwrap();
    let mut second = Leadership::open(&store, std::time::Duration::from_secs(5)).await.unwrap();
    let (dest, source) = (AccountId::parse(DEST_ACCOUNT).unwrap(), AccountId::parse(SOURCE_ACCOUNT).unwrap());

    assert!(first.try_lead(&dest).await.unwrap());
    assert!(first.try_lead(&dest).await.unwrap(), "a leader keeps its account");
    assert!(!second.try_lead(&dest).await.unwrap(), "one leader per account");
    assert!(second.try_lead(&source).await.unwrap(), "accounts are led independently");

    // The session ending (as when a replica dies) releases its accounts.
    drop(first);
    let mut took_over = false;
    for _ in 0..50 {
        if second.try_lead(&dest).await.unwrap() {
            took_over = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(took_over, "the account was freed when its leader's session ended");
    second.check().await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn backpressure_refuses_beyond_the_queue_limit_but_still_answers_retries() {
    let app = crate::helpers::TestApp::spawn_with(crate::helpers::Options {
        dispatch: false,
        max_queued: Some(2),
        ..Default::default()
    })
    .await;
    let mut client = app.client("alice").await;
    let mut first = app.copy_request("bp-1");
    first.idempotency_token = "bp-1".into();
    client.copy_model_version(first.clone()).await.unwrap();
    client.copy_model_version(app.copy_request("bp-2")).await.unwrap();

    let status = client.copy_model_version(app.copy_request("bp-3")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    use tonic_types::StatusExt;
    let retry = status.get_details_retry_info().expect("RetryInfo");
    assert!(retry.retry_delay.unwrap() >= std::time::Duration::from_secs(1));
    assert_eq!(app.job_count().await, 2, "nothing queued beyond the limit");

    // A retry of an accepted request asks for nothing new, so it is answered even now.
    let replay = client.copy_model_version(first).await.unwrap().into_inner();
    assert!(replay.replayed);

    let last = app.audit_rows().await.into_iter().rev().nth(1).unwrap();
    assert_eq!(
        (last.0.as_str(), last.1.as_str(), last.2.as_str()),
        ("CopyModelVersion", "INVALID", "ResourceExhausted")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_copy_into_an_account_the_service_does_not_serve_is_refused() {
    let app = TestApp::spawn_without_dispatch().await;
    let mut client = app.client("alice").await;
    let mut request = app.copy_request("nowhere");
    request.destination_project_arn = request.destination_project_arn.replace(DEST_ACCOUNT, "999999999999");
    let status = client.copy_model_version(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("999999999999"), "{}", status.message());
    assert_eq!(app.job_count().await, 0);
    app.stop().await;
}

/// A rate of 0 (which the settings refuse since issue 10, but a dispatcher built in code can still be given) makes
/// the account's gate panic as its dispatcher starts (a period of 1/0 seconds is no `Duration`). Before, that panic ended the replica's whole
/// dispatcher, silently: no account was dispatched any more while the API kept accepting copies.
#[tokio::test]
async fn an_account_dispatcher_that_panics_is_restarted_and_stops_no_other_account() {
    use std::collections::BTreeMap;

    use modelcopy::dispatch::Dispatcher;
    use modelcopy::proto::CopyState;
    use modelcopy::rekognition::{AccountLimits, Clients};

    let app = TestApp::spawn_without_dispatch().await;
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, app.copy_request("beside-a-panic")).await;

    let settings = &app.settings;
    let clients = Clients::from_settings(&settings.accounts, std::time::Duration::from_secs(5)).await;
    let mut accounts: BTreeMap<AccountId, AccountLimits> =
        settings.accounts.iter().map(|(id, account)| (id.clone(), account.limits.clone())).collect();
    let (source, dest) = (AccountId::parse(SOURCE_ACCOUNT).unwrap(), AccountId::parse(DEST_ACCOUNT).unwrap());
    assert_eq!(accounts.keys().next(), Some(&source), "the panicking account is the first one led");
    accounts.get_mut(&source).unwrap().copy_per_second = 0.0;
    let dispatcher = Dispatcher::new(Store::from_pool(app.pool.clone()), clients, settings.dispatch.clone(), accounts);
    let (stop, stopped) = modelcopy::shutdown::channel();
    let running = tokio::spawn(dispatcher.clone().run(stopped));

    // The other account's copies go on.
    let ended = app.wait_until_ended(&mut client, &copy.copy_id).await;
    assert_eq!(ended.state(), CopyState::Succeeded, "{ended:?}");
    // The panicking account is started again after its pause (1 s), and panics again.
    let mut panics = 0;
    for _ in 0..100 {
        panics = dispatcher.panics(&source);
        if panics >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(panics >= 2, "the panicking account's dispatcher was started again: {panics} panics seen");
    assert_eq!(dispatcher.panics(&dest), 0);
    assert!(!running.is_finished(), "the replica's dispatcher is still running");
    stop.fire();
    running.await.expect("the dispatcher stops cleanly");
    app.stop().await;
}

/// The advisory locks `replica` (its connections' `application_name`) holds for the session: its leaderships.
async fn leadership_sessions(app: &TestApp, replica: &str) -> Vec<(i32, chrono::DateTime<chrono::Utc>)> {
    sqlx::query_as(
        "SELECT DISTINCT a.pid, a.query_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1",
    )
    .bind(replica)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn until<F: std::future::Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    for _ in 0..400 {
        if done().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{what} did not happen within 10 s");
}

/// A failover as a leader sees it: its session ends (PostgreSQL restarted, or ended the session it thought
/// dead) and another replica takes the account's lock at once, while the old leader learns of it only at its next
/// check. Before, it went on calling until then, and both replicas' calls fell into the same seconds: the
/// simulator refused some with ProvisionedThroughputExceeded. Now the old leader's calls stop when its term runs
/// out, and the new leader's first call waits a term's length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_session_ended_stops_calling_before_its_successor_starts() {
    use modelcopy::dispatch::Dispatcher;
    use modelcopy::rekognition::Clients;
    use modelcopy::simulator::{OperationQuotas, Quotas, Rate};

    let rate = Rate { per_second: 2.0, burst: 1 };
    let quotas = Quotas {
        default: OperationQuotas {
            rate: [("CopyProjectVersion".to_owned(), rate)].into(),
            ..OperationQuotas::default()
        },
        ..Quotas::default()
    };
    let app = TestApp::spawn_with(crate::helpers::Options { dispatch: false, quotas, ..Default::default() }).await;
    app.queue_behind(60, "alice", "failover").await;
    let accounts: std::collections::BTreeMap<_, _> = app
        .settings
        .accounts
        .iter()
        .map(|(id, account)| {
            (id.clone(), modelcopy::rekognition::AccountLimits { copy_per_second: 2.0, ..account.limits.clone() })
        })
        .collect();
    let replica = |name: &'static str, poll_ms: u64| {
        let (app, accounts) = (&app, accounts.clone());
        async move {
            let url = format!("{}?application_name={name}", app.database_url);
            let store =
                Store::connect(&url, 4, std::time::Duration::from_secs(5), std::time::Duration::ZERO).await.unwrap();
            let clients = Clients::from_settings(&app.settings.accounts, std::time::Duration::from_secs(5)).await;
            let mut settings = app.settings.dispatch.clone();
            (settings.poll_interval_ms, settings.leadership_timeout_ms) = (poll_ms, 4_000);
            let dispatcher = Dispatcher::new(store, clients, settings, accounts);
            let (stop, stopped) = modelcopy::shutdown::channel();
            (stop, tokio::spawn(dispatcher.run(stopped)))
        }
    };
    let copies = || app.sim.calls().into_iter().filter(|c| c.operation == "CopyProjectVersion").count();

    // The old leader checks its session every 2 s; it leads both accounts and copies.
    let (stop_a, a) = replica("replica-a", 2_000).await;
    until("replica-a leading", || async { !leadership_sessions(&app, "replica-a").await.is_empty() }).await;
    until("replica-a copying", || async { copies() >= 2 }).await;
    // The new leader looks for free accounts every 50 ms.
    let (stop_b, b) = replica("replica-b", 50).await;

    // Right after one of the old leader's checks, its session ends.
    let (pid, checked) = leadership_sessions(&app, "replica-a").await[0];
    until("replica-a's next check", || async {
        leadership_sessions(&app, "replica-a").await.first().is_some_and(|(_, at)| *at != checked)
    })
    .await;
    sqlx::query("SELECT pg_terminate_backend($1)").bind(pid).execute(&app.pool).await.unwrap();
    until("replica-b leading", || async { !leadership_sessions(&app, "replica-b").await.is_empty() }).await;
    let before_b = copies();
    until("replica-b copying", || async { copies() >= before_b + 4 }).await;
    stop_a.fire();
    stop_b.fire();
    a.await.unwrap();
    b.await.unwrap();

    let stats = app.sim.stats();
    let copy = stats.iter().find(|s| s.account_id == DEST_ACCOUNT && s.operation == "CopyProjectVersion").unwrap();
    assert_eq!(copy.throughput_exceeded, 0, "two leaders' calls fell into one quota period: {copy:?}");
    assert!(copy.max_calls_in_one_second <= 2, "{copy:?}");
    app.stop().await;
}
