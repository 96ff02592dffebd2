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
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{KeyOwner, UserRow};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{name}", get(show).put(update).delete(remove))
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
    // A replica org's sync user goes only after the org stops naming it.
    let synced = state.store.orgs_synced_by(&name).await?;
    if !synced.is_empty() {
        return Err(ApiError::Conflict(format!(
            "'{name}' is the sync user of organization(s) {}; change their sync_user first",
            synced.join(", ")
        )));
    }
    let shown = user_json(&state, &user, api).await?;
    state.store.delete_user(&user).await?;
    Ok(super::ok(shown))
}

/// Fields of a user's JSON a PUT may set (Chef's list); `null` removes one.
const USER_FIELDS: [&str; 8] = [
    "display_name",
    "first_name",
    "last_name",
    "middle_name",
    "city",
    "country",
    "twitter_account",
    "image_file_name",
];

/// What a user PUT asks of the keys: under API v0 `private_key: true` (a new pair) or a
/// `public_key` for the `default` key; from v1 keys change only through the keys endpoint.
fn user_key_change(req: &Value, api: ApiVersion) -> ApiResult<Option<Option<String>>> {
    let public_key = req.get("public_key").filter(|v| !v.is_null());
    if api.0 >= 1 {
        if req.get("private_key").is_some() {
            return Err(ApiError::BadRequest(
                "Please use create_key: true instead of private_key: true".into(),
            ));
        }
        if req.get("create_key").is_some() || req.get("public_key").is_some() {
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
        Some(_) => Err(ApiError::BadRequest(
            "Public Key must be a valid key.".into(),
        )),
    }
}

/// The user's new JSON from a PUT body, checked as Chef checks it.
fn updated_body(
    stored: &Value,
    req: &serde_json::Map<String, Value>,
    username: &str,
) -> ApiResult<Value> {
    chef_sync_shared::path::validate_name(chef_sync_shared::path::NameKind::User, username)
        .map_err(|_| ApiError::BadRequest("Field 'username' invalid".into()))?;
    match req.get("display_name") {
        Some(Value::String(_)) => {}
        None => return Err(ApiError::BadRequest("Field 'display_name' missing".into())),
        Some(_) => return Err(ApiError::BadRequest("Field 'display_name' invalid".into())),
    }
    let email = match req.get("email") {
        Some(Value::String(e)) if e.contains('@') && !e.contains(char::is_whitespace) => {
            e.to_lowercase()
        }
        None => return Err(ApiError::BadRequest("Field 'email' missing".into())),
        Some(_) => return Err(ApiError::BadRequest("email must be valid".into())),
    };
    if let Some(password) = req.get("password")
        && password.as_str().is_none_or(|p| p.chars().count() < 6)
    {
        return Err(ApiError::BadRequest(
            "Password must have at least 6 characters".into(),
        ));
    }
    let mut body = stored.as_object().cloned().unwrap_or_default();
    for field in USER_FIELDS {
        match req.get(field) {
            None => {}
            Some(Value::Null) => {
                body.remove(field);
            }
            Some(Value::String(v)) => {
                body.insert(field.into(), Value::String(v.clone()));
            }
            Some(_) => return Err(ApiError::BadRequest(format!("Field '{field}' invalid"))),
        }
    }
    body.insert("username".into(), json!(username));
    body.insert("email".into(), json!(email));
    Ok(Value::Object(body))
}

/// `PUT /users/NAME`: the user itself or the superuser. 200 `{"uri"}` (with the new private
/// key when API v0 asked for one); a new `username` renames: 201 with the new location.
async fn update(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Extension(api): Extension<ApiVersion>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let Some(user) = state.store.user(&name).await? else {
        return Ok(missing_user(&name));
    };
    if !actor.is_superuser() && actor.name != name {
        return Err(ApiError::Forbidden("missing update permission".into()));
    }
    let req: Value = super::parse_json(&body)?;
    let key_change = user_key_change(&req, api)?;
    let Value::Object(req) = req else {
        return Err(ApiError::BadRequest("user must be a JSON object".into()));
    };
    let username = match req.get("username").or_else(|| req.get("name")) {
        Some(Value::String(n)) => n.clone(),
        None => return Err(ApiError::BadRequest("Field 'username' missing".into())),
        Some(_) => return Err(ApiError::BadRequest("Field 'username' invalid".into())),
    };
    if username != name {
        if user.superuser {
            return Err(ApiError::Forbidden(format!(
                "'{name}' is the superuser and keeps its name"
            )));
        }
        // Authentication looks users up before clients: a user named after a client would
        // lock that client out.
        if state.store.client_name_taken(&username).await? {
            return Err(ApiError::Conflict(format!(
                "'{username}' is the name of a client"
            )));
        }
    }
    let stored = super::stored(&user.body)?;
    let new_body = updated_body(&stored, &req, &username)?;
    // Chef's v0 update writes the default key back (a new one, or the one it had) with no
    // expiry, and puts it back if it was deleted. The key is checked before anything is
    // written, so a bad one changes nothing.
    let owner = KeyOwner::User(user.id);
    let current = state.store.key(owner, "default").await?;
    let mut material = None;
    if api.0 == 0 {
        let submitted = match key_change {
            Some(submitted) => Some(submitted),
            None => current.as_ref().map(|k| Some(k.public_key.clone())),
        };
        if let Some(submitted) = submitted {
            let made = accounts::key_material(submitted.as_deref(), state.config.min_key_bits)
                .await
                .map_err(|e| match e {
                    ApiError::BadRequest(_) => {
                        ApiError::BadRequest("Public Key must be a valid key.".into())
                    }
                    other => other,
                })?;
            material = Some(made);
        }
    }
    state
        .store
        .update_user(&user, &username, &new_body.to_string())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict => {
                ApiError::Conflict(format!("User '{username}' already exists"))
            }
            other => other.into(),
        })?;
    let mut out = json!({ "uri": format!("{}/users/{username}", super::base_url(&headers)) });
    if let Some((public, generated)) = material {
        let key = crate::store::KeyRow {
            name: "default".into(),
            public_key: public,
            expires_at: None,
        };
        if current.is_some() {
            state.store.replace_key(owner, "default", &key).await?;
        } else {
            state
                .store
                .add_key(owner, &key, state.config.max_keys_per_actor)
                .await?;
        }
        if let Some(private_key) = generated {
            out["private_key"] = json!(private_key);
        }
    }
    if username != name {
        let uri = format!("{}/users/{username}", super::base_url(&headers));
        return Ok(super::created_with(uri, out));
    }
    Ok(super::ok(out))
}
