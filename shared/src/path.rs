//! The org-relative object path grammar used by the change feed and the replicator:
//! `/roles/R`, `/environments/E`, `/data/BAG`, `/data/BAG/ITEM`, `/cookbooks/NAME/VERSION`,
//! and the Policyfile objects `/policies/P`, `/policies/P/revisions/REV`, `/policy_groups/G`,
//! `/policy_groups/G/policies/P`, `/cookbook_artifacts/NAME/IDENTIFIER`.
//!
//! Parsing is strict: anything that is not exactly one of these shapes with names that obey
//! Chef's rules is refused with an error that says what is wrong.

mod names;
mod version;

use std::fmt;
use std::str::FromStr;

pub use names::{NameKind, validate_name};
pub use version::CookbookVersionNumber;

/// Why a path, name or version was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("object path '{0}' must start with '/'")]
    NotAbsolute(String),
    /// `//` or a trailing `/`.
    #[error("object path '{0}' has an empty segment")]
    EmptySegment(String),
    /// A `.` or `..` segment.
    #[error("object path '{0}' has a '.' or '..' segment")]
    DotSegment(String),
    /// Percent-encoding (e.g. an encoded slash); Chef names never need it.
    #[error("object path '{0}' contains percent-encoding, which Chef object names never need")]
    PercentEncoded(String),
    /// The first segment is not a replicated object type.
    #[error(
        "object path '{path}' has unknown object type '{kind}' (expected roles, environments, data, cookbooks, policies, policy_groups or cookbook_artifacts)"
    )]
    UnknownType {
        /// The whole path.
        path: String,
        /// The unrecognised first segment.
        kind: String,
    },
    /// Too few or too many segments for the type.
    #[error(
        "object path '{path}' has the wrong number of segments for {kind} (expected {expected})"
    )]
    WrongShape {
        /// The whole path.
        path: String,
        /// The object type.
        kind: &'static str,
        /// The expected form.
        expected: &'static str,
    },
    /// A name breaks Chef's rules for its kind.
    #[error("invalid {kind} name '{name}': {rule}")]
    InvalidName {
        /// What kind of name.
        kind: &'static str,
        /// The offending name.
        name: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// A cookbook version that is not 1–3 dot-separated integers within range.
    #[error("invalid cookbook version '{version}': {reason}")]
    InvalidVersion {
        /// The offending version text.
        version: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The type of a replicated object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// `/roles/R`
    Role,
    /// `/environments/E`
    Environment,
    /// `/data/BAG`
    DataBag,
    /// `/data/BAG/ITEM`
    DataBagItem,
    /// `/cookbooks/NAME/VERSION`
    CookbookVersion,
    /// `/policies/P`
    Policy,
    /// `/policies/P/revisions/REV`
    PolicyRevision,
    /// `/policy_groups/G`
    PolicyGroup,
    /// `/policy_groups/G/policies/P`
    PolicyAssignment,
    /// `/cookbook_artifacts/NAME/IDENTIFIER`
    CookbookArtifact,
}

impl ObjectKind {
    /// Whether the object is part of Policyfiles (policies, revisions, groups, artifacts),
    /// which Chef servers before 12.1 and goiardi do not serve.
    pub fn is_policyfile(self) -> bool {
        matches!(
            self,
            ObjectKind::Policy
                | ObjectKind::PolicyRevision
                | ObjectKind::PolicyGroup
                | ObjectKind::PolicyAssignment
                | ObjectKind::CookbookArtifact
        )
    }

    /// A short lowercase label, e.g. for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Role => "role",
            ObjectKind::Environment => "environment",
            ObjectKind::DataBag => "data_bag",
            ObjectKind::DataBagItem => "data_bag_item",
            ObjectKind::CookbookVersion => "cookbook_version",
            ObjectKind::Policy => "policy",
            ObjectKind::PolicyRevision => "policy_revision",
            ObjectKind::PolicyGroup => "policy_group",
            ObjectKind::PolicyAssignment => "policy_assignment",
            ObjectKind::CookbookArtifact => "cookbook_artifact",
        }
    }
}

/// A validated org-relative object path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectPath {
    /// A role.
    Role {
        /// Role name.
        name: String,
    },
    /// An environment.
    Environment {
        /// Environment name.
        name: String,
    },
    /// A data bag.
    DataBag {
        /// Bag name.
        bag: String,
    },
    /// A data bag item.
    DataBagItem {
        /// Bag name.
        bag: String,
        /// Item id.
        item: String,
    },
    /// One version of a cookbook.
    CookbookVersion {
        /// Cookbook name.
        cookbook: String,
        /// Version.
        version: CookbookVersionNumber,
    },
    /// A Policyfile policy (what its deletion removes: every revision and assignment).
    Policy {
        /// Policy name.
        name: String,
    },
    /// One immutable revision of a policy.
    PolicyRevision {
        /// Policy name.
        policy: String,
        /// Revision id.
        revision: String,
    },
    /// A policy group (what its deletion removes: every assignment in it).
    PolicyGroup {
        /// Group name.
        group: String,
    },
    /// The revision of a policy a group is assigned.
    PolicyAssignment {
        /// Group name.
        group: String,
        /// Policy name.
        policy: String,
    },
    /// One immutable cookbook artifact.
    CookbookArtifact {
        /// Cookbook name.
        name: String,
        /// Content identifier.
        identifier: String,
    },
}

impl ObjectPath {
    /// A role path, validating the name.
    pub fn role(name: &str) -> Result<Self, PathError> {
        validate_name(NameKind::Role, name)?;
        Ok(ObjectPath::Role {
            name: name.to_owned(),
        })
    }

    /// An environment path, validating the name.
    pub fn environment(name: &str) -> Result<Self, PathError> {
        validate_name(NameKind::Environment, name)?;
        Ok(ObjectPath::Environment {
            name: name.to_owned(),
        })
    }

    /// A data bag path, validating the name.
    pub fn data_bag(bag: &str) -> Result<Self, PathError> {
        validate_name(NameKind::DataBag, bag)?;
        Ok(ObjectPath::DataBag {
            bag: bag.to_owned(),
        })
    }

    /// A data bag item path, validating both names.
    pub fn data_bag_item(bag: &str, item: &str) -> Result<Self, PathError> {
        validate_name(NameKind::DataBag, bag)?;
        validate_name(NameKind::DataBagItem, item)?;
        Ok(ObjectPath::DataBagItem {
            bag: bag.to_owned(),
            item: item.to_owned(),
        })
    }

    /// A cookbook version path, validating the name and parsing the version.
    pub fn cookbook_version(cookbook: &str, version: &str) -> Result<Self, PathError> {
        validate_name(NameKind::Cookbook, cookbook)?;
        Ok(ObjectPath::CookbookVersion {
            cookbook: cookbook.to_owned(),
            version: version.parse()?,
        })
    }

    /// A policy path, validating the name.
    pub fn policy(name: &str) -> Result<Self, PathError> {
        validate_name(NameKind::Policy, name)?;
        Ok(ObjectPath::Policy {
            name: name.to_owned(),
        })
    }

    /// A policy revision path, validating both parts.
    pub fn policy_revision(policy: &str, revision: &str) -> Result<Self, PathError> {
        validate_name(NameKind::Policy, policy)?;
        validate_name(NameKind::PolicyRevision, revision)?;
        Ok(ObjectPath::PolicyRevision {
            policy: policy.to_owned(),
            revision: revision.to_owned(),
        })
    }

    /// A policy group path, validating the name.
    pub fn policy_group(group: &str) -> Result<Self, PathError> {
        validate_name(NameKind::PolicyGroup, group)?;
        Ok(ObjectPath::PolicyGroup {
            group: group.to_owned(),
        })
    }

    /// A policy assignment path, validating both names.
    pub fn policy_assignment(group: &str, policy: &str) -> Result<Self, PathError> {
        validate_name(NameKind::PolicyGroup, group)?;
        validate_name(NameKind::Policy, policy)?;
        Ok(ObjectPath::PolicyAssignment {
            group: group.to_owned(),
            policy: policy.to_owned(),
        })
    }

    /// A cookbook artifact path, validating both parts.
    pub fn cookbook_artifact(name: &str, identifier: &str) -> Result<Self, PathError> {
        validate_name(NameKind::CookbookArtifact, name)?;
        validate_name(NameKind::ArtifactIdentifier, identifier)?;
        Ok(ObjectPath::CookbookArtifact {
            name: name.to_owned(),
            identifier: identifier.to_owned(),
        })
    }

    /// The object's type.
    pub fn kind(&self) -> ObjectKind {
        match self {
            ObjectPath::Role { .. } => ObjectKind::Role,
            ObjectPath::Environment { .. } => ObjectKind::Environment,
            ObjectPath::DataBag { .. } => ObjectKind::DataBag,
            ObjectPath::DataBagItem { .. } => ObjectKind::DataBagItem,
            ObjectPath::CookbookVersion { .. } => ObjectKind::CookbookVersion,
            ObjectPath::Policy { .. } => ObjectKind::Policy,
            ObjectPath::PolicyRevision { .. } => ObjectKind::PolicyRevision,
            ObjectPath::PolicyGroup { .. } => ObjectKind::PolicyGroup,
            ObjectPath::PolicyAssignment { .. } => ObjectKind::PolicyAssignment,
            ObjectPath::CookbookArtifact { .. } => ObjectKind::CookbookArtifact,
        }
    }

    /// The object this one cannot exist without: an item's bag. `None` for everything else.
    pub fn parent(&self) -> Option<ObjectPath> {
        match self {
            ObjectPath::DataBagItem { bag, .. } => Some(ObjectPath::DataBag { bag: bag.clone() }),
            _ => None,
        }
    }
}

impl fmt::Display for ObjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectPath::Role { name } => write!(f, "/roles/{name}"),
            ObjectPath::Environment { name } => write!(f, "/environments/{name}"),
            ObjectPath::DataBag { bag } => write!(f, "/data/{bag}"),
            ObjectPath::DataBagItem { bag, item } => write!(f, "/data/{bag}/{item}"),
            ObjectPath::CookbookVersion { cookbook, version } => {
                write!(f, "/cookbooks/{cookbook}/{version}")
            }
            ObjectPath::Policy { name } => write!(f, "/policies/{name}"),
            ObjectPath::PolicyRevision { policy, revision } => {
                write!(f, "/policies/{policy}/revisions/{revision}")
            }
            ObjectPath::PolicyGroup { group } => write!(f, "/policy_groups/{group}"),
            ObjectPath::PolicyAssignment { group, policy } => {
                write!(f, "/policy_groups/{group}/policies/{policy}")
            }
            ObjectPath::CookbookArtifact { name, identifier } => {
                write!(f, "/cookbook_artifacts/{name}/{identifier}")
            }
        }
    }
}

impl FromStr for ObjectPath {
    type Err = PathError;

    fn from_str(path: &str) -> Result<Self, Self::Err> {
        let rest = path
            .strip_prefix('/')
            .ok_or_else(|| PathError::NotAbsolute(path.to_owned()))?;
        if path.contains('%') {
            return Err(PathError::PercentEncoded(path.to_owned()));
        }
        let segments: Vec<&str> = rest.split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(PathError::EmptySegment(path.to_owned()));
        }
        if segments.iter().any(|s| *s == "." || *s == "..") {
            return Err(PathError::DotSegment(path.to_owned()));
        }
        let shape = |kind, expected| PathError::WrongShape {
            path: path.to_owned(),
            kind,
            expected,
        };
        match segments.as_slice() {
            ["roles", name] => ObjectPath::role(name),
            ["roles", ..] => Err(shape("roles", "/roles/NAME")),
            ["environments", name] => ObjectPath::environment(name),
            ["environments", ..] => Err(shape("environments", "/environments/NAME")),
            ["data", bag] => ObjectPath::data_bag(bag),
            ["data", bag, item] => ObjectPath::data_bag_item(bag, item),
            ["data", ..] => Err(shape("data bags", "/data/BAG or /data/BAG/ITEM")),
            ["cookbooks", name, version] => ObjectPath::cookbook_version(name, version),
            ["cookbooks", ..] => Err(shape("cookbooks", "/cookbooks/NAME/VERSION")),
            ["policies", name] => ObjectPath::policy(name),
            ["policies", name, "revisions", revision] => {
                ObjectPath::policy_revision(name, revision)
            }
            ["policies", ..] => Err(shape(
                "policies",
                "/policies/NAME or /policies/NAME/revisions/REV",
            )),
            ["policy_groups", group] => ObjectPath::policy_group(group),
            ["policy_groups", group, "policies", name] => {
                ObjectPath::policy_assignment(group, name)
            }
            ["policy_groups", ..] => Err(shape(
                "policy groups",
                "/policy_groups/GROUP or /policy_groups/GROUP/policies/NAME",
            )),
            ["cookbook_artifacts", name, identifier] => {
                ObjectPath::cookbook_artifact(name, identifier)
            }
            ["cookbook_artifacts", ..] => Err(shape(
                "cookbook artifacts",
                "/cookbook_artifacts/NAME/IDENTIFIER",
            )),
            [kind, ..] => Err(PathError::UnknownType {
                path: path.to_owned(),
                kind: (*kind).to_owned(),
            }),
            [] => Err(PathError::EmptySegment(path.to_owned())),
        }
    }
}

impl serde::Serialize for ObjectPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ObjectPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_type() {
        let cases = [
            ("/roles/web", ObjectKind::Role),
            ("/roles/db:primary", ObjectKind::Role),
            ("/environments/prod-eu_1.x", ObjectKind::Environment),
            ("/data/users", ObjectKind::DataBag),
            ("/data/users/alice", ObjectKind::DataBagItem),
            ("/cookbooks/nginx/1.2.3", ObjectKind::CookbookVersion),
            ("/policies/app", ObjectKind::Policy),
            ("/policies/app/revisions/0f1e2d", ObjectKind::PolicyRevision),
            ("/policy_groups/prod", ObjectKind::PolicyGroup),
            (
                "/policy_groups/prod/policies/app",
                ObjectKind::PolicyAssignment,
            ),
            (
                "/cookbook_artifacts/nginx/0f1e2d3c",
                ObjectKind::CookbookArtifact,
            ),
        ];
        for (text, kind) in cases {
            let p: ObjectPath = text.parse().unwrap();
            assert_eq!(p.kind(), kind, "{text}");
            assert_eq!(p.to_string(), text);
        }
    }

    #[test]
    fn cookbook_versions_normalise() {
        let p: ObjectPath = "/cookbooks/nginx/1.2".parse().unwrap();
        assert_eq!(p.to_string(), "/cookbooks/nginx/1.2.0");
        assert_eq!(p, "/cookbooks/nginx/1.2.0".parse().unwrap());
    }

    #[test]
    fn item_parent_is_its_bag() {
        let p: ObjectPath = "/data/users/alice".parse().unwrap();
        assert_eq!(p.parent(), Some(ObjectPath::data_bag("users").unwrap()));
        assert_eq!(ObjectPath::role("web").unwrap().parent(), None);
    }

    #[test]
    fn rejects_with_specific_errors() {
        let err = |s: &str| s.parse::<ObjectPath>().unwrap_err();
        assert!(matches!(err("roles/web"), PathError::NotAbsolute(_)));
        assert!(matches!(err("/roles//web"), PathError::EmptySegment(_)));
        assert!(matches!(err("/roles/web/"), PathError::EmptySegment(_)));
        assert!(matches!(err("/"), PathError::EmptySegment(_)));
        assert!(matches!(err("/roles/.."), PathError::DotSegment(_)));
        assert!(matches!(err("/data/../roles"), PathError::DotSegment(_)));
        assert!(matches!(err("/roles/a%2Fb"), PathError::PercentEncoded(_)));
        assert!(matches!(err("/nodes/n1"), PathError::UnknownType { .. }));
        assert!(matches!(err("/roles"), PathError::WrongShape { .. }));
        assert!(matches!(err("/roles/a/b"), PathError::WrongShape { .. }));
        assert!(matches!(err("/data/a/b/c"), PathError::WrongShape { .. }));
        assert!(matches!(
            err("/cookbooks/nginx"),
            PathError::WrongShape { .. }
        ));
        assert!(matches!(
            err("/environments/a:b"),
            PathError::InvalidName { .. }
        ));
        assert!(matches!(
            err("/cookbooks/a:b/1.0.0"),
            PathError::InvalidName { .. }
        ));
        assert!(matches!(
            err("/roles/caf\u{e9}"),
            PathError::InvalidName { .. }
        ));
        assert!(matches!(err("/roles/a b"), PathError::InvalidName { .. }));
        assert!(matches!(
            err("/cookbooks/nginx/1.2.3.4"),
            PathError::InvalidVersion { .. }
        ));
        assert!(matches!(
            err("/cookbooks/nginx/9223372036854775808"),
            PathError::InvalidVersion { .. }
        ));
        assert!(matches!(
            err("/policies/app/revision/1"),
            PathError::WrongShape { .. }
        ));
        assert!(matches!(
            err("/policy_groups/prod/policy/app"),
            PathError::WrongShape { .. }
        ));
        assert!(matches!(
            err("/cookbook_artifacts/nginx"),
            PathError::WrongShape { .. }
        ));
        assert!(matches!(
            err("/policy_groups/a b"),
            PathError::InvalidName { .. }
        ));
        assert!(matches!(
            err(&format!("/cookbook_artifacts/a/{}", "f".repeat(256))),
            PathError::InvalidName { .. }
        ));
        assert_eq!(
            err("/nodes/n1").to_string(),
            "object path '/nodes/n1' has unknown object type 'nodes' (expected roles, environments, data, cookbooks, policies, policy_groups or cookbook_artifacts)"
        );
    }

    #[test]
    fn serde_as_string() {
        let p = ObjectPath::data_bag_item("users", "alice").unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#""/data/users/alice""#);
        assert_eq!(serde_json::from_str::<ObjectPath>(&json).unwrap(), p);
        assert!(serde_json::from_str::<ObjectPath>(r#""/data/../x""#).is_err());
    }
}
