//! One phase of changes applied through the replica's bulk write: the primary's documents
//! (handed in by a feed page or a search page, read with a GET otherwise) go to the replica
//! in batches; cookbook versions share sandboxes and their manifests follow in the bulk
//! write; Policyfile objects, and whatever the bulk write hands back, go object by object.

use std::collections::HashMap;

use chef_sync_shared::ObjectPath;
use chef_sync_shared::objects::Environment;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::apply::{Outcome, apply, keep, stopped, write_document};
use super::bulk_write::{self, Item};
use super::cookbook_batch;
use super::plan::{Action, Change};
use super::sides::{Applied, Sides};
use crate::chef_client::ChefError;

/// The primary's documents already in hand, by path: `Some` its current JSON, `None` gone
/// from the primary since.
pub type Known = HashMap<ObjectPath, Option<Value>>;

/// How a change travels.
enum Route {
    /// In the bulk write, with its document.
    Bulk,
    /// A cookbook version: files through a shared sandbox, the manifest in the bulk write.
    Cookbook,
    /// Object by object (Policyfile objects, the built-in `_default` environment).
    Single,
}

fn route(change: &Change) -> Route {
    use ObjectPath as P;
    match (&change.path, change.action) {
        (P::Environment { name }, _) if name == Environment::DEFAULT => Route::Single,
        (P::Role { .. } | P::Environment { .. } | P::DataBag { .. } | P::DataBagItem { .. }, _) => {
            Route::Bulk
        }
        (P::CookbookVersion { .. }, Action::Delete) => Route::Bulk,
        (P::CookbookVersion { .. }, Action::Write) => Route::Cookbook,
        _ => Route::Single,
    }
}

/// Applies one phase; `outcomes` gets one per change attempted. Returns whether a server
/// was found unreachable (the caller stops there).
pub async fn apply_phase(
    sides: &Sides,
    phase: Vec<Change>,
    known: &mut Known,
    replica_has: &(dyn Fn(&ObjectPath) -> Option<bool> + Sync),
    concurrency: usize,
    outcomes: &mut Vec<Outcome>,
) -> bool {
    let (mut bulk, mut cookbooks, mut single) = (Vec::new(), Vec::new(), Vec::new());
    for change in phase {
        match route(&change) {
            Route::Bulk => bulk.push(change),
            Route::Cookbook => cookbooks.push(change),
            Route::Single => single.push(change),
        }
    }
    let items = documents(sides, bulk, known, concurrency, outcomes).await;
    if stopped(outcomes) {
        return true;
    }
    if write_items(sides, items, replica_has, concurrency, outcomes).await {
        return true;
    }
    let copied = cookbook_batch::copy(sides, cookbooks, replica_has, concurrency).await;
    if record(sides, copied, outcomes) {
        return true;
    }
    let done: Vec<Outcome> = futures_util::stream::iter(single)
        .map(|change| {
            let has = replica_has(&change.path);
            async move {
                let result = apply(sides, &change, has).await;
                Outcome { change, result }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    record(sides, done, outcomes)
}

/// Writes `items` through the bulk write, and what it hands back object by object.
pub async fn write_items(
    sides: &Sides,
    items: Vec<Item>,
    replica_has: &(dyn Fn(&ObjectPath) -> Option<bool> + Sync),
    concurrency: usize,
    outcomes: &mut Vec<Outcome>,
) -> bool {
    let written = bulk_write::write(sides, items).await;
    if record(sides, written.outcomes, outcomes) || written.stopped {
        return true;
    }
    let done: Vec<Outcome> = futures_util::stream::iter(written.left)
        .map(|item| {
            let has = replica_has(&item.change.path);
            async move {
                let result = write_one(sides, &item, has).await;
                Outcome {
                    change: item.change,
                    result,
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    record(sides, done, outcomes)
}

/// One item the bulk write did not carry, written through the object's own routes.
async fn write_one(sides: &Sides, item: &Item, has: Option<bool>) -> Result<Applied, ChefError> {
    let path = &item.change.path;
    match (&item.document, path) {
        (None, _) => sides.replica_delete(&item.rel).await,
        (Some(_), ObjectPath::DataBag { .. }) => apply(sides, &item.change, has).await,
        (Some(doc), _) => write_document(sides, path, doc.clone(), has).await,
    }
}

/// Counts and keeps `done`; whether one found a server unreachable.
fn record(sides: &Sides, done: Vec<Outcome>, outcomes: &mut Vec<Outcome>) -> bool {
    let mut unreachable = false;
    for outcome in done {
        unreachable |= keep(sides, outcome, outcomes);
    }
    unreachable
}

/// The items for `changes`, their documents taken from `known` or read from the primary
/// (a read that fails is an outcome of its own; one that finds the primary unreachable ends
/// the reading).
async fn documents(
    sides: &Sides,
    changes: Vec<Change>,
    known: &mut Known,
    concurrency: usize,
    outcomes: &mut Vec<Outcome>,
) -> Vec<Item> {
    let mut items = Vec::with_capacity(changes.len());
    let mut unknown = Vec::new();
    for change in changes {
        match (change.action, known.remove(&change.path)) {
            (Action::Delete, _) => items.push(Item::new(change, None)),
            (Action::Write, Some(document)) => {
                let document = document.map(|d| as_written(&change.path, d));
                items.push(Item::new(change, document));
            }
            (Action::Write, None) => unknown.push(change),
        }
    }
    let mut read = futures_util::stream::iter(unknown)
        .map(|change| async move {
            let document = read_document(sides, &change.path).await;
            (change, document)
        })
        .buffered(concurrency.max(1));
    let mut failed = Vec::new();
    while let Some((change, document)) = read.next().await {
        match document {
            Ok(document) => items.push(Item::new(change, document)),
            Err(e) => {
                let unreachable = e.is_unreachable();
                failed.push(Outcome {
                    change,
                    result: Err(e),
                });
                if unreachable {
                    break;
                }
            }
        }
    }
    record(sides, failed, outcomes);
    // Any order within a phase: bags and their items are in phases of their own.
    items
}

/// The primary's document of `path` (`None`: it has none now).
async fn read_document(sides: &Sides, path: &ObjectPath) -> Result<Option<Value>, ChefError> {
    let found = sides.primary_get(&path.to_string()).await?;
    Ok(found.map(|d| as_written(path, d)))
}

/// What the replica is sent for the primary's answer: a data bag is its name (its GET lists
/// the items).
fn as_written(path: &ObjectPath, document: Value) -> Value {
    match path {
        ObjectPath::DataBag { bag } => json!({ "name": bag }),
        _ => document,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(path: &str, action: Action) -> Change {
        Change {
            path: path.parse().unwrap(),
            action,
            seq: None,
        }
    }

    #[test]
    fn documents_go_in_bulk_cookbooks_share_sandboxes_the_rest_goes_alone() {
        let routed = |path: &str, action| match route(&change(path, action)) {
            Route::Bulk => "bulk",
            Route::Cookbook => "cookbook",
            Route::Single => "single",
        };
        for path in ["/roles/r", "/environments/e", "/data/b", "/data/b/i"] {
            assert_eq!(routed(path, Action::Write), "bulk", "{path}");
            assert_eq!(routed(path, Action::Delete), "bulk", "{path}");
        }
        assert_eq!(routed("/cookbooks/c/1.0.0", Action::Write), "cookbook");
        assert_eq!(routed("/cookbooks/c/1.0.0", Action::Delete), "bulk");
        assert_eq!(routed("/environments/_default", Action::Write), "single");
        assert_eq!(routed("/policies/p", Action::Write), "single");
        assert_eq!(
            routed("/policy_groups/g/policies/p", Action::Delete),
            "single"
        );
        assert_eq!(
            routed("/cookbook_artifacts/a/1111", Action::Write),
            "single"
        );
    }

    #[test]
    fn a_bag_is_written_as_its_name() {
        let bag: ObjectPath = "/data/users".parse().unwrap();
        let listing = json!({"alice": "https://primary/organizations/o/data/users/alice"});
        assert_eq!(as_written(&bag, listing), json!({"name": "users"}));
        let role: ObjectPath = "/roles/web".parse().unwrap();
        assert_eq!(
            as_written(&role, json!({"name": "web"})),
            json!({"name": "web"})
        );
    }
}
