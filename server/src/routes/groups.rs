//! `/groups`: the org's groups. `admins` grants every write; `users` (the org's users)
//! grants writes to the replicated types; `clients` holds the org's clients. Admins change
//! membership; every org member may read.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use chef_sync_shared::path::{NameKind, validate_name};
use serde_json::{Value, json};

use crate::accounts::GROUPS;
use crate::auth::OrgAccess;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{GroupMembers, StoreError};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/groups", get(list).post(create))
        .route("/groups/{name}", get(show).put(update).delete(remove))
}

fn missing(name: &str) -> ApiError {
    ApiError::NotFound(format!("Cannot load group {name}"))
}

async fn existing(state: &AppState, access: &OrgAccess, name: &str) -> ApiResult<()> {
    if state.store.group_exists(access.org.id, name).await? {
        Ok(())
    } else {
        Err(missing(name))
    }
}

fn group_json(org: &str, name: &str, members: &GroupMembers) -> Value {
    let mut actors = members.users.clone();
    actors.extend(members.clients.iter().cloned());
    json!({
        "actors": actors, "users": members.users, "clients": members.clients,
        "groups": members.groups, "orgname": org, "groupname": name, "name": name,
    })
}

/// Names of a PUT's `actors` entry, by kind.
fn names(actors: &Value, kind: &str) -> ApiResult<Vec<String>> {
    match actors.get(kind) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    ApiError::BadRequest(format!("Field 'actors.{kind}' must list names"))
                })
            })
            .collect(),
        Some(_) => Err(ApiError::BadRequest(format!(
            "Field 'actors.{kind}' must be a list"
        ))),
    }
}

async fn list(
    State(state): State<AppState>,
    access: OrgAccess,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let names = state.store.group_names(access.org.id).await?;
    Ok(super::ok(super::listing(
        &super::org_url(&headers, org, "groups"),
        &names,
    )))
}

async fn create(
    State(state): State<AppState>,
    access: OrgAccess,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_admin()?;
    let req: Value = super::parse_json(&body)?;
    let name = ["groupname", "id", "name"]
        .iter()
        .find_map(|k| req.get(*k).and_then(Value::as_str))
        .ok_or_else(|| ApiError::BadRequest("Field 'groupname' missing".into()))?;
    validate_name(NameKind::User, name)?;
    state
        .store
        .create_group(access.org.id, name)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => ApiError::Conflict("Group already exists".into()),
            other => other.into(),
        })?;
    Ok(super::created(format!(
        "{}/{name}",
        super::org_url(&headers, org, "groups")
    )))
}

async fn show(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    existing(&state, &access, &name).await?;
    let members = state.store.group_members(access.org.id, &name).await?;
    Ok(super::ok(group_json(org, &name, &members)))
}

async fn update(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_admin()?;
    existing(&state, &access, &name).await?;
    let req: Value = super::parse_json(&body)?;
    if let Some(new_name) = req.get("groupname").and_then(Value::as_str)
        && new_name != name
    {
        return Err(ApiError::BadRequest(
            "Renaming a group is not supported".into(),
        ));
    }
    let actors = req
        .get("actors")
        .ok_or_else(|| ApiError::BadRequest("Field 'actors' missing".into()))?;
    let members = GroupMembers {
        users: names(actors, "users")?,
        clients: names(actors, "clients")?,
        groups: names(actors, "groups")?,
    };
    // As Chef does, names that cannot be members (a user outside the org, a client of
    // another org or of none, an unknown group or the group itself) are left out silently:
    // knife and pedant send a group's `actors` back as its `users`, clients included.
    let mut members = members;
    let mut users = Vec::new();
    for user in members.users {
        if let Some(row) = state.store.user(&user).await?
            && state.store.is_org_user(access.org.id, row.id).await?
        {
            users.push(user);
        }
    }
    let mut clients = Vec::new();
    for client in members.clients {
        if state.store.client(access.org.id, &client).await?.is_some() {
            clients.push(client);
        }
    }
    let mut groups = Vec::new();
    for group in members.groups {
        if group != name && state.store.group_exists(access.org.id, &group).await? {
            groups.push(group);
        }
    }
    members.users = users;
    members.clients = clients;
    members.groups = groups;
    state
        .store
        .set_group_members(access.org.id, &name, &members)
        .await?;
    let stored = state.store.group_members(access.org.id, &name).await?;
    Ok(super::ok(group_json(org, &name, &stored)))
}

async fn remove(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_admin()?;
    if GROUPS.contains(&name.as_str()) {
        return Err(ApiError::Forbidden(format!(
            "The built-in group '{name}' cannot be deleted."
        )));
    }
    existing(&state, &access, &name).await?;
    let members = state.store.group_members(access.org.id, &name).await?;
    state
        .store
        .delete_group(access.org.id, &name)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => missing(&name),
            other => other.into(),
        })?;
    Ok(super::ok(group_json(org, &name, &members)))
}
