//! chef-sync-ctl's side of the control socket: one HTTP/1 request per connection.

use std::path::Path;

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Why the daemon could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No daemon listens on the socket.
    #[error("chef-syncd is not running (no control socket at {0})")]
    NotRunning(String),
    /// It answered with an error.
    #[error("{0}")]
    Refused(String),
    /// The exchange failed.
    #[error("control socket: {0}")]
    Io(String),
}

/// Sends `method path` (no body) and returns the JSON answer.
pub async fn call(socket: &Path, method: &str, path: &str) -> Result<Value, ControlError> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|_| ControlError::NotRunning(socket.display().to_string()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ControlError::Io(e.to_string()))?;
    tokio::spawn(connection);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "chef-syncd")
        .body(Full::new(Bytes::new()))
        .map_err(|e| ControlError::Io(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| ControlError::Io(e.to_string()))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| ControlError::Io(e.to_string()))?
        .to_bytes();
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| ControlError::Io(e.to_string()))?;
    if status.is_success() {
        Ok(value)
    } else {
        let message = chef_sync_shared::ErrorBody::parse(&body)
            .map(|e| e.message())
            .unwrap_or_else(|| status.to_string());
        Err(ControlError::Refused(message))
    }
}
