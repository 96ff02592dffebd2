//! Full reconcile (anti-entropy): list both sides, copy what differs, delete what the primary
//! no longer has. It is the bootstrap, the answer to a 410 or a new primary identity, a
//! periodic safety net, and the only mode for primaries without a feed.

use std::collections::BTreeSet;

use chef_sync_shared::ObjectPath;
use chef_sync_shared::objects::Environment;
use serde_json::Value;

use super::apply::{Outcome, Sides, apply_batch};
use super::backoff::retry;
use super::plan::{Action, Change};
use crate::chef_client::{ChefError, ChefServer};

fn names(listing: &Value, what: &str) -> Result<Vec<String>, ChefError> {
    listing
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .ok_or_else(|| ChefError::Malformed(format!("the {what} listing is not an object")))
}

/// Every replicated object on one side.
pub async fn list(server: &ChefServer, sides: &Sides) -> Result<BTreeSet<ObjectPath>, ChefError> {
    let get = |rel: &'static str| async move { retry(sides.retry, || server.get(rel)).await };
    let mut paths = BTreeSet::new();
    for name in names(&get("/roles").await?, "roles")? {
        if let Ok(p) = ObjectPath::role(&name) {
            paths.insert(p);
        }
    }
    for name in names(&get("/environments").await?, "environments")? {
        if name != Environment::DEFAULT
            && let Ok(p) = ObjectPath::environment(&name)
        {
            paths.insert(p);
        }
    }
    for bag in names(&get("/data").await?, "data bags")? {
        let Ok(bag_path) = ObjectPath::data_bag(&bag) else {
            continue;
        };
        let rel = format!("/data/{bag}");
        let items = match retry(sides.retry, || server.get(&rel)).await {
            Ok(v) => names(&v, "data bag")?,
            // Deleted between the two listings.
            Err(ChefError::NotFound) => continue,
            Err(e) => return Err(e),
        };
        paths.insert(bag_path);
        for item in items {
            if let Ok(p) = ObjectPath::data_bag_item(&bag, &item) {
                paths.insert(p);
            }
        }
    }
    let cookbooks = get("/cookbooks?num_versions=all").await?;
    let Some(cookbooks) = cookbooks.as_object() else {
        return Err(ChefError::Malformed(
            "the cookbook listing is not an object".into(),
        ));
    };
    for (name, entry) in cookbooks {
        for v in entry
            .get("versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(version) = v.get("version").and_then(Value::as_str)
                && let Ok(p) = ObjectPath::cookbook_version(name, version)
            {
                paths.insert(p);
            }
        }
    }
    Ok(paths)
}

/// Makes the replica equal to the primary; `concurrency` objects at a time.
pub async fn reconcile(sides: &Sides, concurrency: usize) -> Result<Vec<Outcome>, ChefError> {
    let on_primary = list(&sides.primary, sides).await?;
    let on_replica = list(&sides.replica, sides).await?;
    let mut changes: Vec<(Change, bool)> = on_primary
        .iter()
        .map(|p| {
            (
                Change {
                    path: p.clone(),
                    action: Action::Write,
                    seq: None,
                },
                on_replica.contains(p),
            )
        })
        .collect();
    changes.extend(on_replica.difference(&on_primary).map(|p| {
        (
            Change {
                path: p.clone(),
                action: Action::Delete,
                seq: None,
            },
            true,
        )
    }));
    let present: std::collections::HashMap<ObjectPath, bool> = changes
        .iter()
        .map(|(c, has)| (c.path.clone(), *has))
        .collect();
    let outcomes = apply_batch(
        sides,
        changes.into_iter().map(|(c, _)| c).collect(),
        |path| present.get(path).copied(),
        concurrency,
    )
    .await;
    Ok(outcomes)
}
