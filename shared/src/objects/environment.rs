//! Environments.

use serde::{Deserialize, Serialize};

use super::JsonMap;

/// A Chef environment (`/environments/NAME`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// Environment name; may be absent in a PUT body, in which case the URL supplies it.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Always `Chef::Environment`.
    #[serde(default = "env_class")]
    pub json_class: String,
    /// Always `environment`.
    #[serde(default = "env_type")]
    pub chef_type: String,
    /// Default attributes.
    #[serde(default)]
    pub default_attributes: JsonMap,
    /// Override attributes.
    #[serde(default)]
    pub override_attributes: JsonMap,
    /// Version constraints per cookbook, e.g. `{"nginx": "= 1.2.3"}`.
    #[serde(default)]
    pub cookbook_versions: serde_json::Map<String, serde_json::Value>,
    /// Fields this type does not model, kept for the round trip.
    #[serde(flatten)]
    pub extra: JsonMap,
}

fn env_class() -> String {
    super::owned("Chef::Environment")
}

fn env_type() -> String {
    super::owned("environment")
}

impl Environment {
    /// The name of the environment every org has and nobody may change.
    pub const DEFAULT: &'static str = "_default";

    /// An empty environment with Chef's defaults.
    pub fn new(name: &str) -> Self {
        Environment {
            name: name.to_owned(),
            description: String::new(),
            json_class: env_class(),
            chef_type: env_type(),
            default_attributes: JsonMap::new(),
            override_attributes: JsonMap::new(),
            cookbook_versions: JsonMap::new(),
            extra: JsonMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_unknown_fields() {
        let text = r#"{"name":"prod","description":"","json_class":"Chef::Environment","chef_type":"environment","default_attributes":{},"override_attributes":{"x":true},"cookbook_versions":{"nginx":"= 1.2.3"},"future_field":[1]}"#;
        let env: Environment = serde_json::from_str(text).unwrap();
        assert_eq!(env.cookbook_versions["nginx"], "= 1.2.3");
        assert_eq!(serde_json::to_string(&env).unwrap(), text);
    }

    #[test]
    fn defaults() {
        let env: Environment = serde_json::from_str(r#"{"name":"dev"}"#).unwrap();
        assert_eq!(env, Environment::new("dev"));
    }
}
