//! `/cookbooks` and `/universe`. Manifests are stored in the API v2 `all_files` form and
//! served in the form of the request's API version (v0/v1 segments, v2 `all_files`), with a
//! fresh pre-signed download URL on every file.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use chef_sync_shared::ObjectPath;
use chef_sync_shared::objects::{CookbookFile, CookbookFiles, CookbookVersion};
use chef_sync_shared::path::{NameKind, validate_name};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::cookbook_manifest;
use super::objects::Messages;
use crate::api_version::ApiVersion;
use crate::auth::OrgAccess;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{CookbookVersionRow, StoreError, WriteMode};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/cookbooks", get(list))
        .route("/cookbooks/_latest", get(latest))
        .route("/cookbooks/_recipes", get(recipes))
        .route("/cookbooks/{name}", get(show_cookbook))
        .route(
            "/cookbooks/{name}/{version}",
            get(show).put(upsert).delete(remove),
        )
        .route("/universe", get(universe))
}

pub(super) fn missing_version(name: &str, version: &str) -> ApiError {
    ApiError::NotFound(format!(
        "Cannot find a cookbook named {name} with version {version}"
    ))
}

fn missing_cookbook(name: &str) -> ApiError {
    ApiError::NotFound(format!("Cannot find a cookbook named {name}"))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

pub(super) fn parse_stored(body: &str) -> ApiResult<CookbookVersion> {
    serde_json::from_str(body).map_err(internal)
}

/// The manifest in the request's API form, without URLs. Chef stores a manifest's
/// attributes, dependencies and long description apart from the rest of its metadata and
/// always answers them, empty when the upload had none.
fn in_form(cb: &CookbookVersion, api: ApiVersion) -> CookbookVersion {
    let mut out = if api.0 >= 2 {
        cb.to_all_files()
    } else {
        cb.to_segments()
    };
    for (key, empty) in [
        ("attributes", json!({})),
        ("dependencies", json!({})),
        ("long_description", json!("")),
    ] {
        out.metadata.entry(key).or_insert(empty);
    }
    out
}

fn files_mut(cb: &mut CookbookVersion) -> Vec<&mut CookbookFile> {
    match &mut cb.files {
        CookbookFiles::AllFiles(files) => files.iter_mut().collect(),
        CookbookFiles::Segments(segments) => segments.values_mut().flatten().collect(),
    }
}

/// The manifest as a GET answers it: request form, each file with a download URL.
pub(super) fn for_download(
    state: &AppState,
    cb: &CookbookVersion,
    api: ApiVersion,
    base: &str,
    org: &str,
) -> ApiResult<Value> {
    let mut out = in_form(cb, api);
    let now = chrono::Utc::now().timestamp();
    for file in files_mut(&mut out) {
        let path = super::file_store::download_path(org, &file.checksum);
        file.url = Some(format!("{base}{}", state.urls.sign("GET", &path, now)));
    }
    serde_json::to_value(out).map_err(internal)
}

#[derive(Debug, Deserialize)]
struct ListParams {
    num_versions: Option<String>,
}

/// `num_versions`: a count or `all`.
pub(super) fn version_count(raw: Option<&str>, default: usize) -> ApiResult<usize> {
    match raw {
        None => Ok(default),
        Some("all") => Ok(usize::MAX),
        Some(n) => n.parse().map_err(|_| {
            ApiError::BadRequest(
                "You have requested an invalid number of versions (x >= 0 || 'all')".into(),
            )
        }),
    }
}

/// `{"cb": {"url", "versions": [{"url", "version"}]}}`, newest first.
pub(super) fn index(rows: &[CookbookVersionRow], base: &str, per_cookbook: usize) -> Value {
    let mut out = Map::new();
    for row in rows {
        let entry = out
            .entry(row.cookbook.clone())
            .or_insert_with(|| json!({"url": format!("{base}/{}", row.cookbook), "versions": []}));
        if let Some(versions) = entry["versions"].as_array_mut()
            && versions.len() < per_cookbook
        {
            versions.push(json!({
                "url": format!("{base}/{}/{}", row.cookbook, row.version),
                "version": row.version,
            }));
        }
    }
    Value::Object(out)
}

async fn list(
    State(state): State<AppState>,
    access: OrgAccess,
    Query(params): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let count = version_count(params.num_versions.as_deref(), 1)?;
    let rows = state
        .store
        .cookbook_versions(access.org.id, None, false)
        .await?;
    Ok(super::ok(index(
        &rows,
        &super::org_url(&headers, org, "cookbooks"),
        count,
    )))
}

async fn show_cookbook(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name)): Path<(String, String)>,
    Query(params): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let count = version_count(params.num_versions.as_deref(), usize::MAX)?;
    let rows = state
        .store
        .cookbook_versions(access.org.id, Some(&name), false)
        .await?;
    if rows.is_empty() {
        return Err(missing_cookbook(&name));
    }
    Ok(super::ok(index(
        &rows,
        &super::org_url(&headers, org, "cookbooks"),
        count,
    )))
}

async fn latest(
    State(state): State<AppState>,
    access: OrgAccess,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let rows = state
        .store
        .cookbook_versions(access.org.id, None, false)
        .await?;
    let base = super::org_url(&headers, org, "cookbooks");
    let mut out = Map::new();
    for row in rows {
        // Rows come newest first within each cookbook.
        out.entry(row.cookbook.clone())
            .or_insert_with(|| json!(format!("{base}/{}/{}", row.cookbook, row.version)));
    }
    Ok(super::ok(Value::Object(out)))
}

/// The recipes of a cookbook version as Chef lists them: each file of the `recipes` segment,
/// its base name without `.rb`, `default` as the cookbook's own name, others as `cb::name`.
pub(super) fn recipe_names(cb: &CookbookVersion) -> Vec<String> {
    let segments = cb.to_segments();
    let CookbookFiles::Segments(segments) = &segments.files else {
        return Vec::new();
    };
    segments
        .get("recipes")
        .into_iter()
        .flatten()
        .map(|file| {
            let base = file.name.rsplit('/').next().unwrap_or(&file.name);
            match base.strip_suffix(".rb").unwrap_or(base) {
                "default" => cb.cookbook_name.clone(),
                recipe => format!("{}::{recipe}", cb.cookbook_name),
            }
        })
        .collect()
}

/// Newest version of every cookbook, with manifests.
async fn newest_manifests(state: &AppState, org_id: i64) -> ApiResult<Vec<CookbookVersion>> {
    let rows = state.store.cookbook_versions(org_id, None, true).await?;
    let mut newest: BTreeMap<String, CookbookVersion> = BTreeMap::new();
    for row in rows {
        if !newest.contains_key(&row.cookbook)
            && let Some(body) = &row.body
        {
            newest.insert(row.cookbook.clone(), parse_stored(body)?);
        }
    }
    Ok(newest.into_values().collect())
}

async fn recipes(State(state): State<AppState>, access: OrgAccess) -> ApiResult<Response> {
    access.require_read()?;
    let mut names = Vec::new();
    for cb in newest_manifests(&state, access.org.id).await? {
        names.extend(recipe_names(&cb));
    }
    names.sort();
    Ok(super::ok(json!(names)))
}

async fn universe(
    State(state): State<AppState>,
    access: OrgAccess,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let rows = state
        .store
        .cookbook_versions(access.org.id, None, true)
        .await?;
    let base = super::org_url(&headers, org, "cookbooks");
    let mut out = Map::new();
    for row in rows {
        let Some(body) = &row.body else { continue };
        let cb = parse_stored(body)?;
        let dependencies = cb
            .metadata
            .get("dependencies")
            .filter(|d| d.is_object())
            .cloned()
            .unwrap_or_else(|| json!({}));
        let entry = out.entry(row.cookbook.clone()).or_insert_with(|| json!({}));
        if let Some(versions) = entry.as_object_mut() {
            versions.insert(
                row.version.clone(),
                json!({
                    "location_path": format!("{base}/{}/{}", row.cookbook, row.version),
                    "location_type": "chef_server",
                    "dependencies": dependencies,
                }),
            );
        }
    }
    Ok(super::ok(Value::Object(out)))
}

/// Finds the stored version `version` (`_latest`/`latest` allowed) of `name`.
async fn resolve(
    state: &AppState,
    org_id: i64,
    name: &str,
    version: &str,
) -> ApiResult<(ObjectPath, CookbookVersion)> {
    let path = if version == "_latest" || version == "latest" {
        let rows = state
            .store
            .cookbook_versions(org_id, Some(name), false)
            .await?;
        let newest = rows.first().ok_or_else(|| missing_version(name, version))?;
        ObjectPath::cookbook_version(name, &newest.version)?
    } else {
        cookbook_manifest::url_version_ok(version)?;
        validate_name(NameKind::Cookbook, name).map_err(|_| missing_version(name, version))?;
        ObjectPath::cookbook_version(name, version)?
    };
    let body = state
        .store
        .object(org_id, &path)
        .await?
        .ok_or_else(|| missing_version(name, version))?;
    Ok((path, parse_stored(&body)?))
}

async fn show(
    State(state): State<AppState>,
    access: OrgAccess,
    Extension(api): Extension<ApiVersion>,
    Path((_, name, version)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let (_, cb) = resolve(&state, access.org.id, &name, &version).await?;
    Ok(super::ok(for_download(
        &state,
        &cb,
        api,
        &super::base_url(&headers),
        org,
    )?))
}

#[derive(Debug, Deserialize)]
struct PutParams {
    force: Option<String>,
}

/// The manifest to store over `existing`: a frozen version is replaced only with `force`, and
/// stays frozen.
pub(super) fn stored_form(
    existing: Option<&str>,
    stored: &mut CookbookVersion,
    force: bool,
    name: &str,
    version: &str,
) -> Result<String, StoreError> {
    if let Some(old) = existing {
        let old: CookbookVersion = serde_json::from_str(old)
            .map_err(|e| StoreError::Refused(format!("stored manifest unreadable: {e}")))?;
        if old.frozen {
            if !force {
                return Err(StoreError::Refused(frozen_message(name, version)));
            }
            stored.frozen = true;
        }
    }
    serde_json::to_string(stored)
        .map_err(|e| StoreError::Refused(format!("manifest unserialisable: {e}")))
}

pub(super) fn frozen_message(name: &str, version: &str) -> String {
    format!(
        "The cookbook {name} at version {version} is frozen. Use the 'force' option to override."
    )
}

async fn upsert(
    State(state): State<AppState>,
    access: OrgAccess,
    Extension(api): Extension<ApiVersion>,
    Path((_, name, version)): Path<(String, String, String)>,
    Query(params): Query<PutParams>,
    body: Bytes,
) -> ApiResult<Response> {
    access.require_object_write()?;
    let path = cookbook_manifest::put_path(&name, &version)?;
    let mut stored = cookbook_manifest::prepare(&body, &name, &version, api)?;
    // Chef: force is on for any value but an absent parameter or the literal "false".
    let force = params.force.as_deref().is_some_and(|f| f != "false");
    let outcome = state
        .store
        .write_object_with(access.org.id, &path, WriteMode::Upsert, |existing| {
            stored_form(existing, &mut stored, force, &name, &version)
        })
        .await
        .map_err(|e| {
            Messages {
                conflict: frozen_message(&name, &version),
                missing: missing_version(&name, &version).to_string(),
            }
            .map(e)
        })?;
    let status = if super::objects::is_new(outcome) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    // Chef answers a PUT with the manifest as it was sent.
    Ok(super::respond(
        status,
        serde_json::to_value(stored).map_err(internal)?,
    ))
}

async fn remove(
    State(state): State<AppState>,
    access: OrgAccess,
    Extension(api): Extension<ApiVersion>,
    Path((_, name, version)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    access.require_object_write()?;
    cookbook_manifest::url_version_ok(&version)?;
    validate_name(NameKind::Cookbook, &name).map_err(|_| missing_version(&name, &version))?;
    let path = ObjectPath::cookbook_version(&name, &version)?;
    let body = state
        .store
        .delete_object(access.org.id, &path)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => missing_version(&name, &version),
            other => other.into(),
        })?;
    let cb = parse_stored(&body)?;
    Ok(super::ok(
        serde_json::to_value(in_form(&cb, api)).map_err(internal)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn num_versions() {
        assert_eq!(version_count(None, 1).unwrap(), 1);
        assert_eq!(version_count(Some("all"), 1).unwrap(), usize::MAX);
        assert_eq!(version_count(Some("3"), 1).unwrap(), 3);
        assert!(version_count(Some("-1"), 1).is_err());
        assert!(version_count(Some("x"), 1).is_err());
    }
}
