//! Comparing the replica with the primary without writing anything: which objects a sync would
//! create, update or delete on the replica. `chef-sync-ctl plan` and `verify` are built on it;
//! documents are compared as JSON, cookbook versions as the copy compares them (everything but
//! file URLs and order), data bags by existence.

use std::collections::{BTreeSet, HashMap};

use chef_sync_shared::ObjectPath;
use serde::Serialize;
use serde_json::Value;

use super::apply::Sides;
use super::bulk::{Index, Pages, Unsupported};
use super::cookbooks::comparable_manifest;
use super::policyfiles::{not_served, revision_document};
use super::reconcile::list_both;
use crate::chef_client::{ChefError, ChefServer};

/// What the replica needs for a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Difference {
    /// The replica lacks it.
    Create,
    /// The replica's differs.
    Update,
    /// The primary no longer has it.
    Delete,
}

/// One object that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// The object.
    pub path: String,
    /// What a sync would do to it.
    pub action: Difference,
}

/// Documents of an index read through search, by path; `None` when the server cannot search.
async fn search_all(server: &ChefServer, index: Index) -> Option<HashMap<ObjectPath, Value>> {
    let mut pages = Pages::new(server, index);
    let mut found = HashMap::new();
    loop {
        match pages.next().await {
            Ok(Some(page)) => found.extend(page),
            Ok(None) => return Some(found),
            Err(Unsupported(_)) => return None,
        }
    }
}

/// The current JSON of `path` on one side, from `known` when a search returned it.
async fn current(
    sides: &Sides,
    server: &ChefServer,
    path: &ObjectPath,
    known: Option<&HashMap<ObjectPath, Value>>,
) -> Result<Option<Value>, ChefError> {
    if let Some(value) = known.and_then(|k| k.get(path)) {
        return Ok(Some(value.clone()));
    }
    sides.get(server, &path.to_string()).await
}

/// What is known of each side before comparing one path.
#[derive(Clone, Copy)]
struct Known<'a> {
    primary: &'a HashMap<ObjectPath, Value>,
    replica: &'a HashMap<ObjectPath, Value>,
}

/// What a sync would do to `path` (`None`: the replica already equals the primary).
async fn compare_one(
    sides: &Sides,
    path: &ObjectPath,
    known: Known<'_>,
) -> Result<Option<Difference>, ChefError> {
    if let ObjectPath::Environment { name } = path
        && name == chef_sync_shared::objects::Environment::DEFAULT
    {
        return Ok(None);
    }
    let primary = current(sides, &sides.primary, path, Some(known.primary)).await?;
    let replica = match current(sides, &sides.replica, path, Some(known.replica)).await {
        // A replica without Policyfile endpoints has none of them.
        Err(e) if path.kind().is_policyfile() && not_served(&e) => None,
        other => other?,
    };
    let rel = path.to_string();
    let equal = match (&primary, &replica) {
        (None, None) => return Ok(None),
        (None, Some(_)) => return Ok(Some(Difference::Delete)),
        // A policy or group comes with its first revision or assignment: not an object a
        // sync creates by itself (an empty group stays on the primary only).
        (Some(_), None)
            if matches!(
                path,
                ObjectPath::Policy { .. } | ObjectPath::PolicyGroup { .. }
            ) =>
        {
            return Ok(None);
        }
        (Some(_), None) => return Ok(Some(Difference::Create)),
        (Some(p), Some(r)) => match path {
            // A bag's listing is all it has; a policy's and a group's are their contents.
            ObjectPath::DataBag { .. }
            | ObjectPath::Policy { .. }
            | ObjectPath::PolicyGroup { .. } => true,
            ObjectPath::CookbookVersion { .. } | ObjectPath::CookbookArtifact { .. } => {
                comparable_manifest(p.clone(), &rel)? == comparable_manifest(r.clone(), &rel)?
            }
            ObjectPath::PolicyRevision { .. } => {
                revision_document(p.clone(), &rel)? == revision_document(r.clone(), &rel)?
            }
            _ => p == r,
        },
    };
    Ok((!equal).then_some(Difference::Update))
}

/// Compares `paths` (`concurrency` at a time), with documents already read by search.
async fn compare_paths(
    sides: &Sides,
    paths: Vec<ObjectPath>,
    known: Known<'_>,
    concurrency: usize,
) -> Result<Vec<Drift>, ChefError> {
    use futures_util::StreamExt;
    let results: Vec<Result<Option<Drift>, ChefError>> = futures_util::stream::iter(paths)
        .map(|path| async move {
            let difference = compare_one(sides, &path, known).await?;
            Ok(difference.map(|action| Drift {
                path: path.to_string(),
                action,
            }))
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut drift: Vec<Drift> = results
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    drift.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(drift)
}

/// Every object on either side compared: `(objects compared, differences)`.
pub async fn compare_all(
    sides: &Sides,
    bulk_reads: bool,
    concurrency: usize,
) -> Result<(usize, Vec<Drift>), ChefError> {
    let (primary, replica) = list_both(sides).await.map_err(|u| u.error)?;
    let (on_primary, on_replica) = (primary.paths, replica.paths);
    let mut primary_known = HashMap::new();
    let mut replica_known = HashMap::new();
    if bulk_reads {
        let bags: BTreeSet<&ObjectPath> = on_primary
            .iter()
            .chain(&on_replica)
            .filter(|p| matches!(p, ObjectPath::DataBag { .. }))
            .collect();
        let mut indexes = vec![Index::Roles, Index::Environments];
        indexes.extend(bags.into_iter().filter_map(|p| match p {
            ObjectPath::DataBag { bag } => Some(Index::Bag(bag.clone())),
            _ => None,
        }));
        for index in indexes {
            if let Some(found) = search_all(&sides.primary, index.clone()).await {
                primary_known.extend(found);
            }
            if let Some(found) = search_all(&sides.replica, index).await {
                replica_known.extend(found);
            }
        }
    }
    let paths: Vec<ObjectPath> = on_primary.union(&on_replica).cloned().collect();
    let compared = paths.len();
    let known = Known {
        primary: &primary_known,
        replica: &replica_known,
    };
    let drift = compare_paths(sides, paths, known, concurrency).await?;
    Ok((compared, drift))
}

/// Only `paths` compared (the entries a feed would apply).
pub async fn compare_some(
    sides: &Sides,
    paths: Vec<ObjectPath>,
    concurrency: usize,
) -> Result<Vec<Drift>, ChefError> {
    let none = HashMap::new();
    let known = Known {
        primary: &none,
        replica: &none,
    };
    compare_paths(sides, paths, known, concurrency).await
}
