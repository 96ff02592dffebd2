//! `/roles`: CRUD plus the per-environment run-list views.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use chef_sync_shared::objects::{Role, normalize_run_list};
use chef_sync_shared::{ObjectKind, ObjectPath};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::store::{StoreError, WriteMode};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/roles", get(list).post(create))
        .route("/roles/{name}", get(show).put(update).delete(remove))
        .route("/roles/{name}/environments", get(environments))
        .route(
            "/roles/{name}/environments/{env}",
            get(environment_run_list),
        )
}

fn missing(name: &str) -> ApiError {
    ApiError::NotFound(format!("Cannot load role {name}"))
}

/// Validates and normalises a role body the way Chef does on write.
fn prepare(body: &[u8], url_name: Option<&str>) -> ApiResult<Role> {
    let mut role: Role = super::parse_json(body)?;
    match url_name {
        Some(n) if role.name.is_empty() => role.name = n.to_owned(),
        Some(n) if role.name != n => {
            return Err(ApiError::BadRequest("Role name mismatch.".into()));
        }
        _ => {}
    }
    if role.name.is_empty() {
        return Err(ApiError::BadRequest("Field 'name' missing".into()));
    }
    ObjectPath::role(&role.name)?;
    if role.json_class != "Chef::Role" || role.chef_type != "role" {
        return Err(ApiError::BadRequest(
            "Field 'json_class' or 'chef_type' invalid".into(),
        ));
    }
    role.run_list =
        normalize_run_list(&role.run_list).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    role.env_run_lists.remove("_default");
    for list in role.env_run_lists.values_mut() {
        *list = normalize_run_list(list).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    }
    Ok(role)
}

fn to_json(role: &Role) -> ApiResult<String> {
    serde_json::to_string(role).map_err(|e| ApiError::Internal(e.to_string()))
}

async fn list(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let access = super::access(&state, &actor, &org).await?;
    access.require_read()?;
    let names = state
        .store
        .object_names(access.org.id, ObjectKind::Role, None)
        .await?;
    Ok(super::ok(super::listing(
        &format!("{}/organizations/{org}/roles", super::base_url(&headers)),
        &names,
    )))
}

async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let access = super::access(&state, &actor, &org).await?;
    access.require_object_write()?;
    let role = prepare(&body, None)?;
    let path = ObjectPath::role(&role.name)?;
    state
        .store
        .write_object(access.org.id, &path, &to_json(&role)?, WriteMode::Create)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => ApiError::Conflict("Role already exists".into()),
            other => other.into(),
        })?;
    Ok(super::created(format!(
        "{}/organizations/{org}/roles/{}",
        super::base_url(&headers),
        role.name
    )))
}

async fn load(state: &AppState, org_id: i64, name: &str) -> ApiResult<Role> {
    let path = ObjectPath::role(name).map_err(|_| missing(name))?;
    let body = state
        .store
        .object(org_id, &path)
        .await?
        .ok_or_else(|| missing(name))?;
    serde_json::from_str(&body).map_err(|e| ApiError::Internal(e.to_string()))
}

async fn show(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((org, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let access = super::access(&state, &actor, &org).await?;
    access.require_read()?;
    let path = ObjectPath::role(&name).map_err(|_| missing(&name))?;
    let body = state
        .store
        .object(access.org.id, &path)
        .await?
        .ok_or_else(|| missing(&name))?;
    Ok(super::ok(super::stored(&body)?))
}

async fn update(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((org, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let access = super::access(&state, &actor, &org).await?;
    access.require_object_write()?;
    let role = prepare(&body, Some(&name))?;
    let path = ObjectPath::role(&name)?;
    let json = to_json(&role)?;
    state
        .store
        .write_object(access.org.id, &path, &json, WriteMode::Update)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => missing(&name),
            other => other.into(),
        })?;
    Ok(super::ok(super::stored(&json)?))
}

async fn remove(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((org, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let access = super::access(&state, &actor, &org).await?;
    access.require_object_write()?;
    let path = ObjectPath::role(&name).map_err(|_| missing(&name))?;
    let body = state
        .store
        .delete_object(access.org.id, &path)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => missing(&name),
            other => other.into(),
        })?;
    Ok(super::ok(super::stored(&body)?))
}

async fn environments(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((org, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let access = super::access(&state, &actor, &org).await?;
    access.require_read()?;
    let role = load(&state, access.org.id, &name).await?;
    let mut envs = vec!["_default".to_owned()];
    envs.extend(role.env_run_lists.keys().cloned());
    Ok(super::ok(json!(envs)))
}

async fn environment_run_list(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((org, name, env)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let access = super::access(&state, &actor, &org).await?;
    access.require_read()?;
    let role = load(&state, access.org.id, &name).await?;
    let run_list = if env == "_default" {
        Some(role.run_list.clone())
    } else {
        role.env_run_lists.get(&env).cloned()
    };
    Ok(super::ok(
        json!({ "run_list": run_list.map_or(Value::Null, |l| json!(l)) }),
    ))
}
