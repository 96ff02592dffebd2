//! `/environments`: the shared document routes, with `_default` present in every org and
//! never changeable.

use std::collections::HashMap;

use axum::Router;
use chef_sync_shared::objects::Environment;
use chef_sync_shared::path::{NameKind, validate_name};
use chef_sync_shared::{ObjectKind, ObjectPath, PathError};
use serde_json::Value;

use super::documents::{self, Document};
use super::objects::{self, Messages};
use crate::app::AppState;
use crate::depsolver::constraint::Op;
use crate::depsolver::{Constraint, Version};
use crate::error::{ApiError, ApiResult};

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

/// `= 1.2.3`, `>= 1.0`, `~> 2.1`, or a bare version: Chef's cookbook version constraints.
fn valid_constraint(text: &str) -> bool {
    let text = text.trim();
    let version = ["~>", ">=", "<=", "=", ">", "<"]
        .iter()
        .find_map(|op| text.strip_prefix(op))
        .unwrap_or(text)
        .trim_start();
    let parts: Vec<&str> = version.split('.').collect();
    (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
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

    fn prepare(body: &[u8], url_name: Option<&str>) -> ApiResult<Environment> {
        let mut env: Environment = super::parse_json(body)?;
        objects::reject_unknown_keys(&env.extra)?;
        objects::settle_name(&mut env.name, url_name, "Environment")?;
        ObjectPath::environment(&env.name)?;
        objects::check_class(
            &env.json_class,
            &env.chef_type,
            "Chef::Environment",
            "environment",
        )?;
        for (cookbook, constraint) in &env.cookbook_versions {
            validate_name(NameKind::Cookbook, cookbook)?;
            match constraint.as_str() {
                Some(c) if valid_constraint(c) => {}
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "Invalid value '{constraint}' for cookbook_versions"
                    )));
                }
            }
        }
        Ok(env)
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

#[cfg(test)]
mod tests {
    use super::valid_constraint;

    #[test]
    fn constraints() {
        for ok in ["= 1.2.3", ">= 1.0", "~> 2.1", "1.2", "<1.0.0", "=1.2.3"] {
            assert!(valid_constraint(ok), "{ok}");
        }
        for bad in ["", "1", "= 1.2.3.4", "== 1.0", "~> a.b", "1..2"] {
            assert!(!valid_constraint(bad), "{bad}");
        }
    }
}
