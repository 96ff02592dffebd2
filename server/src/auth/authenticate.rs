//! Middleware that verifies the Chef signature of every request except `/_status`.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chef_sync_shared::PublicKey;
use chef_sync_shared::signing::{self, HeaderSource, SignedRequest};

use super::{Actor, ActorKind};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::store::KeyOwner;

/// Requests that need no signature.
fn is_public(path: &str) -> bool {
    path == "/_status"
}

struct Headers<'a>(&'a HeaderMap);

impl HeaderSource for Headers<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The org named by `/organizations/ORG/...`, where clients are looked up.
fn org_in_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/organizations/")?;
    rest.split('/').next().filter(|s| !s.is_empty())
}

/// Verifies the request and inserts its [`Actor`]; answers 400/401/413 itself.
pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if is_public(req.uri().path()) {
        return next.run(req).await;
    }
    match verify(&state, req).await {
        Ok(req) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn verify(state: &AppState, req: Request) -> ApiResult<Request> {
    let signed = SignedRequest::from_headers(&Headers(req.headers()))?;
    signed.check_clock(chrono::Utc::now(), state.config.auth_skew_duration())?;
    let (mut parts, body) = req.into_parts();
    let limit = state.config.max_request_size;
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge(limit))?;
    let (actor, pems) = lookup(state, signed.user_id(), parts.uri.path()).await?;
    let keys: Vec<PublicKey> = pems
        .iter()
        .filter_map(|p| PublicKey::from_pem(p).ok())
        .collect();
    signed.verify(
        parts.method.as_str(),
        parts.uri.path(),
        signing::Body::Bytes(&bytes),
        &keys,
    )?;
    parts.extensions.insert(actor);
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Finds the actor and its live keys: users first, then clients of the org in the path.
async fn lookup(state: &AppState, name: &str, path: &str) -> ApiResult<(Actor, Vec<String>)> {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    if let Some(user) = state.store.user(name).await? {
        let keys = state.store.live_keys(KeyOwner::User(user.id), &now).await?;
        let actor = Actor {
            name: user.username,
            kind: ActorKind::User {
                id: user.id,
                superuser: user.superuser,
            },
        };
        return Ok((actor, keys));
    }
    if let Some(org_name) = org_in_path(path)
        && let Some(org) = state.store.org(org_name).await?
        && let Some(client) = state.store.client(org.id, name).await?
    {
        let keys = state
            .store
            .live_keys(KeyOwner::Client(client.id), &now)
            .await?;
        let actor = Actor {
            name: client.name,
            kind: ActorKind::Client {
                id: client.id,
                org_id: org.id,
                validator: client.validator,
            },
        };
        return Ok((actor, keys));
    }
    Err(ApiError::Unauthorized(format!(
        "Failed to authenticate as '{name}'. Ensure that your node_name and client key are correct."
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_is_taken_from_the_path() {
        assert_eq!(org_in_path("/organizations/acme/roles"), Some("acme"));
        assert_eq!(org_in_path("/organizations/acme"), Some("acme"));
        assert_eq!(org_in_path("/organizations/"), None);
        assert_eq!(org_in_path("/users/x"), None);
    }
}
