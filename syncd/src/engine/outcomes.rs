//! What a cycle ends in: the report it leaves for the state database and the pause it asks
//! for, or an error that names the side it came from; and how a batch's outcomes become that
//! report (released and parked objects) and the sync log's line about them.

use std::time::Duration;

use super::apply::{Applied, Outcome};
use super::plan::Action;
use crate::chef_client::{ChefError, Origin, Peer};
use crate::state::{Head, Parked, Report, timestamp};

/// What the loop does after a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The next cycle at once.
    Now,
    /// A pause first.
    Sleep(Duration),
}

/// A cycle that got through: what to record, and when the next one runs.
#[derive(Debug)]
pub struct Cycle {
    /// Everything it changed in the state database.
    pub report: Report,
    /// When the next cycle runs.
    pub next: Next,
}

impl Cycle {
    /// `report`, then the next cycle at once.
    pub fn now(report: Report) -> Cycle {
        Cycle {
            report,
            next: Next::Now,
        }
    }
}

/// A failed cycle: the message, whether the primary looked down (→ fail over), and the side
/// that refused connections (probed during the backoff, so that the org resumes as soon as it
/// is back rather than when the backoff ends).
#[derive(Debug)]
pub struct CycleError {
    /// What the sync log and `sync-status` say.
    pub message: String,
    /// The primary looked down.
    pub primary_down: bool,
    /// The server that could not be reached at all.
    pub unreachable: Option<Origin>,
    /// The primary's head, when the cycle heard it before failing: recorded with the error.
    pub head: Option<Head>,
}

impl CycleError {
    /// A failure that is nobody's connection.
    pub fn new(message: impl Into<String>) -> Self {
        CycleError {
            message: message.into(),
            primary_down: false,
            unreachable: None,
            head: None,
        }
    }

    /// Applying `path` found a server unreachable (`e`): the batch ends there.
    pub fn unreachable_while(path: &str, e: &ChefError) -> CycleError {
        let side = e.origin().map_or(Peer::Primary, |o| o.peer);
        CycleError {
            message: format!("{side} unreachable while applying {path}: {e}"),
            // Only a dead primary is a reason to fail over to the next one.
            primary_down: side == Peer::Primary,
            unreachable: e.origin().cloned(),
            head: None,
        }
    }

    /// The same failure, with the primary's head the cycle heard before it.
    pub fn heard(self, head: Option<Head>) -> CycleError {
        CycleError { head, ..self }
    }

    /// A request to `side` (or to the server the error names) that failed.
    pub fn failed(side: Peer, e: &ChefError) -> CycleError {
        let origin = e.origin();
        let side = origin.map_or(side, |o| o.peer);
        let what = match e {
            ChefError::Transient { .. } => "unavailable",
            ChefError::Malformed(_) => "sent an unusable answer",
            _ => "refused",
        };
        CycleError {
            message: format!("{side} {what}: {e}"),
            primary_down: side == Peer::Primary && e.is_transient(),
            unreachable: origin.filter(|_| e.is_unreachable()).cloned(),
            head: None,
        }
    }
}

impl From<crate::state::StateError> for CycleError {
    fn from(e: crate::state::StateError) -> Self {
        CycleError::new(e.to_string())
    }
}

/// Now, as stored.
pub fn now() -> String {
    timestamp(chrono::Utc::now())
}

/// `d` from now, as stored.
pub fn later(d: Duration) -> String {
    timestamp(chrono::Utc::now() + chrono::Duration::from_std(d).unwrap_or_default())
}

/// Objects named in one sync-log line about a batch; the rest are counted.
const NAMED_PER_LINE: usize = 20;

/// Why a reconcile found no org at `base` (it answered 404), and what fixes it: `org` is the
/// destination org for the replica, and the primary's org is read from its URL.
pub fn missing_org(side: Peer, base: &str, org: &str) -> String {
    let fix = if side == Peer::Replica {
        format!(
            "create org '{org}' on the replica, then run `chef-sync-ctl prepare-org {org} --replica`"
        )
    } else {
        let (server, source) = base
            .rsplit_once("/organizations/")
            .unwrap_or((base, "SOURCE"));
        format!(
            "check `source` in the configuration, or create org '{source}' on the primary and \
             run `chef-sync-ctl prepare-org {source} --server {server}`"
        )
    };
    format!(
        "{side} org not found: {base} answered 404 (the org does not exist there, or the sync \
         user cannot see it); {fix}"
    )
}

/// A batch's outcomes sorted into the report: released, parked.
#[derive(Debug, Default)]
pub struct Settled {
    /// Paths applied (or found in step): released.
    pub release: Vec<String>,
    /// Objects that failed.
    pub park: Vec<Parked>,
    /// Objects written or deleted (not found in step).
    pub written: usize,
}

/// The word a parked object's action is stored as.
pub fn action_name(action: Action) -> &'static str {
    match action {
        Action::Write => "update",
        Action::Delete => "delete",
    }
}

/// `: PATH what, …` for the objects a batch applied (all of them, or with `all` false only
/// the ones it wrote or deleted), up to [`NAMED_PER_LINE`], then how many more: the sync log
/// says what changed without a line per object. Empty when there is nothing to name.
pub fn named(outcomes: &[Outcome], all: bool) -> String {
    let mut applied: Vec<(Option<i64>, String, &str)> = outcomes
        .iter()
        .filter_map(|o| {
            let what = match &o.result {
                Ok(Applied::Written) => "written",
                Ok(Applied::Deleted) => "deleted",
                Ok(Applied::Unchanged) if all => "unchanged",
                _ => return None,
            };
            Some((o.change.seq, o.change.path.to_string(), what))
        })
        .collect();
    // Outcomes arrive as objects finish; the log reads in feed order (by path in a reconcile).
    applied.sort();
    if applied.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = applied
        .iter()
        .take(NAMED_PER_LINE)
        .map(|(_, path, what)| format!("{path} {what}"))
        .collect();
    let mut text = format!(": {}", shown.join(", "));
    if applied.len() > NAMED_PER_LINE {
        text.push_str(&format!(" and {} more", applied.len() - NAMED_PER_LINE));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::Change;
    use chef_sync_shared::ObjectPath;

    fn outcome(path: &str, result: Result<Applied, ChefError>) -> Outcome {
        Outcome {
            change: Change {
                path: path.parse::<ObjectPath>().unwrap(),
                action: Action::Write,
                seq: Some(1),
            },
            result,
        }
    }

    #[test]
    fn a_batch_names_its_objects_up_to_twenty_then_counts() {
        let few = vec![
            outcome("/roles/web", Ok(Applied::Written)),
            outcome("/roles/old", Ok(Applied::Deleted)),
            outcome("/roles/same", Ok(Applied::Unchanged)),
            outcome("/roles/bad", Err(ChefError::NotFound)),
        ];
        assert_eq!(
            named(&few, true),
            ": /roles/old deleted, /roles/same unchanged, /roles/web written"
        );
        assert_eq!(
            named(&few, false),
            ": /roles/old deleted, /roles/web written"
        );
        assert_eq!(named(&few[2..], false), "");
        // Finished in any order, named in feed order.
        let many: Vec<Outcome> = (0..25)
            .rev()
            .map(|i| Outcome {
                change: Change {
                    seq: Some(i),
                    ..outcome(&format!("/roles/r{i:02}"), Ok(Applied::Written)).change
                },
                result: Ok(Applied::Written),
            })
            .collect();
        let line = named(&many, true);
        assert!(
            line.starts_with(": /roles/r00 written, /roles/r01 written"),
            "{line}"
        );
        assert!(line.contains("/roles/r19 written and 5 more"), "{line}");
        assert!(!line.contains("/roles/r20"), "{line}");
    }

    #[test]
    fn a_missing_org_is_named_with_its_side_url_and_fix() {
        let replica = missing_org(
            Peer::Replica,
            "http://127.0.0.1:9/organizations/acme",
            "acme",
        );
        assert!(
            replica.starts_with(
                "replica org not found: http://127.0.0.1:9/organizations/acme answered 404"
            ),
            "{replica}"
        );
        assert!(
            replica.contains("`chef-sync-ctl prepare-org acme --replica`"),
            "{replica}"
        );
        let primary = missing_org(
            Peer::Primary,
            "https://p1.example/organizations/src",
            "acme",
        );
        assert!(
            primary.contains("`chef-sync-ctl prepare-org src --server https://p1.example`"),
            "{primary}"
        );
    }
}
