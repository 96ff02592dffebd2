//! What `sync-status` and `unsynced-objects` print, built from the state database (what each
//! sync cycle recorded) plus, when the daemon runs, what its workers are doing now.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::state::{OrgState, ParkedSummary, State, StateResult, Status};

/// What a running worker is doing now, shown over what its org's last cycle recorded: the
/// database holds results, this holds work in progress (a bootstrap under way, a page being
/// applied, the wait before the next request).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Live {
    /// The status of the work in progress (`None`: as recorded).
    pub status: Option<Status>,
    /// The recorded error no longer holds: the server it named accepts connections again and
    /// the org is being retried.
    pub error_cleared: bool,
    /// When the current wait ends (RFC 3339; `None`: working, not waiting).
    pub next_sync: Option<String>,
    /// The primary's newest feed id, heard by the cycle under way (`None`: as recorded).
    pub primary_seq: Option<i64>,
    /// Feed entries of the batch in flight.
    pub in_flight: i64,
}

impl Live {
    /// `row` as it stands now.
    pub fn show(&self, row: &mut OrgState) {
        if !row.started {
            return;
        }
        if let Some(status) = self.status {
            row.status = status;
        }
        if self.error_cleared {
            row.last_error = None;
        }
        row.next_sync.clone_from(&self.next_sync);
        if self.primary_seq.is_some() {
            row.primary_seq = self.primary_seq;
        }
    }
}

/// One org in `sync-status --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRow {
    /// Destination org.
    pub organization: String,
    /// Source org.
    pub source: String,
    /// stopped | bootstrapping | syncing | synced | error.
    pub status: String,
    /// RFC 3339 or null.
    pub last_sync: Option<String>,
    /// RFC 3339 or null.
    pub next_sync: Option<String>,
    /// Checkpoint.
    pub applied_seq: Option<i64>,
    /// The primary's newest id when last seen.
    pub primary_seq: Option<i64>,
    /// RFC 3339 or null: when `primary_seq` was heard from the primary.
    #[serde(default)]
    pub primary_seq_at: Option<String>,
    /// Feed entries in flight plus parked objects.
    pub unsynced: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// One line of `unsynced-objects --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsyncedRow {
    /// Path.
    pub path: String,
    /// Action.
    pub action: String,
    /// Feed id.
    pub seq: Option<i64>,
    /// Attempts so far (0: not yet tried).
    pub attempts: i64,
    /// The last error.
    pub error: Option<String>,
}

/// Status of every configured org; `live(org)` is what the daemon's worker is doing now.
pub async fn rows(
    config: &Config,
    state: &State,
    live: impl Fn(&str) -> Live,
) -> StateResult<Vec<StatusRow>> {
    let mut out = Vec::new();
    for pair in &config.organizations {
        let now = live(&pair.destination);
        let mut org = state.org(&pair.destination).await?;
        if let Some(row) = org.as_mut() {
            now.show(row);
        }
        let summary = state.parked_summary(&pair.destination).await?;
        let parked = summary.stored + summary.counted;
        let parked_error = parked_error(&summary);
        let row = match org {
            Some(o) => StatusRow {
                organization: o.destination,
                source: pair.source.clone(),
                status: if o.started {
                    o.status.as_str()
                } else {
                    Status::Stopped.as_str()
                }
                .to_owned(),
                last_sync: o.last_sync,
                next_sync: if o.started { o.next_sync } else { None },
                applied_seq: o.applied_seq,
                primary_seq: o.primary_seq,
                primary_seq_at: o.primary_seq_at,
                unsynced: parked + now.in_flight,
                last_error: o.last_error.or(parked_error),
            },
            None => StatusRow {
                organization: pair.destination.clone(),
                source: pair.source.clone(),
                status: Status::Stopped.as_str().to_owned(),
                last_sync: None,
                next_sync: None,
                applied_seq: None,
                primary_seq: None,
                primary_seq_at: None,
                unsynced: 0,
                last_error: None,
            },
        };
        out.push(row);
    }
    Ok(out)
}

/// A caught-up org with parked objects is not fine: this says why, even between failures.
fn parked_error(summary: &ParkedSummary) -> Option<String> {
    let first = summary.first.as_ref()?;
    let mut text = format!(
        "{} object(s) parked, the first {}: {}",
        summary.stored, first.path, first.error
    );
    if summary.counted > 0 {
        text.push_str(&format!(
            "; {} more feed entries that can never be applied were counted, not stored",
            summary.counted
        ));
    }
    Some(text)
}

/// Parked objects of an org as rows.
pub async fn parked_rows(state: &State, org: &str) -> StateResult<Vec<UnsyncedRow>> {
    Ok(state
        .parked(org)
        .await?
        .into_iter()
        .map(|p| UnsyncedRow {
            path: p.path,
            action: p.action,
            seq: p.seq,
            attempts: p.attempts,
            error: Some(p.error),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: Status, started: bool) -> OrgState {
        OrgState {
            destination: "dst".into(),
            source: "src".into(),
            started,
            status,
            applied_seq: None,
            primary_guid: None,
            primary_url: None,
            primary_seq: None,
            primary_seq_at: None,
            mode: None,
            last_sync: None,
            next_sync: None,
            last_error: Some("primary unavailable: Connection refused".into()),
        }
    }

    #[test]
    fn work_in_progress_shows_over_the_recorded_state() {
        // Retrying after a failure: bootstrapping again, the error still shown.
        let retrying = Live {
            status: Some(Status::Bootstrapping),
            ..Live::default()
        };
        let mut shown = row(Status::Error, true);
        retrying.show(&mut shown);
        assert_eq!(shown.status, Status::Bootstrapping);
        assert!(shown.last_error.is_some());
        // The server is back: the error is no longer what the org is doing.
        let back = Live {
            status: Some(Status::Syncing),
            error_cleared: true,
            ..Live::default()
        };
        let mut shown = row(Status::Error, true);
        back.show(&mut shown);
        assert_eq!((shown.status, shown.last_error), (Status::Syncing, None));
        // Waiting: the end of the wait; working: none.
        let waiting = Live {
            next_sync: Some("2030-01-01T00:00:00Z".into()),
            ..Live::default()
        };
        let mut shown = row(Status::Synced, true);
        waiting.show(&mut shown);
        assert_eq!(shown.status, Status::Synced);
        assert_eq!(shown.next_sync.as_deref(), Some("2030-01-01T00:00:00Z"));
        // A page read and being applied: the primary's head is ahead of the checkpoint.
        let applying = Live {
            status: Some(Status::Syncing),
            primary_seq: Some(40),
            ..Live::default()
        };
        let mut shown = row(Status::Synced, true);
        shown.applied_seq = Some(10);
        applying.show(&mut shown);
        assert_eq!(
            (shown.status, shown.applied_seq, shown.primary_seq),
            (Status::Syncing, Some(10), Some(40))
        );
        // A stopped org is shown as recorded.
        let mut shown = row(Status::Stopped, false);
        back.show(&mut shown);
        assert_eq!(shown.status, Status::Stopped);
        assert!(shown.last_error.is_some());
    }
}
