//! `grpc.health.v1` and server reflection: answered without credentials and without an audit row, and health
//! following whether the replica can work.

use futures::StreamExt;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

use crate::helpers::TestApp;
use crate::support::health::{self, ServingStatus};

async fn channel(app: &TestApp) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(app.endpoint.clone()).unwrap().connect().await.unwrap()
}

async fn until_health(app: &TestApp, wanted: ServingStatus) {
    let said = health::until(&app.endpoint, modelcopy::health::SERVICE, wanted).await;
    assert_eq!(said, Some(wanted), "the API's health");
}

async fn audit_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(&app.pool).await.unwrap()
}

#[tokio::test]
async fn health_and_reflection_answer_without_credentials_and_leave_no_audit_row() {
    let app = TestApp::spawn().await;
    let before = audit_rows(&app).await;
    until_health(&app, ServingStatus::Serving).await;

    let list = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(channel(&app).await)
        .server_reflection_info(futures::stream::iter([list]))
        .await
        .expect("reflection answers without credentials")
        .into_inner();
    let Some(Ok(answer)) = answers.next().await else { panic!("a reflection answer") };
    let Some(MessageResponse::ListServicesResponse(listed)) = answer.message_response else { panic!("{answer:?}") };
    let names: Vec<_> = listed.service.into_iter().map(|service| service.name).collect();
    assert!(names.contains(&"modelcopy.v1.ModelCopy".to_owned()), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health".to_owned()), "{names:?}");

    assert_eq!(audit_rows(&app).await, before, "probes and reflection leave no audit row");
    // The API itself still asks for credentials (dev mode: the principal's metadata).
    let anonymous = crate::support::grpc_client(&app.endpoint, None).await;
    let refused = anonymous.clone().get_copy(modelcopy::proto::GetCopyRequest { copy_id: "x".into() }).await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::Unauthenticated);
    app.stop().await;
}

#[tokio::test]
async fn the_api_is_not_serving_while_the_database_is_unreachable_and_serving_again_after() {
    use crate::support::proxy::Path;
    let (app, proxy) = TestApp::spawn_behind_proxy(std::time::Duration::from_millis(1_000)).await;
    until_health(&app, ServingStatus::Serving).await;
    proxy.set(Path::BlackHole);
    until_health(&app, ServingStatus::NotServing).await;
    // Not ready, but alive: a liveness probe does not have it restarted for what a restart cannot fix.
    assert_eq!(health::status(&app.endpoint, modelcopy::health::LIVENESS).await, Some(ServingStatus::Serving));
    proxy.set(Path::Pass);
    until_health(&app, ServingStatus::Serving).await;
    app.stop().await;
}
