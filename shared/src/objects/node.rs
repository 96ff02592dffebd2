//! Nodes: local to each server (registered and saved by chef-client), never replicated.

use serde::{Deserialize, Serialize};

use super::JsonMap;

/// A Chef node (`/nodes/NAME`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Node name; may be absent in a PUT body, in which case the URL supplies it.
    #[serde(default)]
    pub name: String,
    /// The environment it converges in.
    #[serde(default = "default_environment")]
    pub chef_environment: String,
    /// Always `Chef::Node`.
    #[serde(default = "node_class")]
    pub json_class: String,
    /// Always `node`.
    #[serde(default = "node_type")]
    pub chef_type: String,
    /// Normal attributes (kept between runs).
    #[serde(default)]
    pub normal: JsonMap,
    /// Default attributes.
    #[serde(default)]
    pub default: JsonMap,
    /// Override attributes.
    #[serde(default, rename = "override")]
    pub override_: JsonMap,
    /// Automatic attributes (ohai).
    #[serde(default)]
    pub automatic: JsonMap,
    /// The run list.
    #[serde(default)]
    pub run_list: Vec<String>,
    /// The Policyfile policy it follows, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
    /// The policy group it follows, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_group: Option<String>,
    /// Fields this type does not model (Chef refuses them on write).
    #[serde(flatten)]
    pub extra: JsonMap,
}

fn default_environment() -> String {
    super::owned("_default")
}

fn node_class() -> String {
    super::owned("Chef::Node")
}

fn node_type() -> String {
    super::owned("node")
}
