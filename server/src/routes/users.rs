//! `/users`: global users (superuser creates and lists; a user reads and deletes itself, the
//! superuser any user).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::{Value, json};

use crate::accounts;
use crate::api_version::ApiVersion;
use crate::app::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::store::{KeyOwner, UserRow};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{name}", get(show).delete(remove))
}

/// erchef's not-found answer for a user: a string `error`, not a list.
fn missing_user(name: &str) -> Response {
    let body = json!({"error": format!("Could not find user {name}")});
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// The user as `GET /users/NAME` shows it: the stored fields and, under API v0, the
/// `default` public key (`null` without one).
async fn user_json(state: &AppState, user: &UserRow, api: ApiVersion) -> ApiResult<Value> {
    let mut value = super::stored(&user.body)?;
    if api.0 == 0
        && let Some(object) = value.as_object_mut()
    {
        let key = state.store.key(KeyOwner::User(user.id), "default").await?;
        object.insert(
            "public_key".into(),
            key.map_or(Value::Null, |k| Value::String(k.public_key)),
        );
    }
    Ok(value)
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
    Extension(api): Extension<ApiVersion>,
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
        // API v0 hands the new key over at the top level, later versions inside `chef_key`.
        if api.0 == 0 {
            out["private_key"] = json!(private_key);
        } else {
            out["chef_key"] = json!({
                "name": "default", "expiration_date": "infinity", "private_key": private_key,
                "uri": format!("{uri}/keys/default"),
            });
        }
    }
    Ok(super::created_with(uri, out))
}

async fn show(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Extension(api): Extension<ApiVersion>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    if !actor.is_superuser() && actor.name != name {
        return Err(ApiError::Forbidden(format!(
            "'{}' is not authorized to read user '{name}'",
            actor.name
        )));
    }
    let Some(user) = state.store.user(&name).await? else {
        return Ok(missing_user(&name));
    };
    Ok(super::ok(user_json(&state, &user, api).await?))
}

/// `DELETE /users/NAME`: the user itself or the superuser; the user's keys, org and group
/// memberships go with it. 200 with the user as it was.
async fn remove(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Extension(api): Extension<ApiVersion>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    // As in erchef, an unknown user is 404 before any permission check.
    let Some(user) = state.store.user(&name).await? else {
        return Ok(missing_user(&name));
    };
    if !actor.is_superuser() && actor.name != name {
        return Err(ApiError::Forbidden("missing delete permission".into()));
    }
    if user.superuser {
        return Err(ApiError::Forbidden(format!(
            "'{name}' is the superuser and cannot be deleted"
        )));
    }
    let shown = user_json(&state, &user, api).await?;
    state.store.delete_user(&user).await?;
    Ok(super::ok(shown))
}
