//! Middleware that verifies the Chef signature of every request except `/_status`, `/metrics`,
//! pre-signed file URLs and principal look-ups.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chef_sync_shared::signing::{self, HeaderSource, SignedRequest};

use super::{Actor, ActorKind};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Requests that need no Chef signature: the health check, the metrics (scraped by
/// Prometheus, which cannot sign), file URLs, which carry their own pre-signed query
/// (checked by the file routes), and `GET` of a principal (public keys, as erchef serves
/// them to anyone).
fn is_public(method: &axum::http::Method, path: &str) -> bool {
    path == "/_status"
        || path == "/metrics"
        || path.starts_with("/file_store/")
        || (method == axum::http::Method::GET && crate::routes::principals::is_principal_path(path))
}

struct Headers<'a>(&'a HeaderMap);

impl HeaderSource for Headers<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Verifies the request and inserts its [`Actor`]; answers 400/401/413 itself.
pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if is_public(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    match verify(&state, req).await {
        Ok(req) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn verify(state: &AppState, req: Request) -> ApiResult<Request> {
    let limit = state.config.max_request_size;
    // Chef checks the size before authentication, so an oversized body is 413 even unsigned.
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::TooLarge(limit));
    }
    let signed = SignedRequest::from_headers(&Headers(req.headers()))?;
    signed.check_clock(chrono::Utc::now(), state.config.auth_skew_duration())?;
    let (mut parts, body) = req.into_parts();
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge(limit))?;
    let org = parts
        .extensions
        .get::<crate::routes::RequestOrg>()
        .map(|o| o.0.clone());
    let (actor, mut pems) = lookup(state, signed.user_id(), org.as_deref()).await?;
    // Chef's headers do not say which key signed, so every live key may have to be tried;
    // an actor holds at most `max_keys_per_actor` (refused beyond that when added), and keys
    // held from before that limit are not tried past it, so one request's RSA work is bounded.
    pems.truncate(state.config.max_keys_per_actor);
    let keys = state.keys.parse(&pems);
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    if keys.len() <= 1 {
        signed.verify(&method, &path, signing::Body::Bytes(&bytes), &keys)?;
    } else {
        // Several keys: off the async workers, so a request signed with junk as an actor
        // with many keys cannot hold up other requests (`/_status` included).
        let body = bytes.clone();
        let _slot = state
            .verify_slots
            .acquire()
            .await
            .map_err(|e| ApiError::Internal(format!("signature check: {e}")))?;
        tokio::task::spawn_blocking(move || {
            signed.verify(&method, &path, signing::Body::Bytes(&body), &keys)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("signature check: {e}")))??;
    }
    crate::trace::record_actor(&actor.name);
    parts.extensions.insert(actor);
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Finds the actor and its live keys: users first, then clients of the org in the path.
async fn lookup(
    state: &AppState,
    name: &str,
    org: Option<&str>,
) -> ApiResult<(Actor, Vec<String>)> {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    if let Some((user, keys)) = state.store.user_with_keys(name, &now).await? {
        let actor = Actor {
            name: user.username,
            kind: ActorKind::User {
                id: user.id,
                superuser: user.superuser,
            },
        };
        return Ok((actor, keys));
    }
    if let Some(org_name) = org
        && let Some((found, keys)) = state.store.client_with_keys(org_name, name, &now).await?
    {
        let actor = Actor {
            name: found.client.name,
            kind: ActorKind::Client {
                id: found.client.id,
                org_id: found.org_id,
                validator: found.client.validator,
            },
        };
        return Ok((actor, keys));
    }
    Err(ApiError::Unauthorized(format!(
        "Failed to authenticate as '{name}'. Ensure that your node_name and client key are correct."
    )))
}
