//! From feed entries to an order of work: entries for the same path coalesce (last wins);
//! data bags are written before anything that may go into them and deleted after their items;
//! everything else is independent and runs concurrently.

use chef_sync_shared::ObjectPath;
use serde::Serialize;

/// What to do with a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Copy the primary's current version (create or update).
    Write,
    /// Remove from the replica.
    Delete,
}

/// One unit of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The object.
    pub path: ObjectPath,
    /// Copy or remove.
    pub action: Action,
    /// The feed id that asked for it (`None` when a reconcile found it).
    pub seq: Option<i64>,
}

/// Keeps the last change per path, in the order of those last changes.
pub fn coalesce(changes: Vec<Change>) -> Vec<Change> {
    let mut last: std::collections::HashMap<ObjectPath, usize> = std::collections::HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        last.insert(c.path.clone(), i);
    }
    changes
        .into_iter()
        .enumerate()
        .filter(|(i, c)| last.get(&c.path) == Some(i))
        .map(|(_, c)| c)
        .collect()
}

/// Splits coalesced changes into phases run one after another; each phase runs concurrently.
pub fn phases(changes: Vec<Change>) -> Vec<Vec<Change>> {
    let mut bag_writes = Vec::new();
    let mut middle = Vec::new();
    let mut bag_deletes = Vec::new();
    for c in changes {
        match (&c.path, c.action) {
            (ObjectPath::DataBag { .. }, Action::Write) => bag_writes.push(c),
            (ObjectPath::DataBag { .. }, Action::Delete) => bag_deletes.push(c),
            _ => middle.push(c),
        }
    }
    [bag_writes, interleave_bags(middle), bag_deletes]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect()
}

/// Orders items so that neighbours are in different bags (first item of every bag, then the
/// second, …; everything else keeps its place in front): where a server takes one write per
/// bag at a time ([`crate::bag_writes`]), the objects in flight together are then not all
/// waiting for the same bag.
fn interleave_bags(changes: Vec<Change>) -> Vec<Change> {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut ranked: Vec<(usize, Change)> = changes
        .into_iter()
        .map(|c| {
            let rank = match &c.path {
                ObjectPath::DataBagItem { bag, .. } => {
                    let n = seen.entry(bag.clone()).or_default();
                    *n += 1;
                    *n - 1
                }
                _ => 0,
            };
            (rank, c)
        })
        .collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(path: &str, action: Action, seq: i64) -> Change {
        Change {
            path: path.parse().unwrap(),
            action,
            seq: Some(seq),
        }
    }

    #[test]
    fn last_entry_per_path_wins() {
        let out = coalesce(vec![
            c("/roles/a", Action::Write, 1),
            c("/roles/b", Action::Write, 2),
            c("/roles/a", Action::Delete, 3),
            c("/roles/b", Action::Write, 4),
        ]);
        assert_eq!(
            out,
            vec![
                c("/roles/a", Action::Delete, 3),
                c("/roles/b", Action::Write, 4)
            ]
        );
    }

    #[test]
    fn bags_come_before_their_items_and_go_after_them() {
        let out = phases(vec![
            c("/data/b/i", Action::Write, 1),
            c("/data/b", Action::Write, 2),
            c("/roles/r", Action::Write, 3),
            c("/data/old/i", Action::Delete, 4),
            c("/data/old", Action::Delete, 5),
        ]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], vec![c("/data/b", Action::Write, 2)]);
        assert_eq!(out[1].len(), 3);
        assert_eq!(out[2], vec![c("/data/old", Action::Delete, 5)]);
    }

    #[test]
    fn items_of_one_bag_are_spread_among_the_others() {
        let out = phases(vec![
            c("/data/a/1", Action::Write, 1),
            c("/data/a/2", Action::Write, 2),
            c("/data/a/3", Action::Delete, 3),
            c("/roles/r", Action::Write, 4),
            c("/data/b/1", Action::Write, 5),
            c("/data/b/2", Action::Write, 6),
        ]);
        let order: Vec<String> = out[0].iter().map(|c| c.path.to_string()).collect();
        assert_eq!(
            order,
            [
                "/data/a/1",
                "/roles/r",
                "/data/b/1",
                "/data/a/2",
                "/data/b/2",
                "/data/a/3"
            ]
        );
    }
}
