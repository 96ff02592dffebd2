//! The fields an object is searchable by, following Chef's flattening: every leaf is indexed
//! under its full key path joined with `_` (`override_attributes_app_port`) and under its own
//! key (`port`); arrays index each element under the array's keys; a role's or environment's
//! run list entries are also indexed as `recipe` and `role`.

use std::collections::HashMap;

use serde_json::Value;

/// Field name → values, as text.
#[derive(Debug, Default)]
pub struct Fields {
    values: HashMap<String, Vec<String>>,
}

impl Fields {
    /// The fields of one indexed document.
    pub fn of(doc: &Value) -> Fields {
        let mut fields = Fields::default();
        fields.walk(doc, &mut Vec::new());
        fields
    }

    /// Adds one value under `field`.
    pub fn add(&mut self, field: &str, value: String) {
        self.values.entry(field.to_owned()).or_default().push(value);
    }

    /// The values under `field` (`*` as the field: every value).
    pub fn values<'a>(&'a self, field: &str) -> Box<dyn Iterator<Item = &'a str> + 'a> {
        if field == "*" {
            return Box::new(self.values.values().flatten().map(String::as_str));
        }
        Box::new(
            self.values
                .get(field)
                .into_iter()
                .flatten()
                .map(String::as_str),
        )
    }

    fn walk(&mut self, value: &Value, keys: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    keys.push(key.clone());
                    self.walk(inner, keys);
                    keys.pop();
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.walk(item, keys);
                }
            }
            leaf => {
                let text = match leaf {
                    Value::String(s) => s.clone(),
                    Value::Null => return,
                    other => other.to_string(),
                };
                if keys.is_empty() {
                    return;
                }
                if keys.len() > 1
                    && let Some(last) = keys.last()
                {
                    self.add(&keys.join("_"), text.clone());
                    self.add(last, text.clone());
                } else {
                    self.add(&keys[0], text.clone());
                }
                if keys
                    .first()
                    .is_some_and(|k| k == "run_list" || k == "env_run_lists")
                {
                    self.run_list_entry(&text);
                }
            }
        }
    }

    fn run_list_entry(&mut self, entry: &str) {
        for kind in ["recipe", "role"] {
            if let Some(name) = entry
                .strip_prefix(kind)
                .and_then(|rest| rest.strip_prefix('['))
                .and_then(|rest| rest.strip_suffix(']'))
            {
                self.add(kind, name.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(fields: &Fields, field: &str) -> Vec<String> {
        let mut v: Vec<String> = fields.values(field).map(str::to_owned).collect();
        v.sort();
        v
    }

    #[test]
    fn nested_keys_are_flattened_and_leaf_keys_kept() {
        let f = Fields::of(&json!({
            "name": "web",
            "override_attributes": {"app": {"port": 8080, "tls": true, "none": null}},
            "tags": ["a", "b"],
            "run_list": ["recipe[nginx::default]", "role[base]"],
        }));
        assert_eq!(values(&f, "name"), ["web"]);
        assert_eq!(values(&f, "override_attributes_app_port"), ["8080"]);
        assert_eq!(values(&f, "port"), ["8080"]);
        assert_eq!(values(&f, "tls"), ["true"]);
        assert!(values(&f, "none").is_empty());
        assert_eq!(values(&f, "tags"), ["a", "b"]);
        assert_eq!(values(&f, "recipe"), ["nginx::default"]);
        assert_eq!(values(&f, "role"), ["base"]);
        assert_eq!(
            values(&f, "run_list"),
            ["recipe[nginx::default]", "role[base]"]
        );
        assert!(values(&f, "*").contains(&"web".to_owned()));
    }
}
