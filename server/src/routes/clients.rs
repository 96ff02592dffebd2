//! `/clients`: API clients of an org. Admins manage them; the validator may register new
//! (non-validator) clients, as chef-client's first run does.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::{Value, json};

use crate::accounts;
use crate::api_version::ApiVersion;
use crate::auth::{ActorKind, Level, OrgAccess};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::ClientRow;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/clients", get(list).post(create))
        .route("/clients/{name}", get(show).put(update).delete(remove))
}

fn client_json(client: &ClientRow, org: &str) -> Value {
    json!({
        "name": client.name, "clientname": client.name, "orgname": org,
        "validator": client.validator, "json_class": "Chef::ApiClient", "chef_type": "client",
    })
}

/// Whether the caller is the client itself.
fn is_self(access: &OrgAccess, client: &ClientRow) -> bool {
    matches!(access.actor.kind, ActorKind::Client { id, .. } if id == client.id)
}

async fn load(state: &AppState, access: &OrgAccess, name: &str) -> ApiResult<ClientRow> {
    state
        .store
        .client(access.org.id, name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Cannot load client {name}")))
}

async fn list(
    State(state): State<AppState>,
    access: OrgAccess,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let names = state.store.client_names(access.org.id).await?;
    Ok(super::ok(super::listing(
        &super::org_url(&headers, org, "clients"),
        &names,
    )))
}

async fn create(
    State(state): State<AppState>,
    access: OrgAccess,
    Extension(api): Extension<ApiVersion>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    let req: Value = super::parse_json(&body)?;
    let name = req
        .get("name")
        .or_else(|| req.get("clientname"))
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::BadRequest("Field 'name' missing".into()))?;
    let validator = req
        .get("validator")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match access.level {
        Level::Admin => {}
        Level::Validator if !validator => {}
        _ => access.require_admin()?,
    }
    if chef_sync_shared::path::validate_name(chef_sync_shared::path::NameKind::Client, name)
        .is_err()
    {
        return Err(ApiError::BadRequest(format!(
            "Invalid client name '{name}' using regex: 'Malformed client name.  Must be A-Z, a-z, 0-9, _, -, or .'."
        )));
    }
    let public_key = match req.get("public_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(pem)) => Some(pem.as_str()),
        Some(_) => return Err(ApiError::BadRequest("Field 'public_key' invalid".into())),
    };
    let (client, private) = accounts::create_client(
        &state.store,
        &access.org,
        name,
        validator,
        public_key,
        state.config.min_key_bits,
    )
    .await?;
    let uri = format!(
        "{}/{}",
        super::org_url(&headers, org, "clients"),
        client.name
    );
    let mut out = json!({ "uri": uri });
    if let Some(private_key) = private {
        if api.0 >= 1 {
            out["chef_key"] = json!({
                "name": "default", "expiration_date": "infinity", "private_key": private_key,
                "uri": format!("{uri}/keys/default"),
            });
        } else {
            out["private_key"] = json!(private_key);
        }
    }
    if api.0 == 0 {
        out["public_key"] = default_public_key(&state, &client).await?;
    }
    Ok(super::created_with(uri, out))
}

async fn show(
    State(state): State<AppState>,
    access: OrgAccess,
    Extension(api): Extension<ApiVersion>,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    let client = load(&state, &access, &name).await?;
    require_client_perm(&access, &client, Perm::Read)?;
    let mut out = client_json(&client, org);
    if api.0 == 0 {
        out["public_key"] = default_public_key(&state, &client).await?;
    }
    Ok(super::ok(out))
}

/// The `default` key's PEM (API v0 shows it with the client), `null` without one.
async fn default_public_key(state: &AppState, client: &ClientRow) -> ApiResult<Value> {
    let key = state
        .store
        .key(crate::store::KeyOwner::Client(client.id), "default")
        .await?;
    Ok(key.map_or(Value::Null, |k| Value::String(k.public_key)))
}

/// What a request would do to a client.
#[derive(Clone, Copy)]
enum Perm {
    Read,
    Update,
    Delete,
}

/// Chef's default ACL of a client object: admins everything; org users read and delete; the
/// client itself everything unless it is a validator (Chef takes validators out of their own
/// ACL); other clients nothing.
fn require_client_perm(access: &OrgAccess, client: &ClientRow, perm: Perm) -> ApiResult<()> {
    let allowed = access.level >= Level::Admin
        || (is_self(access, client) && !client.validator)
        || (matches!(access.actor.kind, ActorKind::User { .. })
            && access.level >= Level::Reader
            && matches!(perm, Perm::Read | Perm::Delete));
    if allowed {
        return Ok(());
    }
    let what = match perm {
        Perm::Read => "read",
        Perm::Update => "update",
        Perm::Delete => "delete",
    };
    Err(ApiError::Forbidden(format!("missing {what} permission")))
}

/// The key fields of a client PUT, checked as erchef checks them before anything else: under
/// API v0 `private_key: true` asks for a new key pair and `public_key` replaces the default
/// key; from v1 on keys change only through the keys endpoint.
fn key_change(req: &Value, api: ApiVersion) -> ApiResult<Option<Option<String>>> {
    let public_key = req.get("public_key").filter(|v| !v.is_null());
    if api.0 >= 1 {
        if public_key.is_some_and(|v| !v.is_string()) {
            return Err(ApiError::BadRequest("Field 'public_key' invalid".into()));
        }
        if req.get("private_key").is_some() {
            return Err(ApiError::BadRequest(
                "Please use create_key: true instead of private_key: true".into(),
            ));
        }
        if req.get("create_key").is_some() || public_key.is_some() {
            return Err(ApiError::BadRequest(
                "Since Server API v1, all keys must be updated via the keys endpoint. ".into(),
            ));
        }
        return Ok(None);
    }
    match req.get("private_key") {
        None | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => return Ok(Some(None)),
        Some(_) => return Err(ApiError::BadRequest("Field 'private_key' invalid".into())),
    }
    match public_key {
        None => Ok(None),
        Some(Value::String(pem)) => Ok(Some(Some(pem.clone()))),
        Some(_) => Err(ApiError::BadRequest("Field 'public_key' invalid".into())),
    }
}

async fn update(
    State(state): State<AppState>,
    access: OrgAccess,
    Extension(api): Extension<ApiVersion>,
    Path((_, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    let req: Value = super::parse_json(&body)?;
    let new_key = key_change(&req, api)?;
    let mut client = load(&state, &access, &name).await?;
    require_client_perm(&access, &client, Perm::Update)?;
    let rename = match req.get("name").or_else(|| req.get("clientname")) {
        Some(Value::String(new_name)) if new_name != &name => {
            if chef_sync_shared::path::validate_name(
                chef_sync_shared::path::NameKind::Client,
                new_name,
            )
            .is_err()
            {
                return Err(ApiError::BadRequest(format!(
                    "Invalid client name '{new_name}' using regex: 'Malformed client name.  Must be A-Z, a-z, 0-9, _, -, or .'."
                )));
            }
            Some(new_name.clone())
        }
        Some(Value::String(_)) | None => None,
        Some(_) => return Err(ApiError::BadRequest("Field 'name' invalid".into())),
    };
    let validator_change = req
        .get("validator")
        .and_then(Value::as_bool)
        .filter(|v| *v != client.validator);
    // A client renames itself only through an admin: nodes are changed by the client of the
    // same name, so a client that took another name could rewrite that node. Making a client
    // a validator (or not) is also the admins' to do. Everything is checked (the key too)
    // before anything is written.
    if rename.is_some() || validator_change.is_some() {
        access.require_admin()?;
    }
    let material = match new_key {
        Some(submitted) => {
            Some(accounts::key_material(submitted.as_deref(), state.config.min_key_bits).await?)
        }
        None => None,
    };
    if let Some(new_name) = rename {
        state
            .store
            .rename_client(client.id, &new_name)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict => {
                    ApiError::Conflict("Client already exists".into())
                }
                other => other.into(),
            })?;
        client.name = new_name;
    }
    if let Some(validator) = validator_change {
        state
            .store
            .set_client_validator(client.id, validator)
            .await?;
        client.validator = validator;
    }
    let mut private = None;
    if let Some((public, generated)) = material {
        let owner = crate::store::KeyOwner::Client(client.id);
        let key = crate::store::KeyRow {
            name: "default".into(),
            public_key: public,
            expires_at: None,
        };
        // As erchef's v0 update: the default key is replaced, or put back if it was deleted,
        // and never expires.
        if state.store.key(owner, "default").await?.is_some() {
            state.store.replace_key(owner, "default", &key).await?;
        } else {
            state
                .store
                .add_key(owner, &key, state.config.max_keys_per_actor)
                .await?;
        }
        private = generated;
    }
    let mut out = client_json(&client, org);
    if api.0 == 0 {
        out["public_key"] = default_public_key(&state, &client).await?;
        out["private_key"] = private.map_or(Value::Bool(false), Value::String);
    }
    if client.name != name {
        // Chef answers a rename with 201 and the client's new location.
        let uri = format!(
            "{}/{}",
            super::org_url(&headers, org, "clients"),
            client.name
        );
        return Ok(super::created_with(uri, out));
    }
    Ok(super::ok(out))
}

async fn remove(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    let client = load(&state, &access, &name).await?;
    require_client_perm(&access, &client, Perm::Delete)?;
    state.store.delete_client(access.org.id, &client).await?;
    Ok(super::respond(StatusCode::OK, client_json(&client, org)))
}
