//! Chef Infra Server checks a request body against declarative rules (erchef's `ej` specs)
//! and words each failure after the kind of rule that failed, not after the object type: a
//! missing field is "Field 'metadata.version' missing" whichever object it is in. The rules
//! and their words live here so every object type answers a bad body in Chef's text.

use serde_json::Value;

use crate::error::ApiError;

/// What one value must be.
#[derive(Debug)]
pub enum Rule {
    /// Anything.
    Any,
    /// A string.
    String,
    /// An object.
    Object,
    /// Exactly this string.
    Exact(String),
    /// A string the predicate accepts (erchef `string_match`).
    Matches(fn(&str) -> bool),
    /// An object whose listed fields follow their rules; other keys are not looked at.
    Fields(Vec<Field>),
    /// An object whose every key passes `keys` and every value follows `values`.
    Map {
        /// The check on each key.
        keys: fn(&str) -> bool,
        /// The rule for each value.
        values: Box<Rule>,
    },
    /// An array whose every element follows the rule.
    Items(Box<Rule>),
    /// A string the predicate accepts; one it refuses is answered with `message` (erchef
    /// `fun_match`).
    Check {
        /// The check.
        ok: fn(&str) -> bool,
        /// Chef's text for a refused value.
        message: &'static str,
    },
}

/// One field of an object rule.
#[derive(Debug)]
pub struct Field {
    key: &'static str,
    required: bool,
    rule: Rule,
}

/// A field that must be present.
pub fn required(key: &'static str, rule: Rule) -> Field {
    Field {
        key,
        required: true,
        rule,
    }
}

/// A field checked only when present.
pub fn optional(key: &'static str, rule: Rule) -> Field {
    Field {
        key,
        required: false,
        rule,
    }
}

/// The first rule a body breaks; `path` is the dotted key (`metadata.dependencies`).
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// A required field is absent.
    Missing(String),
    /// A value differs from the exact value or pattern it must have.
    Mismatch(String),
    /// A value has the wrong JSON type.
    WrongType(String),
    /// An array element breaks the element rule.
    Element(String),
    /// A key of a map breaks the key rule.
    MapKey { path: String, found: String },
    /// A value of a map breaks the value rule.
    MapValue { path: String, found: Value },
    /// A checked string was refused.
    Check(&'static str),
}

/// Checks `body` against `fields`; `Ok` or the first failure, in rule order.
pub fn check(fields: &[Field], body: &Value) -> Result<(), Failure> {
    check_fields(fields, body, "")
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn check_fields(fields: &[Field], object: &Value, prefix: &str) -> Result<(), Failure> {
    for field in fields {
        let path = join(prefix, field.key);
        match object.get(field.key) {
            None if field.required => return Err(Failure::Missing(path)),
            None => {}
            Some(value) => check_value(&field.rule, value, &path)?,
        }
    }
    Ok(())
}

fn check_value(rule: &Rule, value: &Value, path: &str) -> Result<(), Failure> {
    let wrong_type = || Err(Failure::WrongType(path.to_owned()));
    match rule {
        Rule::Any => Ok(()),
        Rule::String if value.is_string() => Ok(()),
        Rule::Object if value.is_object() => Ok(()),
        Rule::String | Rule::Object => wrong_type(),
        Rule::Exact(expected) => match value.as_str() {
            Some(s) if s == expected => Ok(()),
            _ => Err(Failure::Mismatch(path.to_owned())),
        },
        Rule::Matches(ok) => match value.as_str() {
            Some(s) if ok(s) => Ok(()),
            Some(_) => Err(Failure::Mismatch(path.to_owned())),
            None => wrong_type(),
        },
        Rule::Fields(fields) if value.is_object() => check_fields(fields, value, path),
        Rule::Map { keys, values } => {
            let Some(map) = value.as_object() else {
                return wrong_type();
            };
            for (key, item) in map {
                if !keys(key) {
                    return Err(Failure::MapKey {
                        path: path.to_owned(),
                        found: key.clone(),
                    });
                }
                if check_value(values, item, path).is_err() {
                    return Err(Failure::MapValue {
                        path: path.to_owned(),
                        found: item.clone(),
                    });
                }
            }
            Ok(())
        }
        Rule::Items(item_rule) => {
            let Some(items) = value.as_array() else {
                return wrong_type();
            };
            match items
                .iter()
                .all(|i| check_value(item_rule, i, path).is_ok())
            {
                true => Ok(()),
                false => Err(Failure::Element(path.to_owned())),
            }
        }
        Rule::Check { ok, message } => match value.as_str() {
            Some(s) if ok(s) => Ok(()),
            Some(_) => Err(Failure::Check(message)),
            None => wrong_type(),
        },
        Rule::Fields(_) => wrong_type(),
    }
}

/// Attribute fields whose wrong type Chef words as "is not a hash".
const HASH_FIELDS: [&str; 7] = [
    "override_attributes",
    "default_attributes",
    "normal",
    "default",
    "override",
    "automatic",
    "cookbook_versions",
];

impl Failure {
    /// Chef's text for this failure (erchef `chef_wm_malformed`, and the cookbook resource's
    /// own wording for a bad array element).
    pub fn message(&self) -> String {
        match self {
            Failure::Missing(path) => format!("Field '{path}' missing"),
            Failure::Mismatch(path) => format!("Field '{path}' invalid"),
            Failure::WrongType(path) if HASH_FIELDS.contains(&path.as_str()) => {
                format!("Field '{path}' is not a hash")
            }
            Failure::WrongType(path) | Failure::Element(path) if path == "run_list" => {
                "Field 'run_list' is not a valid run list".to_owned()
            }
            Failure::WrongType(path) | Failure::MapValue { path, .. }
                if path == "env_run_lists" =>
            {
                "Field 'env_run_lists' contains invalid run lists".to_owned()
            }
            Failure::WrongType(path) => format!("Field '{path}' invalid"),
            Failure::Element(path) => format!("Invalid element in array value of '{path}'."),
            Failure::MapKey { path, found } => format!("Invalid key '{found}' for {path}"),
            Failure::MapValue { path, found } => {
                format!("Invalid value '{}' for {path}", erlang_term(found))
            }
            Failure::Check(message) => (*message).to_owned(),
        }
    }
}

impl From<Failure> for ApiError {
    fn from(f: Failure) -> ApiError {
        ApiError::BadRequest(f.message())
    }
}

/// A JSON value the way erchef prints it into a message: strings as they are, anything else
/// as the Erlang term its JSON library decodes it to (`{}` is `{[]}`).
fn erlang_term(value: &Value) -> String {
    fn term(value: &Value) -> String {
        match value {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::String(s) => format!("<<\"{s}\">>"),
            Value::Array(items) => {
                format!("[{}]", items.iter().map(term).collect::<Vec<_>>().join(","))
            }
            Value::Object(map) => format!(
                "{{[{}]}}",
                map.iter()
                    .map(|(k, v)| format!("{{<<\"{k}\">>,{}}}", term(v)))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
    match value {
        Value::String(s) => s.clone(),
        other => term(other),
    }
}

/// Chef's check that a body has no key outside `allowed`: "Invalid key K in request body".
pub fn only_keys(body: &Value, allowed: &[&str]) -> Result<(), ApiError> {
    match body
        .as_object()
        .and_then(|map| map.keys().find(|k| !allowed.contains(&k.as_str())))
    {
        Some(key) => Err(ApiError::BadRequest(format!(
            "Invalid key {key} in request body"
        ))),
        None => Ok(()),
    }
}

/// Sets each absent `(key, value)` of `defaults` on the body, as Chef does before checking.
pub fn fill_defaults(body: &mut Value, defaults: &[(&str, Value)]) {
    if let Some(map) = body.as_object_mut() {
        for (key, value) in defaults {
            if !map.contains_key(*key) {
                map.insert((*key).to_owned(), value.clone());
            }
        }
    }
}

/// `[.A-Za-z0-9_-]+`: erchef's name pattern for cookbooks and environments.
pub fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `[.A-Za-z0-9_:-]+`: erchef's pattern for role, node, data bag and item names.
pub fn role_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

/// A cookbook version as erchef accepts it: one to three dot-separated whole numbers, each at
/// most 2^63-1, the largest a PostgreSQL bigint holds. (erchef also lets a `+` sign through
/// Erlang's integer parser; nothing writes one, and the solver would not read it.)
pub fn chef_version(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    (1..=3).contains(&parts.len())
        && parts.iter().all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_digit())
                && part.parse::<i64>().is_ok()
        })
}

/// A version constraint as erchef accepts it: `OP VERSION` with exactly one space after one of
/// `<`, `>`, `<=`, `>=`, `~>`, `=`, or a bare version.
pub fn chef_constraint(s: &str) -> bool {
    let version = ["< ", "> ", "<= ", ">= ", "~> ", "= "]
        .iter()
        .find_map(|op| s.strip_prefix(op))
        .unwrap_or(s);
    chef_version(version)
}

/// erchef's rule for a map of cookbook names to version constraints (environment
/// `cookbook_versions`, cookbook metadata `dependencies` and `platforms`).
pub fn constraint_map() -> Rule {
    Rule::Map {
        keys: plain_name,
        values: Box::new(Rule::Check {
            ok: chef_constraint,
            message: "Invalid version constraint",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> Vec<Field> {
        vec![
            required("name", Rule::Exact("a-1.0.0".into())),
            required(
                "metadata",
                Rule::Fields(vec![
                    required("version", Rule::Exact("1.0.0".into())),
                    optional("name", Rule::Matches(plain_name)),
                    optional("dependencies", constraint_map()),
                ]),
            ),
            optional(
                "recipes",
                Rule::Items(Box::new(Rule::Fields(vec![required("name", Rule::String)]))),
            ),
            optional("default_attributes", Rule::Object),
        ]
    }

    fn fails(body: Value) -> String {
        check(&rules(), &body).unwrap_err().message()
    }

    #[test]
    fn failures_are_worded_as_chef_words_them() {
        let good = json!({"name": "a-1.0.0", "metadata": {"version": "1.0.0"}});
        assert_eq!(check(&rules(), &good), Ok(()));
        assert_eq!(fails(json!({})), "Field 'name' missing");
        assert_eq!(fails(json!({"name": 1})), "Field 'name' invalid");
        assert_eq!(
            fails(json!({"name": "a-1.0.0", "metadata": {}})),
            "Field 'metadata.version' missing"
        );
        assert_eq!(
            fails(json!({"name": "a-1.0.0", "metadata": []})),
            "Field 'metadata' invalid"
        );
        assert_eq!(
            fails(json!({"name": "a-1.0.0", "metadata": {"version": "1.0.0", "name": "a b"}})),
            "Field 'metadata.name' invalid"
        );
        let dep = |d: Value| json!({"name": "a-1.0.0", "metadata": {"version": "1.0.0", "dependencies": d}});
        assert_eq!(
            fails(dep(json!("foo"))),
            "Field 'metadata.dependencies' invalid"
        );
        assert_eq!(
            fails(dep(json!({"apt": ">= 1.2.3.4"}))),
            "Invalid value '>= 1.2.3.4' for metadata.dependencies"
        );
        assert_eq!(
            fails(dep(json!({"apt": {}}))),
            "Invalid value '{[]}' for metadata.dependencies"
        );
        assert_eq!(
            fails(dep(json!({"a b": "1.0"}))),
            "Invalid key 'a b' for metadata.dependencies"
        );
        let base = json!({"name": "a-1.0.0", "metadata": {"version": "1.0.0"}});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        assert_eq!(
            fails(with("recipes", json!([{}]))),
            "Invalid element in array value of 'recipes'."
        );
        assert_eq!(
            fails(with("recipes", json!("x"))),
            "Field 'recipes' invalid"
        );
        assert_eq!(
            fails(with("default_attributes", json!("x"))),
            "Field 'default_attributes' is not a hash"
        );
    }

    #[test]
    fn erlang_terms() {
        assert_eq!(erlang_term(&json!("x")), "x");
        assert_eq!(erlang_term(&json!({})), "{[]}");
        assert_eq!(
            erlang_term(&json!({"a": [1, "b"]})),
            "{[{<<\"a\">>,[1,<<\"b\">>]}]}"
        );
    }

    #[test]
    fn versions_and_constraints_follow_erchef() {
        for ok in ["1", "1.2", "1.2.3", "01.2", "9223372036854775807.0"] {
            assert!(chef_version(ok), "{ok}");
        }
        for bad in [
            "",
            "1.2.3.4",
            "a.b",
            "1..2",
            "-1.0",
            "+1.0",
            "9223372036854775808",
            "1. 2",
        ] {
            assert!(!chef_version(bad), "{bad}");
        }
        for ok in ["> 1", "~> 5.6.2", "= 7", "3.3", ">= 6.0"] {
            assert!(chef_constraint(ok), "{ok}");
        }
        for bad in [
            ">=1.0.0",
            ">=  1.0.0",
            " >= 1.0.0",
            ">= 1.2.9223372036854775849",
            "s395dss@#",
        ] {
            assert!(!chef_constraint(bad), "{bad}");
        }
    }

    #[test]
    fn unknown_keys_and_defaults() {
        let mut body = json!({"name": "x", "bogus": 1});
        assert_eq!(
            only_keys(&body, &["name"]).unwrap_err().to_string(),
            "Invalid key bogus in request body"
        );
        fill_defaults(
            &mut body,
            &[("name", json!("y")), ("json_class", json!("C"))],
        );
        assert_eq!(body["name"], "x");
        assert_eq!(body["json_class"], "C");
    }
}
