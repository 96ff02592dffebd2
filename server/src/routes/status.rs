//! `GET /_status`: unsigned health check.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::AppState;
use crate::error::ApiError;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/_status", get(status))
}

async fn status(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => {
            super::ok(serde_json::json!({"status": "pong", "upstreams": {"database": "pong"}}))
        }
        Err(e) => ApiError::Unavailable(format!("database unavailable: {e}")).into_response(),
    }
}
