//! What chef-sync-ctl may ask of the engine without running it: the objects the feed has
//! pending after a checkpoint, both sides compared (`plan`, `verify`), and the shape of a
//! running worker's progress (`sync-start --wait`, read over the control socket). Nothing
//! here writes to either server or to the state database.

use std::collections::BTreeSet;
use std::time::Duration;

use chef_sync_shared::ObjectPath;

pub use super::compare::{Difference, Drift, compare_all, compare_some};
use super::feed::{self, FeedError, PAGE};
use super::plan::coalesce;
pub use super::progress::Snapshot;
pub use super::sides::Sides;
use crate::chef_client::ChefError;

/// Why the feed after a checkpoint could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Unread {
    /// A request failed.
    #[error("reading the primary's feed: {0}")]
    Failed(ChefError),
    /// The feed cannot be followed from there (pruned, gone backwards, missing): the next
    /// sync is a full reconcile.
    #[error(
        "the primary's feed cannot be followed from {from}: {why}; the next sync is a full reconcile (see `verify`)"
    )]
    Unfollowable {
        /// The checkpoint.
        from: i64,
        /// Why.
        why: String,
    },
}

/// Paths with work pending: the feed's entries after `applied`, and `parked` objects.
pub async fn pending(
    sides: &Sides,
    applied: i64,
    parked: impl IntoIterator<Item = String>,
) -> Result<BTreeSet<ObjectPath>, Unread> {
    let mut paths: BTreeSet<ObjectPath> =
        parked.into_iter().filter_map(|p| p.parse().ok()).collect();
    let mut after = applied;
    loop {
        let page = match feed::fetch(&sides.primary, after, Duration::ZERO, false).await {
            Ok(page) => page,
            Err(FeedError::Chef(e)) => return Err(Unread::Failed(e)),
            Err(e) => {
                return Err(Unread::Unfollowable {
                    from: applied,
                    why: e.to_string(),
                });
            }
        };
        paths.extend(coalesce(page.changes).into_iter().map(|c| c.path));
        match page.last_id {
            Some(last) if page.len >= PAGE && last > after => after = last,
            _ => return Ok(paths),
        }
    }
}
