//! What each Chef index holds of a stored object, as Chef Infra Server prepares it for
//! indexing (`ejson_for_indexing`): a node's merged attributes with its top-level fields, a
//! data bag item with its bag and type, roles, environments and clients as stored.

use serde_json::{Map, Value};

use super::fields::{Terms, run_list_entry};

/// A Chef search index within one org.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IndexKind {
    /// `node`.
    Node,
    /// `role`.
    Role,
    /// `environment`.
    Environment,
    /// `client`.
    Client,
    /// One data bag's items.
    DataBag(String),
}

impl IndexKind {
    /// `(kind, bag)` as the index table names it.
    pub fn columns(&self) -> (&'static str, &str) {
        match self {
            IndexKind::Node => ("node", ""),
            IndexKind::Role => ("role", ""),
            IndexKind::Environment => ("environment", ""),
            IndexKind::Client => ("client", ""),
            IndexKind::DataBag(bag) => ("data_bag", bag),
        }
    }

    /// The terms a stored object is found by in this index.
    pub fn terms(&self, body: &Value) -> Terms {
        match self {
            IndexKind::Node => Terms::of(&node_for_index(body)),
            IndexKind::DataBag(bag) => {
                let mut item = body.as_object().cloned().unwrap_or_default();
                item.insert("chef_type".into(), "data_bag_item".into());
                item.insert("data_bag".into(), bag.clone().into());
                Terms::of(&Value::Object(item))
            }
            IndexKind::Role => {
                let mut terms = Terms::of(body);
                let lists = body
                    .get("run_list")
                    .into_iter()
                    .chain(
                        body.get("env_run_lists")
                            .and_then(Value::as_object)
                            .into_iter()
                            .flat_map(|m| m.values()),
                    )
                    .filter_map(Value::as_array)
                    .flatten();
                for (kind, name) in lists.filter_map(Value::as_str).filter_map(run_list_entry) {
                    terms.add(kind, name);
                }
                terms
            }
            IndexKind::Environment | IndexKind::Client => Terms::of(body),
        }
    }
}

/// Chef's deep merge: objects merge key by key, anything else is replaced by `other`.
fn deep_merge(base: &mut Value, other: &Value) {
    match (base, other) {
        (Value::Object(b), Value::Object(o)) => {
            for (key, value) in o {
                match b.get_mut(key) {
                    Some(existing) => deep_merge(existing, value),
                    None => {
                        b.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// A node as indexed: default < normal < override < automatic attributes merged, then the
/// top-level fields over them (`name`, `chef_type`, `chef_environment`, `recipe`, `role`,
/// `run_list`, and `policy_name` / `policy_group` when set).
pub fn node_for_index(node: &Value) -> Value {
    let mut merged = Value::Object(Map::new());
    for level in ["default", "normal", "override", "automatic"] {
        if let Some(attrs) = node.get(level).filter(|v| v.is_object()) {
            deep_merge(&mut merged, attrs);
        }
    }
    let Value::Object(mut merged) = merged else {
        return Value::Object(Map::new());
    };
    let run_list: Vec<&str> = node
        .get("run_list")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let of_kind = |wanted: &str| -> Value {
        run_list
            .iter()
            .filter_map(|e| run_list_entry(e))
            .filter(|(kind, _)| *kind == wanted)
            .map(|(_, name)| Value::String(name.to_owned()))
            .collect()
    };
    let top = [
        ("name", node.get("name").cloned().unwrap_or(Value::Null)),
        ("chef_type", "node".into()),
        (
            "chef_environment",
            node.get("chef_environment")
                .cloned()
                .unwrap_or_else(|| "_default".into()),
        ),
        ("recipe", of_kind("recipe")),
        ("role", of_kind("role")),
        (
            "run_list",
            node.get("run_list")
                .cloned()
                .unwrap_or(Value::Array(vec![])),
        ),
    ];
    for (key, value) in top {
        merged.insert(key.into(), value);
    }
    for key in ["policy_name", "policy_group"] {
        if let Some(value) = node.get(key).filter(|v| !v.is_null()) {
            merged.insert(key.into(), value.clone());
        }
    }
    Value::Object(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(terms: &Terms, field: &str) -> Vec<String> {
        let mut v: Vec<String> = terms.values(field).map(|t| t.value.clone()).collect();
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn a_node_is_indexed_with_merged_attributes_and_top_level_fields() {
        let node = json!({
            "name": "web-1",
            "chef_environment": "prod",
            "run_list": ["recipe[nginx]", "role[web]", "base"],
            "default": {"app": {"port": 80, "tier": "a"}, "platform": "default-wins-not"},
            "normal": {"app": {"port": 81}},
            "override": {"app": {"port": 82}},
            "automatic": {"platform": "ubuntu", "name": "not-the-node-name"},
            "policy_name": null,
        });
        let terms = IndexKind::Node.terms(&node);
        assert_eq!(values(&terms, "app_port"), ["82"]);
        assert_eq!(values(&terms, "tier"), ["a"]);
        assert_eq!(values(&terms, "platform"), ["ubuntu"]);
        assert_eq!(values(&terms, "name"), ["web-1"]);
        assert_eq!(values(&terms, "chef_environment"), ["prod"]);
        assert_eq!(values(&terms, "recipe"), ["base", "nginx"]);
        assert_eq!(values(&terms, "role"), ["web"]);
        assert_eq!(values(&terms, "chef_type"), ["node"]);
        assert!(values(&terms, "policy_name").is_empty());
    }

    #[test]
    fn a_data_bag_item_carries_its_bag_and_type() {
        let terms = IndexKind::DataBag("users".into())
            .terms(&json!({"id": "alice", "data_bag": "forged", "shell": "zsh"}));
        assert_eq!(values(&terms, "data_bag"), ["users"]);
        assert_eq!(values(&terms, "chef_type"), ["data_bag_item"]);
        assert_eq!(values(&terms, "id"), ["alice"]);
    }

    #[test]
    fn a_roles_run_lists_give_recipe_and_role() {
        let terms = IndexKind::Role.terms(&json!({
            "name": "web",
            "run_list": ["recipe[nginx]"],
            "env_run_lists": {"prod": ["role[base]"]},
        }));
        assert_eq!(values(&terms, "recipe"), ["nginx"]);
        assert_eq!(values(&terms, "role"), ["base"]);
        assert_eq!(values(&terms, "prod"), ["role[base]"]);
    }
}
