//! `/users`: global users (superuser creates and lists; a user reads itself).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::{Value, json};

use crate::accounts;
use crate::app::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{name}", get(show))
}

async fn list(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    actor.require_superuser("manage users")?;
    let names = state.store.usernames().await?;
    Ok(super::ok(super::listing(
        &format!("{}/users", super::base_url(&headers)),
        &names,
    )))
}

async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    actor.require_superuser("manage users")?;
    let mut value: Value = super::parse_json(&body)?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| ApiError::BadRequest("user must be a JSON object".into()))?;
    let username = obj
        .get("username")
        .or_else(|| obj.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::BadRequest("Field 'username' missing".into()))?
        .to_owned();
    let public_key = obj
        .remove("public_key")
        .and_then(|v| v.as_str().map(str::to_owned));
    // Never store secrets in the user's JSON.
    obj.remove("password");
    obj.remove("create_key");
    obj.insert("username".into(), Value::String(username.clone()));
    let (_, private) = accounts::create_user(
        &state.store,
        &username,
        &value,
        false,
        public_key.as_deref(),
        state.config.min_key_bits,
    )
    .await?;
    let uri = format!("{}/users/{username}", super::base_url(&headers));
    let mut out = json!({ "uri": uri });
    if let Some(private_key) = private {
        out["chef_key"] = json!({
            "name": "default", "expiration_date": "infinity", "private_key": private_key,
            "uri": format!("{uri}/keys/default"),
        });
    }
    Ok(super::created_with(uri, out))
}

async fn show(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    if !actor.is_superuser() && actor.name != name {
        return Err(ApiError::Forbidden(format!(
            "'{}' is not authorized to read user '{name}'",
            actor.name
        )));
    }
    let user = state
        .store
        .user(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Could not find user {name}")))?;
    Ok(super::ok(super::stored(&user.body)?))
}
