//! `/organizations`, one org, and its user association.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::RequestOrg;
use crate::accounts;
use crate::auth::{Actor, OrgAccess};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::UserRow;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/organizations", get(list).post(create))
}

pub(super) fn org_router() -> Router<AppState> {
    Router::new()
        .route("/", get(show).put(update).delete(remove))
        .route("/users", get(list_users).post(add_user))
        .route("/users/{user}", get(show_user).delete(remove_user))
}

async fn list(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    actor.require_superuser("list organizations")?;
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
    actor.require_superuser("create organizations")?;
    let new: NewOrg = super::parse_json(&body)?;
    let (org, private_key) = accounts::create_org(&state.store, &new.name, &new.full_name).await?;
    let uri = format!("{}/organizations/{}", super::base_url(&headers), org.name);
    Ok(super::created_with(
        uri.clone(),
        json!({"clientname": format!("{}-validator", org.name), "private_key": private_key, "uri": uri}),
    ))
}

async fn show(access: OrgAccess) -> ApiResult<Response> {
    Ok(super::ok(org_json(&access.org)))
}

fn org_json(org: &crate::store::OrgRow) -> Value {
    json!({
        "name": org.name, "full_name": org.full_name, "guid": org.guid,
        "replica": org.replica, "sync_user": org.sync_user,
    })
}

/// `DELETE /organizations/ORG` (superuser): the org with everything in it. 200 with the org
/// as it was.
/// Superuser only, checked before the org is looked at (so nobody else learns whether it
/// exists): these two handlers resolve the org themselves instead of taking [`OrgAccess`].
async fn remove(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Extension(RequestOrg(org)): Extension<RequestOrg>,
) -> ApiResult<Response> {
    actor.require_superuser("delete organizations")?;
    let access = OrgAccess::resolve(&state, &actor, &org).await?;
    let shown = org_json(&access.org);
    state.store.delete_org(&access.org).await?;
    Ok(super::ok(shown))
}

/// `PUT /organizations/ORG` (superuser): `full_name`, and chef-sync's `replica` and
/// `sync_user`, which make the org a read-only replica written only by that user.
async fn update(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Extension(RequestOrg(org)): Extension<RequestOrg>,
    body: Bytes,
) -> ApiResult<Response> {
    actor.require_superuser("change organizations")?;
    let access = OrgAccess::resolve(&state, &actor, &org).await?;
    let req: Value = super::parse_json(&body)?;
    if let Some(name) = req.get("name").and_then(Value::as_str)
        && name != org
    {
        return Err(ApiError::BadRequest(
            "Renaming an organization is not supported".into(),
        ));
    }
    if let Some(full_name) = req.get("full_name") {
        let full_name = full_name
            .as_str()
            .filter(|f| !f.trim().is_empty() && f.len() <= 1023)
            .ok_or_else(|| ApiError::BadRequest("Field 'full_name' invalid".into()))?;
        state.store.set_full_name(access.org.id, full_name).await?;
    }
    let replica = match req.get("replica") {
        None => access.org.replica,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "Field 'replica' must be true or false".into(),
            ));
        }
    };
    let sync_user = match req.get("sync_user") {
        None => access.org.sync_user.clone(),
        Some(Value::Null) => None,
        Some(Value::String(u)) => {
            let user =
                state.store.user(u).await?.ok_or_else(|| {
                    ApiError::BadRequest(format!("sync_user '{u}' does not exist"))
                })?;
            if !state.store.is_org_user(access.org.id, user.id).await? {
                return Err(ApiError::BadRequest(format!(
                    "sync_user '{u}' is not a member of organization '{org}'"
                )));
            }
            Some(u.clone())
        }
        Some(_) => return Err(ApiError::BadRequest("Field 'sync_user' invalid".into())),
    };
    if replica && sync_user.is_none() {
        return Err(ApiError::BadRequest(
            "a replica organization needs a sync_user".into(),
        ));
    }
    state
        .store
        .set_replica(access.org.id, replica, sync_user.as_deref())
        .await?;
    let updated = state
        .store
        .org(&org)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("organization '{org}' does not exist.")))?;
    Ok(super::ok(org_json(&updated)))
}

async fn list_users(State(state): State<AppState>, access: OrgAccess) -> ApiResult<Response> {
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
    access: OrgAccess,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
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

async fn member(state: &AppState, org_id: i64, org: &str, name: &str) -> ApiResult<UserRow> {
    let missing = || ApiError::NotFound(format!("Cannot find a user {name} in organization {org}"));
    let user = state.store.user(name).await?.ok_or_else(missing)?;
    if !state.store.is_org_user(org_id, user.id).await? {
        return Err(missing());
    }
    Ok(user)
}

async fn show_user(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let user = member(&state, access.org.id, org, &name).await?;
    Ok(super::ok(super::stored(&user.body)?))
}

async fn remove_user(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_admin()?;
    let user = member(&state, access.org.id, org, &name).await?;
    state.store.remove_org_user(access.org.id, &user).await?;
    Ok(super::ok(json!({"response": "ok"})))
}
