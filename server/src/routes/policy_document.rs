//! What a policy revision document must be (the body of `POST /policies/N/revisions` and of
//! `PUT /policy_groups/G/policies/N`), checked in erchef's order with its texts. Only the
//! fields a chef-client relies on are checked; the rest (`named_run_lists`,
//! `solution_dependencies`, attributes, unknown keys) is kept as sent, as Chef keeps it.

use serde_json::{Map, Value};

use crate::body_rules::{self, Failure, Field, Rule, required};
use crate::error::{ApiError, ApiResult};

/// `[.A-Za-z0-9_:-]{1,255}`: erchef's pattern for policy names, revision ids and cookbook
/// lock identifiers.
pub(super) fn name255(s: &str) -> bool {
    s.len() <= 255 && body_rules::role_name(s)
}

/// `recipe[COOKBOOK::RECIPE]`, the only run-list item a policy has.
fn policy_run_list_item(item: &str) -> bool {
    item.strip_prefix("recipe[")
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.split_once("::"))
        .is_some_and(|(cookbook, recipe)| {
            body_rules::plain_name(cookbook) && body_rules::plain_name(recipe)
        })
}

fn document_rules() -> Vec<Field> {
    vec![
        required("revision_id", Rule::Matches(name255)),
        required("name", Rule::Matches(name255)),
        required(
            "run_list",
            Rule::Items(Box::new(Rule::Check {
                ok: policy_run_list_item,
                message: "Invalid run list entry",
            })),
        ),
        required("cookbook_locks", Rule::Object),
    ]
}

fn lock_rules() -> Vec<Field> {
    vec![
        required("identifier", Rule::Matches(name255)),
        body_rules::optional(
            "dotted_decimal_identifier",
            Rule::Check {
                ok: body_rules::chef_constraint,
                message: "Field 'dotted_decimal_identifier' is not a valid version",
            },
        ),
        required(
            "version",
            Rule::Check {
                ok: body_rules::chef_constraint,
                message: "Field 'version' is not a valid version",
            },
        ),
    ]
}

/// A checked policy document for policy `url_name`: the document as sent (what the write
/// answers) and its revision id.
pub(super) struct PolicyDocument {
    /// The document as sent.
    pub sent: Map<String, Value>,
    /// `revision_id`.
    pub revision: String,
}

impl PolicyDocument {
    /// What is stored: the document without `policy_group` (which names where it was pushed,
    /// not what it is), as erchef stores it.
    pub fn stored(&self) -> String {
        let mut doc = self.sent.clone();
        doc.remove("policy_group");
        Value::Object(doc).to_string()
    }
}

/// Checks a policy document sent for policy `url_name`.
pub(super) fn check(body: &[u8], url_name: &str) -> ApiResult<PolicyDocument> {
    let value: Value = super::parse_json(body)?;
    let Value::Object(map) = &value else {
        return Err(ApiError::BadRequest(
            "Incorrect JSON type for request body".into(),
        ));
    };
    body_rules::check(&document_rules(), &value)?;
    if let Some(Value::Object(locks)) = map.get("cookbook_locks") {
        for (cookbook, lock) in locks {
            if !body_rules::plain_name(cookbook) {
                return Err(Failure::MapKey {
                    path: "cookbook_locks".into(),
                    found: cookbook.clone(),
                }
                .into());
            }
            if !lock.is_object() {
                return Err(Failure::MapValue {
                    path: "cookbook_locks".into(),
                    found: lock.clone(),
                }
                .into());
            }
            body_rules::check(&lock_rules(), lock)?;
        }
    }
    let name = map.get("name").and_then(Value::as_str).unwrap_or_default();
    if name != url_name {
        return Err(ApiError::BadRequest(format!(
            "Field 'name' invalid : {url_name} does not match {name}"
        )));
    }
    let revision = map
        .get("revision_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let Value::Object(sent) = value else {
        return Err(ApiError::Internal("checked body is not an object".into()));
    };
    Ok(PolicyDocument { sent, revision })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({
            "revision_id": "909c26701e291510eacdc6c06d626b9fa5350d25",
            "name": "some_policy_name",
            "run_list": ["recipe[policyfile_demo::default]"],
            "cookbook_locks": {"policyfile_demo": {
                "identifier": "f04cc40faf628253fe7d9566d66a1733fb1afbe9", "version": "1.2.3"}},
            "policy_group": "dev",
        })
    }

    fn error(doc: &Value) -> String {
        match check(doc.to_string().as_bytes(), "some_policy_name") {
            Ok(_) => "accepted".into(),
            Err(e) => e.to_string(),
        }
    }

    fn with(path: &[&str], value: Option<Value>) -> Value {
        let mut doc = minimal();
        let (last, parents) = path.split_last().unwrap();
        let mut target = &mut doc;
        for p in parents {
            target = &mut target[*p];
        }
        match value {
            Some(v) => target[*last] = v,
            None => {
                target.as_object_mut().unwrap().remove(*last);
            }
        }
        doc
    }

    #[test]
    fn a_policy_document_is_checked_in_erchefs_order_and_words() {
        let ok = check(minimal().to_string().as_bytes(), "some_policy_name").unwrap();
        assert_eq!(ok.revision, "909c26701e291510eacdc6c06d626b9fa5350d25");
        assert!(!ok.stored().contains("policy_group"));
        assert_eq!(ok.sent["policy_group"], "dev");
        let lock = ["cookbook_locks", "policyfile_demo"];
        for (doc, text) in [
            (with(&["revision_id"], None), "Field 'revision_id' missing"),
            (
                with(&["revision_id"], Some(json!("f".repeat(256)))),
                "Field 'revision_id' invalid",
            ),
            (
                with(&["revision_id"], Some(json!("a b"))),
                "Field 'revision_id' invalid",
            ),
            (with(&["name"], None), "Field 'name' missing"),
            (
                with(&["name"], Some(json!("monkeypants"))),
                "Field 'name' invalid : some_policy_name does not match monkeypants",
            ),
            (with(&["run_list"], None), "Field 'run_list' missing"),
            (
                with(&["run_list"], Some(json!({}))),
                "Field 'run_list' is not a valid run list",
            ),
            (
                with(&["run_list"], Some(json!(["recipe[foo]"]))),
                "Field 'run_list' is not a valid run list",
            ),
            (
                with(&["run_list"], Some(json!(["role[foo]"]))),
                "Field 'run_list' is not a valid run list",
            ),
            (
                with(&["cookbook_locks"], None),
                "Field 'cookbook_locks' missing",
            ),
            (
                with(&["cookbook_locks"], Some(json!([]))),
                "Field 'cookbook_locks' invalid",
            ),
            (
                with(&["cookbook_locks", "bad"], Some(json!([]))),
                "Invalid value '[]' for cookbook_locks",
            ),
            (
                with(&lock, Some(json!({"dotted_decimal_identifier": "1.2.3"}))),
                "Field 'identifier' missing",
            ),
            (
                with(
                    &lock,
                    Some(json!({"identifier": "a".repeat(256), "version": "1.2.3"})),
                ),
                "Field 'identifier' invalid",
            ),
            (
                with(
                    &lock,
                    Some(json!({"identifier": "123def", "version": "1.2.3",
                                "dotted_decimal_identifier": "foo"})),
                ),
                "Field 'dotted_decimal_identifier' is not a valid version",
            ),
            (
                with(&lock, Some(json!({"identifier": "123def"}))),
                "Field 'version' missing",
            ),
        ] {
            assert_eq!(error(&doc), text, "{doc}");
        }
        assert_eq!(
            error(&with(&["run_list"], Some(json!([])))),
            "accepted",
            "an empty run list is a run list"
        );
    }
}
