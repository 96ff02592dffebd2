//! From feed entries to an order of work: entries for the same path coalesce (last wins);
//! what other objects need is written before them and deleted after them (a data bag before
//! its items; a cookbook artifact, then a policy revision, before the group assignment that
//! points at it; on removal the other way round); everything else is independent and runs
//! concurrently.

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

/// When a change may run: phases run one after another, each concurrently within itself.
fn phase_of(change: &Change) -> usize {
    use ObjectPath as P;
    match (&change.path, change.action) {
        // Policies and groups are no more than their contents: writing one only checks that
        // the primary still has it, deleting one removes everything in it.
        (P::DataBag { .. } | P::CookbookArtifact { .. }, Action::Write) => 0,
        (P::Policy { .. } | P::PolicyGroup { .. }, Action::Write) => 0,
        (P::PolicyRevision { .. }, Action::Write) => 1,
        (P::PolicyRevision { .. } | P::PolicyGroup { .. }, Action::Delete) => 3,
        (P::DataBag { .. } | P::Policy { .. } | P::CookbookArtifact { .. }, Action::Delete) => 4,
        _ => 2,
    }
}

/// Splits coalesced changes into phases run one after another; each phase runs concurrently.
pub fn phases(changes: Vec<Change>) -> Vec<Vec<Change>> {
    let mut phases: [Vec<Change>; 5] = Default::default();
    for c in changes {
        phases[phase_of(&c)].push(c);
    }
    phases[2] = interleave_bags(std::mem::take(&mut phases[2]));
    phases.into_iter().filter(|p| !p.is_empty()).collect()
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
    fn policyfile_objects_come_after_what_they_point_at_and_go_before_it() {
        let rev = "/policies/app/revisions/r1";
        let out = phases(vec![
            c("/policy_groups/dev/policies/app", Action::Write, 1),
            c(rev, Action::Write, 2),
            c("/cookbook_artifacts/app/abc", Action::Write, 3),
            c("/policy_groups/old", Action::Write, 4),
            c("/policy_groups/prod/policies/app", Action::Delete, 5),
            c("/policies/app/revisions/r0", Action::Delete, 6),
            c("/cookbook_artifacts/app/old", Action::Delete, 7),
            c("/policies/gone", Action::Delete, 8),
            c("/policy_groups/test", Action::Delete, 9),
        ]);
        let order: Vec<Vec<String>> = out
            .iter()
            .map(|phase| phase.iter().map(|c| c.path.to_string()).collect())
            .collect();
        assert_eq!(
            order,
            [
                vec!["/cookbook_artifacts/app/abc", "/policy_groups/old"],
                vec![rev],
                vec![
                    "/policy_groups/dev/policies/app",
                    "/policy_groups/prod/policies/app"
                ],
                vec!["/policies/app/revisions/r0", "/policy_groups/test"],
                vec!["/cookbook_artifacts/app/old", "/policies/gone"],
            ]
        );
    }

    #[test]
    fn a_policy_deleted_and_pushed_again_is_not_deleted_after_the_push() {
        // The server logs a new policy's `create /policies/P`: it coalesces with the deletion,
        // so no deletion runs after the new revision and assignment.
        let out = phases(coalesce(vec![
            c("/policies/app", Action::Delete, 1),
            c("/policies/app", Action::Write, 2),
            c("/policies/app/revisions/r2", Action::Write, 3),
            c("/policy_groups/dev/policies/app", Action::Write, 4),
        ]));
        assert!(
            out.iter().flatten().all(|c| c.action == Action::Write),
            "{out:?}"
        );
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
