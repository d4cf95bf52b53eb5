//! The store's listener (`store::notifications`) when its connection is lost: what the watch hub relies on to
//! have its watchers catch up.

use std::time::Duration;

use modelcopy::store::{Channel, Store};
use sqlx::postgres::PgPoolOptions;

use crate::support::proxy::{Path, Proxy};
use crate::support::{self};

/// A listener whose session ended says so, even when a receive was cancelled while a new connection was being
/// made (the hub's select cancels a receive at each heartbeat tick). Notifications sent while it was not listening
/// are lost, and only a listener that reports the loss gets its watchers to catch up. It used to reconnect by
/// itself inside the receive: cancelled there, the next receive finished listening again and went on delivering,
/// without ever reporting the loss (the fleet's fault test saw a watcher skip a change committed right after a
/// PostgreSQL restart, about one run in five).
#[tokio::test]
async fn a_listener_reports_a_lost_session_even_if_a_receive_was_cancelled_meanwhile() {
    let (url, direct) = support::fresh_database("listener").await;
    let (proxy, proxied) = Proxy::in_front_of(&url).await;
    let pool = PgPoolOptions::new().acquire_timeout(Duration::from_secs(3)).connect(&proxied).await.unwrap();
    let store = Store::from_pool(pool);
    let mut listener = store.listen(Channel::CopyEvents).await.unwrap();
    let pid: i32 = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'",
    )
    .fetch_one(&direct)
    .await
    .expect("the listener's session");

    // New connections wait (as on a server still starting up) while the listener's session is ended, as a restart
    // ends it: PostgreSQL's FATAL, then the end of the connection.
    proxy.set(Path::HoldNew);
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)").bind(pid).fetch_one(&direct).await.unwrap();
    assert!(ended);
    // A receive, cancelled after a while, as the hub's heartbeat tick cancels one.
    let first = tokio::time::timeout(Duration::from_millis(1500), listener.try_recv()).await;
    proxy.set(Path::Pass);

    // Notifications keep coming (bounded: 5 s), sent directly.
    let sender = Store::from_pool(direct.clone());
    let sending = tokio::spawn(async move {
        for _ in 0..50 {
            let _ = sender.notify(Channel::CopyEvents, "sent after the session ended").await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut said = vec![format!("{first:?}")];
    let mut reported = matches!(first, Ok(Ok(None)) | Ok(Err(_)));
    // What the listener says next, until it reports the loss or delivers a notification.
    while !reported {
        match tokio::time::timeout(Duration::from_secs(6), listener.try_recv()).await {
            Ok(Ok(Some(payload))) => {
                said.push(payload);
                break;
            }
            other => {
                reported = matches!(other, Ok(Ok(None)) | Ok(Err(_)));
                said.push(format!("{other:?}"));
                assert!(reported, "the listener neither delivered nor reported anything: {said:?}");
            }
        }
    }
    sending.abort();
    assert!(reported, "the listener went on delivering without reporting its lost session: {said:?}");
    // Once reported, it stays reported: it never listens again by itself.
    let again = tokio::time::timeout(Duration::from_secs(1), listener.try_recv()).await;
    assert!(matches!(again, Ok(Ok(None))), "reported again: {again:?}");
}
