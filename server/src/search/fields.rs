//! The terms a document is found by, following Chef's expansion (`chef_index_expand`): every
//! leaf is indexed under its key path joined with `_` (`override_attributes_app_port`) and
//! under its own key (`port`); the keys of a nested object are values of the object's own
//! field (`override_attributes:app`); arrays index each element under the array's keys; `null`
//! is the empty value. A role's or environment's run list entries are also `recipe` and `role`.

use std::collections::BTreeSet;

use serde_json::Value;

/// Longest field path or value kept in the index, in bytes. Longer values are indexed by their
/// first bytes (cut at a character boundary); longer field paths only under their own key.
/// PostgreSQL's b-tree refuses entries of more than ~2.7 KB, and a bound here is what keeps a
/// wildcard match over stored text cheap.
pub const MAX_INDEXED_BYTES: usize = 512;

/// One indexed pair. `path` is the full key path joined with `_`; `leaf` the innermost key, so
/// a query on `port` finds `path = "port"` and `leaf = "port"` alike.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Term {
    /// The field, keys joined with `_`.
    pub path: String,
    /// The innermost key.
    pub leaf: String,
    /// The value as text, at most [`MAX_INDEXED_BYTES`].
    pub value: String,
}

/// The terms of one document, deduplicated.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Terms {
    set: BTreeSet<Term>,
}

impl Terms {
    /// The terms of one indexed document.
    pub fn of(doc: &Value) -> Terms {
        let mut terms = Terms::default();
        terms.expand(doc, &mut Vec::new());
        terms
    }

    /// Adds `value` under the top-level field `field`.
    pub fn add(&mut self, field: &str, value: &str) {
        if field.len() > MAX_INDEXED_BYTES {
            return;
        }
        self.set.insert(Term {
            path: field.to_owned(),
            leaf: field.to_owned(),
            value: truncated(value).to_owned(),
        });
    }

    /// Every term.
    pub fn iter(&self) -> impl Iterator<Item = &Term> {
        self.set.iter()
    }

    /// Terms in `self` and not in `other`.
    pub fn difference<'a>(&'a self, other: &'a Terms) -> impl Iterator<Item = &'a Term> {
        self.set.difference(&other.set)
    }

    /// Values under `field` (path or leaf), for matching a built-in document in memory.
    pub fn values<'a>(&'a self, field: &'a str) -> impl Iterator<Item = &'a Term> {
        self.set
            .iter()
            .filter(move |t| t.path == field || t.leaf == field)
    }

    fn expand(&mut self, value: &Value, keys: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    self.pair(keys, key);
                    keys.push(key.clone());
                    self.expand(inner, keys);
                    keys.pop();
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.expand(item, keys);
                }
            }
            Value::String(s) => self.pair(keys, s),
            Value::Null => self.pair(keys, ""),
            other => self.pair(keys, &other.to_string()),
        }
    }

    /// `value` under the joined `keys` and under the innermost key.
    fn pair(&mut self, keys: &[String], value: &str) {
        let Some(leaf) = keys.last() else {
            return;
        };
        if leaf.len() > MAX_INDEXED_BYTES {
            return;
        }
        let joined_len = keys.iter().map(String::len).sum::<usize>() + keys.len() - 1;
        let path = if joined_len > MAX_INDEXED_BYTES {
            // Too long to index under its full path: kept under its own key.
            leaf.clone()
        } else {
            keys.join("_")
        };
        self.set.insert(Term {
            path,
            leaf: leaf.clone(),
            value: truncated(value).to_owned(),
        });
    }
}

/// The first [`MAX_INDEXED_BYTES`] of `value`, cut at a character boundary.
pub fn truncated(value: &str) -> &str {
    if value.len() <= MAX_INDEXED_BYTES {
        return value;
    }
    let mut end = MAX_INDEXED_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// `recipe[x]` → recipe `x`, `role[y]` → role `y`; a bare name is a recipe (as Chef reads run
/// lists).
pub fn run_list_entry(entry: &str) -> Option<(&'static str, &str)> {
    for kind in ["recipe", "role"] {
        if let Some(name) = entry
            .strip_prefix(kind)
            .and_then(|rest| rest.strip_prefix('['))
            .and_then(|rest| rest.strip_suffix(']'))
        {
            return Some((kind, name));
        }
    }
    if entry.contains('[') {
        return None;
    }
    Some(("recipe", entry))
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
    fn nested_keys_are_flattened_and_leaf_keys_kept() {
        let t = Terms::of(&json!({
            "name": "web",
            "override_attributes": {"app": {"port": 8080, "tls": true, "none": null}},
            "tags": ["a", "b"],
            "run_list": ["recipe[nginx::default]", "role[base]"],
        }));
        assert_eq!(values(&t, "name"), ["web"]);
        assert_eq!(values(&t, "override_attributes_app_port"), ["8080"]);
        assert_eq!(values(&t, "port"), ["8080"]);
        assert_eq!(values(&t, "tls"), ["true"]);
        // Chef indexes null as the empty value.
        assert_eq!(values(&t, "none"), [""]);
        assert_eq!(values(&t, "tags"), ["a", "b"]);
        // The keys of a nested object are values of its field.
        assert_eq!(values(&t, "override_attributes"), ["app"]);
        assert_eq!(
            values(&t, "override_attributes_app"),
            ["none", "port", "tls"]
        );
        assert_eq!(values(&t, "app"), ["none", "port", "tls"]);
        assert_eq!(
            values(&t, "run_list"),
            ["recipe[nginx::default]", "role[base]"]
        );
        // A middle key is not a field of its own.
        assert!(values(&t, "app_port").is_empty());
    }

    #[test]
    fn long_values_and_paths_are_bounded() {
        let long_key = "k".repeat(300);
        let t = Terms::of(&json!({
            "v": "é".repeat(400),
            &long_key: {&long_key: "x"},
            "huge": {"k".repeat(600): "y"},
        }));
        let v = values(&t, "v");
        assert!(v[0].len() <= MAX_INDEXED_BYTES && v[0].chars().all(|c| c == 'é'));
        // The 601-byte path is indexed under its innermost key only.
        assert_eq!(values(&t, &long_key), [long_key.clone(), "x".to_owned()]);
        assert!(t.iter().all(|t| t.path.len() <= MAX_INDEXED_BYTES));
        // A 600-byte key is no field, but it is a (cut) value of its parent.
        assert_eq!(values(&t, "huge"), ["k".repeat(MAX_INDEXED_BYTES)]);
        assert!(t.iter().all(|t| t.leaf.len() <= MAX_INDEXED_BYTES));
    }

    #[test]
    fn run_list_entries() {
        assert_eq!(run_list_entry("recipe[a::b]"), Some(("recipe", "a::b")));
        assert_eq!(run_list_entry("role[web]"), Some(("role", "web")));
        assert_eq!(run_list_entry("nginx"), Some(("recipe", "nginx")));
        assert_eq!(run_list_entry("odd[x]"), None);
    }
}
