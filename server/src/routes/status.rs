//! `GET /_status`: unsigned health check; `GET /metrics`: Prometheus metrics, unsigned (it
//! cannot sign), so who sees what is settled here: with `metrics_listen` only that listener
//! serves them; with `metrics_token` the API listener wants the token; with neither it serves
//! the request series to anyone, without the org-labelled ones.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ApiError;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/_status", get(status))
        .route("/metrics", get(api_metrics))
}

/// The router of the `metrics_listen` listener: every series, no questions asked (it is
/// meant for a private address).
pub fn metrics_router() -> Router<AppState> {
    Router::new().route(
        "/metrics",
        get(|State(state): State<AppState>| async move { exposition(&state, true).await }),
    )
}

async fn api_metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if state.config.metrics_listen.is_some() {
        return ApiError::NotFound("No such endpoint".into()).into_response();
    }
    // An empty token would let an empty `Authorization: Bearer ` through: it means none.
    let Some(token) = state
        .config
        .metrics_token
        .as_deref()
        .filter(|t| !t.is_empty())
    else {
        return exposition(&state, false).await;
    };
    let offered = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Without an early exit, so the answer's timing does not reveal a prefix of the token.
    if chef_sync_shared::signing::constant_time_eq(offered.trim().as_bytes(), token.as_bytes()) {
        exposition(&state, true).await
    } else {
        ApiError::Unauthorized("/metrics needs Authorization: Bearer with the metrics_token".into())
            .into_response()
    }
}

async fn exposition(state: &AppState, with_orgs: bool) -> Response {
    if with_orgs {
        match state.store.feed_sizes().await {
            Ok(sizes) => state.metrics.observe_feeds(&sizes),
            Err(e) => tracing::warn!(error = %e, "feed sizes for /metrics"),
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(with_orgs),
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
