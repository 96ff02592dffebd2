//! `/environments`: the shared document routes, with `_default` present in every org and
//! never changeable.

use std::collections::HashMap;

use axum::Router;
use chef_sync_shared::objects::Environment;
use chef_sync_shared::{ObjectKind, ObjectPath, PathError};
use serde_json::{Value, json};

use super::documents::{self, Document};
use super::objects::Messages;
use crate::body_rules::{self, Field, Rule, optional, required};
use crate::depsolver::constraint::Op;
use crate::depsolver::{Constraint, Version};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    documents::router::<Environment>()
}

/// The environment's `cookbook_versions` as constraints, or `None` when it does not exist
/// (`_default` always does, without constraints). A constraint that cannot be read (stored
/// by a primary with looser checks) allows no version, so it fails only what needs that
/// cookbook.
pub(super) async fn cookbook_constraints(
    state: &AppState,
    org_id: i64,
    name: &str,
) -> ApiResult<Option<HashMap<String, Constraint>>> {
    if name == Environment::DEFAULT {
        return Ok(Some(HashMap::new()));
    }
    let Ok(path) = ObjectPath::environment(name) else {
        return Ok(None);
    };
    let Some(body) = state.store.object(org_id, &path).await? else {
        return Ok(None);
    };
    let environment: Environment =
        serde_json::from_str(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
    let nothing = Constraint {
        op: Op::Lt,
        version: Version(0, 0, 0),
    };
    let constraints = environment
        .cookbook_versions
        .iter()
        .map(|(cookbook, constraint)| {
            let parsed = constraint.as_str().and_then(Constraint::parse);
            (cookbook.clone(), parsed.unwrap_or(nothing))
        })
        .collect();
    Ok(Some(constraints))
}

/// Whether the environment exists (`_default` always does).
pub(super) async fn exists(state: &AppState, org_id: i64, name: &str) -> ApiResult<bool> {
    Ok(cookbook_constraints(state, org_id, name).await?.is_some())
}

const ENVIRONMENT_KEYS: [&str; 7] = [
    "name",
    "description",
    "json_class",
    "chef_type",
    "default_attributes",
    "override_attributes",
    "cookbook_versions",
];

/// erchef's environment rules.
fn environment_rules() -> Vec<Field> {
    vec![
        required("name", Rule::Matches(body_rules::plain_name)),
        optional("description", Rule::String),
        optional("json_class", Rule::Exact("Chef::Environment".into())),
        optional("chef_type", Rule::Exact("environment".into())),
        optional("default_attributes", Rule::Object),
        optional("override_attributes", Rule::Object),
        optional("cookbook_versions", body_rules::constraint_map()),
    ]
}

impl Document for Environment {
    const COLLECTION: &'static str = "environments";
    const KIND: ObjectKind = ObjectKind::Environment;

    fn path(name: &str) -> Result<ObjectPath, PathError> {
        ObjectPath::environment(name)
    }

    fn messages(name: &str) -> Messages {
        Messages {
            conflict: "Environment already exists".into(),
            missing: format!("Cannot load environment {name}"),
        }
    }

    /// Chef's order: defaults, the rules, then the allowed keys. The body names the
    /// environment on update too (erchef does not take the URL's name): a name different
    /// from the URL's is a rename, not an error.
    fn prepare(body: &[u8], _url_name: Option<&str>) -> ApiResult<Environment> {
        let mut value: Value = super::parse_json(body)?;
        body_rules::fill_defaults(
            &mut value,
            &[
                ("description", json!("")),
                ("json_class", json!("Chef::Environment")),
                ("chef_type", json!("environment")),
                ("default_attributes", json!({})),
                ("override_attributes", json!({})),
                ("cookbook_versions", json!({})),
            ],
        );
        body_rules::check(&environment_rules(), &value)?;
        body_rules::only_keys(&value, &ENVIRONMENT_KEYS)?;
        let env: Environment =
            serde_json::from_value(value).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        ObjectPath::environment(&env.name)
            .map_err(|_| ApiError::BadRequest("Field 'name' invalid".into()))?;
        Ok(env)
    }

    fn renames() -> bool {
        true
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn builtin() -> Option<(&'static str, Value)> {
        let mut env = Environment::new(Environment::DEFAULT);
        env.description = "The default Chef environment".into();
        serde_json::to_value(env)
            .ok()
            .map(|v| (Environment::DEFAULT, v))
    }

    fn builtin_is_fixed() -> ApiError {
        ApiError::MethodNotAllowed("The '_default' environment cannot be modified.".into())
    }
}
