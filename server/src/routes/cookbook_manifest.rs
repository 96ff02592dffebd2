//! What a cookbook version PUT must be, checked in erchef's order (URL version, URL name,
//! defaults, allowed keys, body rules), each failure in Chef's words.

use chef_sync_shared::ObjectPath;
use chef_sync_shared::objects::{CookbookVersion, SEGMENTS};
use serde_json::{Value, json};

use crate::api_version::ApiVersion;
use crate::body_rules::{self, Field, Rule, optional, required};
use crate::error::{ApiError, ApiResult};

/// Top-level keys of a v0/v1 manifest besides the segments.
const KEYS: [&str; 7] = [
    "chef_type",
    "cookbook_name",
    "frozen?",
    "json_class",
    "metadata",
    "name",
    "version",
];

/// The top-level keys of a manifest in the API version's form.
fn allowed_keys(api: ApiVersion) -> Vec<&'static str> {
    let files: &[&'static str] = if api.0 >= 2 {
        &["all_files"]
    } else {
        &SEGMENTS
    };
    KEYS.iter().chain(files).copied().collect()
}

/// The version in a cookbook URL; Chef's 400 when it is not one.
pub(super) fn url_version_ok(version: &str) -> ApiResult<()> {
    match body_rules::chef_version(version) {
        true => Ok(()),
        false => Err(ApiError::BadRequest(format!(
            "Invalid cookbook version '{version}'."
        ))),
    }
}

/// The object a PUT to `/cookbooks/NAME/VERSION` writes, with Chef's 400s for a bad version
/// (checked first, as erchef does) or name.
pub(super) fn put_path(name: &str, version: &str) -> ApiResult<ObjectPath> {
    url_version_ok(version)?;
    if !body_rules::plain_name(name) {
        return Err(ApiError::BadRequest(format!(
            "Invalid cookbook name '{name}' using regex: 'Malformed cookbook name. Must only \
             contain A-Z, a-z, 0-9, _, . or -'."
        )));
    }
    Ok(ObjectPath::cookbook_version(name, version)?)
}

/// erchef's rule for a list of cookbook files.
pub(super) fn file_list() -> Rule {
    Rule::Items(Box::new(Rule::Fields(vec![
        required("name", Rule::String),
        required("path", Rule::String),
        required("checksum", Rule::String),
        required("specificity", Rule::String),
    ])))
}

/// erchef's `cookbook_spec` (v0/v1) and `cookbook_spec_v2`.
fn rules(name: &str, version: &str, api: ApiVersion) -> Vec<Field> {
    let mut metadata = vec![
        required("version", Rule::Exact(version.to_owned())),
        optional("name", Rule::Matches(body_rules::plain_name)),
        optional("description", Rule::String),
        optional("long_description", Rule::String),
        optional("maintainer", Rule::String),
        optional("maintainer_email", Rule::String),
        optional("license", Rule::String),
        optional("platforms", body_rules::constraint_map()),
        optional("dependencies", body_rules::constraint_map()),
    ];
    let mut fields = vec![
        required("name", Rule::Exact(format!("{name}-{version}"))),
        required("cookbook_name", Rule::Exact(name.to_owned())),
        required("json_class", Rule::Exact("Chef::CookbookVersion".into())),
        required("chef_type", Rule::Exact("cookbook_version".into())),
    ];
    if api.0 >= 2 {
        fields.push(required("metadata", Rule::Fields(metadata)));
        fields.push(optional("all_files", file_list()));
    } else {
        for map in ["recommendations", "suggestions", "conflicting", "replacing"] {
            metadata.push(optional(map, body_rules::constraint_map()));
        }
        metadata.push(optional("groupings", Rule::Object));
        fields.push(required("metadata", Rule::Fields(metadata)));
        fields.extend(SEGMENTS.iter().map(|s| optional(s, file_list())));
    }
    fields.push(optional("version", Rule::Exact(version.to_owned())));
    fields
}

/// Checks a manifest PUT the way Chef does and returns it as sent (defaults filled in,
/// download URLs dropped, checksums in lower case): Chef stores and answers the form the
/// client used.
pub(super) fn prepare(
    body: &[u8],
    name: &str,
    version: &str,
    api: ApiVersion,
) -> ApiResult<CookbookVersion> {
    let mut value: Value = super::parse_json(body)?;
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "cookbook version must be a JSON object".into(),
        ));
    }
    body_rules::fill_defaults(
        &mut value,
        &[
            ("json_class", json!("Chef::CookbookVersion")),
            ("chef_type", json!("cookbook_version")),
            ("frozen?", json!(false)),
        ],
    );
    body_rules::only_keys(&value, &allowed_keys(api))?;
    body_rules::check(&rules(name, version, api), &value)?;
    let Value::Object(map) = value else {
        return Err(ApiError::Internal("checked body is not an object".into()));
    };
    let mut cb = CookbookVersion::try_from(map).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    cb.strip_urls();
    cb.lowercase_checksums();
    Ok(cb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Value {
        json!({
            "name": "apt-1.2.3", "cookbook_name": "apt", "version": "1.2.3",
            "metadata": {"name": "apt", "version": "1.2.3", "dependencies": {"b": "> 1"}},
            "recipes": [{"name": "default.rb", "path": "recipes/default.rb",
                         "checksum": "0123456789ABCDEF0123456789abcdef", "specificity": "default",
                         "url": "http://elsewhere/x"}]
        })
    }

    fn put(body: &Value, api: i64) -> ApiResult<CookbookVersion> {
        prepare(body.to_string().as_bytes(), "apt", "1.2.3", ApiVersion(api))
    }

    fn error(body: &Value, api: i64) -> String {
        put(body, api).unwrap_err().to_string()
    }

    #[test]
    fn keeps_the_form_sent_with_defaults() {
        let cb = put(&manifest(), 0).unwrap();
        let out = serde_json::to_value(&cb).unwrap();
        assert_eq!(out["json_class"], "Chef::CookbookVersion");
        assert_eq!(out["frozen?"], false);
        assert!(out.get("templates").is_none(), "only the segments sent");
        assert_eq!(
            out["recipes"][0]["checksum"],
            "0123456789abcdef0123456789abcdef"
        );
        assert!(out["recipes"][0].get("url").is_none());
    }

    #[test]
    fn chef_wording_for_each_rule() {
        let with = |k: &str, v: Value| {
            let mut b = manifest();
            b[k] = v;
            b
        };
        assert_eq!(
            error(&with("bogus", json!(1)), 0),
            "Invalid key bogus in request body"
        );
        assert_eq!(
            error(&with("all_files", json!([])), 0),
            "Invalid key all_files in request body"
        );
        assert_eq!(
            error(&with("recipes", json!([])), 2),
            "Invalid key recipes in request body"
        );
        assert_eq!(
            error(&with("cookbook_name", json!(1)), 0),
            "Field 'cookbook_name' invalid"
        );
        assert_eq!(
            error(&with("json_class", json!("Chef::Role")), 0),
            "Field 'json_class' invalid"
        );
        assert_eq!(
            error(&with("version", json!("0.0")), 0),
            "Field 'version' invalid"
        );
        assert_eq!(
            error(&with("metadata", json!({})), 0),
            "Field 'metadata.version' missing"
        );
        assert_eq!(
            error(&with("templates", json!([{"foo": "bar"}])), 0),
            "Invalid element in array value of 'templates'."
        );
        assert_eq!(
            error(
                &with("all_files", json!("x"))
                    .as_object()
                    .map(|m| {
                        let mut m = m.clone();
                        m.remove("recipes");
                        Value::Object(m)
                    })
                    .unwrap(),
                2
            ),
            "Field 'all_files' invalid"
        );
        let mut deps = manifest();
        deps["metadata"]["dependencies"] = json!({"apt": ">= 1.2.3.4"});
        assert_eq!(
            error(&deps, 0),
            "Invalid value '>= 1.2.3.4' for metadata.dependencies"
        );
        let mut missing = manifest();
        missing.as_object_mut().unwrap().remove("cookbook_name");
        assert_eq!(error(&missing, 0), "Field 'cookbook_name' missing");
    }

    #[test]
    fn url_checks_come_first_and_in_chefs_words() {
        assert_eq!(
            put_path("apt", "1.2.3.4").unwrap_err().to_string(),
            "Invalid cookbook version '1.2.3.4'."
        );
        assert_eq!(
            put_path("first@second", "abc").unwrap_err().to_string(),
            "Invalid cookbook version 'abc'."
        );
        assert!(
            put_path("first@second", "1.0.0")
                .unwrap_err()
                .to_string()
                .starts_with("Invalid cookbook name 'first@second' using regex")
        );
        assert!(put_path("apt", "1").is_ok());
    }
}
