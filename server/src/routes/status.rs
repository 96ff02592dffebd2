//! `GET /_status`: unsigned health check; `GET /metrics`: Prometheus metrics, unsigned.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::AppState;
use crate::error::ApiError;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/_status", get(status))
        .route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>) -> Response {
    match state.store.feed_sizes().await {
        Ok(sizes) => {
            for (org, entries, last_seq) in sizes {
                state.metrics.observe_feed(&org, entries, last_seq);
            }
        }
        Err(e) => tracing::warn!(error = %e, "feed sizes for /metrics"),
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn status(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => {
            super::ok(serde_json::json!({"status": "pong", "upstreams": {"database": "pong"}}))
        }
        Err(e) => ApiError::Unavailable(format!("database unavailable: {e}")).into_response(),
    }
}
