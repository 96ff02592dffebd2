//! What an environment sees of the org: its cookbooks and their versions allowed by the
//! environment's constraints, the recipes of the newest allowed versions, its nodes, and a
//! role's run list in it (the same as `/roles/R/environments/E`). Read-only; answers and
//! error texts as erchef's `chef_wm_environment_*` resources give them.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::OrgAccess;
use crate::depsolver::{Constraint, Version};
use crate::error::{ApiError, ApiResult};
use crate::search::{FieldName, IndexKind, Query as SearchQuery, ValueMatch};
use crate::state::AppState;
use crate::store::CookbookVersionRow;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/environments/{environment}/cookbooks", get(cookbooks))
        .route(
            "/environments/{environment}/cookbooks/{cookbook}",
            get(cookbook),
        )
        .route("/environments/{environment}/recipes", get(recipes))
        .route("/environments/{environment}/nodes", get(nodes))
        .route(
            "/environments/{environment}/roles/{role}",
            get(role_run_list),
        )
}

#[derive(Debug, Deserialize)]
struct Versions {
    num_versions: Option<String>,
}

fn missing_environment(name: &str) -> ApiError {
    ApiError::NotFound(format!("Cannot load environment {name}"))
}

/// The environment's constraints, 404 when it does not exist.
async fn constraints(
    state: &AppState,
    org_id: i64,
    name: &str,
) -> ApiResult<HashMap<String, Constraint>> {
    super::environments::cookbook_constraints(state, org_id, name)
        .await?
        .ok_or_else(|| missing_environment(name))
}

/// Whether the environment allows `row`'s version (a version that cannot be read is never
/// allowed under a constraint, and always without one).
fn allowed(constraints: &HashMap<String, Constraint>, row: &CookbookVersionRow) -> bool {
    match constraints.get(&row.cookbook) {
        None => true,
        Some(constraint) => {
            Version::parse(&row.version).is_some_and(|(version, _)| constraint.matches(version))
        }
    }
}

async fn cookbooks(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, environment)): Path<(String, String)>,
    Query(params): Query<Versions>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    let count = super::cookbooks::version_count(params.num_versions.as_deref(), 1)?;
    let constraints = constraints(&state, access.org.id, &environment).await?;
    access.require_read()?;
    let rows = state
        .store
        .cookbook_versions(access.org.id, None, false)
        .await?;
    let base = super::org_url(&headers, org, "cookbooks");
    let kept: Vec<CookbookVersionRow> = rows
        .iter()
        .filter(|row| allowed(&constraints, row))
        .cloned()
        .collect();
    if kept.is_empty() {
        // erchef lists every cookbook, each without versions, when the environment allows
        // none at all (and leaves out only those without an allowed version otherwise).
        let mut out = Map::new();
        for row in &rows {
            out.entry(row.cookbook.clone()).or_insert_with(
                || json!({"url": format!("{base}/{}", row.cookbook), "versions": []}),
            );
        }
        return Ok(super::ok(Value::Object(out)));
    }
    Ok(super::ok(super::cookbooks::index(&kept, &base, count)))
}

async fn cookbook(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, environment, cookbook)): Path<(String, String, String)>,
    Query(params): Query<Versions>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    let count = super::cookbooks::version_count(params.num_versions.as_deref(), usize::MAX)?;
    let constraints = constraints(&state, access.org.id, &environment).await?;
    let rows = state
        .store
        .cookbook_versions(access.org.id, Some(&cookbook), false)
        .await?;
    if rows.is_empty() {
        return Err(ApiError::NotFound(format!(
            "Cannot find a cookbook named {cookbook}"
        )));
    }
    access.require_read()?;
    let base = super::org_url(&headers, org, "cookbooks");
    let versions: Vec<Value> = rows
        .iter()
        .filter(|row| allowed(&constraints, row))
        .take(count)
        .map(|row| {
            json!({"url": format!("{base}/{cookbook}/{}", row.version), "version": row.version})
        })
        .collect();
    Ok(super::ok(json!({
        cookbook.clone(): {"url": format!("{base}/{cookbook}"), "versions": versions}
    })))
}

async fn recipes(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, environment)): Path<(String, String)>,
) -> ApiResult<Response> {
    let constraints = constraints(&state, access.org.id, &environment).await?;
    access.require_read()?;
    let rows = state
        .store
        .cookbook_versions(access.org.id, None, false)
        .await?;
    let mut names = Vec::new();
    let mut done: Option<&str> = None;
    for row in &rows {
        // Rows come newest first within each cookbook: the first allowed one is the newest.
        if done == Some(row.cookbook.as_str()) || !allowed(&constraints, row) {
            continue;
        }
        done = Some(row.cookbook.as_str());
        let path = chef_sync_shared::ObjectPath::cookbook_version(&row.cookbook, &row.version)?;
        if let Some(body) = state.store.object(access.org.id, &path).await? {
            let manifest = super::cookbooks::parse_stored(&body)?;
            names.extend(super::cookbooks::recipe_names(&manifest));
        }
    }
    names.sort();
    Ok(super::ok(json!(names)))
}

async fn nodes(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, environment)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    if !super::environments::exists(&state, access.org.id, &environment).await? {
        return Err(ApiError::NotFound(format!(
            "Cannot load environment '{environment}'"
        )));
    }
    // The node index holds every node's environment, so the nodes of one are an index read.
    let names = match state
        .store
        .search_index(access.org.id, &IndexKind::Node)
        .await?
    {
        Some(index) => {
            let query = SearchQuery::Term {
                field: FieldName::Exact("chef_environment".into()),
                value: ValueMatch::Exact(environment.clone()),
            };
            state.store.search_names(index, &query).await?
        }
        None => Vec::new(),
    };
    let base = super::org_url(&headers, org, "nodes");
    Ok(super::ok(super::listing(&base, &names)))
}

async fn role_run_list(
    state: State<AppState>,
    access: OrgAccess,
    Path((org, environment, role)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    super::roles::environment_run_list(state, access, Path((org, role, environment))).await
}
