//! Roles and environments: Chef objects stored whole as JSON under `/COLLECTION/NAME`, with
//! the same list/create/show/update/delete handlers. Each type says how it is validated, what
//! Chef calls its errors, and which names exist without being stored (`_default`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use chef_sync_shared::{ObjectKind, ObjectPath, PathError};
use serde::Serialize;
use serde_json::Value;

use super::objects::{self, Messages};
use crate::auth::OrgAccess;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{StoreError, WriteMode};

/// A whole-JSON Chef object type.
pub(super) trait Document: Serialize + Send + Sync + Sized + 'static {
    /// URL collection, e.g. `roles`.
    const COLLECTION: &'static str;
    /// Store kind.
    const KIND: ObjectKind;
    /// The object's path, validating the name.
    fn path(name: &str) -> Result<ObjectPath, PathError>;
    /// Chef's messages for this type.
    fn messages(name: &str) -> Messages;
    /// Validates and normalises a body (`url_name` on update).
    fn prepare(body: &[u8], url_name: Option<&str>) -> ApiResult<Self>;
    /// The name in the body.
    fn name(&self) -> &str;
    /// A name that exists in every org without being stored, with its JSON.
    fn builtin() -> Option<(&'static str, Value)> {
        None
    }
    /// Whether a PUT whose body names another object renames it (Chef: environments); other
    /// types refuse the mismatch in `prepare`.
    fn renames() -> bool {
        false
    }
    /// The answer to writing the built-in object.
    fn builtin_is_fixed() -> ApiError {
        ApiError::MethodNotAllowed("This object cannot be modified.".into())
    }
}

/// The five routes of a document type.
pub(super) fn router<D: Document>() -> Router<AppState> {
    Router::new()
        .route(
            &format!("/{}", D::COLLECTION),
            get(list::<D>).post(create::<D>),
        )
        .route(
            &format!("/{}/{{name}}", D::COLLECTION),
            get(show::<D>).put(update::<D>).delete(remove::<D>),
        )
}

/// The stored path, or 404 for a name no object of the type can have.
pub(super) fn path_of<D: Document>(name: &str) -> ApiResult<ObjectPath> {
    D::path(name).map_err(|_| ApiError::NotFound(D::messages(name).missing))
}

fn is_builtin<D: Document>(name: &str) -> bool {
    D::builtin().is_some_and(|(n, _)| n == name)
}

async fn list<D: Document>(
    State(state): State<AppState>,
    access: OrgAccess,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let mut names = state
        .store
        .object_names(access.org.id, D::KIND, None)
        .await?;
    if let Some((name, _)) = D::builtin() {
        names.push(name.to_owned());
        names.sort();
    }
    Ok(super::ok(super::listing(
        &super::org_url(&headers, org, D::COLLECTION),
        &names,
    )))
}

async fn create<D: Document>(
    State(state): State<AppState>,
    access: OrgAccess,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_object_write()?;
    let doc = D::prepare(&body, None)?;
    let messages = D::messages(doc.name());
    if is_builtin::<D>(doc.name()) {
        return Err(ApiError::Conflict(messages.conflict));
    }
    let path = D::path(doc.name())?;
    objects::write(
        &state,
        access.org.id,
        &path,
        &doc,
        WriteMode::Create,
        &messages,
    )
    .await?;
    Ok(super::created(format!(
        "{}/{}",
        super::org_url(&headers, org, D::COLLECTION),
        doc.name()
    )))
}

/// The object's JSON (built-in or stored).
pub(super) async fn load<D: Document>(
    state: &AppState,
    org_id: i64,
    name: &str,
) -> ApiResult<Value> {
    if let Some((builtin, value)) = D::builtin()
        && builtin == name
    {
        return Ok(value);
    }
    objects::fetch(
        state,
        org_id,
        &path_of::<D>(name)?,
        &D::messages(name).missing,
    )
    .await
}

async fn show<D: Document>(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    access.require_read()?;
    Ok(super::ok(load::<D>(&state, access.org.id, &name).await?))
}

async fn update<D: Document>(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_object_write()?;
    if is_builtin::<D>(&name) {
        return Err(D::builtin_is_fixed());
    }
    let path = path_of::<D>(&name)?;
    let doc = D::prepare(&body, Some(&name))?;
    if D::renames() && doc.name() != name {
        return rename(&state, access.org.id, (&name, &path), &doc, &headers, org).await;
    }
    let (_, json) = objects::write(
        &state,
        access.org.id,
        &path,
        &doc,
        WriteMode::Update,
        &D::messages(&name),
    )
    .await?;
    Ok(super::ok(json))
}

/// A PUT naming another object: the object moves there (201 with its new `Location`), unless
/// that name is taken (409) or the object does not exist (404).
async fn rename<D: Document>(
    state: &AppState,
    org_id: i64,
    (from_name, from): (&str, &ObjectPath),
    doc: &D,
    headers: &HeaderMap,
    org: &str,
) -> ApiResult<Response> {
    let messages = D::messages(doc.name());
    let missing = D::messages(from_name).missing;
    if state.store.object(org_id, from).await?.is_none() {
        return Err(ApiError::NotFound(missing));
    }
    if is_builtin::<D>(doc.name()) {
        return Err(ApiError::Conflict(messages.conflict));
    }
    let to = D::path(doc.name())?;
    let json = serde_json::to_value(doc).map_err(|e| ApiError::Internal(e.to_string()))?;
    state
        .store
        .rename_object(org_id, from, &to, &json.to_string())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound(missing.clone()),
            other => messages.map(other),
        })?;
    Ok(super::created_with(
        format!(
            "{}/{}",
            super::org_url(headers, org, D::COLLECTION),
            doc.name()
        ),
        json,
    ))
}

async fn remove<D: Document>(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    access.require_object_write()?;
    if is_builtin::<D>(&name) {
        return Err(D::builtin_is_fixed());
    }
    let value = objects::remove(
        &state,
        access.org.id,
        &path_of::<D>(&name)?,
        &D::messages(&name).missing,
    )
    .await?;
    Ok(super::ok(value))
}
