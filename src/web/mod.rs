//! What browsers get from the API's port: gRPC-Web, CORS for the origins allowed, and the dashboard page.
//!
//! These are layers around the whole server, outside the API's own (admission, audit, authentication): a gRPC-Web
//! call is turned into a gRPC call before any of those sees it, so it is admitted, authenticated, authorized and
//! audited exactly as a native one. CORS answers preflights for the configured origins only; for any other origin
//! no CORS header is sent, and a browser does not send the call at all (gRPC-Web's content type always needs a
//! preflight).

pub mod dashboard;
pub mod settings;

use std::time::Duration;

use http::{header, HeaderName, HeaderValue, Method};
use tower::layer::util::{Identity, Stack};
use tower::util::Either;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use dashboard::DashboardLayer;
pub use settings::WebSettings;

/// The layers `[web]` asks for, outermost first: CORS, the dashboard, gRPC-Web.
pub type WebLayers = Stack<
    Either<tonic_web::GrpcWebLayer, Identity>,
    Stack<Either<DashboardLayer, Identity>, Stack<Either<CorsLayer, Identity>, Identity>>,
>;

pub fn layers(settings: &WebSettings) -> WebLayers {
    tower::ServiceBuilder::new()
        .option_layer(cors(settings))
        .option_layer(settings.dashboard.then_some(DashboardLayer))
        .option_layer(settings.grpc_web.then(tonic_web::GrpcWebLayer::new))
        .into_inner()
}

/// Request headers a browser's gRPC-Web call may carry: the protocol's, the credentials, the deadline, the trace.
const ALLOWED_HEADERS: [&str; 8] = [
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "authorization",
    "grpc-timeout",
    "traceparent",
    crate::auth::authenticator::PRINCIPAL_HEADER,
    crate::auth::authenticator::GROUPS_HEADER,
];

/// Response headers a page must read to learn how its call ended.
const EXPOSED_HEADERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

fn cors(settings: &WebSettings) -> Option<CorsLayer> {
    if settings.cors_origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = settings
        .cors_origins
        .iter()
        .map(|origin| HeaderValue::from_str(origin).expect("checked by WebSettings::problems"))
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::POST])
            .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
            .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
            .max_age(Duration::from_secs(600))
            .vary([header::ORIGIN]),
    )
}
