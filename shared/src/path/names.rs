//! Chef's name rules (erchef `chef_regex`), ASCII only and anchored at both ends.

use super::PathError;

/// The kinds of names Chef validates, each with its own character set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// Role: `[.[:alnum:]_:-]+`.
    Role,
    /// Environment: `[.[:alnum:]_-]+` (no `:`).
    Environment,
    /// Data bag: `[.[:alnum:]_:-]+`.
    DataBag,
    /// Data bag item id: `[.[:alnum:]_:-]+`.
    DataBagItem,
    /// Cookbook: `[.[:alnum:]_-]+` (no `:`).
    Cookbook,
    /// Node: `[.[:alnum:]_:-]+`.
    Node,
    /// Client: `[.[:alnum:]_-]+` (no `:`).
    Client,
    /// Key name: `[.[:alnum:]_:-]+`.
    Key,
    /// User: `[a-z0-9_-]+`.
    User,
    /// Organization: `[a-z0-9][a-z0-9_-]{0,254}`.
    Organization,
    /// Policy (Policyfile): `[.[:alnum:]_:-]+`.
    Policy,
    /// Policy revision id: `[.[:alnum:]_:-]+`.
    PolicyRevision,
    /// Policy group: `[.[:alnum:]_:-]+`.
    PolicyGroup,
    /// Cookbook artifact name: `[.[:alnum:]_:-]+`.
    CookbookArtifact,
    /// Cookbook artifact identifier: `[.[:alnum:]_:-]+`.
    ArtifactIdentifier,
}

impl NameKind {
    fn label(self) -> &'static str {
        match self {
            NameKind::Role => "role",
            NameKind::Environment => "environment",
            NameKind::DataBag => "data bag",
            NameKind::DataBagItem => "data bag item",
            NameKind::Cookbook => "cookbook",
            NameKind::Node => "node",
            NameKind::Client => "client",
            NameKind::Key => "key",
            NameKind::User => "user",
            NameKind::Organization => "organization",
            NameKind::Policy => "policy",
            NameKind::PolicyRevision => "policy revision",
            NameKind::PolicyGroup => "policy group",
            NameKind::CookbookArtifact => "cookbook artifact",
            NameKind::ArtifactIdentifier => "cookbook artifact identifier",
        }
    }

    fn rule(self) -> &'static str {
        match self {
            NameKind::Role
            | NameKind::DataBag
            | NameKind::DataBagItem
            | NameKind::Node
            | NameKind::Key
            | NameKind::Policy
            | NameKind::PolicyRevision
            | NameKind::PolicyGroup
            | NameKind::CookbookArtifact
            | NameKind::ArtifactIdentifier => "1 to 255 letters, digits, '.', '_', ':' and '-'",
            NameKind::Environment | NameKind::Cookbook | NameKind::Client => {
                "1 to 255 letters, digits, '.', '_' and '-'"
            }
            NameKind::User => "1 to 255 lowercase letters, digits, '_' and '-'",
            NameKind::Organization => {
                "1 to 255 lowercase letters, digits, '_' and '-', starting with a letter or digit"
            }
        }
    }

    fn allows(self, c: char) -> bool {
        match self {
            NameKind::Role
            | NameKind::DataBag
            | NameKind::DataBagItem
            | NameKind::Node
            | NameKind::Key
            | NameKind::Policy
            | NameKind::PolicyRevision
            | NameKind::PolicyGroup
            | NameKind::CookbookArtifact
            | NameKind::ArtifactIdentifier => {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
            }
            NameKind::Environment | NameKind::Cookbook | NameKind::Client => {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
            }
            NameKind::User | NameKind::Organization => {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-')
            }
        }
    }
}

/// Longest name of any kind, in bytes: the width of Chef Infra Server's name columns, and a
/// bound on what a hostile client can make every listing carry.
pub const MAX_NAME_LEN: usize = 255;

/// Checks `name` against Chef's rule for `kind`. The names `.` and `..` are refused for every
/// kind: they would address a different URL than the object.
pub fn validate_name(kind: NameKind, name: &str) -> Result<(), PathError> {
    let invalid = || PathError::InvalidName {
        kind: kind.label(),
        // A hostile name is not echoed back whole.
        name: match name.char_indices().nth(64) {
            Some((cut, _)) => format!("{}…", &name[..cut]),
            None => name.to_owned(),
        },
        rule: kind.rule(),
    };
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name == "."
        || name == ".."
        || !name.chars().all(|c| kind.allows(c))
    {
        return Err(invalid());
    }
    if kind == NameKind::Organization {
        let first_ok = name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !first_ok {
            return Err(invalid());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bounded() {
        validate_name(NameKind::Role, &"a".repeat(MAX_NAME_LEN)).unwrap();
        assert!(validate_name(NameKind::Role, &"a".repeat(MAX_NAME_LEN + 1)).is_err());
        let err = validate_name(NameKind::DataBagItem, &"a".repeat(10_000)).unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
    }

    #[test]
    fn colon_only_where_chef_allows_it() {
        for kind in [
            NameKind::Role,
            NameKind::DataBag,
            NameKind::DataBagItem,
            NameKind::Node,
            NameKind::Key,
        ] {
            validate_name(kind, "a:b").unwrap();
        }
        for kind in [NameKind::Environment, NameKind::Cookbook, NameKind::Client] {
            assert!(validate_name(kind, "a:b").is_err());
            validate_name(kind, "A.b_c-1").unwrap();
        }
    }

    #[test]
    fn users_and_orgs_are_lowercase() {
        validate_name(NameKind::User, "ec_sync_user").unwrap();
        assert!(validate_name(NameKind::User, "Alice").is_err());
        validate_name(NameKind::Organization, "acme-1").unwrap();
        assert!(validate_name(NameKind::Organization, "-acme").is_err());
        assert!(validate_name(NameKind::Organization, "_acme").is_err());
        assert!(validate_name(NameKind::Organization, &"a".repeat(256)).is_err());
        validate_name(NameKind::Organization, &"a".repeat(255)).unwrap();
    }

    #[test]
    fn empty_dots_and_non_ascii_are_refused() {
        for bad in ["", ".", "..", "caf\u{e9}", "a/b", "a b", "a%2f"] {
            assert!(validate_name(NameKind::Role, bad).is_err(), "{bad:?}");
        }
        validate_name(NameKind::Role, "...").unwrap();
    }

    #[test]
    fn error_names_the_rule() {
        let err = validate_name(NameKind::Environment, "a:b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid environment name 'a:b': 1 to 255 letters, digits, '.', '_' and '-'"
        );
    }
}
