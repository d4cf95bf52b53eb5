//! The admin endpoints, for tests and scripts that drive a simulator running in another process.
//!
//! `GET /_sim/calls` returns the call log, `POST /_sim/faults` takes a [`Fault`] as JSON, `POST /_sim/reset` clears
//! the call log and pending faults. They share the API's port under a path no Rekognition client ever uses.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::engine::Engine;
use super::observe::{CallRecord, Fault};

pub fn routes() -> Router<Arc<Engine>> {
    Router::new()
        .route("/_sim/calls", get(calls))
        .route("/_sim/faults", post(inject_fault))
        .route("/_sim/reset", post(reset))
}

async fn calls(State(engine): State<Arc<Engine>>) -> Json<Vec<CallRecord>> {
    Json(engine.calls())
}

async fn inject_fault(State(engine): State<Arc<Engine>>, Json(fault): Json<Fault>) -> StatusCode {
    tracing::info!(operation = %fault.operation, error = %fault.error, count = fault.count, "fault injected");
    engine.inject_fault(fault);
    StatusCode::NO_CONTENT
}

async fn reset(State(engine): State<Arc<Engine>>) -> StatusCode {
    engine.reset_observations();
    StatusCode::NO_CONTENT
}
