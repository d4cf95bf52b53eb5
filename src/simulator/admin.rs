//! The admin endpoints, for tests and scripts that drive a simulator running in another process.
//!
//! They share the API's port under a path no Rekognition client ever uses, and speak plain JSON:
//!
//! - `GET /_sim/calls` — the call log ([`CallRecord`]s, arrival order);
//! - `GET /_sim/stats` — per account and operation counts ([`OperationStats`]);
//! - `POST /_sim/faults` — inject a [`Fault`] for the next N calls;
//! - `GET|PUT /_sim/faults/random` — the random fault settings ([`RandomFaults`]);
//! - `GET|PUT /_sim/quotas` — the quotas ([`Quotas`]); a put refills every bucket;
//! - `POST /_sim/reset` — clear the call log, the stats and pending faults;
//! - `PUT /_sim/version-status` — `{"ProjectVersionArn": …, "Status": "RUNNING"}`: a model started (or stopped) out
//!   of band, as StartProjectVersion would (DeleteProjectVersion then refuses it).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::engine::Engine;
use super::faults::{Fault, RandomFaults};
use super::observe::CallRecord;
use super::quota::Quotas;
use super::stats::OperationStats;

pub fn routes() -> Router<Arc<Engine>> {
    Router::new()
        .route("/_sim/calls", get(calls))
        .route("/_sim/stats", get(stats))
        .route("/_sim/faults", post(inject_fault))
        .route("/_sim/faults/random", get(random_faults).put(set_random_faults))
        .route("/_sim/quotas", get(quotas).put(set_quotas))
        .route("/_sim/reset", post(reset))
        .route("/_sim/version-status", axum::routing::put(set_version_status))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VersionStatusChange {
    project_version_arn: String,
    status: String,
}

async fn set_version_status(State(engine): State<Arc<Engine>>, Json(change): Json<VersionStatusChange>) -> Response {
    tracing::info!(arn = %change.project_version_arn, status = %change.status, "version status set");
    applied(engine.set_version_status(&change.project_version_arn, &change.status))
}

async fn calls(State(engine): State<Arc<Engine>>) -> Json<Vec<CallRecord>> {
    Json(engine.calls())
}

async fn stats(State(engine): State<Arc<Engine>>) -> Json<Vec<OperationStats>> {
    Json(engine.stats())
}

async fn inject_fault(State(engine): State<Arc<Engine>>, Json(fault): Json<Fault>) -> StatusCode {
    tracing::info!(operation = %fault.operation, error = %fault.error, count = fault.count, "fault injected");
    engine.inject_fault(fault);
    StatusCode::NO_CONTENT
}

async fn random_faults(State(engine): State<Arc<Engine>>) -> Json<RandomFaults> {
    Json(engine.random_faults())
}

async fn set_random_faults(State(engine): State<Arc<Engine>>, Json(faults): Json<RandomFaults>) -> Response {
    tracing::info!(?faults, "random faults set");
    applied(engine.set_random_faults(faults))
}

async fn quotas(State(engine): State<Arc<Engine>>) -> Json<Quotas> {
    Json(engine.quotas())
}

async fn set_quotas(State(engine): State<Arc<Engine>>, Json(quotas): Json<Quotas>) -> Response {
    tracing::info!(?quotas, "quotas set");
    applied(engine.set_quotas(quotas))
}

async fn reset(State(engine): State<Arc<Engine>>) -> StatusCode {
    engine.reset_observations();
    StatusCode::NO_CONTENT
}

fn applied(result: Result<(), String>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(reason) => (StatusCode::UNPROCESSABLE_ENTITY, reason).into_response(),
    }
}
