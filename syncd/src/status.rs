//! What `sync-status` and `unsynced-objects` print, built from the state database plus, when
//! the daemon runs, the batch it has in flight.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::state::{ParkedSummary, State, StateResult, Status};

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

/// Status of every configured org; `in_flight(org)` counts the daemon's pending entries.
pub async fn rows(
    config: &Config,
    state: &State,
    in_flight: impl Fn(&str) -> i64,
) -> StateResult<Vec<StatusRow>> {
    let mut out = Vec::new();
    for pair in &config.organizations {
        let org = state.org(&pair.destination).await?;
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
                unsynced: parked + in_flight(&pair.destination),
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
