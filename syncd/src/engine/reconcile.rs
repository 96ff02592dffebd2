//! Full reconcile (anti-entropy): list both sides, copy what differs, delete what the primary
//! no longer has. It is the bootstrap, the answer to a 410 or a new primary identity, a
//! periodic safety net, and the only mode for primaries without a feed.

use std::collections::BTreeSet;

use chef_sync_shared::ObjectPath;
use chef_sync_shared::objects::Environment;
use serde_json::Value;

use super::apply::{Outcome, Sides, apply_batch, apply_known};
use super::backoff::retry;
use super::bulk::{Index, Pages, Unsupported};
use super::plan::{Action, Change};
use super::policyfiles;
use crate::chef_client::{ChefError, ChefServer};

fn names(listing: &Value, what: &str) -> Result<Vec<String>, ChefError> {
    listing
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .ok_or_else(|| ChefError::Malformed(format!("the {what} listing is not an object")))
}

/// Every replicated object on one side.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// The objects.
    pub paths: BTreeSet<ObjectPath>,
    /// Whether the server serves Policyfiles (goiardi and Chef servers before 12.1 do not).
    pub policyfiles: bool,
}

/// Every replicated object on one side.
pub async fn list(server: &ChefServer, sides: &Sides) -> Result<Listing, ChefError> {
    let get = |rel: &'static str| async move { retry(&sides.retry, || server.get(rel)).await };
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
        let items = match retry(&sides.retry, || server.get(&rel)).await {
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
    let policyfiles = match policyfiles::list(server, sides).await? {
        Some(found) => {
            paths.extend(found);
            true
        }
        None => false,
    };
    Ok(Listing { paths, policyfiles })
}

/// Both sides listed: what the primary has, and what the replica has that a copy may
/// change. A primary without Policyfile endpoints says nothing about Policyfile objects, so
/// the replica's are then left as they are instead of deleted.
pub async fn list_both(sides: &Sides) -> Result<(Listing, Listing), Unlisted> {
    let unlisted = |side: &'static str| move |error| Unlisted { side, error };
    let primary = list(&sides.primary, sides)
        .await
        .map_err(unlisted("primary"))?;
    let mut replica = list(&sides.replica, sides)
        .await
        .map_err(unlisted("replica"))?;
    if !primary.policyfiles {
        replica.paths.retain(|p| !p.kind().is_policyfile());
    }
    Ok((primary, replica))
}

/// A side whose objects could not be listed, so nothing was compared: the caller names that
/// side (and its URL) in what it reports.
#[derive(Debug, Clone)]
pub struct Unlisted {
    /// `primary` or `replica`.
    pub side: &'static str,
    /// Why.
    pub error: ChefError,
}

/// Makes the replica equal to the primary; `concurrency` objects at a time. Data bags are
/// written first, then the documents the primary's search returns a page at a time, then
/// everything else (cookbooks, documents search did not return, deletes). Without
/// `bulk_reads` every document is read with its own GET.
pub async fn reconcile(
    sides: &Sides,
    concurrency: usize,
    bulk_reads: bool,
) -> Result<Vec<Outcome>, Unlisted> {
    let (primary, replica) = list_both(sides).await?;
    let (on_primary, on_replica) = (primary.paths, replica.paths);
    let extra = on_replica.difference(&on_primary).count();
    sides.progress.begin((on_primary.len() + extra) as u64);
    let outcomes = copy(sides, concurrency, bulk_reads, &on_primary, &on_replica).await;
    sides.progress.end();
    Ok(outcomes)
}

async fn copy(
    sides: &Sides,
    concurrency: usize,
    bulk_reads: bool,
    on_primary: &BTreeSet<ObjectPath>,
    on_replica: &BTreeSet<ObjectPath>,
) -> Vec<Outcome> {
    let replica_has = |path: &ObjectPath| Some(on_replica.contains(path));
    let write = |path: &ObjectPath| Change {
        path: path.clone(),
        action: Action::Write,
        seq: None,
    };

    let bags: Vec<Change> = on_primary
        .iter()
        .filter(|p| matches!(p, ObjectPath::DataBag { .. }))
        .map(write)
        .collect();
    let mut outcomes = apply_batch(sides, bags, replica_has, concurrency).await;
    if stopped(&outcomes) {
        return outcomes;
    }

    let mut pending: BTreeSet<ObjectPath> = on_primary
        .iter()
        .filter(|p| !matches!(p, ObjectPath::DataBag { .. }))
        .cloned()
        .collect();
    let indexes: Vec<Index> = if bulk_reads {
        let bags = on_primary.iter().filter_map(|p| match p {
            ObjectPath::DataBag { bag } => Some(Index::Bag(bag.clone())),
            _ => None,
        });
        [Index::Roles, Index::Environments]
            .into_iter()
            .chain(bags)
            .collect()
    } else {
        Vec::new()
    };
    for index in indexes {
        let mut pages = Pages::new(&sides.primary, &sides.retry, index.clone());
        loop {
            let page = match pages.next().await {
                Ok(Some(page)) => page,
                Ok(None) => break,
                Err(Unsupported(why)) => {
                    tracing::debug!(?index, %why, "search not usable; reading one by one");
                    break;
                }
            };
            let documents: Vec<(Change, serde_json::Value)> = page
                .into_iter()
                .filter(|(path, _)| pending.remove(path))
                .map(|(path, body)| (write(&path), body))
                .collect();
            if apply_known(sides, documents, replica_has, concurrency, &mut outcomes).await {
                return outcomes;
            }
        }
    }

    let mut rest: Vec<Change> = pending.iter().map(write).collect();
    rest.extend(on_replica.difference(on_primary).map(|p| Change {
        path: p.clone(),
        action: Action::Delete,
        seq: None,
    }));
    outcomes.extend(apply_batch(sides, rest, replica_has, concurrency).await);
    outcomes
}

/// Whether a batch ended at a server that could not be reached.
fn stopped(outcomes: &[Outcome]) -> bool {
    outcomes.last().is_some_and(|o| {
        matches!(
            o.result,
            Err(ChefError::Transient {
                unreachable: true,
                ..
            })
        )
    })
}
