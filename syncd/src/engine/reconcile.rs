//! Full reconcile (anti-entropy): list both sides, copy what differs, delete what the primary
//! no longer has. It is the bootstrap, the answer to a 410 or a new primary identity, a
//! periodic safety net, and the only mode for primaries without a feed.

use std::collections::BTreeSet;

use chef_sync_shared::ObjectPath;
use chef_sync_shared::objects::Environment;
use serde_json::{Value, json};

use super::apply::{Outcome, Sides, apply_batch, apply_known, stopped};
use super::batch::{Known, write_items};
use super::bulk::{Index, Pages, Unsupported};
use super::bulk_write::Item;
use super::plan::{Action, Change};
use super::policyfiles;
use crate::chef_client::{ChefError, ChefServer, Peer};

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
pub async fn list(server: &ChefServer) -> Result<Listing, ChefError> {
    let mut paths = BTreeSet::new();
    for name in names(&server.get("/roles").await?, "roles")? {
        paths.extend(ObjectPath::role(&name));
    }
    for name in names(&server.get("/environments").await?, "environments")? {
        if name != Environment::DEFAULT {
            paths.extend(ObjectPath::environment(&name));
        }
    }
    list_bags(server, &mut paths).await?;
    list_cookbooks(server, &mut paths).await?;
    let policyfiles = match policyfiles::list(server).await? {
        Some(found) => {
            paths.extend(found);
            true
        }
        None => false,
    };
    Ok(Listing { paths, policyfiles })
}

/// Data bags and their items.
async fn list_bags(server: &ChefServer, paths: &mut BTreeSet<ObjectPath>) -> Result<(), ChefError> {
    use futures_util::StreamExt;
    let bags: Vec<(String, ObjectPath)> = names(&server.get("/data").await?, "data bags")?
        .into_iter()
        .filter_map(|bag| ObjectPath::data_bag(&bag).ok().map(|p| (bag, p)))
        .collect();
    // A listing per bag: several at once, as a primary across a slow link costs a round trip
    // each.
    let mut listings = futures_util::stream::iter(bags)
        .map(|(bag, bag_path)| async move {
            let listing = server.get(&format!("/data/{bag}")).await;
            (bag, bag_path, listing)
        })
        .buffered(LISTINGS_AT_ONCE);
    while let Some((bag, bag_path, listing)) = listings.next().await {
        let items = match listing {
            Ok(v) => names(&v, "data bag")?,
            // Deleted between the two listings.
            Err(ChefError::NotFound) => continue,
            Err(e) => return Err(e),
        };
        paths.insert(bag_path);
        for item in items {
            paths.extend(ObjectPath::data_bag_item(&bag, &item));
        }
    }
    Ok(())
}

/// Bag listings read at once.
const LISTINGS_AT_ONCE: usize = 8;

async fn list_cookbooks(
    server: &ChefServer,
    paths: &mut BTreeSet<ObjectPath>,
) -> Result<(), ChefError> {
    let cookbooks = server.get("/cookbooks?num_versions=all").await?;
    let Some(cookbooks) = cookbooks.as_object() else {
        return Err(ChefError::Malformed(
            "the cookbook listing is not an object".into(),
        ));
    };
    for (name, entry) in cookbooks {
        let versions = entry.get("versions").and_then(Value::as_array);
        for v in versions.into_iter().flatten() {
            if let Some(version) = v.get("version").and_then(Value::as_str) {
                paths.extend(ObjectPath::cookbook_version(name, version));
            }
        }
    }
    Ok(())
}

/// Both sides listed: what the primary has, and what the replica has that a copy may
/// change. A primary without Policyfile endpoints says nothing about Policyfile objects, so
/// the replica's are then left as they are instead of deleted.
pub async fn list_both(sides: &Sides) -> Result<(Listing, Listing), Unlisted> {
    let unlisted = |side: Peer| move |error| Unlisted { side, error };
    let primary = list(&sides.primary)
        .await
        .map_err(unlisted(Peer::Primary))?;
    let mut replica = list(&sides.replica)
        .await
        .map_err(unlisted(Peer::Replica))?;
    if !primary.policyfiles {
        replica.paths.retain(|p| !p.kind().is_policyfile());
    }
    Ok((primary, replica))
}

/// A side whose objects could not be listed, so nothing was compared: the caller names that
/// side (and its URL) in what it reports.
#[derive(Debug, Clone)]
pub struct Unlisted {
    /// Which.
    pub side: Peer,
    /// Why.
    pub error: ChefError,
}

/// Makes the replica equal to the primary; `concurrency` objects at a time. Data bags are
/// written first, then the documents the primary's search returns a page at a time (into a
/// replica with the bulk write, cookbook versions alongside), then everything else (cookbooks,
/// documents search did not return, deletes). Without `bulk_reads` every document is read
/// with its own GET.
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
    // Listed on the primary: the bulk write needs nothing more of a bag than its name.
    let known_bags = bags
        .iter()
        .filter_map(|c| match &c.path {
            ObjectPath::DataBag { bag } => Some((c.path.clone(), Some(json!({ "name": bag })))),
            _ => None,
        })
        .collect();
    let mut outcomes = apply_batch(sides, bags, known_bags, replica_has, concurrency).await;
    if stopped(&outcomes) {
        return outcomes;
    }

    let mut pending: BTreeSet<ObjectPath> = on_primary
        .iter()
        .filter(|p| !matches!(p, ObjectPath::DataBag { .. }))
        .cloned()
        .collect();
    let indexes = search_indexes(on_primary, bulk_reads);
    // Into a chef-sync replica, cookbook versions (never in search) are copied while the
    // search pages are: their files and the documents load different parts of both servers.
    let cookbooks: Vec<Change> = if sides.bulk_write.worth_asking() {
        let versions: Vec<ObjectPath> = pending
            .iter()
            .filter(|p| matches!(p, ObjectPath::CookbookVersion { .. }))
            .cloned()
            .collect();
        versions
            .into_iter()
            .filter_map(|p| pending.take(&p))
            .map(|p| write(&p))
            .collect()
    } else {
        Vec::new()
    };
    let mut searched = Vec::new();
    let (stop, copied) = tokio::join!(
        copy_searched(
            sides,
            indexes,
            &mut pending,
            replica_has,
            concurrency,
            &mut searched
        ),
        apply_batch(sides, cookbooks, Known::new(), replica_has, concurrency),
    );
    outcomes.extend(searched);
    let stop = stop || stopped(&copied);
    outcomes.extend(copied);
    if stop {
        return outcomes;
    }

    let mut rest: Vec<Change> = pending.iter().map(write).collect();
    rest.extend(on_replica.difference(on_primary).map(|p| Change {
        path: p.clone(),
        action: Action::Delete,
        seq: None,
    }));
    outcomes.extend(apply_batch(sides, rest, Known::new(), replica_has, concurrency).await);
    outcomes
}

/// Search indexes read at once during a reconcile.
const SEARCHES_AT_ONCE: usize = 4;

/// The indexes whose documents a reconcile reads through search: roles, environments and
/// every bag the primary has (none without `bulk_reads`).
fn search_indexes(on_primary: &BTreeSet<ObjectPath>, bulk_reads: bool) -> Vec<Index> {
    if !bulk_reads {
        return Vec::new();
    }
    let bags = on_primary.iter().filter_map(|p| match p {
        ObjectPath::DataBag { bag } => Some(Index::Bag(bag.clone())),
        _ => None,
    });
    [Index::Roles, Index::Environments]
        .into_iter()
        .chain(bags)
        .collect()
}

/// Reads the `indexes` a page at a time, a few indexes at once (a primary across a slow link
/// costs a round trip per page), and writes each page's documents whose paths are still
/// `pending`, taking them out of it. Returns whether a server was found unreachable.
async fn copy_searched(
    sides: &Sides,
    indexes: Vec<Index>,
    pending: &mut BTreeSet<ObjectPath>,
    replica_has: impl Fn(&ObjectPath) -> Option<bool> + Copy + Sync,
    concurrency: usize,
    outcomes: &mut Vec<Outcome>,
) -> bool {
    use futures_util::StreamExt;
    let pages = futures_util::stream::iter(indexes)
        .map(|index| {
            Box::pin(futures_util::stream::unfold(
                Pages::new(&sides.primary, index),
                |mut pages| async {
                    let next = pages.next().await;
                    match next {
                        Ok(Some(page)) => Some((page, pages)),
                        Ok(None) => None,
                        Err(Unsupported(why)) => {
                            tracing::debug!(%why, "search not usable; reading one by one");
                            None
                        }
                    }
                },
            ))
        })
        // Each index's next page is read while the page before is written: at most this
        // many pages wait in memory.
        .flatten_unordered(SEARCHES_AT_ONCE);
    // The next pages are read while one is written.
    let (ready, mut taken) = tokio::sync::mpsc::channel(2);
    let read = async move {
        let mut pages = std::pin::pin!(pages);
        while let Some(page) = pages.next().await {
            if ready.send(page).await.is_err() {
                break;
            }
        }
    };
    let write = async move {
        while let Some(page) = taken.recv().await {
            if write_page(sides, page, pending, replica_has, concurrency, outcomes).await {
                return true;
            }
        }
        false
    };
    tokio::join!(read, write).1
}

/// Writes a search page's documents whose paths are still `pending`, taking them out of it;
/// whether a server was found unreachable.
async fn write_page(
    sides: &Sides,
    page: Vec<(ObjectPath, serde_json::Value)>,
    pending: &mut BTreeSet<ObjectPath>,
    replica_has: impl Fn(&ObjectPath) -> Option<bool> + Copy + Sync,
    concurrency: usize,
    outcomes: &mut Vec<Outcome>,
) -> bool {
    let documents: Vec<(Change, serde_json::Value)> = page
        .into_iter()
        .filter(|(path, _)| pending.remove(path))
        .map(|(path, body)| {
            let change = Change {
                path,
                action: Action::Write,
                seq: None,
            };
            (change, body)
        })
        .collect();
    if sides.bulk_write.worth_asking() {
        let items = documents
            .into_iter()
            .map(|(change, body)| Item::new(change, Some(body)))
            .collect();
        write_items(sides, items, &replica_has, concurrency, outcomes).await
    } else {
        apply_known(sides, documents, replica_has, concurrency, outcomes).await
    }
}
