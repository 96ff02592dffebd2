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
use crate::app::AppState;
use crate::auth::{Actor, ActorKind, Level, OrgAccess};
use crate::error::{ApiError, ApiResult};
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
    Extension(actor): Extension<Actor>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let access = super::access(&state, &actor, &org).await?;
    access.require_read()?;
    let names = state.store.client_names(access.org.id).await?;
    Ok(super::ok(super::listing(
        &super::org_url(&headers, &org, "clients"),
        &names,
    )))
}

async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Extension(api): Extension<ApiVersion>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let access = super::access(&state, &actor, &org).await?;
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
    let public_key = req.get("public_key").and_then(Value::as_str);
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
        super::org_url(&headers, &org, "clients"),
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
    Extension(actor): Extension<Actor>,
    Extension(api): Extension<ApiVersion>,
    Path((org, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let access = super::access(&state, &actor, &org).await?;
    let client = load(&state, &access, &name).await?;
    if !is_self(&access, &client) {
        access.require_read()?;
    }
    let mut out = client_json(&client, &org);
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

async fn update(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((org, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let access = super::access(&state, &actor, &org).await?;
    access.require_admin()?;
    let mut client = load(&state, &access, &name).await?;
    let req: Value = super::parse_json(&body)?;
    if let Some(new_name) = req.get("name").and_then(Value::as_str)
        && new_name != name
    {
        return Err(ApiError::BadRequest(
            "Renaming a client is not supported; create a new client instead".into(),
        ));
    }
    if let Some(validator) = req.get("validator").and_then(Value::as_bool) {
        state
            .store
            .set_client_validator(client.id, validator)
            .await?;
        client.validator = validator;
    }
    Ok(super::ok(client_json(&client, &org)))
}

async fn remove(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((org, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let access = super::access(&state, &actor, &org).await?;
    let client = load(&state, &access, &name).await?;
    if !is_self(&access, &client) {
        access.require_admin()?;
    }
    state.store.delete_client(access.org.id, &client).await?;
    Ok(super::respond(StatusCode::OK, client_json(&client, &org)))
}
