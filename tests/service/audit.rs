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
