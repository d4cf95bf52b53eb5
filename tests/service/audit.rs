use modelcopy::proto;
use tonic::Code;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_call_without_credentials_is_refused_and_audited() {
    let app = TestApp::spawn().await;
    let mut anonymous = app.anonymous_client().await;
    let status = anonymous.copy_model_version(app.copy_request("anon")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(app.job_count().await, 0);

    let row: (Option<String>, String, String, String, Option<String>) =
        sqlx::query_as("SELECT principal, authn, rpc, decision, peer FROM audit_log")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(row.0, None);
    assert_eq!(row.2, "CopyModelVersion");
    assert_eq!(row.3, "DENIED");
    assert!(row.4.unwrap().starts_with("127.0.0.1:"), "the peer address is recorded");
    app.stop().await;
}

#[tokio::test]
async fn an_accepted_copy_is_audited_with_its_key_fields_and_digest() {
    let app = TestApp::spawn().await;
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, app.copy_request("audited")).await;

    let (principal, authn, decision, request, digest, copy_id): (String, String, String, serde_json::Value, Vec<u8>, String) =
        sqlx::query_as(
            "SELECT principal, authn, decision, request, request_digest, copy_id::text FROM audit_log WHERE rpc = 'CopyModelVersion'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        (principal.as_str(), authn.as_str(), decision.as_str()),
        ("alice", "dev-metadata (UNAUTHENTICATED)", "ALLOWED")
    );
    assert_eq!(copy_id, copy.copy_id);
    assert_eq!(request["version_name"], "audited");
    assert_eq!(request["destination_project_arn"], app.destination_project());
    assert_eq!(digest.len(), 32);
    let job_digest: Vec<u8> =
        sqlx::query_scalar("SELECT request_digest FROM copy_jobs").fetch_one(&app.pool).await.unwrap();
    assert_eq!(digest, job_digest);
    app.stop().await;
}

#[tokio::test]
async fn every_rpc_leaves_one_row() {
    let app = TestApp::spawn().await;
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, app.copy_request("rows")).await;
    client.get_copy(proto::GetCopyRequest { copy_id: copy.copy_id.clone() }).await.unwrap();
    client.list_copies(proto::ListCopiesRequest::default()).await.unwrap();
    client.get_copy(proto::GetCopyRequest { copy_id: uuid::Uuid::new_v4().to_string() }).await.unwrap_err();
    let rows = app.audit_rows().await;
    let summary: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str(), r.2.as_str())).collect();
    assert_eq!(
        summary,
        [
            ("CopyModelVersion", "ALLOWED", "Ok"),
            ("GetCopy", "ALLOWED", "Ok"),
            ("ListCopies", "ALLOWED", "Ok"),
            ("GetCopy", "ALLOWED", "NotFound"),
        ]
    );
    assert_eq!(rows[1].3.as_deref(), Some(copy.copy_id.as_str()));
    app.stop().await;
}

/// A call whose deadline passes while it waits (here on a table lock) is dropped by tonic on the caller's side; it
/// still runs to its end, and its row says the caller was gone. (Before, it left no row at all.)
#[tokio::test]
async fn a_call_past_its_deadline_is_audited_once_it_finishes() {
    use sqlx::Connection;
    let app = TestApp::spawn_without_dispatch().await;
    let mut client = app.client("alice").await;
    let mut blocker = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
    let mut lock = blocker.begin().await.unwrap();
    sqlx::query("LOCK TABLE copy_jobs IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.unwrap();

    let mut request = tonic::Request::new(proto::GetCopyRequest { copy_id: uuid::Uuid::new_v4().to_string() });
    request.set_timeout(std::time::Duration::from_millis(300));
    let status = client.get_copy(request).await.unwrap_err();
    assert!(matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled), "{status:?}");
    let rows = || async {
        sqlx::query_as::<_, (String, Option<String>)>("SELECT grpc_code, reason FROM audit_log WHERE rpc = 'GetCopy'")
            .fetch_all(&app.pool)
            .await
            .unwrap()
    };
    assert!(rows().await.is_empty(), "still waiting on the lock");
    // The server drops the call at its own reading of the deadline, which started when the request reached it: on
    // a loaded machine, later than the client's. Releasing the lock at once let the call finish before that (a
    // fresh-clone CI run saw the row without the caller-gone mark); a second is far more than the request's transit.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    lock.commit().await.unwrap();

    let mut written = Vec::new();
    for _ in 0..100 {
        written = rows().await;
        if !written.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(written.len(), 1, "{written:?}");
    let reason = written[0].1.as_deref().unwrap_or_default();
    assert!(reason.ends_with(modelcopy::audit::slot::CALLER_GONE), "{reason}");
    app.stop().await;
}
