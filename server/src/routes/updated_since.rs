//! `GET /organizations/ORG/updated_since?seq=N[&limit=L][&wait=S][&documents=true]` (alias
//! `objects_since`).

use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::auth::OrgAccess;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::PageDocuments;

/// Entries per page when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 1000;
/// Largest `limit` accepted.
pub const MAX_LIMIT: i64 = 10_000;
/// Longest `wait` accepted, seconds.
pub const MAX_WAIT: u64 = 60;
/// Response header carrying the org's newest change id.
pub const LAST_SEQ_HEADER: &str = "x-chef-sync-last-seq";
/// Response header saying the page carries documents (`documents=true` was honoured), so a
/// replica knows this primary offers them.
pub const DOCUMENTS_HEADER: &str = "x-chef-sync-documents";
/// How often a long-poll re-reads the log, to see writes made by other server processes.
const RECHECK: Duration = Duration::from_millis(250);

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/updated_since", get(updated_since))
        .route("/objects_since", get(updated_since))
}

#[derive(Debug, Deserialize)]
struct Params {
    seq: Option<String>,
    limit: Option<String>,
    wait: Option<String>,
    documents: Option<String>,
}

/// `documents=true|false` (absent: false).
fn documents(raw: Option<&str>) -> ApiResult<PageDocuments> {
    match raw {
        None | Some("false") => Ok(PageDocuments::None),
        Some("true") => Ok(PageDocuments::Current),
        Some(other) => Err(ApiError::BadRequest(format!(
            "invalid documents '{other}': use true or false"
        ))),
    }
}

async fn updated_since(
    State(state): State<AppState>,
    access: OrgAccess,
    Query(params): Query<Params>,
) -> ApiResult<Response> {
    access.require_feed()?;
    let seq = super::query_number("seq", params.seq.as_deref(), 0i64, 0, i64::MAX)?;
    let limit = super::query_number(
        "limit",
        params.limit.as_deref(),
        DEFAULT_LIMIT,
        1,
        MAX_LIMIT,
    )?;
    let wait = super::query_number("wait", params.wait.as_deref(), 0u64, 0, MAX_WAIT)?;
    let documents = documents(params.documents.as_deref())?;
    let org_id = access.org.id;
    // Subscribe before reading so a commit between the read and the wait is not missed.
    let mut wakeups = state.store.feed_notifier().subscribe(org_id);
    let mut stopping = state.stopping.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    loop {
        let page = state
            .store
            .changes_since(org_id, seq, limit, documents)
            .await?;
        if page.entries > 0 || tokio::time::Instant::now() >= deadline || *stopping.borrow() {
            let last = page.last_seq;
            // The page's JSON is built whole by the store; it is sent as it is.
            let mut response = (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                page.json,
            )
                .into_response();
            let headers = response.headers_mut();
            // The newest id, so a replica can take its position without paging the whole log.
            if let Ok(v) = axum::http::HeaderValue::from_str(&last.to_string()) {
                headers.insert(LAST_SEQ_HEADER, v);
            }
            if documents == PageDocuments::Current {
                headers.insert(
                    DOCUMENTS_HEADER,
                    axum::http::HeaderValue::from_static("true"),
                );
            }
            return Ok(response);
        }
        let next_check = (tokio::time::Instant::now() + RECHECK).min(deadline);
        tokio::select! {
            _ = tokio::time::timeout_at(next_check, wakeups.changed()) => {}
            _ = stopping.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_range_checked() {
        assert_eq!(
            crate::routes::query_number("limit", None, DEFAULT_LIMIT, 1, MAX_LIMIT).unwrap(),
            1000
        );
        assert_eq!(
            crate::routes::query_number("limit", Some("10000"), DEFAULT_LIMIT, 1, MAX_LIMIT)
                .unwrap(),
            10000
        );
        assert!(
            crate::routes::query_number("limit", Some("10001"), DEFAULT_LIMIT, 1, MAX_LIMIT)
                .is_err()
        );
        assert!(
            crate::routes::query_number("limit", Some("0"), DEFAULT_LIMIT, 1, MAX_LIMIT).is_err()
        );
        assert!(crate::routes::query_number("seq", Some("-1"), 0, 0, i64::MAX).is_err());
        assert!(crate::routes::query_number("seq", Some("x"), 0, 0, i64::MAX).is_err());
        assert!(crate::routes::query_number("wait", Some("61"), 0u64, 0, MAX_WAIT).is_err());
        assert_eq!(documents(None).unwrap(), PageDocuments::None);
        assert_eq!(documents(Some("true")).unwrap(), PageDocuments::Current);
        assert!(documents(Some("yes")).is_err());
    }
}
