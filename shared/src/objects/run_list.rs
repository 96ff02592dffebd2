//! Run-list items: `recipe[cb]`, `recipe[cb::r@1.2.3]`, `role[name]`, or a bare recipe name.

/// A run-list item that does not match Chef's forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid run list item '{0}'")]
pub struct RunListError(pub String);

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_name_char)
}

fn is_version_constraint(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `cb`, `cb::recipe`, optionally followed by `@x.y` or `@x.y.z`.
fn is_recipe(s: &str) -> bool {
    let (name, version) = match s.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (s, None),
    };
    if version.is_some_and(|v| !is_version_constraint(v)) {
        return false;
    }
    match name.split_once("::") {
        Some((cb, recipe)) => is_name(cb) && is_name(recipe),
        None => is_name(name),
    }
}

/// Validates and normalises a run list the way a Chef server does on write: a bare `foo`
/// becomes `recipe[foo]`, and exact duplicates after that are removed (first one kept).
pub fn normalize_run_list(items: &[String]) -> Result<Vec<String>, RunListError> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let normalised = if let Some(inner) = item
            .strip_prefix("recipe[")
            .and_then(|r| r.strip_suffix(']'))
        {
            if !is_recipe(inner) {
                return Err(RunListError(item.clone()));
            }
            item.clone()
        } else if let Some(inner) = item.strip_prefix("role[").and_then(|r| r.strip_suffix(']')) {
            if !is_name(inner) {
                return Err(RunListError(item.clone()));
            }
            item.clone()
        } else if is_recipe(item) {
            format!("recipe[{item}]")
        } else {
            return Err(RunListError(item.clone()));
        };
        if !out.contains(&normalised) {
            out.push(normalised);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn normalises_bare_names_and_duplicates() {
        let got = normalize_run_list(&v(&[
            "nginx",
            "recipe[nginx]",
            "role[base]",
            "nginx::ssl@1.2.3",
            "role[base]",
        ]))
        .unwrap();
        assert_eq!(
            got,
            v(&["recipe[nginx]", "role[base]", "recipe[nginx::ssl@1.2.3]"])
        );
    }

    #[test]
    fn rejects_malformed_items() {
        for bad in [
            "role[a:b]",
            "recipe[]",
            "recipe[a@1]",
            "recipe[a@1.2.3.4]",
            "node[x]",
            "a b",
            "",
            "role[x",
        ] {
            assert!(normalize_run_list(&v(&[bad])).is_err(), "{bad}");
        }
    }
}
