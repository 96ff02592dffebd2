//! `POST /environments/ENV/cookbook_versions`: the versions of every cookbook a run list
//! needs in an environment, each manifest ready to download, or Chef's 412 saying why there
//! are none. Checks in erchef's order: the body (400), the environment (404), then read
//! permission (403).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Router};
use chef_sync_shared::ObjectPath;
use serde_json::{Map, Value};

use crate::api_version::ApiVersion;
use crate::auth::OrgAccess;
use crate::depsolver::{Constraint, Request, Version};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/environments/{environment}/cookbook_versions", post(solve))
}

/// Run-list items one solve takes (a chef-client run's expanded run list has tens).
const MAX_RUN_LIST: usize = 1_000;

fn bad_run_list() -> ApiError {
    ApiError::BadRequest("Field 'run_list' is not a valid run list".into())
}

/// A cookbook or recipe name: `[.[:alnum:]_-]+`.
fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `COOKBOOK`, `COOKBOOK::RECIPE`, either with `@VERSION`: the cookbook and its constraint.
fn recipe(text: &str) -> Option<(String, Constraint)> {
    let (name, version) = match text.split_once('@') {
        // A run list pins `@x.y` or `@x.y.z`; a lone `@x` is not a run-list version.
        Some((_, version)) if !version.contains('.') => return None,
        Some((name, version)) => (name, Some(Version::parse(version)?.0)),
        None => (text, None),
    };
    let cookbook = match name.split_once("::") {
        Some((cookbook, recipe)) if is_name(recipe) => cookbook,
        Some(_) => return None,
        None => name,
    };
    if !is_name(cookbook) {
        return None;
    }
    let constraint = version.map_or(Constraint::ANY, Constraint::exactly);
    Some((cookbook.to_owned(), constraint))
}

/// One run-list item as erchef reads it. A `role[…]` is not expanded here (chef-client sends
/// expanded run lists), so it stays a cookbook name the org lacks, as in Chef; `recipe[…]` is
/// read as the recipe inside, where erchef would also look for a cookbook named `recipe[…`.
fn run_list_item(item: &Value) -> Option<(String, Constraint)> {
    let text = item.as_str()?;
    if let Some(role) = text.strip_prefix("role[").and_then(|r| r.strip_suffix(']')) {
        return is_name(role).then(|| (text.to_owned(), Constraint::ANY));
    }
    match text
        .strip_prefix("recipe[")
        .and_then(|r| r.strip_suffix(']'))
    {
        Some(inner) => recipe(inner),
        None => recipe(text),
    }
}

/// `{"run_list": [...]}` (no `run_list` is an empty one), duplicates dropped.
fn parse_run_list(body: &[u8]) -> ApiResult<Vec<(String, Constraint)>> {
    let invalid = || ApiError::BadRequest("invalid JSON".into());
    let value: Value = serde_json::from_slice(body).map_err(|_| invalid())?;
    let Value::Object(map) = value else {
        return Err(invalid());
    };
    let items = match map.get("run_list") {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(bad_run_list()),
    };
    if items.len() > MAX_RUN_LIST {
        return Err(ApiError::BadRequest(format!(
            "Field 'run_list' has more than {MAX_RUN_LIST} items"
        )));
    }
    let mut out: Vec<(String, Constraint)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for item in items {
        let entry = run_list_item(item).ok_or_else(bad_run_list)?;
        if seen.insert(entry.clone()) {
            out.push(entry);
        }
    }
    Ok(out)
}

async fn solve(
    State(state): State<AppState>,
    access: OrgAccess,
    Extension(api): Extension<ApiVersion>,
    Path((_, environment)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    let run_list = parse_run_list(&body)?;
    let environment =
        super::environments::cookbook_constraints(&state, access.org.id, &environment)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("environment '{environment}' not found")))?;
    access.require_read()?;
    if run_list.is_empty() {
        return Ok(super::ok(Value::Object(Map::new())));
    }
    let universe = state
        .depsolver
        .universe(&state.store, access.org.id)
        .await?;
    let request = Request {
        environment,
        run_list,
    };
    let solution = state
        .depsolver
        .solve(universe, request)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|failure| ApiError::PreconditionFailed(failure.body()))?;
    let base = super::base_url(&headers);
    let mut out = Map::new();
    for (cookbook, version) in solution {
        let path = ObjectPath::cookbook_version(&cookbook, &version)?;
        let Some(stored) = state.store.object(access.org.id, &path).await? else {
            // Deleted since the universe was read.
            return Err(ApiError::Unavailable(format!(
                "cookbook {cookbook} {version} was removed while solving; try again"
            )));
        };
        let manifest = super::cookbooks::parse_stored(&stored)?;
        let mut value = super::cookbooks::for_download(&state, &manifest, api, &base, org)?;
        // Chef leaves out what a run does not need from the metadata.
        if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("attributes");
            metadata.remove("long_description");
        }
        out.insert(cookbook, value);
    }
    Ok(super::ok(Value::Object(out)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parsed(body: Value) -> Result<Vec<(String, String)>, String> {
        parse_run_list(body.to_string().as_bytes())
            .map(|items| items.into_iter().map(|(c, k)| (c, k.to_string())).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn run_list_items_as_erchef_reads_them() {
        let items = parsed(json!({"run_list": [
            "foo", "foo::bar", "foo@1.0.0", "foo::bar@1.2", "recipe[web::nginx]", "role[base]", "foo"
        ]}));
        let expect = [
            ("foo", ">= 0.0.0"),
            ("foo", "= 1.0.0"),
            ("foo", "= 1.2.0"),
            ("web", ">= 0.0.0"),
            ("role[base]", ">= 0.0.0"),
        ];
        let expect: Vec<(String, String)> = expect
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        assert_eq!(items, Ok(expect));
        assert_eq!(parsed(json!({})), Ok(Vec::new()));
        let many: Vec<String> = (0..=MAX_RUN_LIST).map(|i| format!("cb{i}")).collect();
        assert_eq!(
            parsed(json!({ "run_list": many })),
            Err(format!(
                "Field 'run_list' has more than {MAX_RUN_LIST} items"
            ))
        );
    }

    #[test]
    fn bad_run_lists() {
        let bad = Err("Field 'run_list' is not a valid run list".to_owned());
        for body in [
            json!({"run_list": "foo"}),
            json!({"run_list": null}),
            json!({"run_list": [1]}),
            json!({"run_list": ["fake[x]"]}),
            json!({"run_list": ["foo@1"]}),
            json!({"run_list": ["a::b::c"]}),
            json!({"run_list": ["recipe["]}),
            json!({"run_list": ["foo bar"]}),
        ] {
            assert_eq!(parsed(body.clone()), bad, "{body}");
        }
        for body in ["", "{", "[]", "1"] {
            let out = parse_run_list(body.as_bytes()).map_err(|e| e.to_string());
            assert_eq!(out, Err("invalid JSON".to_owned()), "{body:?}");
        }
    }
}
