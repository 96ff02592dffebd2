//! Every cookbook version of an org with its dependencies: what the solver searches. Built
//! from the stored manifests and kept per org until the org's change log moves, so a herd of
//! chef-client runs reads the manifests once instead of once per run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::constraint::{Constraint, Version};

/// One version of a cookbook.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub version: Version,
    /// The version as stored (its path in the org).
    pub label: String,
    /// `metadata.dependencies`, names without any `::recipe` part; `None` when a constraint
    /// there cannot be read, which makes this version unusable (and only this version).
    pub dependencies: Option<Vec<(String, Constraint)>>,
}

/// The cookbooks of an org, each with its versions newest first.
#[derive(Debug, Default)]
pub struct Universe {
    cookbooks: HashMap<String, Vec<Candidate>>,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    dependencies: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `metadata.dependencies` of a stored manifest.
fn dependencies(body: &str) -> Option<Vec<(String, Constraint)>> {
    let manifest: Manifest = serde_json::from_str(body).ok()?;
    let mut out = Vec::new();
    for (name, constraint) in manifest.metadata.dependencies.unwrap_or_default() {
        let constraint = match &constraint {
            serde_json::Value::String(text) => Constraint::parse(text)?,
            _ => return None,
        };
        let base = name.split("::").next().unwrap_or(&name).to_owned();
        out.push((base, constraint));
    }
    Some(out)
}

impl Universe {
    /// From `(cookbook, version, manifest)` rows.
    pub fn from_manifests<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) -> Self {
        let mut universe = Universe::default();
        for (cookbook, version_text, body) in rows {
            let Some((version, _)) = Version::parse(version_text) else {
                continue;
            };
            universe.insert(
                cookbook,
                version,
                version_text.to_owned(),
                dependencies(body),
            );
        }
        universe
    }

    /// Adds one version (tests build universes this way).
    pub fn add(
        &mut self,
        cookbook: &str,
        version: Version,
        dependencies: Option<Vec<(String, Constraint)>>,
    ) {
        self.insert(cookbook, version, version.to_string(), dependencies);
    }

    fn insert(
        &mut self,
        cookbook: &str,
        version: Version,
        label: String,
        dependencies: Option<Vec<(String, Constraint)>>,
    ) {
        let versions = self.cookbooks.entry(cookbook.to_owned()).or_default();
        versions.push(Candidate {
            version,
            label,
            dependencies,
        });
        versions.sort_by_key(|c| std::cmp::Reverse(c.version));
    }

    /// The versions of `cookbook`, newest first; `None` when the org has no such cookbook.
    pub fn versions(&self, cookbook: &str) -> Option<&[Candidate]> {
        self.cookbooks.get(cookbook).map(Vec::as_slice)
    }

    /// Every cookbook with its versions, newest first.
    pub fn cookbooks(&self) -> impl Iterator<Item = (&str, &[Candidate])> {
        self.cookbooks
            .iter()
            .map(|(name, versions)| (name.as_str(), versions.as_slice()))
    }

    /// Whether the org has any version of `cookbook`.
    pub fn contains(&self, cookbook: &str) -> bool {
        self.cookbooks.contains_key(cookbook)
    }

    /// How many cookbook versions there are.
    pub fn len(&self) -> usize {
        self.cookbooks.values().map(Vec::len).sum()
    }

    /// Whether the org has no cookbook at all.
    pub fn is_empty(&self) -> bool {
        self.cookbooks.is_empty()
    }
}

/// Orgs whose universes are kept at once; beyond it an arbitrary one is dropped and rebuilt
/// when next asked for.
const CACHED_ORGS: usize = 64;

/// Universes by org, each with the change-log position it was read at.
#[derive(Debug, Default)]
pub struct UniverseCache {
    orgs: Mutex<HashMap<i64, (i64, Arc<Universe>)>>,
}

impl UniverseCache {
    /// The universe of `org_id` as of change-log position `seq`, if kept.
    pub fn get(&self, org_id: i64, seq: i64) -> Option<Arc<Universe>> {
        let orgs = self.orgs.lock().unwrap_or_else(|e| e.into_inner());
        orgs.get(&org_id)
            .filter(|(at, _)| *at == seq)
            .map(|(_, universe)| universe.clone())
    }

    /// Keeps `universe`, read at or after change-log position `seq`.
    pub fn put(&self, org_id: i64, seq: i64, universe: Arc<Universe>) {
        let mut orgs = self.orgs.lock().unwrap_or_else(|e| e.into_inner());
        if orgs.len() >= CACHED_ORGS
            && !orgs.contains_key(&org_id)
            && let Some(evicted) = orgs.keys().next().copied()
        {
            orgs.remove(&evicted);
        }
        orgs.insert(org_id, (seq, universe));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_give_versions_newest_first_and_dependencies() {
        let rows = [
            (
                "app",
                "1.0.0",
                r#"{"metadata":{"dependencies":{"db::server":"~> 2.0"}}}"#,
            ),
            ("app", "1.10.0", r#"{"metadata":{"dependencies":{}}}"#),
            (
                "app",
                "1.2.0",
                r#"{"metadata":{"dependencies":{"db":"= one"}}}"#,
            ),
            ("db", "2.0.0", r#"{"metadata":{}}"#),
            ("bad", "x", "{}"),
        ];
        let universe = Universe::from_manifests(rows);
        let versions: Vec<String> = universe
            .versions("app")
            .unwrap_or_default()
            .iter()
            .map(|c| c.version.to_string())
            .collect();
        assert_eq!(versions, ["1.10.0", "1.2.0", "1.0.0"]);
        let app = universe.versions("app").unwrap_or_default();
        assert!(app[1].dependencies.is_none(), "an unreadable constraint");
        let deps = app[2].dependencies.clone().unwrap_or_default();
        assert_eq!(deps.len(), 1);
        assert_eq!(deps[0].0, "db");
        assert_eq!(deps[0].1.to_string(), "~> 2.0.0");
        assert!(universe.contains("db") && !universe.contains("bad"));
        assert_eq!(universe.len(), 4);
    }

    #[test]
    fn the_cache_answers_only_for_the_position_it_was_read_at() {
        let cache = UniverseCache::default();
        cache.put(1, 10, Arc::new(Universe::default()));
        assert!(cache.get(1, 10).is_some());
        assert!(cache.get(1, 11).is_none());
        for org in 2..200 {
            cache.put(org, 1, Arc::new(Universe::default()));
        }
        assert!(cache.orgs.lock().map(|o| o.len()).unwrap_or(0) <= CACHED_ORGS);
    }
}
