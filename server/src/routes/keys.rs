//! `/users/U/keys[/K]` and `/organizations/O/clients/C/keys[/K]`: an actor's public keys.
//! Users manage their own keys (and the superuser everyone's); org admins manage clients'
//! keys, and a client its own.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use chef_sync_shared::path::{NameKind, validate_name};
use serde_json::{Value, json};

use crate::accounts;
use crate::auth::{Actor, ActorKind, OrgAccess};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{KeyOwner, KeyRow, StoreError};

pub(super) fn user_router() -> Router<AppState> {
    routes("/users/{user}/keys")
}

pub(super) fn client_router() -> Router<AppState> {
    routes("/clients/{client}/keys")
}

/// `/organizations/O/users/U/keys[/K]`: a user's keys as the org's key readers see them (GET
/// only, as in Chef: other methods are 405).
pub(super) fn org_user_router() -> Router<AppState> {
    Router::new()
        .route("/users/{user}/keys", get(list))
        .route("/users/{user}/keys/{key}", get(show))
}

fn routes(base: &str) -> Router<AppState> {
    Router::new().route(base, get(list).post(add)).route(
        &format!("{base}/{{key}}"),
        get(show).put(update).delete(remove),
    )
}

/// Whose keys a request is about, with the display name for messages and the keys' base URL.
struct Owner {
    owner: KeyOwner,
    name: String,
    base: String,
}

impl FromRequestParts<AppState> for Owner {
    type Rejection = ApiError;

    /// Resolves whose keys the path names and checks the caller may manage them.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Owner> {
        let actor = parts
            .extensions
            .get::<Actor>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("request is not authenticated".into()))?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let param = |k: &str| params.get(k).map(String::as_str);
        let reading = parts.method == axum::http::Method::GET;
        match (param("org"), param("client"), param("user")) {
            (Some(org), Some(client), _) => {
                client_owner(state, &actor, org, client, reading, &parts.headers).await
            }
            (Some(org), None, Some(user)) => {
                org_user_owner(state, &actor, org, user, &parts.headers).await
            }
            (_, _, Some(user)) => user_owner(state, &actor, user, &parts.headers).await,
            _ => Err(ApiError::NotFound("No such endpoint".into())),
        }
    }
}

/// The `{key}` of the path.
fn key_name(params: &HashMap<String, String>) -> ApiResult<&str> {
    params
        .get("key")
        .map(String::as_str)
        .ok_or_else(|| ApiError::NotFound("No such endpoint".into()))
}

async fn user_owner(
    state: &AppState,
    actor: &Actor,
    user: &str,
    headers: &HeaderMap,
) -> ApiResult<Owner> {
    if !actor.is_superuser() && actor.name != user {
        return Err(ApiError::Forbidden(format!(
            "'{}' is not authorized to manage the keys of user '{user}'",
            actor.name
        )));
    }
    let row = state
        .store
        .user(user)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Could not find user {user}")))?;
    Ok(Owner {
        owner: KeyOwner::User(row.id),
        name: user.to_owned(),
        base: format!("{}/users/{user}/keys", super::base_url(headers)),
    })
}

/// Whether `actor` is in the org's `public_key_read_access` group (by default every org user
/// and client, through the `users` and `clients` groups in it).
async fn reads_public_keys(state: &AppState, org_id: i64, actor: &Actor) -> ApiResult<bool> {
    let kind = match actor.kind {
        ActorKind::User { .. } => "user",
        ActorKind::Client { .. } => "client",
    };
    Ok(state
        .store
        .in_group(org_id, "public_key_read_access", kind, &actor.name)
        .await?)
}

/// A user's keys read through an org: the org first, then the user (404), then the reader.
async fn org_user_owner(
    state: &AppState,
    actor: &Actor,
    org: &str,
    user: &str,
    headers: &HeaderMap,
) -> ApiResult<Owner> {
    let access = OrgAccess::resolve(state, actor, org).await?;
    // Only the org's own users are seen through it.
    let row = match state.store.user(user).await? {
        Some(row) if state.store.is_org_user(access.org.id, row.id).await? => row,
        _ => return Err(ApiError::NotFound(format!("Could not find user {user}"))),
    };
    if !actor.is_superuser() && !reads_public_keys(state, access.org.id, actor).await? {
        return Err(ApiError::Forbidden("missing read permission".into()));
    }
    Ok(Owner {
        owner: KeyOwner::User(row.id),
        name: user.to_owned(),
        base: format!("{}/{user}/keys", super::org_url(headers, org, "users")),
    })
}

async fn client_owner(
    state: &AppState,
    actor: &Actor,
    org: &str,
    client: &str,
    reading: bool,
    headers: &HeaderMap,
) -> ApiResult<Owner> {
    let access = OrgAccess::resolve(state, actor, org).await?;
    let row = state
        .store
        .client(access.org.id, client)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Cannot load client {client}")))?;
    let is_self = matches!(actor.kind, ActorKind::Client { id, .. } if id == row.id);
    // Reading: the key readers of the org too (Chef's public_key_read_access group).
    let reader = reading && reads_public_keys(state, access.org.id, actor).await?;
    if !is_self && !reader {
        access.require_admin()?;
    }
    Ok(Owner {
        owner: KeyOwner::Client(row.id),
        name: client.to_owned(),
        base: format!("{}/{client}/keys", super::org_url(headers, org, "clients")),
    })
}

fn expiration_text(key: &KeyRow) -> String {
    key.expires_at.clone().unwrap_or_else(|| "infinity".into())
}

fn now_text() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn key_json(key: &KeyRow) -> Value {
    json!({"name": key.name, "public_key": key.public_key, "expiration_date": expiration_text(key)})
}

fn missing(owner: &Owner, key: &str) -> ApiError {
    ApiError::NotFound(format!(
        "There is no key named {key} associated with {}.",
        owner.name
    ))
}

async fn list(State(state): State<AppState>, owner: Owner) -> ApiResult<Response> {
    let now = now_text();
    let keys = state.store.keys(owner.owner).await?;
    let list: Vec<Value> = keys
        .iter()
        .map(|k| {
            let expired = k.expires_at.as_deref().is_some_and(|e| e <= now.as_str());
            json!({"name": k.name, "uri": format!("{}/{}", owner.base, k.name), "expired": expired})
        })
        .collect();
    Ok(super::ok(Value::Array(list)))
}

async fn show(
    State(state): State<AppState>,
    owner: Owner,
    Path(params): Path<HashMap<String, String>>,
) -> ApiResult<Response> {
    let name = key_name(&params)?;
    let key = state
        .store
        .key(owner.owner, name)
        .await?
        .ok_or_else(|| missing(&owner, name))?;
    Ok(super::ok(key_json(&key)))
}

/// The key material of a POST/PUT: `public_key`, or `create_key: true` for a generated pair.
async fn material(req: &Value, min_bits: usize) -> ApiResult<Option<(String, Option<String>)>> {
    let public = req.get("public_key").and_then(Value::as_str);
    let create = req.get("create_key").and_then(Value::as_bool) == Some(true);
    match (public, create) {
        (Some(_), true) => Err(ApiError::BadRequest(
            "Specify either public_key or create_key, not both".into(),
        )),
        (Some(pem), false) => Ok(Some(accounts::key_material(Some(pem), min_bits).await?)),
        (None, true) => Ok(Some(accounts::key_material(None, min_bits).await?)),
        (None, false) => Ok(None),
    }
}

async fn add(State(state): State<AppState>, owner: Owner, body: Bytes) -> ApiResult<Response> {
    let req: Value = super::parse_json(&body)?;
    let name = req
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::BadRequest("Field 'name' missing".into()))?;
    validate_name(NameKind::Key, name)?;
    // Chef requires the date on a key added later (only keys made with the actor default to
    // never expiring).
    if req.get("expiration_date").is_none() {
        return Err(ApiError::BadRequest(
            "Field 'expiration_date' missing".into(),
        ));
    }
    let (public_key, private) = material(&req, state.config.min_key_bits)
        .await?
        .ok_or_else(|| {
            ApiError::BadRequest("Field 'public_key' missing (or set create_key to true)".into())
        })?;
    let key = KeyRow {
        name: name.to_owned(),
        public_key,
        expires_at: accounts::expiration(req.get("expiration_date"))?,
    };
    let most = state.config.max_keys_per_actor;
    state
        .store
        .add_key(owner.owner, &key, most)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => ApiError::Conflict(format!(
                "Key with name {name} already exists for {}",
                owner.name
            )),
            StoreError::Refused(_) => ApiError::Conflict(format!(
                "{} already has {most} keys, the most one actor may hold (max_keys_per_actor); delete one first",
                owner.name
            )),
            other => other.into(),
        })?;
    let uri = format!("{}/{name}", owner.base);
    let mut out = json!({ "uri": uri });
    if let Some(private_key) = private {
        out["private_key"] = json!(private_key);
    }
    Ok(super::created_with(uri, out))
}

async fn update(
    State(state): State<AppState>,
    owner: Owner,
    Path(params): Path<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult<Response> {
    let name = key_name(&params)?;
    let req: Value = super::parse_json(&body)?;
    if !["name", "expiration_date", "public_key", "create_key"]
        .iter()
        .any(|field| req.get(field).is_some())
    {
        return Err(ApiError::BadRequest(
            "At least one of 'name', 'expiration_date', or 'public_key' must be specified".into(),
        ));
    }
    let old = state
        .store
        .key(owner.owner, name)
        .await?
        .ok_or_else(|| missing(&owner, name))?;
    let new_name = match req.get("name") {
        Some(Value::String(n)) => {
            validate_name(NameKind::Key, n)?;
            n.clone()
        }
        Some(_) => return Err(ApiError::BadRequest("Field 'name' invalid".into())),
        None => old.name.clone(),
    };
    let (public_key, private) = match material(&req, state.config.min_key_bits).await? {
        Some((public, private)) => (public, private),
        None => (old.public_key.clone(), None),
    };
    let expires_at = match req.get("expiration_date") {
        Some(v) => accounts::expiration(Some(v))?,
        None => old.expires_at.clone(),
    };
    let key = KeyRow {
        name: new_name,
        public_key,
        expires_at,
    };
    state
        .store
        .replace_key(owner.owner, name, &key)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => {
                ApiError::Conflict(format!("Key with name {} already exists", key.name))
            }
            StoreError::NotFound => missing(&owner, name),
            other => other.into(),
        })?;
    // Chef answers with what the request changed (its fields, less `create_key`), plus the
    // pair when it made one.
    let mut out = req.as_object().cloned().unwrap_or_default();
    out.remove("create_key");
    if let Some(private_key) = private {
        out.insert("public_key".into(), json!(key.public_key));
        out.insert("private_key".into(), json!(private_key));
    }
    let out = Value::Object(out);
    if key.name != name {
        // Chef answers a rename with 201 and the new location.
        return Ok(super::created_with(
            format!("{}/{}", owner.base, key.name),
            out,
        ));
    }
    Ok(super::respond(StatusCode::OK, out))
}

async fn remove(
    State(state): State<AppState>,
    owner: Owner,
    Path(params): Path<HashMap<String, String>>,
) -> ApiResult<Response> {
    let name = key_name(&params)?;
    let key = state
        .store
        .key(owner.owner, name)
        .await?
        .ok_or_else(|| missing(&owner, name))?;
    state
        .store
        .delete_key(owner.owner, name)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => missing(&owner, name),
            other => other.into(),
        })?;
    Ok(super::ok(key_json(&key)))
}
