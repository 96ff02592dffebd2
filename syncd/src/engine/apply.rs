//! Applying one change to the replica: fetch the primary's current object (a 404 there means
//! it was deleted since), skip it if the replica already has exactly that, otherwise write it
//! with the method the replica expects (PUT, or POST when the replica says 404). Deletes are
//! DELETEs, and a 404 counts as done.

use chef_sync_shared::objects::Environment;
use chef_sync_shared::{ObjectKind, ObjectPath};
use serde_json::{Value, json};

use super::batch::{Known, apply_phase};
use super::cookbooks;
use super::plan::{Action, Change, phases};
use super::policyfiles;
pub use super::sides::{Applied, Sides};
use crate::chef_client::ChefError;

/// What applying one change ended in.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The change attempted.
    pub change: Change,
    /// Its result.
    pub result: Result<Applied, ChefError>,
}

/// Applies `changes` phase by phase, `concurrency` at a time (`replica_has` says what a listing
/// already told about a path; `known` holds the primary's documents already in hand). Through
/// the replica's bulk write while it offers one, object by object otherwise. The first change
/// that finds a server unreachable ends the batch: the rest would only wait out their own
/// retries against a server that is down, and the caller checkpoints nothing from a batch
/// that failed that way.
pub async fn apply_batch(
    sides: &Sides,
    changes: Vec<Change>,
    mut known: Known,
    replica_has: impl Fn(&ObjectPath) -> Option<bool> + Sync,
    concurrency: usize,
) -> Vec<Outcome> {
    use futures_util::StreamExt;
    let mut outcomes = Vec::new();
    for phase in phases(changes) {
        if sides.bulk_write.worth_asking() {
            let stop = apply_phase(
                sides,
                phase,
                &mut known,
                &replica_has,
                concurrency,
                &mut outcomes,
            )
            .await;
            if stop {
                break;
            }
            continue;
        }
        let done = futures_util::stream::iter(phase)
            .map(|change| {
                let has = replica_has(&change.path);
                let document = match change.path.kind() {
                    ObjectKind::Role | ObjectKind::Environment | ObjectKind::DataBagItem => {
                        known.remove(&change.path)
                    }
                    _ => None,
                };
                async move {
                    let result = match document {
                        Some(Some(body)) if change.action == Action::Write => {
                            write_document(sides, &change.path, body, has).await
                        }
                        _ => apply(sides, &change, has).await,
                    };
                    Outcome { change, result }
                }
            })
            .buffer_unordered(concurrency.max(1));
        if drain(sides, done, &mut outcomes).await {
            break;
        }
    }
    outcomes
}

/// Writes documents (roles, environments, data bag items) whose primary version is already
/// in hand, from a bulk read; otherwise like [`apply_batch`]. Returns whether a server was
/// found unreachable (the caller stops there).
pub async fn apply_known(
    sides: &Sides,
    documents: Vec<(Change, Value)>,
    replica_has: impl Fn(&ObjectPath) -> Option<bool>,
    concurrency: usize,
    outcomes: &mut Vec<Outcome>,
) -> bool {
    use futures_util::StreamExt;
    let done = futures_util::stream::iter(documents)
        .map(|(change, body)| {
            let has = replica_has(&change.path);
            async move {
                let result = write_document(sides, &change.path, body, has).await;
                Outcome { change, result }
            }
        })
        .buffer_unordered(concurrency.max(1));
    drain(sides, done, outcomes).await
}

/// Collects outcomes until the stream ends or one finds a server unreachable (`true`),
/// noting each.
async fn drain(
    sides: &Sides,
    done: impl futures_util::Stream<Item = Outcome>,
    outcomes: &mut Vec<Outcome>,
) -> bool {
    use futures_util::StreamExt;
    let mut done = std::pin::pin!(done);
    while let Some(outcome) = done.next().await {
        if keep(sides, outcome, outcomes) {
            return true;
        }
    }
    false
}

/// Counts `outcome`, tells the worker's progress of it and keeps it; whether it found a
/// server unreachable.
pub(super) fn keep(sides: &Sides, outcome: Outcome, outcomes: &mut Vec<Outcome>) -> bool {
    count(sides, &outcome);
    sides.progress.object_done();
    if outcome.result.is_ok() {
        sides.progress.advanced();
    }
    let unreachable = outcome.result.as_ref().is_err_and(|e| e.is_unreachable());
    outcomes.push(outcome);
    unreachable
}

/// Whether a batch ended at a server that could not be reached.
pub(super) fn stopped(outcomes: &[Outcome]) -> bool {
    outcomes
        .last()
        .is_some_and(|o| o.result.as_ref().is_err_and(|e| e.is_unreachable()))
}

/// Counts an outcome in the org's metrics: `unchanged`, or what was attempted.
pub fn count(sides: &Sides, outcome: &Outcome) {
    let Some(metrics) = &sides.metrics else {
        return;
    };
    let kind = outcome.change.path.kind().as_str();
    let attempted = match outcome.change.action {
        Action::Write => "write",
        Action::Delete => "delete",
    };
    match &outcome.result {
        Ok(Applied::Unchanged) => metrics.outcome(kind, "unchanged", true),
        Ok(_) => metrics.outcome(kind, attempted, true),
        Err(_) => metrics.outcome(kind, attempted, false),
    }
}

/// Applies one change. `replica_has` is what a listing already told us (`None`: unknown).
pub async fn apply(
    sides: &Sides,
    change: &Change,
    replica_has: Option<bool>,
) -> Result<Applied, ChefError> {
    let rel = change.path.to_string();
    if let ObjectPath::Environment { name } = &change.path
        && name == Environment::DEFAULT
    {
        return Ok(Applied::Unchanged);
    }
    let policyfile = change.path.kind().is_policyfile();
    match change.action {
        Action::Delete if policyfile => return policyfiles::remove(sides, &change.path).await,
        Action::Delete => return sides.replica_delete(&rel).await,
        Action::Write if policyfile => {
            return policyfiles::copy(sides, &change.path, replica_has).await;
        }
        Action::Write => {}
    }
    match &change.path {
        ObjectPath::CookbookVersion { cookbook, version } => {
            cookbooks::copy_version(sides, cookbook, &version.to_string(), replica_has).await
        }
        ObjectPath::DataBag { bag } => copy_bag(sides, bag, replica_has).await,
        _ => copy_document(sides, &change.path, replica_has).await,
    }
}

async fn copy_bag(
    sides: &Sides,
    bag: &str,
    replica_has: Option<bool>,
) -> Result<Applied, ChefError> {
    let rel = format!("/data/{bag}");
    if sides.primary_get(&rel).await?.is_none() {
        return sides.replica_delete(&rel).await;
    }
    if replica_has != Some(false) && sides.replica_get(&rel).await?.is_some() {
        return Ok(Applied::Unchanged);
    }
    match sides.replica_post("/data", &json!({ "name": bag })).await {
        Ok(()) => Ok(Applied::Written),
        Err(ChefError::Rejected { status: 409, .. }) => Ok(Applied::Unchanged),
        Err(e) => Err(e),
    }
}

/// Roles, environments and data bag items: whole JSON documents.
async fn copy_document(
    sides: &Sides,
    path: &ObjectPath,
    replica_has: Option<bool>,
) -> Result<Applied, ChefError> {
    let rel = path.to_string();
    let Some(body) = sides.primary_get(&rel).await? else {
        // Deleted on the primary since the entry was written.
        return sides.replica_delete(&rel).await;
    };
    write_document(sides, path, body, replica_has).await
}

/// Makes the replica's document equal to `body`, the primary's version.
pub(super) async fn write_document(
    sides: &Sides,
    path: &ObjectPath,
    body: Value,
    replica_has: Option<bool>,
) -> Result<Applied, ChefError> {
    let rel = path.to_string();
    if !body.is_object() {
        return Err(ChefError::Malformed(format!(
            "{rel}: the primary's answer is not an object"
        )));
    }
    if replica_has != Some(false)
        && let Some(current) = sides.replica_get(&rel).await?
        && current == body
    {
        return Ok(Applied::Unchanged);
    }
    let collection = match path {
        ObjectPath::Role { .. } => "/roles".to_owned(),
        ObjectPath::Environment { .. } => "/environments".to_owned(),
        ObjectPath::DataBagItem { bag, .. } => format!("/data/{bag}"),
        _ => return Err(ChefError::Malformed(format!("{rel} is not a document"))),
    };
    // Update when it exists, create when the replica says it does not.
    let put_first = replica_has != Some(false);
    if put_first {
        match sides.replica_put(&rel, &body).await {
            Ok(()) => return Ok(Applied::Written),
            Err(ChefError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    match sides.replica_post(&collection, &body).await {
        Ok(()) => Ok(Applied::Written),
        // Created meanwhile (or the listing was stale): update instead.
        Err(ChefError::Rejected { status: 409, .. }) => {
            sides.replica_put(&rel, &body).await?;
            Ok(Applied::Written)
        }
        // An item whose bag the replica lacks: create the bag, then the item.
        Err(ChefError::NotFound) if matches!(path, ObjectPath::DataBagItem { .. }) => {
            if let ObjectPath::DataBagItem { bag, .. } = path {
                copy_bag(sides, bag, Some(false)).await?;
            }
            sides.replica_post(&collection, &body).await?;
            Ok(Applied::Written)
        }
        Err(e) => Err(e),
    }
}
