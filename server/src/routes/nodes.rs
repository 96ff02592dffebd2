//! `/nodes`: the nodes of this server's chef-clients. Nodes are local: never in the change
//! log, and writable in replica orgs too, where the replicated types stay read-only. A node's
//! own client creates and saves it; org users and admins manage every node.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use chef_sync_shared::objects::{Node, normalize_run_list};
use serde_json::Value;

use super::objects::{check_class, reject_unknown_keys, settle_name};
use crate::auth::OrgAccess;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{StoreError, WriteMode};

/// Longest node, environment and policy name accepted.
const MAX_NAME: usize = 255;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/nodes", get(list).post(create))
        .route("/nodes/{name}", get(show).put(update).delete(remove))
}

fn missing(name: &str) -> ApiError {
    ApiError::NotFound(format!("node '{name}' not found"))
}

/// Chef's name rules: letters, digits, `_`, `-`, `.` (and `:` for nodes).
fn valid_name(name: &str, colon: bool) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') || (colon && c == ':')
        })
}

/// The keys a node body may have.
const NODE_KEYS: [&str; 11] = [
    "name",
    "chef_environment",
    "json_class",
    "chef_type",
    "normal",
    "default",
    "override",
    "automatic",
    "run_list",
    "policy_name",
    "policy_group",
];

/// Chef's checks of each field's JSON type, in its order and with its texts, before the body
/// is read as a node (whose own parse would only say which type it wanted).
fn check_types(body: &serde_json::Map<String, Value>) -> ApiResult<()> {
    if let Some(key) = body.keys().find(|k| !NODE_KEYS.contains(&k.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "Invalid key {key} in request body"
        )));
    }
    let invalid = |field: &str| ApiError::BadRequest(format!("Field '{field}' invalid"));
    for field in ["name", "chef_environment", "json_class", "chef_type"] {
        if body.get(field).is_some_and(|v| !v.is_string()) {
            return Err(invalid(field));
        }
    }
    for field in ["normal", "default", "override", "automatic"] {
        if body.get(field).is_some_and(|v| !v.is_object()) {
            return Err(ApiError::BadRequest(format!(
                "Field '{field}' is not a hash"
            )));
        }
    }
    let run_list_ok = match body.get("run_list") {
        None => true,
        Some(Value::Array(items)) => items.iter().all(Value::is_string),
        Some(_) => false,
    };
    if !run_list_ok {
        return Err(ApiError::BadRequest(
            "Field 'run_list' is not a valid run list".into(),
        ));
    }
    for field in ["policy_name", "policy_group"] {
        if body
            .get(field)
            .is_some_and(|v| !v.is_string() && !v.is_null())
        {
            return Err(invalid(field));
        }
    }
    Ok(())
}

/// Validates and normalises a node body as Chef does (`url_name` on update).
fn prepare(body: &[u8], url_name: Option<&str>) -> ApiResult<Node> {
    let value: Value = super::parse_json(body)?;
    let Value::Object(map) = &value else {
        return Err(ApiError::BadRequest("invalid JSON".into()));
    };
    check_types(map)?;
    let mut node: Node = serde_json::from_value(value)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))?;
    reject_unknown_keys(&node.extra)?;
    settle_name(&mut node.name, url_name, "Node")?;
    if !valid_name(&node.name, true) {
        return Err(ApiError::BadRequest("Field 'name' invalid".into()));
    }
    if !valid_name(&node.chef_environment, false) {
        return Err(ApiError::BadRequest(
            "Field 'chef_environment' invalid".into(),
        ));
    }
    check_class(&node.json_class, &node.chef_type, "Chef::Node", "node")?;
    for (field, value) in [
        ("policy_name", &node.policy_name),
        ("policy_group", &node.policy_group),
    ] {
        // Chef's policy names allow `:` as node names do.
        if let Some(value) = value
            && !valid_name(value, true)
        {
            return Err(ApiError::BadRequest(format!("Field '{field}' invalid")));
        }
    }
    node.run_list = normalize_run_list(&node.run_list)
        .map_err(|_| ApiError::BadRequest("Field 'run_list' is not a valid run list".into()))?;
    Ok(node)
}

fn encode(node: &Node) -> ApiResult<String> {
    serde_json::to_string(node).map_err(|e| ApiError::Internal(e.to_string()))
}

async fn list(
    State(state): State<AppState>,
    access: OrgAccess,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let names = state.store.node_names(access.org.id).await?;
    Ok(super::ok(super::listing(
        &super::org_url(&headers, org, "nodes"),
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
    access.require_node_create()?;
    let node = prepare(&body, None)?;
    state
        .store
        .write_node(
            access.org.id,
            &node.name,
            &encode(&node)?,
            WriteMode::Create,
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict => ApiError::Conflict("Node already exists".into()),
            other => other.into(),
        })?;
    Ok(super::created(format!(
        "{}/{}",
        super::org_url(&headers, org, "nodes"),
        node.name
    )))
}

async fn show(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    access.require_read()?;
    let body = state
        .store
        .node(access.org.id, &name)
        .await?
        .ok_or_else(|| missing(&name))?;
    Ok(super::ok(super::stored(&body)?))
}

async fn update(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    access.require_node_change(&name)?;
    let node = prepare(&body, Some(&name))?;
    let text = encode(&node)?;
    state
        .store
        .write_node(access.org.id, &name, &text, WriteMode::Update)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => missing(&name),
            other => other.into(),
        })?;
    Ok(super::ok(super::stored(&text)?))
}

async fn remove(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    access.require_node_change(&name)?;
    let body = state
        .store
        .delete_node(access.org.id, &name)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => missing(&name),
            other => other.into(),
        })?;
    let node: Value = super::stored(&body)?;
    Ok(super::ok(node))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chef_node_validation() {
        let ok = prepare(
            br#"{"name": "web-1.example.com", "run_list": ["nginx"]}"#,
            None,
        )
        .unwrap();
        assert_eq!(ok.run_list, ["recipe[nginx]"]);
        assert_eq!(ok.chef_environment, "_default");
        for (body, url, why) in [
            (r#"{}"#, None, "Field 'name' missing"),
            (r#"{"name": "a b"}"#, None, "Field 'name' invalid"),
            (
                r#"{"name": "a", "chef_environment": "x y"}"#,
                None,
                "Field 'chef_environment' invalid",
            ),
            (
                r#"{"name": "a", "json_class": "Chef::Role"}"#,
                None,
                "Field 'json_class' invalid",
            ),
            (r#"{"name": "a", "colour": 1}"#, None, "Invalid key colour"),
            (
                r#"{"name": "a", "run_list": ["role[]"]}"#,
                None,
                "Field 'run_list'",
            ),
            (
                r#"{"name": "a", "normal": []}"#,
                None,
                "Field 'normal' is not a hash",
            ),
            (r#"{"name": "b"}"#, Some("a"), "Node name mismatch."),
            (
                r#"{"name": "a", "policy_name": "p q"}"#,
                None,
                "Field 'policy_name' invalid",
            ),
        ] {
            let err = prepare(body.as_bytes(), url).unwrap_err().to_string();
            assert!(err.contains(why), "{body}: {err}");
        }
        let named = prepare(br#"{"automatic": {"platform": "ubuntu"}}"#, Some("a")).unwrap();
        assert_eq!(named.name, "a");
    }
}
