//! `GET /organizations/O/principals/NAME`: the public key and type of a client of the org or
//! of a user, as erchef answers it for push-jobs and other services that check signatures
//! themselves. Like erchef, it needs no signature: it shows only public keys, and whether a
//! user belongs to the org.

use axum::Extension;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::api_version::ApiVersion;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::store::KeyOwner;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/principals/{name}", get(show))
}

/// Whether `GET path` is a principal look-up (the one org route that needs no signature).
pub(crate) fn is_principal_path(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    matches!(parts.as_slice(), ["", "organizations", org, "principals", name]
        if !org.is_empty() && !name.is_empty())
}

/// Erchef's not-found body here: a string `error` and what was not found.
fn not_found(what: &str, name: &str) -> Response {
    let body = json!({"error": format!("Cannot find {what} {name}"), "not_found": what});
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// 32 hex digits that stay the same for the actor's life (this server has no separate
/// authorization service whose ids it could show).
fn authz_id(kind: &str, row_id: i64) -> String {
    let digest = Sha256::digest(format!("chef-sync {kind} {row_id}").as_bytes());
    hex::encode(&digest[..16])
}

/// The `default` key, or the first one when it was deleted.
async fn public_key(state: &AppState, owner: KeyOwner) -> ApiResult<String> {
    let keys = state.store.keys(owner).await?;
    let chosen = keys
        .iter()
        .find(|k| k.name == "default")
        .or_else(|| keys.first())
        .map(|k| k.public_key.clone());
    Ok(chosen.unwrap_or_default())
}

async fn show(
    State(state): State<AppState>,
    Extension(api): Extension<ApiVersion>,
    Path((org, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let Some(org_row) = state.store.org(&org).await? else {
        return Ok(not_found("org", &org));
    };
    let mut found: Vec<Value> = Vec::new();
    if let Some(client) = state.store.client(org_row.id, &name).await? {
        found.push(json!({
            "name": client.name,
            "public_key": public_key(&state, KeyOwner::Client(client.id)).await?,
            "type": "client",
            "authz_id": authz_id("client", client.id),
            "org_member": true,
        }));
    }
    if let Some(user) = state.store.user(&name).await? {
        let member = state.store.is_org_user(org_row.id, user.id).await?;
        found.push(json!({
            "name": user.username,
            "public_key": public_key(&state, KeyOwner::User(user.id)).await?,
            "type": "user",
            "authz_id": authz_id("user", user.id),
            "org_member": member,
        }));
    }
    let body = if api.0 == 0 {
        // v0 shows one principal, the client when a user has the same name.
        found.into_iter().next()
    } else if found.is_empty() {
        None
    } else {
        Some(json!({ "principals": found }))
    };
    Ok(match body {
        Some(body) => super::ok(body),
        None => not_found("principal", &name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_principal_look_ups_skip_the_signature() {
        assert!(is_principal_path("/organizations/acme/principals/web-1"));
        for other in [
            "/organizations/acme/principals/",
            "/organizations/acme/principals",
            "/organizations/acme/principals/a/b",
            "/organizations//principals/a",
            "/organizations/acme/clients/a",
            "/organizations/acme/nodes/principals",
        ] {
            assert!(!is_principal_path(other), "{other}");
        }
    }

    #[test]
    fn authz_ids_are_32_hex_digits_per_actor() {
        let a = authz_id("client", 1);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, authz_id("user", 1));
        assert_eq!(a, authz_id("client", 1));
    }
}
