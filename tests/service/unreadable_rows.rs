//! A stored job that no longer parses (edited by hand, or written under rules since tightened) is an error naming
//! it, not a panic; and it does not stop the other jobs of its account.

use modelcopy::proto::{self, CopyState};
use tonic::Code;

use crate::helpers::TestApp;

#[tokio::test]
async fn an_unreadable_job_is_put_aside_and_the_account_s_other_copies_go_on() {
    let app = TestApp::spawn_without_dispatch().await;
    let mut client = app.client("alice").await;
    // The unreadable one is older: it is the head of alice's queue.
    let bad = TestApp::submit(&mut client, app.copy_request("unreadable")).await;
    let good = TestApp::submit(&mut client, app.copy_request("readable")).await;
    sqlx::query("UPDATE copy_jobs SET source_project_arn = 'not an ARN' WHERE id = $1::uuid")
        .bind(&bad.copy_id)
        .execute(&app.pool)
        .await
        .unwrap();

    let read = client.get_copy(proto::GetCopyRequest { copy_id: bad.copy_id.clone() }).await.unwrap_err();
    assert_eq!(read.code(), Code::Internal, "{read:?}");

    let replica = app.spawn_replica().await;
    let ended = app.wait_until_ended(&mut client, &good.copy_id).await;
    assert_eq!(ended.state(), CopyState::Succeeded, "{ended:?}");

    let (state, put_off): (String, bool) = sqlx::query_as(
        "SELECT state, next_attempt_at > now() + interval '30 minutes' FROM copy_jobs WHERE id = $1::uuid",
    )
    .bind(&bad.copy_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((state.as_str(), put_off), ("QUEUED", true), "left as it was, and put off");
    replica.stop().await.unwrap();
    app.stop().await;
}
