//! `sync-start ORG --wait`: follows the org through its bootstrap with a progress bar (objects
//! done of the total, file bytes copied, rate, time left) and returns once it is synced. On a
//! terminal the bar redraws in place; otherwise (a script, a CI log) a plain line is printed
//! every few seconds.

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::CtlError;
use crate::control::client::{self, ControlError};
use crate::engine::inspect::Snapshot;
use crate::status::StatusRow;
use crate::text::one_line;

/// How often the daemon is asked.
const POLL: Duration = Duration::from_millis(500);
/// How often a plain progress line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

async fn ask(socket: &Path, path: &str) -> Result<serde_json::Value, CtlError> {
    client::call(socket, "GET", path).await.map_err(|e| match e {
        ControlError::NotRunning(socket) => CtlError::Failed(format!(
            "chef-syncd is not running (no control socket at {socket}); --wait needs it: the org starts syncing when it starts"
        )),
        other => CtlError::Failed(other.to_string()),
    })
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// One line saying where the org stands.
fn describe(org: &str, row: &StatusRow, p: &Snapshot, rate: f64) -> String {
    let mut line = format!("{org}: {}", row.status);
    if p.total > 0 {
        line.push_str(&format!(
            ", {}/{} objects, {} of files, {rate:.0} objects/s",
            p.done,
            p.total,
            megabytes(p.bytes)
        ));
        if rate > 0.0 {
            let left = (p.total.saturating_sub(p.done)) as f64 / rate;
            line.push_str(&format!(", about {left:.0} s left"));
        }
    }
    if let Some(error) = &row.last_error {
        line.push_str(&format!(" (last error: {error})"));
    }
    line
}

/// The bar drawn on a terminal (hidden elsewhere: plain lines are written instead).
fn progress_bar(org: &str, terminal: bool) -> Result<ProgressBar, CtlError> {
    let bar = ProgressBar::with_draw_target(
        None,
        if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} objects, {msg}, {per_sec}, {eta} left",
        )
        .map_err(|e| CtlError::Failed(e.to_string()))?
        .progress_chars("=> "),
    );
    bar.set_prefix(org.to_owned());
    Ok(bar)
}

/// Objects per second over the reconcile in flight, counted from when it was first `seen`
/// (a new total starts the count again).
fn rate_since(seen: &mut Option<(Instant, u64, u64)>, progress: &Snapshot) -> f64 {
    match *seen {
        Some((since, total, done)) if total == progress.total && progress.done >= done => {
            let secs = since.elapsed().as_secs_f64();
            if secs > 0.0 {
                (progress.done - done) as f64 / secs
            } else {
                0.0
            }
        }
        _ => {
            *seen = Some((Instant::now(), progress.total, progress.done));
            0.0
        }
    }
}

/// Waits until `org` is synced, showing progress on stderr; returns the closing line.
pub async fn until_synced(socket: &Path, org: &str) -> Result<String, CtlError> {
    let started = Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let bar = progress_bar(org, terminal)?;
    // The first plain line comes after a second, the next ones every PLAIN_EVERY.
    let mut last_plain = Instant::now()
        .checked_sub(PLAIN_EVERY - Duration::from_secs(1))
        .unwrap_or_else(Instant::now);
    // The rate over the reconcile in flight: objects done since it was first seen.
    let mut seen: Option<(Instant, u64, u64)> = None;
    loop {
        let rows: Vec<StatusRow> = serde_json::from_value(ask(socket, "/status").await?)
            .map_err(|e| CtlError::Failed(e.to_string()))?;
        let row = rows
            .into_iter()
            .find(|r| r.organization == org)
            .ok_or_else(|| CtlError::Failed(format!("chef-syncd does not know {org}")))?;
        let progress: Snapshot =
            serde_json::from_value(ask(socket, &format!("/orgs/{org}/progress")).await?)
                .map_err(|e| CtlError::Failed(e.to_string()))?;
        if row.status == "synced" {
            bar.finish_and_clear();
            return Ok(format!(
                "{org} synced (feed position {}) after {:.1} s",
                row.applied_seq
                    .map_or_else(|| "-".to_owned(), |s| s.to_string()),
                started.elapsed().as_secs_f64()
            ));
        }
        let rate = rate_since(&mut seen, &progress);
        if progress.total > 0 {
            bar.set_length(progress.total);
            bar.set_position(progress.done);
        }
        // The last error may quote what a primary sent: escaped before it reaches stderr.
        bar.set_message(match &row.last_error {
            Some(e) => one_line(&format!(
                "{}, {} (last error: {e})",
                row.status,
                megabytes(progress.bytes)
            ))
            .into_owned(),
            None => format!("{}, {}", row.status, megabytes(progress.bytes)),
        });
        if !terminal && last_plain.elapsed() >= PLAIN_EVERY {
            super::warn(&one_line(&describe(org, &row, &progress, rate)));
            last_plain = Instant::now();
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_line_has_counts_bytes_rate_and_time_left() {
        let row = StatusRow {
            organization: "acme".into(),
            source: "acme".into(),
            status: "bootstrapping".into(),
            last_sync: None,
            next_sync: None,
            applied_seq: None,
            primary_seq: Some(10),
            primary_seq_at: None,
            unsynced: 0,
            last_error: None,
        };
        let p = Snapshot {
            total: 1000,
            done: 400,
            bytes: 2_500_000,
        };
        assert_eq!(
            describe("acme", &row, &p, 100.0),
            "acme: bootstrapping, 400/1000 objects, 2.5 MB of files, 100 objects/s, about 6 s left"
        );
        let idle = Snapshot {
            total: 0,
            done: 0,
            bytes: 0,
        };
        let failing = StatusRow {
            last_error: Some("primary unavailable".into()),
            status: "error".into(),
            ..row
        };
        assert_eq!(
            describe("acme", &failing, &idle, 0.0),
            "acme: error (last error: primary unavailable)"
        );
    }
}
