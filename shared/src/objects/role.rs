//! Roles.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::JsonMap;

/// A Chef role (`/roles/NAME`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    /// Role name; may be absent in a PUT body, in which case the URL supplies it.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Always `Chef::Role`.
    #[serde(default = "role_class")]
    pub json_class: String,
    /// Always `role`.
    #[serde(default = "role_type")]
    pub chef_type: String,
    /// Default attributes.
    #[serde(default)]
    pub default_attributes: JsonMap,
    /// Override attributes.
    #[serde(default)]
    pub override_attributes: JsonMap,
    /// The run list used in every environment without its own.
    #[serde(default)]
    pub run_list: Vec<String>,
    /// Per-environment run lists.
    #[serde(default)]
    pub env_run_lists: BTreeMap<String, Vec<String>>,
    /// Fields this type does not model, kept for the round trip.
    #[serde(flatten)]
    pub extra: JsonMap,
}

fn role_class() -> String {
    super::owned("Chef::Role")
}

fn role_type() -> String {
    super::owned("role")
}

impl Role {
    /// An empty role with Chef's defaults.
    pub fn new(name: &str) -> Self {
        Role {
            name: name.to_owned(),
            description: String::new(),
            json_class: role_class(),
            chef_type: role_type(),
            default_attributes: JsonMap::new(),
            override_attributes: JsonMap::new(),
            run_list: Vec::new(),
            env_run_lists: BTreeMap::new(),
            extra: JsonMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_defaults_and_keeps_unknown_fields() {
        let role: Role = serde_json::from_str(r#"{"name":"web","x_custom":{"a":1}}"#).unwrap();
        assert_eq!(role.json_class, "Chef::Role");
        assert_eq!(role.chef_type, "role");
        assert!(role.run_list.is_empty());
        let back = serde_json::to_value(&role).unwrap();
        assert_eq!(back["x_custom"]["a"], 1);
        assert_eq!(back["env_run_lists"], serde_json::json!({}));
    }

    #[test]
    fn full_role_round_trips() {
        let text = r#"{"name":"web","description":"d","json_class":"Chef::Role","chef_type":"role","default_attributes":{"a":{"b":[1,2]}},"override_attributes":{},"run_list":["recipe[nginx]","role[base]"],"env_run_lists":{"prod":["recipe[nginx::prod]"]}}"#;
        let role: Role = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&role).unwrap(), text);
    }

    #[test]
    fn wrong_types_are_errors() {
        assert!(serde_json::from_str::<Role>(r#"{"name":"web","run_list":"x"}"#).is_err());
        assert!(serde_json::from_str::<Role>(r#"{"name":"web","default_attributes":[]}"#).is_err());
    }
}
