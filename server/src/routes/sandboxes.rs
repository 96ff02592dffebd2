//! `/sandboxes`: the upload session for cookbook files. POST names the checksums a cookbook
//! needs and gets an upload URL for each one the org does not have yet; PUT commits, after
//! which the org may reference those checksums from cookbook manifests.

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{post, put};
use serde_json::{Map, Value, json};

use crate::auth::OrgAccess;
use crate::blob::is_checksum;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{SandboxRow, StoreError};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/sandboxes", post(create))
        .route("/sandboxes/{id}", put(commit))
}

/// The checksums of a POST body: a non-empty map of MD5 hex to null, refused in Chef's
/// words ("Bad checksums!" for an empty map or a non-null value).
fn requested_checksums(body: &[u8]) -> ApiResult<BTreeSet<String>> {
    let value: Value = super::parse_json(body)?;
    let bad = || ApiError::BadRequest("Bad checksums!".into());
    let map = match value.get("checksums") {
        None => return Err(ApiError::BadRequest("Field 'checksums' missing".into())),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ApiError::BadRequest("Field 'checksums' invalid".into())),
    };
    if map.is_empty() {
        return Err(bad());
    }
    map.iter()
        .map(|(checksum, v)| {
            if !v.is_null() {
                Err(bad())
            } else if is_checksum(checksum) {
                Ok(checksum.to_ascii_lowercase())
            } else {
                Err(ApiError::BadRequest(format!("Bad checksum '{checksum}'")))
            }
        })
        .collect()
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The unsigned path of a checksum's upload URL.
pub(crate) fn upload_path(org: &str, sandbox: &str, checksum: &str) -> String {
    format!("/file_store/organizations/{org}/sandboxes/{sandbox}/checksums/{checksum}")
}

async fn create(
    State(state): State<AppState>,
    access: OrgAccess,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_object_write()?;
    let checksums = requested_checksums(&body)?;
    let known = state.store.org_blob_keys(access.org.id, &checksums).await?;
    let id: String = (0..16)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    state
        .store
        .create_sandbox(access.org.id, &id, &checksums)
        .await?;
    let base = super::base_url(&headers);
    let mut answer = Map::new();
    for checksum in &checksums {
        // An org "has" a checksum only while the bytes it uploaded are really there; bytes
        // another org stored under the same MD5 do not count.
        let has = blob_stored(&state, known.get(checksum).map(String::as_str)).await?;
        let entry = if has {
            json!({"needs_upload": false})
        } else {
            let path = upload_path(org, &id, checksum);
            json!({"url": format!("{base}{}", state.urls.sign("PUT", &path, now_secs())), "needs_upload": true})
        };
        answer.insert(checksum.clone(), entry);
    }
    let uri = format!("{}/{id}", super::org_url(&headers, org, "sandboxes"));
    Ok(super::respond(
        StatusCode::CREATED,
        json!({"sandbox_id": id, "uri": uri, "checksums": answer}),
    ))
}

/// Whether blob `key` exists (no key: the org has no such file).
async fn blob_stored(state: &AppState, key: Option<&str>) -> ApiResult<bool> {
    match key {
        Some(key) => state
            .blobs
            .contains(key)
            .await
            .map_err(|e| ApiError::Internal(e.to_string())),
        None => Ok(false),
    }
}

/// Checksums of the sandbox whose bytes are not available to the org yet. A file uploaded
/// through this sandbox is judged by that upload's blob (the one the commit will point the
/// org at); any other by the blob the org already has.
async fn missing_checksums(state: &AppState, sandbox: &SandboxRow) -> ApiResult<Vec<String>> {
    let all: BTreeSet<String> = sandbox
        .checksums
        .iter()
        .map(|f| f.checksum.clone())
        .collect();
    let known = state.store.org_blob_keys(sandbox.org_id, &all).await?;
    let mut missing = Vec::new();
    for file in &sandbox.checksums {
        let key = file
            .blob_key()
            .or_else(|| known.get(&file.checksum).map(String::as_str));
        if !blob_stored(state, key).await? {
            missing.push(file.checksum.clone());
        }
    }
    Ok(missing)
}

async fn commit(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    access.require_object_write()?;
    let value: Value = super::parse_json(&body)?;
    let completed = value
        .get("is_completed")
        .and_then(Value::as_bool)
        .ok_or_else(|| ApiError::BadRequest("Field 'is_completed' missing".into()))?;
    let sandbox = state
        .store
        .sandbox(access.org.id, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("No such sandbox '{id}'.")))?;
    let checksums: Vec<&String> = sandbox.checksums.iter().map(|f| &f.checksum).collect();
    let created = chrono::DateTime::from_timestamp_millis(sandbox.created_at)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string();
    if completed {
        let missing = missing_checksums(&state, &sandbox).await?;
        if !missing.is_empty() {
            return Err(ApiError::Unavailable(format!(
                "Cannot update sandbox {id}: the following checksums have not been uploaded: {}",
                missing.join(", ")
            )));
        }
        state
            .store
            .commit_sandbox(&sandbox)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => ApiError::NotFound(format!("No such sandbox '{id}'.")),
                other => other.into(),
            })?;
    }
    Ok(super::ok(json!({
        "guid": id, "name": id, "checksums": checksums,
        "create_time": created, "is_completed": completed,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_maps_are_validated() {
        let ok = requested_checksums(br#"{"checksums":{"D41D8CD98F00B204E9800998ECF8427E":null}}"#)
            .unwrap();
        assert!(ok.contains("d41d8cd98f00b204e9800998ecf8427e"));
        for bad in [
            r#"{"checksums":{}}"#,
            r#"{"checksums":[]}"#,
            r#"{}"#,
            r#"{"checksums":{"abc":null}}"#,
            r#"{"checksums":{"d41d8cd98f00b204e9800998ecf8427e":1}}"#,
        ] {
            assert!(requested_checksums(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
