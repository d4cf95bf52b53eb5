use modelcopy::domain::CopyState as DomainState;
use modelcopy::proto::{self, CopyState};
use modelcopy::store::{jobs, Change, Store};
use tonic::Code;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_queued_copy_can_be_cancelled_and_is_never_sent() {
    // No dispatcher: the copy stays queued for as long as the test needs.
    let app = TestApp::spawn_without_dispatch().await;
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, app.copy_request("cancel-me")).await;

    let cancelled = client
        .cancel_copy(proto::CancelCopyRequest { copy_id: copy.copy_id.clone(), reason: "wrong model".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.state(), CopyState::Cancelled);
    assert!(cancelled.completed_at.is_some());
    // Cancelling again answers the copy as it is.
    let again = client
        .cancel_copy(proto::CancelCopyRequest { copy_id: copy.copy_id.clone(), reason: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.state(), CopyState::Cancelled);

    assert_eq!(app.history(&copy.copy_id).await, ["QUEUED", "CANCELLED"]);
    assert_eq!(app.cancel_detail(&copy.copy_id).await.as_deref(), Some("wrong model"));
    let cancels: Vec<_> = app.audit_rows().await.into_iter().filter(|r| r.0 == "CancelCopy").collect();
    assert_eq!(cancels.len(), 2);
    assert!(cancels.iter().all(|r| r.1 == "ALLOWED" && r.3.as_deref() == Some(copy.copy_id.as_str())));
    assert_eq!(app.sim.call_count("CopyProjectVersion"), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_submitted_copy_can_no_longer_be_cancelled() {
    let app = TestApp::spawn_without_dispatch().await;
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, app.copy_request("too-late")).await;
    // What a dispatcher commits before it calls CopyProjectVersion.
    let store = Store::from_pool(app.pool.clone());
    let id = copy.copy_id.parse().unwrap();
    jobs::transition(&store, id, DomainState::Queued, &Change::to(DomainState::Submitting), None)
        .await
        .unwrap()
        .expect("queued job moves to submitting");

    let status = client
        .cancel_copy(proto::CancelCopyRequest { copy_id: copy.copy_id.clone(), reason: String::new() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("SUBMITTING"), "{}", status.message());
    assert_eq!(app.history(&copy.copy_id).await, ["QUEUED", "SUBMITTING"]);
    let last = app.audit_rows().await.pop().unwrap();
    assert_eq!((last.0.as_str(), last.1.as_str(), last.2.as_str()), ("CancelCopy", "INVALID", "FailedPrecondition"));

    let status = client
        .cancel_copy(proto::CancelCopyRequest { copy_id: uuid::Uuid::new_v4().to_string(), reason: String::new() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    app.stop().await;
}
