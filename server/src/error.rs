//! The server's one error type and its mapping to Chef error bodies: the only place an error
//! becomes an HTTP status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chef_sync_shared::{AuthError, ErrorBody, PathError};

use crate::store::StoreError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 401 (with `WWW-Authenticate`).
    #[error("{0}")]
    Unauthorized(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 405.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 406 for an unsupported `X-Ops-Server-API-Version`, with the versions served.
    #[error("Specified version {requested} not supported")]
    UnsupportedApiVersion {
        /// The version asked for, as sent.
        requested: String,
        /// The oldest version served.
        min: i64,
        /// The newest version served.
        max: i64,
    },
    /// 406 for an `Accept` header that admits no JSON.
    #[error("{0}")]
    NotAcceptable(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 409 whose `error` is a string, not a list (erchef's cookbook artifact conflict).
    #[error("{0}")]
    ConflictText(String),
    /// 410: the change log no longer reaches back that far.
    #[error("{0}")]
    Gone(String),
    /// 412 with a structured error (the dependency solver's answers).
    #[error("{0}")]
    PreconditionFailed(serde_json::Value),
    /// 413.
    #[error("JSON must be no more than {0} bytes.")]
    TooLarge(usize),
    /// 413 for a file upload.
    #[error("{0}")]
    FileTooLarge(String),
    /// 503.
    #[error("{0}")]
    Unavailable(String),
    /// 500; the detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// The HTTP status Chef answers this error with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedApiVersion { .. } | ApiError::NotAcceptable(_) => {
                StatusCode::NOT_ACCEPTABLE
            }
            ApiError::Conflict(_) | ApiError::ConflictText(_) => StatusCode::CONFLICT,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::TooLarge(_) | ApiError::FileTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                serde_json::json!({"error": ["internal server error"]})
            }
            ApiError::UnsupportedApiVersion {
                requested,
                min,
                max,
            } => serde_json::json!({
                "error": "invalid-x-ops-server-api-version",
                "message": format!("Specified version {requested} not supported"),
                "min_version": min,
                "max_version": max,
            }),
            ApiError::PreconditionFailed(detail) => serde_json::json!({"error": [detail]}),
            ApiError::ConflictText(text) => serde_json::json!({ "error": text }),
            other => serde_json::to_value(ErrorBody::new(other.to_string()))
                .unwrap_or_else(|_| serde_json::json!({"error": ["error"]})),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "X-Ops-Sign version=\"1.0\" version=\"1.1\" version=\"1.2\" version=\"1.3\"",
                ),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => ApiError::Conflict("already exists".into()),
            StoreError::NotFound | StoreError::ParentMissing => {
                ApiError::NotFound("not found".into())
            }
            StoreError::Refused(why) => ApiError::Conflict(why),
            // Chef words a new cookbook version's unknown checksum and an update's differently.
            StoreError::UnknownChecksum {
                checksum,
                update: true,
            } => ApiError::BadRequest(format!(
                "Manifest has checksum {checksum} but it hasn't yet been uploaded"
            )),
            StoreError::UnknownChecksum { update: false, .. } => {
                ApiError::BadRequest("Manifest has a checksum that hasn't been uploaded.".into())
            }
            StoreError::Pruned(n) => ApiError::Gone(format!(
                "change log entries up to {n} were pruned; reconcile in full and resume from the current position"
            )),
            StoreError::Db(sqlx::Error::PoolTimedOut) => {
                ApiError::Unavailable("database unavailable".into())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e.http_status() {
            400 => ApiError::BadRequest(e.to_string()),
            _ => ApiError::Unauthorized(e.to_string()),
        }
    }
}

impl From<PathError> for ApiError {
    fn from(e: PathError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        ApiError::BadRequest(format!("invalid JSON: {}", e.body_text()))
    }
}
