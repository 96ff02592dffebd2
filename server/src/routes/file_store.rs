//! The pre-signed file URLs: uploads into a sandbox and downloads of committed files. No Chef
//! signature is needed (chef-client fetches manifest URLs as they are); the URL's own
//! signature and expiry are checked instead.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use base64::Engine;
use serde::Deserialize;

use crate::blob::{self, BlobStore, UploadError, is_checksum};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::StoreError;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/file_store/organizations/{org}/checksums/{checksum}",
            get(download),
        )
        .route(
            "/file_store/organizations/{org}/sandboxes/{sandbox}/checksums/{checksum}",
            put(upload),
        )
}

/// The unsigned path of a committed file's download URL.
pub(crate) fn download_path(org: &str, checksum: &str) -> String {
    format!("/file_store/organizations/{org}/checksums/{checksum}")
}

#[derive(Debug, Deserialize)]
struct Signature {
    expires: Option<String>,
    signature: Option<String>,
}

fn check_url(state: &AppState, method: &str, uri: &Uri, sig: &Signature) -> ApiResult<()> {
    state.urls.verify(
        method,
        uri.path(),
        sig.expires.as_deref(),
        sig.signature.as_deref(),
        chrono::Utc::now().timestamp(),
    )
}

/// Storage trouble (disk full, database down) is temporary from the client's point of view.
fn file_error(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "file store failure");
    ApiError::Unavailable(format!("file store unavailable: {e}"))
}

async fn download(
    State(state): State<AppState>,
    Path((org, checksum)): Path<(String, String)>,
    Query(sig): Query<Signature>,
    uri: Uri,
) -> ApiResult<Response> {
    check_url(&state, "GET", &uri, &sig)?;
    let not_found = || ApiError::NotFound(format!("No file with checksum {checksum}"));
    if !is_checksum(&checksum) {
        return Err(not_found());
    }
    let org = state.store.org(&org).await?.ok_or_else(not_found)?;
    // The org's own upload, never just any bytes with this MD5 (MD5 collides on demand).
    let key = state
        .store
        .org_blob_key(org.id, &checksum.to_ascii_lowercase())
        .await?
        .ok_or_else(not_found)?;
    let (body, len) = state
        .blobs
        .open(&key)
        .await
        .map_err(file_error)?
        .ok_or_else(not_found)?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/x-binary".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        body,
    )
        .into_response())
}

/// The Content-MD5 header as lowercase hex (it carries base64 of the 16 raw MD5 bytes).
fn content_md5(headers: &HeaderMap) -> ApiResult<String> {
    let raw = headers
        .get("content-md5")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::BadRequest("Content-MD5 header required".into()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .ok()
        .filter(|b| b.len() == 16)
        .ok_or_else(|| ApiError::BadRequest("Content-MD5 is not base64 of an MD5 digest".into()))?;
    Ok(hex::encode(bytes))
}

async fn upload(
    State(state): State<AppState>,
    Path((org, sandbox_id, checksum)): Path<(String, String, String)>,
    Query(sig): Query<Signature>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    check_url(&state, "PUT", &uri, &sig)?;
    if !is_checksum(&checksum) {
        return Err(ApiError::BadRequest(format!("Bad checksum '{checksum}'")));
    }
    let checksum = checksum.to_ascii_lowercase();
    if content_md5(&headers)? != checksum {
        return Err(ApiError::BadRequest(
            "Content-MD5 does not match the file's checksum".into(),
        ));
    }
    let no_sandbox = || ApiError::NotFound(format!("No such sandbox '{sandbox_id}'."));
    let org = state.store.org(&org).await?.ok_or_else(no_sandbox)?;
    if !state
        .store
        .sandbox_expects(org.id, &sandbox_id, &checksum)
        .await?
    {
        // Which of the two: the sandbox, or the checksum in it.
        state
            .store
            .sandbox(org.id, &sandbox_id)
            .await?
            .ok_or_else(no_sandbox)?;
        return Err(ApiError::NotFound(format!(
            "Sandbox '{sandbox_id}' has no checksum {checksum}"
        )));
    }
    let received = blob::receive(
        body,
        BlobStore::staging_dir(&state.config),
        &checksum,
        state.config.max_file_size,
    )
    .await
    .map_err(|e| match e {
        UploadError::TooLarge(_) => ApiError::FileTooLarge(e.to_string()),
        UploadError::Mismatch { .. } => ApiError::BadRequest(e.to_string()),
        UploadError::Io(_) => file_error(e),
    })?;
    let sha256 = received.sha256.clone();
    state.blobs.insert(received).await.map_err(file_error)?;
    state
        .store
        .mark_uploaded(&sandbox_id, &checksum, &sha256)
        .await
        .map_err(|e| match e {
            // Expired and swept while the file streamed in.
            StoreError::NotFound => no_sandbox(),
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
