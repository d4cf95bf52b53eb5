use modelcopy::proto::{self, CopyState};

use crate::helpers::{TestApp, DEST_ACCOUNT, SOURCE_ACCOUNT};

#[tokio::test]
async fn list_pages_newest_first_through_every_copy_once() {
    let app = TestApp::spawn_without_dispatch().await;
    let mut client = app.client("alice").await;
    let mut made = Vec::new();
    for i in 0..7 {
        let copy = TestApp::submit(&mut client, app.copy_request(&format!("page-{i}"))).await;
        made.push(copy.copy_id);
    }
    let mut listed = Vec::new();
    let mut token = String::new();
    for _ in 0..10 {
        let page = client
            .list_copies(proto::ListCopiesRequest { page_size: 3, page_token: token.clone(), ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        assert!(page.copies.len() <= 3);
        listed.extend(page.copies.into_iter().map(|c| c.copy_id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    made.reverse();
    assert_eq!(listed, made);
    app.stop().await;
}

#[tokio::test]
async fn list_filters_by_state_account_and_time() {
    let app = TestApp::spawn_without_dispatch().await;
    let mut client = app.client("alice").await;
    let into_dest = TestApp::submit(&mut client, app.copy_request("a")).await;
    let mut same_account = app.copy_request("b");
    same_account.destination_project_arn = app.source_project();
    let into_source = TestApp::submit(&mut client, same_account).await;
    client
        .cancel_copy(proto::CancelCopyRequest { copy_id: into_source.copy_id.clone(), reason: String::new() })
        .await
        .unwrap();

    let ids = |filter: proto::CopyFilter| {
        let mut client = client.clone();
        async move {
            client
                .list_copies(proto::ListCopiesRequest { filter: Some(filter), ..Default::default() })
                .await
                .unwrap()
                .into_inner()
                .copies
                .into_iter()
                .map(|c| c.copy_id)
                .collect::<Vec<_>>()
        }
    };
    let by_dest = ids(proto::CopyFilter { destination_account_id: DEST_ACCOUNT.into(), ..Default::default() }).await;
    assert_eq!(by_dest, std::slice::from_ref(&into_dest.copy_id));
    let by_source = ids(proto::CopyFilter { source_account_id: SOURCE_ACCOUNT.into(), ..Default::default() }).await;
    assert_eq!(by_source.len(), 2);
    let cancelled = ids(proto::CopyFilter { states: vec![CopyState::Cancelled as i32], ..Default::default() }).await;
    assert_eq!(cancelled, std::slice::from_ref(&into_source.copy_id));
    let created = into_dest.created_at.unwrap();
    let after_first = ids(proto::CopyFilter {
        created_after: Some(prost_types::Timestamp { seconds: created.seconds, nanos: created.nanos + 1000 }),
        ..Default::default()
    })
    .await;
    assert_eq!(after_first, std::slice::from_ref(&into_source.copy_id));
    let before_first = ids(proto::CopyFilter { created_before: Some(created), ..Default::default() }).await;
    assert!(before_first.is_empty());
    app.stop().await;
}
