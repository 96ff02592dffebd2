//! `/cookbook_artifacts`: the immutable cookbooks Policyfiles lock, addressed by name and
//! identifier. Stored as sent; answered in the form of the request's API version (v0/v1
//! segments, v2 `all_files`) with a download URL on every file, as Chef answers them. Files
//! come through sandboxes like cookbook files, and are released with the last artifact or
//! cookbook version of the org that references them.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use chef_sync_shared::objects::SEGMENTS;
use serde_json::{Map, Value, json};

use super::policy_document::name255;
use crate::api_version::ApiVersion;
use crate::auth::OrgAccess;
use crate::body_rules::{self, Rule, optional, required};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::StoreError;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/cookbook_artifacts", get(list))
        .route("/cookbook_artifacts/{name}", get(show_artifact))
        .route(
            "/cookbook_artifacts/{name}/{identifier}",
            get(show).put(create).delete(remove),
        )
}

fn not_found() -> ApiError {
    ApiError::NotFound("not_found".into())
}

/// `{"NAME": {"url", "versions": [{"url", "identifier"}]}}`.
fn index(base: &str, artifacts: std::collections::BTreeMap<String, Vec<String>>) -> Value {
    Value::Object(
        artifacts
            .into_iter()
            .map(|(name, identifiers)| {
                let versions: Vec<Value> = identifiers
                    .iter()
                    .map(|id| json!({"url": format!("{base}/{name}/{id}"), "identifier": id}))
                    .collect();
                let body = json!({"url": format!("{base}/{name}"), "versions": versions});
                (name, body)
            })
            .collect(),
    )
}

async fn list(
    State(state): State<AppState>,
    access: OrgAccess,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let artifacts = state.store.cookbook_artifacts(access.org.id, None).await?;
    Ok(super::ok(index(
        &super::org_url(&headers, org, "cookbook_artifacts"),
        artifacts,
    )))
}

async fn show_artifact(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let artifacts = state
        .store
        .cookbook_artifacts(access.org.id, Some(&name))
        .await?;
    if artifacts.is_empty() {
        return Err(not_found());
    }
    Ok(super::ok(index(
        &super::org_url(&headers, org, "cookbook_artifacts"),
        artifacts,
    )))
}

/// The stored artifact in the request's API form, every file with a download URL.
fn rendered(
    state: &AppState,
    stored: &str,
    api: ApiVersion,
    headers: &HeaderMap,
    org: &str,
) -> ApiResult<Value> {
    let Value::Object(mut doc) = super::stored(stored)? else {
        return Err(ApiError::Internal(
            "stored artifact is not an object".into(),
        ));
    };
    if api.0 >= 2 {
        to_all_files(&mut doc);
    } else {
        to_segments(&mut doc);
    }
    doc.remove("json_class");
    let base = super::base_url(headers);
    let now = chrono::Utc::now().timestamp();
    let lists = std::iter::once("all_files").chain(SEGMENTS);
    for list in lists {
        let Some(Value::Array(files)) = doc.get_mut(list) else {
            continue;
        };
        for file in files.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(checksum) = file.get("checksum").and_then(Value::as_str) {
                let path = super::file_store::download_path(org, &checksum.to_ascii_lowercase());
                let url = format!("{base}{}", state.urls.sign("GET", &path, now));
                file.insert("url".into(), Value::String(url));
            }
        }
    }
    Ok(Value::Object(doc))
}

/// Segment lists become one `all_files` list whose names are `segment/name`.
fn to_all_files(doc: &mut Map<String, Value>) {
    if doc.contains_key("all_files") {
        return;
    }
    let mut all = Vec::new();
    for segment in SEGMENTS {
        if let Some(Value::Array(files)) = doc.remove(segment) {
            for mut file in files {
                if let Some(entry) = file.as_object_mut()
                    && let Some(name) = entry.get("name").and_then(Value::as_str)
                {
                    let named = format!("{segment}/{name}");
                    entry.insert("name".into(), Value::String(named));
                }
                all.push(file);
            }
        }
    }
    doc.insert("all_files".into(), Value::Array(all));
}

/// An `all_files` list becomes the nine segments (a name without a known segment prefix goes to
/// `root_files` whole, as cookbook manifests do).
fn to_segments(doc: &mut Map<String, Value>) {
    let Some(Value::Array(files)) = doc.remove("all_files") else {
        return;
    };
    let mut segments: Map<String, Value> = SEGMENTS
        .iter()
        .map(|s| ((*s).to_owned(), Value::Array(Vec::new())))
        .collect();
    for mut file in files {
        let name = file
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let (segment, short) = match name.split_once('/') {
            Some((prefix, rest)) if SEGMENTS.contains(&prefix) && !rest.is_empty() => {
                (prefix.to_owned(), rest.to_owned())
            }
            _ => ("root_files".to_owned(), name.clone()),
        };
        if let Some(entry) = file.as_object_mut() {
            entry.insert("name".into(), Value::String(short));
        }
        if let Some(Value::Array(list)) = segments.get_mut(&segment) {
            list.push(file);
        }
    }
    doc.extend(segments);
}

async fn show(
    State(state): State<AppState>,
    access: OrgAccess,
    Extension(api): Extension<ApiVersion>,
    Path((_, name, identifier)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let stored = state
        .store
        .cookbook_artifact(access.org.id, &name, &identifier)
        .await?
        .ok_or_else(not_found)?;
    Ok(super::ok(rendered(&state, &stored, api, &headers, org)?))
}

/// erchef's checks of an artifact PUT: `name` and `identifier` present and well formed, then
/// equal to the URL's. Nothing else is checked (versions such as `1.2.3.beta.5` are allowed).
fn check(body: &[u8], name: &str, identifier: &str) -> ApiResult<Map<String, Value>> {
    let value: Value = super::parse_json(body)?;
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "Incorrect JSON type for request body".into(),
        ));
    }
    let mut rules = vec![
        required(
            "name",
            Rule::Matches(|s| s.len() <= 255 && body_rules::plain_name(s)),
        ),
        required("identifier", Rule::Matches(name255)),
    ];
    // erchef answers 500 to a malformed file list (pedant skips those cases); here it is
    // refused in the cookbook wording, so every stored list is one of file objects.
    rules.extend(
        std::iter::once("all_files")
            .chain(SEGMENTS)
            .map(|list| optional(list, super::cookbook_manifest::file_list())),
    );
    body_rules::check(&rules, &value)?;
    let Value::Object(mut doc) = value else {
        return Err(ApiError::Internal("checked body is not an object".into()));
    };
    for (field, url) in [("name", name), ("identifier", identifier)] {
        let sent = doc.get(field).and_then(Value::as_str).unwrap_or_default();
        if sent != url {
            return Err(ApiError::BadRequest(format!(
                "Field '{field}' invalid : {url} does not match {sent}"
            )));
        }
    }
    // Download URLs are the server's own; they are not kept.
    for list in std::iter::once("all_files").chain(SEGMENTS) {
        if let Some(Value::Array(files)) = doc.get_mut(list) {
            for file in files.iter_mut().filter_map(Value::as_object_mut) {
                file.remove("url");
            }
        }
    }
    Ok(doc)
}

async fn create(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name, identifier)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_object_write()?;
    let doc = check(&body, &name, &identifier)?;
    state
        .store
        .create_cookbook_artifact(
            access.org.id,
            &name,
            &identifier,
            &Value::Object(doc).to_string(),
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict => {
                ApiError::ConflictText("Cookbook artifact already exists".into())
            }
            other => other.into(),
        })?;
    Ok(super::created(format!(
        "{}/{name}",
        super::org_url(&headers, org, "cookbook_artifacts")
    )))
}

async fn remove(
    State(state): State<AppState>,
    access: OrgAccess,
    Extension(api): Extension<ApiVersion>,
    Path((_, name, identifier)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_object_write()?;
    let stored = state
        .store
        .delete_cookbook_artifact(access.org.id, &name, &identifier)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => not_found(),
            other => other.into(),
        })?;
    Ok(super::ok(rendered(&state, &stored, api, &headers, org)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_convert_both_ways() {
        let mut doc: Map<String, Value> = serde_json::from_value(json!({
            "recipes": [{"name": "default.rb", "path": "recipes/default.rb", "checksum": "a", "specificity": "default"}],
            "root_files": [{"name": "metadata.rb", "path": "metadata.rb", "checksum": "b", "specificity": "default"}],
        }))
        .unwrap();
        to_all_files(&mut doc);
        let names: Vec<&str> = doc["all_files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["recipes/default.rb", "root_files/metadata.rb"]);
        assert!(doc.get("recipes").is_none());
        to_segments(&mut doc);
        assert_eq!(doc["recipes"][0]["name"], "default.rb");
        assert_eq!(doc["root_files"][0]["name"], "metadata.rb");
        assert_eq!(doc["templates"], json!([]));
        assert!(doc.get("all_files").is_none());
    }

    #[test]
    fn put_checks_name_and_identifier_only() {
        let ok = json!({"name": "apt", "identifier": "1111", "version": "1.2.3.beta.5",
                        "recipes": [{"name": "a.rb", "path": "recipes/a.rb", "checksum": "0123",
                                     "specificity": "default", "url": "http://elsewhere"}]});
        let doc = check(ok.to_string().as_bytes(), "apt", "1111").unwrap();
        assert!(doc["recipes"][0].get("url").is_none());
        let err = |v: Value, n: &str, i: &str| {
            check(v.to_string().as_bytes(), n, i)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(
                json!({"name": "apt", "identifier": "foo@bar"}),
                "apt",
                "foo@bar"
            ),
            "Field 'identifier' invalid"
        );
        assert_eq!(
            err(
                json!({"name": "first@second", "identifier": "1"}),
                "first@second",
                "1"
            ),
            "Field 'name' invalid"
        );
        assert_eq!(
            err(
                json!({"name": "foobar", "identifier": "1.2.3"}),
                "cookbook_name",
                "1.2.3"
            ),
            "Field 'name' invalid : cookbook_name does not match foobar"
        );
        assert_eq!(
            err(json!({"name": "apt", "identifier": "ffff"}), "apt", "1111"),
            "Field 'identifier' invalid : 1111 does not match ffff"
        );
        assert_eq!(
            err(json!({"identifier": "1"}), "apt", "1"),
            "Field 'name' missing"
        );
        let long = "a".repeat(256);
        assert_eq!(
            err(json!({"name": "apt", "identifier": long}), "apt", &long),
            "Field 'identifier' invalid"
        );
        assert_eq!(
            err(json!({"name": long, "identifier": "1"}), &long, "1"),
            "Field 'name' invalid"
        );
    }
}
