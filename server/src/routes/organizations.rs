//! `/organizations`, one org, and its user association.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts;
use crate::app::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/organizations", get(list).post(create))
}

pub(super) fn org_router() -> Router<AppState> {
    Router::new()
        .route("/", get(show))
        .route("/users", get(list_users).post(add_user))
}

async fn list(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if !actor.is_superuser() {
        return Err(ApiError::Forbidden(format!(
            "'{}' is not authorized to list organizations",
            actor.name
        )));
    }
    let names = state.store.org_names().await?;
    Ok(super::ok(super::listing(
        &format!("{}/organizations", super::base_url(&headers)),
        &names,
    )))
}

#[derive(Deserialize)]
struct NewOrg {
    name: String,
    full_name: String,
}

async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    if !actor.is_superuser() {
        return Err(ApiError::Forbidden(format!(
            "'{}' is not authorized to create organizations",
            actor.name
        )));
    }
    let new: NewOrg = super::parse_json(&body)?;
    let (org, private_key) = accounts::create_org(&state.store, &new.name, &new.full_name).await?;
    let uri = format!("{}/organizations/{}", super::base_url(&headers), org.name);
    Ok(super::created_with(
        uri.clone(),
        json!({"clientname": format!("{}-validator", org.name), "private_key": private_key, "uri": uri}),
    ))
}

async fn show(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(org): Path<String>,
) -> ApiResult<Response> {
    let access = super::access(&state, &actor, &org).await?;
    Ok(super::ok(json!({
        "name": access.org.name, "full_name": access.org.full_name, "guid": access.org.guid,
    })))
}

async fn list_users(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(org): Path<String>,
) -> ApiResult<Response> {
    let access = super::access(&state, &actor, &org).await?;
    access.require_read()?;
    let names = state.store.org_usernames(access.org.id).await?;
    let list: Vec<Value> = names
        .into_iter()
        .map(|u| json!({"user": {"username": u}}))
        .collect();
    Ok(super::ok(Value::Array(list)))
}

#[derive(Deserialize)]
struct Association {
    username: String,
}

async fn add_user(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let access = super::access(&state, &actor, &org).await?;
    access.require_admin()?;
    let req: Association = super::parse_json(&body)?;
    let user = state
        .store
        .user(&req.username)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Could not find user {}", req.username)))?;
    if state.store.is_org_user(access.org.id, user.id).await? {
        return Err(ApiError::Conflict("The association already exists.".into()));
    }
    accounts::associate(&state.store, &access.org, &user, false).await?;
    let uri = format!(
        "{}/organizations/{}/users/{}",
        super::base_url(&headers),
        org,
        user.username
    );
    Ok(super::created(uri))
}
