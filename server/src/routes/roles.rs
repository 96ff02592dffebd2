//! `/roles`: the shared document routes plus the per-environment run-list views.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use chef_sync_shared::objects::{Role, normalize_run_list};
use chef_sync_shared::{ObjectKind, ObjectPath, PathError};
use serde_json::{Value, json};

use super::documents::{self, Document};
use super::objects::{self, Messages};
use crate::auth::OrgAccess;
use crate::body_rules::{self, Field, Rule, required};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    documents::router::<Role>()
        .route("/roles/{name}/environments", get(environments))
        .route(
            "/roles/{name}/environments/{env}",
            get(environment_run_list),
        )
}

impl Document for Role {
    const COLLECTION: &'static str = "roles";
    const KIND: ObjectKind = ObjectKind::Role;

    fn path(name: &str) -> Result<ObjectPath, PathError> {
        ObjectPath::role(name)
    }

    fn messages(name: &str) -> Messages {
        Messages {
            conflict: "Role already exists".into(),
            missing: format!("Cannot load role {name}"),
        }
    }

    /// Validates and normalises a role body the way Chef does on write: defaults, the name
    /// from the URL on update, allowed keys, then erchef's role rules.
    fn prepare(body: &[u8], url_name: Option<&str>) -> ApiResult<Role> {
        let mut value = objects::named_body(body, url_name, "Role")?;
        body_rules::fill_defaults(
            &mut value,
            &[
                ("json_class", json!("Chef::Role")),
                ("chef_type", json!("role")),
                ("default_attributes", json!({})),
                ("override_attributes", json!({})),
                ("run_list", json!([])),
                ("env_run_lists", json!({})),
            ],
        );
        body_rules::only_keys(&value, &ROLE_KEYS)?;
        body_rules::check(&role_rules(), &value)?;
        let mut role: Role =
            serde_json::from_value(value).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        ObjectPath::role(&role.name)
            .map_err(|_| ApiError::BadRequest("Field 'name' invalid".into()))?;
        let normalize = |list: &[String]| {
            normalize_run_list(list).map_err(|e| ApiError::BadRequest(e.to_string()))
        };
        role.run_list = normalize(&role.run_list)?;
        role.env_run_lists.remove("_default");
        for (env, list) in role.env_run_lists.iter_mut() {
            ObjectPath::environment(env)?;
            *list = normalize(list)?;
        }
        Ok(role)
    }

    fn name(&self) -> &str {
        &self.name
    }
}

const ROLE_KEYS: [&str; 8] = [
    "chef_type",
    "default_attributes",
    "description",
    "env_run_lists",
    "json_class",
    "name",
    "override_attributes",
    "run_list",
];

fn run_list_item(item: &str) -> bool {
    normalize_run_list(&[item.to_owned()]).is_ok()
}

/// erchef's `run_list_spec`.
pub(super) fn run_list_rule() -> Rule {
    Rule::Items(Box::new(Rule::Check {
        ok: run_list_item,
        message: "Invalid run list entry",
    }))
}

/// erchef's role rules.
fn role_rules() -> Vec<Field> {
    vec![
        required("name", Rule::Matches(body_rules::role_name)),
        required("json_class", Rule::Exact("Chef::Role".into())),
        required("chef_type", Rule::Exact("role".into())),
        required("default_attributes", Rule::Object),
        required("override_attributes", Rule::Object),
        required("run_list", run_list_rule()),
        required(
            "env_run_lists",
            Rule::Map {
                keys: body_rules::plain_name,
                values: Box::new(run_list_rule()),
            },
        ),
    ]
}

async fn load(state: &AppState, org_id: i64, name: &str) -> ApiResult<Role> {
    let value = documents::load::<Role>(state, org_id, name).await?;
    serde_json::from_value(value).map_err(|e| ApiError::Internal(e.to_string()))
}

/// `_default` and every environment the role has a run list for (existing or not), sorted.
async fn environments(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    access.require_read()?;
    let role = load(&state, access.org.id, &name).await?;
    let mut envs = vec!["_default".to_owned()];
    envs.extend(role.env_run_lists.keys().cloned());
    envs.sort();
    envs.dedup();
    Ok(super::ok(json!(envs)))
}

/// `{"run_list": …}` of the role in the environment (`null` when it has none there); the
/// role is looked up first, then the environment (which must exist).
pub(super) async fn environment_run_list(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, name, env)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    access.require_read()?;
    let role = load(&state, access.org.id, &name).await?;
    if !super::environments::exists(&state, access.org.id, &env).await? {
        return Err(ApiError::NotFound(format!("Cannot load environment {env}")));
    }
    let run_list = if env == "_default" {
        Some(role.run_list.clone())
    } else {
        role.env_run_lists.get(&env).cloned()
    };
    Ok(super::ok(
        json!({ "run_list": run_list.map_or(Value::Null, |l| json!(l)) }),
    ))
}
