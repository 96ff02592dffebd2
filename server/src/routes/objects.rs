//! What every replicated-object route shares: reading, writing and deleting one stored object
//! with Chef's messages, and the strict key check Chef applies to roles and environments.

use chef_sync_shared::ObjectPath;
use chef_sync_shared::objects::JsonMap;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{StoreError, WriteMode, WriteOutcome};

/// Chef's wording for one object type's failures.
pub(super) struct Messages {
    /// 409 on create.
    pub conflict: String,
    /// 404.
    pub missing: String,
}

impl Messages {
    pub(super) fn map(&self, e: StoreError) -> ApiError {
        match e {
            StoreError::Conflict => ApiError::Conflict(self.conflict.clone()),
            StoreError::NotFound | StoreError::ParentMissing => {
                ApiError::NotFound(self.missing.clone())
            }
            other => other.into(),
        }
    }
}

/// The stored JSON of `path`, or 404 with `missing`.
pub(super) async fn fetch(
    state: &AppState,
    org_id: i64,
    path: &ObjectPath,
    missing: &str,
) -> ApiResult<Value> {
    let body = state
        .store
        .object(org_id, path)
        .await?
        .ok_or_else(|| ApiError::NotFound(missing.to_owned()))?;
    super::stored(&body)
}

/// Serialises `value` and writes it; identical content is accepted without a change.
pub(super) async fn write(
    state: &AppState,
    org_id: i64,
    path: &ObjectPath,
    value: &impl serde::Serialize,
    mode: WriteMode,
    messages: &Messages,
) -> ApiResult<(WriteOutcome, Value)> {
    let json = serde_json::to_value(value).map_err(|e| ApiError::Internal(e.to_string()))?;
    let outcome = state
        .store
        .write_object(org_id, path, &json.to_string(), mode)
        .await
        .map_err(|e| messages.map(e))?;
    Ok((outcome, json))
}

/// Deletes `path`, returning its last JSON.
pub(super) async fn remove(
    state: &AppState,
    org_id: i64,
    path: &ObjectPath,
    missing: &str,
) -> ApiResult<Value> {
    let body = state
        .store
        .delete_object(org_id, path)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound(missing.to_owned()),
            other => other.into(),
        })?;
    super::stored(&body)
}

/// Chef accepts only the documented keys of roles and environments.
pub(super) fn reject_unknown_keys(extra: &JsonMap) -> ApiResult<()> {
    match extra.keys().next() {
        Some(key) => Err(ApiError::BadRequest(format!(
            "Invalid key {key} in request body"
        ))),
        None => Ok(()),
    }
}

/// A role or environment body as JSON; on update (`url_name`) an absent `name` is the
/// URL's and a different one is "Role name mismatch." (erchef checks this before the rules).
pub(super) fn named_body(body: &[u8], url_name: Option<&str>, what: &str) -> ApiResult<Value> {
    let mut value: Value = super::parse_json(body)?;
    if let (Some(url_name), Some(map)) = (url_name, value.as_object_mut()) {
        match map.get("name") {
            None => {
                map.insert("name".into(), Value::String(url_name.to_owned()));
            }
            Some(Value::String(n)) if n == url_name => {}
            Some(_) => return Err(ApiError::BadRequest(format!("{what} name mismatch."))),
        }
    }
    Ok(value)
}

/// The body's `name` (filled in from the URL when absent) must match the URL.
pub(super) fn settle_name(
    body_name: &mut String,
    url_name: Option<&str>,
    what: &str,
) -> ApiResult<()> {
    match url_name {
        Some(n) if body_name.is_empty() => *body_name = n.to_owned(),
        Some(n) if body_name != n => {
            return Err(ApiError::BadRequest(format!("{what} name mismatch.")));
        }
        _ => {}
    }
    if body_name.is_empty() {
        return Err(ApiError::BadRequest("Field 'name' missing".into()));
    }
    Ok(())
}

/// `json_class` and `chef_type` must be Chef's values for the type.
pub(super) fn check_class(
    json_class: &str,
    chef_type: &str,
    class: &str,
    kind: &str,
) -> ApiResult<()> {
    if json_class != class {
        return Err(ApiError::BadRequest("Field 'json_class' invalid".into()));
    }
    if chef_type != kind {
        return Err(ApiError::BadRequest("Field 'chef_type' invalid".into()));
    }
    Ok(())
}

/// Write outcome → 201 (created) or 200.
pub(super) fn is_new(outcome: WriteOutcome) -> bool {
    matches!(outcome, WriteOutcome::Created(_))
}
