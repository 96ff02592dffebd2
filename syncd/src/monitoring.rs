//! The `metrics_listen` HTTP listener: `/metrics` (Prometheus text), `/healthz` (the process
//! answers) and `/readyz` (see [`crate::health`]; 503 when a check fails, the JSON body says
//! which).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::daemon::Daemon;
use crate::metrics::Metrics;

/// What the handlers read.
#[derive(Clone, Debug)]
pub struct Monitoring {
    /// The daemon.
    pub daemon: Daemon,
    /// Its metrics.
    pub metrics: Arc<Metrics>,
    /// The config file, shown by `/readyz`.
    pub config_path: String,
}

/// The routes.
pub fn router(monitoring: Monitoring) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": ["use /metrics, /healthz or /readyz"]})),
            )
        })
        .with_state(monitoring)
}

async fn metrics(State(m): State<Monitoring>) -> Response {
    let config = m.daemon.config().await;
    for pair in &config.organizations {
        if let (Ok(Some(row)), Ok(parked)) = (
            m.daemon.org(&pair.destination).await,
            m.daemon.state().parked_summary(&pair.destination).await,
        ) {
            let parked = parked.stored + parked.counted;
            m.metrics
                .observe_org(&row, usize::try_from(parked).unwrap_or_default());
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.metrics.encode(),
    )
        .into_response()
}

async fn healthz() -> Response {
    axum::Json(json!({"status": "alive"})).into_response()
}

async fn readyz(State(m): State<Monitoring>) -> Response {
    let readiness = crate::health::readiness(&m.daemon, &m.config_path).await;
    let status = if readiness.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(readiness)).into_response()
}
