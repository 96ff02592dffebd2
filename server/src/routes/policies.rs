//! `/policies` and `/policy_groups`: Policyfile policies, their immutable revisions, and the
//! revision of each policy a group is assigned, with Chef Infra Server's answers. A group
//! exists once a revision is assigned to it; deleting an assignment leaves the group, the
//! policy and the revision in place, as in Chef.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::policy_document;
use crate::auth::OrgAccess;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{Assignment, StoreError};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/policies", get(list_policies))
        .route("/policies/{name}", get(show_policy).delete(delete_policy))
        .route("/policies/{name}/revisions", post(create_revision))
        .route(
            "/policies/{name}/revisions/{revision}",
            get(show_revision).delete(delete_revision),
        )
        .route("/policy_groups", get(list_groups))
        .route(
            "/policy_groups/{group}",
            get(show_group).delete(delete_group),
        )
        .route(
            "/policy_groups/{group}/policies/{name}",
            get(show_assigned).put(assign).delete(unassign),
        )
}

fn missing_policy(name: &str) -> ApiError {
    ApiError::NotFound(format!("Cannot load policy {name}"))
}

fn missing_revision(name: &str, revision: &str) -> ApiError {
    ApiError::NotFound(format!("Cannot load policy {name} revision {revision}"))
}

fn missing_group(group: &str) -> ApiError {
    ApiError::NotFound(format!("policy_group '{group}' not found"))
}

fn missing_assignment(group: &str, name: &str) -> ApiError {
    ApiError::NotFound(format!("Cannot load policy {name} in policy group {group}"))
}

fn stored_document(body: &str) -> ApiResult<Map<String, Value>> {
    match super::stored(body)? {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::Internal("stored policy is not an object".into())),
    }
}

/// `{"REV": {}, …}`.
fn revision_set(revisions: &[String]) -> Value {
    Value::Object(revisions.iter().map(|r| (r.clone(), json!({}))).collect())
}

/// `{"revisions": {…}}`, or `{}` for a policy without revisions (as erchef answers).
fn policy_body(revisions: &[String]) -> Value {
    if revisions.is_empty() {
        json!({})
    } else {
        json!({ "revisions": revision_set(revisions) })
    }
}

/// `{"POLICY": {"revision_id": REV}, …}`.
fn assignment_set(assignments: &BTreeMap<String, String>) -> Value {
    Value::Object(
        assignments
            .iter()
            .map(|(policy, rev)| (policy.clone(), json!({ "revision_id": rev })))
            .collect(),
    )
}

async fn list_policies(
    State(state): State<AppState>,
    access: OrgAccess,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let base = super::org_url(&headers, org, "policies");
    let out: Map<String, Value> = state
        .store
        .policies(access.org.id)
        .await?
        .into_iter()
        .map(|(name, revisions)| {
            let body =
                json!({"uri": format!("{base}/{name}"), "revisions": revision_set(&revisions)});
            (name, body)
        })
        .collect();
    Ok(super::ok(Value::Object(out)))
}

async fn show_policy(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    access.require_read()?;
    let revisions = state
        .store
        .policy(access.org.id, &name)
        .await?
        .ok_or_else(|| missing_policy(&name))?;
    Ok(super::ok(policy_body(&revisions)))
}

async fn delete_policy(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    access.require_object_write()?;
    let revisions = state
        .store
        .delete_policy(access.org.id, &name)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => missing_policy(&name),
            other => other.into(),
        })?;
    Ok(super::ok(policy_body(&revisions)))
}

async fn create_revision(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_object_write()?;
    let doc = policy_document::check(&body, &name)?;
    state
        .store
        .create_policy_revision(access.org.id, &name, &doc.revision, &doc.stored())
        .await
        .map_err(|e| match e {
            StoreError::Conflict => ApiError::Conflict(format!(
                "Policy '{name}' with revision_id '{}' already exists.",
                doc.revision
            )),
            other => other.into(),
        })?;
    Ok(super::created_with(
        format!("{}/{name}", super::org_url(&headers, org, "policies")),
        Value::Object(doc.sent),
    ))
}

async fn show_revision(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name, revision)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    access.require_read()?;
    let stored = state
        .store
        .policy_revision(access.org.id, &name, &revision)
        .await?
        .ok_or_else(|| missing_revision(&name, &revision))?;
    let mut doc = stored_document(&stored.body)?;
    doc.insert("policy_group_list".into(), json!(stored.groups));
    Ok(super::ok(Value::Object(doc)))
}

async fn delete_revision(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name, revision)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    access.require_object_write()?;
    let body = state
        .store
        .delete_policy_revision(access.org.id, &name, &revision)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => missing_revision(&name, &revision),
            other => other.into(),
        })?;
    Ok(super::ok(Value::Object(stored_document(&body)?)))
}

async fn list_groups(
    State(state): State<AppState>,
    access: OrgAccess,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let base = super::org_url(&headers, org, "policy_groups");
    let out: Map<String, Value> = state
        .store
        .policy_groups(access.org.id)
        .await?
        .into_iter()
        .map(|(group, assignments)| {
            // A group without assignments is listed without `policies`, as erchef lists it.
            let mut body = json!({ "uri": format!("{base}/{group}") });
            if !assignments.is_empty() {
                body["policies"] = assignment_set(&assignments);
            }
            (group, body)
        })
        .collect();
    Ok(super::ok(Value::Object(out)))
}

fn group_body(headers: &HeaderMap, org: &str, group: &str, a: &BTreeMap<String, String>) -> Value {
    json!({
        "uri": format!("{}/{group}", super::org_url(headers, org, "policy_groups")),
        "policies": assignment_set(a),
    })
}

async fn show_group(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, group)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let assignments = state
        .store
        .policy_group(access.org.id, &group)
        .await?
        .ok_or_else(|| missing_group(&group))?;
    Ok(super::ok(group_body(&headers, org, &group, &assignments)))
}

async fn delete_group(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, group)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_object_write()?;
    let assignments = state
        .store
        .delete_policy_group(access.org.id, &group)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => missing_group(&group),
            other => other.into(),
        })?;
    Ok(super::ok(group_body(&headers, org, &group, &assignments)))
}

async fn show_assigned(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, group, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    access.require_read()?;
    let body = state
        .store
        .assigned_revision(access.org.id, &group, &name)
        .await?
        .ok_or_else(|| missing_assignment(&group, &name))?;
    Ok(super::ok(Value::Object(stored_document(&body)?)))
}

/// Assigns the revision in the body to the group (what `chef push GROUP` ends with), creating
/// the group, the policy and the revision as needed: 201 for a new assignment, 200 when the
/// group's revision of the policy is replaced. An existing revision is never changed.
async fn assign(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, group, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_object_write()?;
    let doc = policy_document::check(&body, &name)?;
    if !policy_document::name255(&group) {
        return Err(ApiError::BadRequest(format!(
            "Invalid policy group name '{group}': 1 to 255 letters, digits, '.', '_', ':' and '-'"
        )));
    }
    let outcome = state
        .store
        .assign_policy_revision(access.org.id, &group, &name, &doc.revision, &doc.stored())
        .await?;
    Ok(match outcome {
        Assignment::Created => super::created_with(
            format!("{}/{name}", super::org_url(&headers, org, "policies")),
            Value::Object(doc.sent),
        ),
        Assignment::Updated => super::respond(StatusCode::OK, Value::Object(doc.sent)),
    })
}

async fn unassign(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, group, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    access.require_object_write()?;
    let body = state
        .store
        .unassign_policy(access.org.id, &group, &name)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => missing_assignment(&group, &name),
            other => other.into(),
        })?;
    Ok(super::ok(Value::Object(stored_document(&body)?)))
}
