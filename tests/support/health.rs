//! Asking `grpc.health.v1` as Kubernetes' probes do: no credentials, plaintext, one service name.

use std::time::Duration;

pub use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// What the health service at `endpoint` (`http://host:port`) says of `service`; `None` if it does not answer.
pub async fn status(endpoint: &str, service: &str) -> Option<ServingStatus> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned()).ok()?.connect().await.ok()?;
    let request = HealthCheckRequest { service: service.into() };
    let answer = HealthClient::new(channel).check(request).await.ok()?;
    Some(answer.into_inner().status())
}

/// Asks every 100 ms until it says `wanted` of `service`, within 30 s: what it said last.
pub async fn until(endpoint: &str, service: &str, wanted: ServingStatus) -> Option<ServingStatus> {
    let mut said = None;
    for _ in 0..300 {
        said = status(endpoint, service).await;
        if said == Some(wanted) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    said
}
