//! The daemon's side of the control socket.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
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
    let mut live = std::collections::HashMap::new();
    for pair in &config.organizations {
        live.insert(
            pair.destination.clone(),
            daemon.live(&pair.destination).await,
        );
    }
    match status::rows(&config, daemon.state(), |org| {
        live.get(org).cloned().unwrap_or_default()
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
        Err(
            e @ (DaemonError::Config(_)
            | DaemonError::WrongRole(_)
            | DaemonError::Key { .. }
            | DaemonError::NeedsRestart(_)),
        ) => failure(StatusCode::BAD_REQUEST, e.to_string()),
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

/// Binds the socket (replacing a stale one), owner-only from the moment it can be reached.
pub fn bind(path: &Path) -> Result<tokio::net::UnixListener, DaemonError> {
    let fail = |problem: String| DaemonError::Socket {
        path: path.display().to_string(),
        problem,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(fail("another chef-syncd is already running on it".into()));
        }
        std::fs::remove_file(path).map_err(|e| fail(e.to_string()))?;
    }
    // bind() creates the socket with the umask's mode, and anyone it lets in could connect
    // before a chmod. Changing the umask would change it for every thread of the process, so
    // the socket is made in a directory only we can enter, set to 0600 there, and renamed into
    // place: at its real path it is 0600 from the start.
    let private = dir.join(format!(".chef-syncd-bind.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(|e| fail(format!("{}: {e}", private.display())))?;
    let bound = bind_in(&private, path);
    let _ = std::fs::remove_dir_all(&private);
    bound.map_err(|e| fail(e.to_string()))
}

/// Binds `private/s`, makes it 0600 and moves it to `path` (same directory, so same file
/// system: the rename is atomic and the listener keeps its socket).
fn bind_in(private: &Path, path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    let staged = private.join("s");
    let listener = tokio::net::UnixListener::bind(&staged)?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&staged, path)?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn mode(path: &Path) -> Option<u32> {
        std::fs::symlink_metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o777)
    }

    #[tokio::test]
    async fn the_socket_is_never_reachable_with_a_wider_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        // A watcher looks at the socket's path as fast as it can while it is bound again and
        // again: with bind-then-chmod it sees the umask's mode in between.
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (path, done) = (path.clone(), done.clone());
            std::thread::spawn(move || {
                let mut seen = std::collections::BTreeSet::new();
                while !done.load(Ordering::Relaxed) {
                    if let Some(m) = mode(&path) {
                        seen.insert(m);
                    }
                }
                seen
            })
        };
        for _ in 0..300 {
            let listener = bind(&path).unwrap();
            assert_eq!(mode(&path), Some(0o600));
            drop(listener);
            std::fs::remove_file(&path).unwrap();
        }
        done.store(true, Ordering::Relaxed);
        let seen = watcher.join().unwrap();
        let modes: Vec<String> = seen.iter().map(|m| format!("{m:o}")).collect();
        assert_eq!(modes, ["600"], "modes seen at the socket's path");
        // The staging directory is gone, and a client reaches the socket at its real path.
        let listener = bind(&path).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let client = tokio::net::UnixStream::connect(&path);
        let (accepted, connected) = tokio::join!(listener.accept(), client);
        assert!(accepted.is_ok() && connected.is_ok());
    }
}
