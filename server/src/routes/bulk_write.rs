//! `POST /organizations/ORG/_bulk_write`: many creates, updates and deletes of one org's
//! replicated objects (roles, environments, data bags and items, cookbook manifests whose
//! files are already uploaded) in one request and one transaction, each with its own feed
//! entry and its own result. Each item is checked exactly as its own route checks it, and an
//! item that fails is reported while the others are applied (like CouchDB's `_bulk_docs`).
//! chef-syncd uses it to write into a replica that is a chef-sync-server.

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::response::Response;
use axum::routing::post;
use axum::{Router, http::StatusCode};
use chef_sync_shared::ObjectPath;
use chef_sync_shared::objects::{DataBag, Environment, Role};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::documents::Document;
use super::{cookbook_manifest, cookbooks, data};
use crate::api_version::ApiVersion;
use crate::auth::OrgAccess;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{BatchItem, BatchOp, ItemOutcome, MakeBody, StoreError, WriteOutcome};

/// Most items one request carries.
pub const MAX_ITEMS: usize = 1000;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/_bulk_write", post(bulk_write))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    items: Vec<Item>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    action: String,
    path: String,
    #[serde(default)]
    document: Option<Value>,
}

/// An item checked and ready for the store, or the answer it already has.
enum Checked {
    Ready(BatchItem, Messages),
    Failed(ApiError),
}

/// How an item's store-level refusals are worded: as its own route words them.
struct Messages {
    conflict: String,
    missing: String,
    parent_missing: Option<ApiError>,
}

async fn bulk_write(
    State(state): State<AppState>,
    access: OrgAccess,
    Extension(api): Extension<ApiVersion>,
    body: Bytes,
) -> ApiResult<Response> {
    access.require_object_write()?;
    let request: Request = super::parse_json(&body)?;
    if request.items.len() > MAX_ITEMS {
        return Err(ApiError::BadRequest(format!(
            "a bulk write carries at most {MAX_ITEMS} items, not {}",
            request.items.len()
        )));
    }
    let paths: Vec<String> = request.items.iter().map(|i| i.path.clone()).collect();
    let checked: Vec<Checked> = request
        .items
        .into_iter()
        .map(|item| check(item, api))
        .collect();
    let mut answers: Vec<Option<Map<String, Value>>> = Vec::with_capacity(checked.len());
    let mut batch = Vec::new();
    let mut wording = Vec::new();
    for c in checked {
        match c {
            Checked::Ready(item, messages) => {
                batch.push(item);
                wording.push(messages);
                answers.push(None);
            }
            Checked::Failed(e) => answers.push(Some(failure(&e))),
        }
    }
    let mut applied = state
        .store
        .apply_batch(access.org.id, batch)
        .await?
        .into_iter()
        .zip(wording);
    let results: Vec<Value> = answers
        .into_iter()
        .zip(paths)
        .map(|(answer, path)| {
            let mut result = answer.unwrap_or_else(|| match applied.next() {
                Some((Ok(outcome), _)) => success(outcome),
                Some((Err(e), messages)) => failure(&messages.map(e)),
                None => failure(&ApiError::Internal("bulk result missing".into())),
            });
            result.insert("path".into(), Value::String(path));
            Value::Object(result)
        })
        .collect();
    Ok(super::ok(json!({ "results": results })))
}

fn success(outcome: ItemOutcome) -> Map<String, Value> {
    let (status, name) = match outcome {
        ItemOutcome::Written(WriteOutcome::Created(_)) => (StatusCode::CREATED, "created"),
        ItemOutcome::Written(WriteOutcome::Updated(_)) => (StatusCode::OK, "updated"),
        ItemOutcome::Written(WriteOutcome::Unchanged) => (StatusCode::OK, "unchanged"),
        ItemOutcome::Deleted(_) => (StatusCode::OK, "deleted"),
        ItemOutcome::Absent => (StatusCode::OK, "absent"),
    };
    let mut m = Map::new();
    m.insert("status".into(), json!(status.as_u16()));
    m.insert("outcome".into(), json!(name));
    m
}

fn failure(e: &ApiError) -> Map<String, Value> {
    let message = match e {
        ApiError::Internal(detail) => {
            tracing::error!(error = %detail, "bulk write item failed");
            "internal server error".to_owned()
        }
        other => other.to_string(),
    };
    let mut m = Map::new();
    m.insert("status".into(), json!(e.status().as_u16()));
    m.insert("outcome".into(), json!("failed"));
    m.insert("error".into(), json!([message]));
    m
}

impl Messages {
    fn of(conflict: String, missing: String) -> Messages {
        Messages {
            conflict,
            missing,
            parent_missing: None,
        }
    }

    fn map(self, e: StoreError) -> ApiError {
        match e {
            StoreError::ParentMissing => self
                .parent_missing
                .unwrap_or(ApiError::NotFound(self.missing)),
            other => super::objects::Messages {
                conflict: self.conflict,
                missing: self.missing,
            }
            .map(other),
        }
    }
}

fn check(item: Item, api: ApiVersion) -> Checked {
    match prepare(item, api) {
        Ok((batch, messages)) => Checked::Ready(batch, messages),
        Err(e) => Checked::Failed(e),
    }
}

/// The item as its own route would store it.
fn prepare(item: Item, api: ApiVersion) -> ApiResult<(BatchItem, Messages)> {
    let path: ObjectPath = item
        .path
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("invalid path '{}': {e}", item.path)))?;
    if path.kind().is_policyfile() {
        return Err(ApiError::BadRequest(format!(
            "{path}: Policyfile objects are written through their own routes"
        )));
    }
    if let ObjectPath::Environment { name } = &path
        && name == Environment::DEFAULT
    {
        return Err(Environment::builtin_is_fixed());
    }
    let messages = messages(&path);
    let op = match (item.action.as_str(), item.document) {
        ("delete", None) => BatchOp::Delete,
        ("delete", Some(_)) => {
            return Err(ApiError::BadRequest(format!(
                "{path}: a delete carries no document"
            )));
        }
        ("write", Some(document)) => BatchOp::Write(make_body(&path, &item.path, document, api)?),
        ("write", None) => {
            return Err(ApiError::BadRequest(format!(
                "{path}: a write carries its document"
            )));
        }
        (other, _) => {
            return Err(ApiError::BadRequest(format!(
                "{path}: unknown action '{other}': use write or delete"
            )));
        }
    };
    Ok((BatchItem { path, op }, messages))
}

fn messages(path: &ObjectPath) -> Messages {
    match path {
        ObjectPath::Role { name } => {
            let m = Role::messages(name);
            Messages::of(m.conflict, m.missing)
        }
        ObjectPath::Environment { name } => {
            let m = Environment::messages(name);
            Messages::of(m.conflict, m.missing)
        }
        ObjectPath::DataBag { bag } => {
            let m = data::bag_messages(bag);
            Messages::of(m.conflict, m.missing)
        }
        ObjectPath::DataBagItem { bag, item } => {
            let m = data::item_messages(bag, item);
            Messages {
                parent_missing: Some(data::no_such_bag(bag)),
                ..Messages::of(m.conflict, m.missing)
            }
        }
        ObjectPath::CookbookVersion { cookbook, version } => {
            let version = version.to_string();
            Messages::of(
                cookbooks::frozen_message(cookbook, &version),
                cookbooks::missing_version(cookbook, &version).to_string(),
            )
        }
        other => Messages::of("already exists".into(), format!("{other} not found")),
    }
}

/// Checks the document as the object's PUT route does and returns the body to store.
fn make_body(
    path: &ObjectPath,
    raw: &str,
    document: Value,
    api: ApiVersion,
) -> ApiResult<MakeBody> {
    let bytes = serde_json::to_vec(&document).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let body = match path {
        ObjectPath::Role { name } => serialized(&Role::prepare(&bytes, Some(name))?)?,
        ObjectPath::Environment { name } => serialized(&Environment::prepare(&bytes, Some(name))?)?,
        ObjectPath::DataBag { bag } => {
            if document
                .get("name")
                .is_some_and(|n| n.as_str() != Some(bag))
            {
                return Err(ApiError::BadRequest("DataBag name mismatch.".into()));
            }
            serialized(&DataBag::new(bag))?
        }
        ObjectPath::DataBagItem { item, .. } => {
            let parsed = data::parse_item(&bytes, Some(item))?;
            Value::Object(parsed.raw().clone()).to_string()
        }
        ObjectPath::CookbookVersion { cookbook, .. } => {
            // The version as the primary's URL wrote it ("1.0" for 1.0.0): Chef checks the
            // manifest's own version against it.
            let written = raw.rsplit('/').next().unwrap_or_default().to_owned();
            if cookbook_manifest::put_path(cookbook, &written)? != *path {
                return Err(ApiError::BadRequest(format!("invalid path '{raw}'")));
            }
            let mut stored = cookbook_manifest::prepare(&bytes, cookbook, &written, api)?;
            let cookbook = cookbook.clone();
            return Ok(Box::new(move |existing| {
                cookbooks::stored_form(existing, &mut stored, true, &cookbook, &written)
            }));
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "{other}: not a replicated document"
            )));
        }
    };
    Ok(Box::new(move |_| Ok(body)))
}

fn serialized(value: &impl serde::Serialize) -> ApiResult<String> {
    serde_json::to_string(value).map_err(|e| ApiError::Internal(e.to_string()))
}
