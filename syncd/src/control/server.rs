//! The daemon's side of the control socket.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::daemon::{Daemon, DaemonError};
use crate::status::{self, UnsyncedRow};

fn failure(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": [message] }))).into_response()
}

async fn status_rows(State(daemon): State<Daemon>) -> Response {
    let config = daemon.config().await;
    let mut counts = std::collections::HashMap::new();
    for pair in &config.organizations {
        counts.insert(
            pair.destination.clone(),
            daemon.pending(&pair.destination).await.len() as i64,
        );
    }
    match status::rows(&config, daemon.state(), |org| {
        counts.get(org).copied().unwrap_or(0)
    })
    .await
    {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn wake(State(daemon): State<Daemon>, UrlPath(org): UrlPath<String>) -> Response {
    if daemon.wake(&org).await {
        Json(json!({"ok": true})).into_response()
    } else {
        failure(
            StatusCode::NOT_FOUND,
            format!("organization '{org}' is not configured"),
        )
    }
}

async fn unsynced(State(daemon): State<Daemon>, UrlPath(org): UrlPath<String>) -> Response {
    let mut rows: Vec<UnsyncedRow> = daemon
        .pending(&org)
        .await
        .into_iter()
        .map(|p| UnsyncedRow {
            path: p.path,
            action: p.action,
            seq: p.seq,
            attempts: 0,
            error: None,
        })
        .collect();
    match status::parked_rows(daemon.state(), &org).await {
        Ok(parked) => {
            rows.extend(parked);
            Json(rows).into_response()
        }
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn progress(State(daemon): State<Daemon>, UrlPath(org): UrlPath<String>) -> Response {
    match daemon.handle(&org).await {
        Some(handle) => Json(handle.progress.snapshot()).into_response(),
        None => failure(
            StatusCode::NOT_FOUND,
            format!("organization '{org}' is not configured"),
        ),
    }
}

async fn reload(State(daemon): State<Daemon>) -> Response {
    match daemon.reload().await {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e @ (DaemonError::Config(_) | DaemonError::WrongRole(_) | DaemonError::Key { .. })) => {
            failure(StatusCode::BAD_REQUEST, e.to_string())
        }
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The control API.
pub fn router(daemon: Daemon) -> Router {
    Router::new()
        .route("/status", get(status_rows))
        .route("/orgs/{org}/wake", post(wake))
        .route("/orgs/{org}/unsynced", get(unsynced))
        .route("/orgs/{org}/progress", get(progress))
        .route("/reload", post(reload))
        .with_state(daemon)
}

/// Binds the socket (replacing a stale one), owner-only.
pub fn bind(path: &Path) -> Result<tokio::net::UnixListener, DaemonError> {
    let fail = |problem: String| DaemonError::Socket {
        path: path.display().to_string(),
        problem,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(fail("another chef-syncd is already running on it".into()));
        }
        std::fs::remove_file(path).map_err(|e| fail(e.to_string()))?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(|e| fail(e.to_string()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| fail(e.to_string()))?;
    Ok(listener)
}
