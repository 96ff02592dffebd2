//! `sync-status`, `unsynced-objects` and `show-config`: JSON or a table.

use std::path::Path;

use crate::config::Config;
use crate::control::client::{self, ControlError};
use crate::state::{State, StateResult};
use crate::status::{self, StatusRow, UnsyncedRow};
use crate::text::one_line;

use super::{CtlError, load_replica, open_state, require_org};

/// Formats rows as aligned columns under a header. Every cell is made one line with its
/// control characters escaped: paths and errors come from Chef servers.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| one_line(c).into_owned()).collect())
        .collect();
    let rows = rows.as_slice();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.len());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(header.to_vec())];
    for row in rows {
        out.push(line(row.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

fn or_dash(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

fn num(v: Option<i64>) -> String {
    v.map_or_else(|| "-".into(), |n| n.to_string())
}

/// The running daemon's answer at `route` (`true`), or, when no daemon runs, what `offline`
/// reads from the state database (`false`).
async fn from_daemon_or_state<T, F, Fut>(
    config: &Config,
    route: &str,
    offline: F,
) -> Result<(T, bool), CtlError>
where
    T: serde::de::DeserializeOwned,
    F: FnOnce(State) -> Fut,
    Fut: std::future::Future<Output = StateResult<T>>,
{
    match client::call(&config.ec_sync_client.socket_path, "GET", route).await {
        Ok(value) => {
            let answer =
                serde_json::from_value(value).map_err(|e| CtlError::Failed(e.to_string()))?;
            Ok((answer, true))
        }
        Err(ControlError::NotRunning(_)) => {
            let state = open_state(config).await?;
            let read = offline(state.clone()).await;
            state.close().await;
            Ok((read?, false))
        }
        Err(e) => Err(CtlError::Failed(e.to_string())),
    }
}

/// Every configured org's status: from the daemon when it runs (`true`), else from the
/// state database. Without the daemon nothing is planned, so NEXT SYNC is empty.
async fn status_rows(config: &Config) -> Result<(Vec<StatusRow>, bool), CtlError> {
    from_daemon_or_state(config, "/status", |state| async move {
        let mut rows = status::rows(config, &state, |_| status::Live::default()).await?;
        for row in &mut rows {
            row.next_sync = None;
        }
        Ok(rows)
    })
    .await
}

/// PRIMARY: the primary's newest feed id, with the time it was heard when the daemon cannot
/// vouch for it now (the org is stopped or failing, or the daemon is not running).
fn primary_cell(row: &StatusRow, live: bool) -> String {
    let Some(seq) = row.primary_seq else {
        return "-".into();
    };
    let current = live && matches!(row.status.as_str(), "synced" | "syncing" | "bootstrapping");
    match (&row.primary_seq_at, current) {
        (Some(at), false) => format!("{seq} (as of {at})"),
        _ => seq.to_string(),
    }
}

/// `sync-status [--json]`.
pub async fn sync_status(path: &Path, json: bool) -> Result<String, CtlError> {
    let config = load_replica(path, "sync-status")?;
    let (rows, live) = status_rows(&config).await?;
    if json {
        return serde_json::to_string_pretty(&rows).map_err(|e| CtlError::Failed(e.to_string()));
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.organization.clone(),
                r.source.clone(),
                r.status.clone(),
                or_dash(&r.last_sync),
                or_dash(&r.next_sync),
                num(r.applied_seq),
                primary_cell(r, live),
                r.unsynced.to_string(),
                or_dash(&r.last_error),
            ]
        })
        .collect();
    Ok(table(
        &[
            "ORGANIZATION",
            "SOURCE",
            "STATUS",
            "LAST SYNC",
            "NEXT SYNC",
            "APPLIED",
            "PRIMARY",
            "UNSYNCED",
            "LAST ERROR",
        ],
        &cells,
    ))
}

/// What `unsynced-objects` cannot list for an org no running daemon is working on (stopped,
/// or chef-syncd down): the feed entries it knew were pending, by count, as of when it last
/// read the primary, and where to see the rest. `None` while the daemon works on the org.
fn pending_note(org: &str, row: &StatusRow, live: bool) -> Option<String> {
    let why = if row.status == "stopped" {
        format!("{org} is stopped (`chef-sync-ctl sync-start {org}` resumes it)")
    } else if !live {
        "chef-syncd is not running".to_owned()
    } else {
        return None;
    };
    let plan = format!("`chef-sync-ctl plan {org}` lists what a sync would change now");
    let (Some(primary), Some(at)) = (row.primary_seq, &row.primary_seq_at) else {
        return Some(format!(
            "{why}; the primary's feed was never read for it: {plan}"
        ));
    };
    let applied = row.applied_seq.unwrap_or(0);
    let pending = if primary > applied {
        format!(
            "{} feed entries (ids {} to {primary}) were pending",
            primary - applied,
            applied + 1
        )
    } else {
        "no feed entries were pending".to_owned()
    };
    Some(format!(
        "{why}: {pending} when the primary was last read, at {at}; changes made there since \
         are not known until it syncs again ({plan})"
    ))
}

/// `unsynced-objects ORG [--json]`.
pub async fn unsynced_objects(path: &Path, org: &str, json: bool) -> Result<String, CtlError> {
    let config = load_replica(path, "unsynced-objects")?;
    require_org(&config, path, org)?;
    let (statuses, live) = status_rows(&config).await?;
    let note = statuses
        .iter()
        .find(|r| r.organization == org)
        .and_then(|r| pending_note(org, r, live));
    let route = format!("/orgs/{org}/unsynced");
    let (rows, _): (Vec<UnsyncedRow>, bool) =
        from_daemon_or_state(&config, &route, |state| async move {
            status::parked_rows(&state, org).await
        })
        .await?;
    if json {
        return serde_json::to_string_pretty(&rows).map_err(|e| CtlError::Failed(e.to_string()));
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.path.clone(),
                r.action.clone(),
                num(r.seq),
                r.attempts.to_string(),
                or_dash(&r.error),
            ]
        })
        .collect();
    let listed = table(&["PATH", "ACTION", "SEQ", "ATTEMPTS", "ERROR"], &cells);
    Ok(match note {
        Some(note) => format!("{listed}\n{}", one_line(&note)),
        None => listed,
    })
}

/// `show-config [--json]`: the configuration as chef-syncd reads it, defaults filled in,
/// headed by the file read (and the directory's other file, not read) and the settings that
/// file holds and chef-syncd does not use.
pub fn show_config(path: &Path, json: bool) -> Result<String, CtlError> {
    let (config, source) =
        Config::load_with_source(path).map_err(|e| CtlError::Usage(e.to_string()))?;
    if json {
        let mut value =
            serde_json::to_value(&config).map_err(|e| CtlError::Failed(e.to_string()))?;
        if let serde_json::Value::Object(fields) = &mut value {
            fields.insert(
                "source".into(),
                serde_json::json!({
                    "file": source.file,
                    "ignored": source.ignored,
                    "held_by_running_daemon": source.held_by_daemon,
                }),
            );
            fields.insert("notes".into(), serde_json::json!(config.notes));
        }
        return serde_json::to_string_pretty(&value).map_err(|e| CtlError::Failed(e.to_string()));
    }
    let body = toml::to_string_pretty(&config).map_err(|e| CtlError::Failed(e.to_string()))?;
    // Comments, so that the printed configuration still loads as chef-sync.toml.
    let header: String = source
        .describe()
        .iter()
        .chain(&config.notes)
        .map(|line| format!("# {line}\n"))
        .collect();
    Ok(format!("{header}{body}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str, applied: Option<i64>, primary: Option<i64>) -> StatusRow {
        StatusRow {
            organization: "acme".into(),
            source: "acme".into(),
            status: status.into(),
            last_sync: None,
            next_sync: None,
            applied_seq: applied,
            primary_seq: primary,
            primary_seq_at: primary.map(|_| "2026-05-01T10:31:02Z".into()),
            unsynced: 0,
            last_error: None,
        }
    }

    #[test]
    fn primary_says_as_of_when_unless_the_daemon_vouches_for_it() {
        let synced = row("synced", Some(7), Some(7));
        assert_eq!(primary_cell(&synced, true), "7");
        assert_eq!(
            primary_cell(&synced, false),
            "7 (as of 2026-05-01T10:31:02Z)"
        );
        for status in ["stopped", "error"] {
            assert_eq!(
                primary_cell(&row(status, Some(4), Some(7)), true),
                "7 (as of 2026-05-01T10:31:02Z)"
            );
        }
        assert_eq!(primary_cell(&row("stopped", None, None), true), "-");
    }

    #[test]
    fn a_stopped_org_says_what_was_pending_and_since_when() {
        let note = pending_note("acme", &row("stopped", Some(4), Some(7)), true).unwrap();
        assert!(note.starts_with("acme is stopped"), "{note}");
        assert!(
            note.contains("3 feed entries (ids 5 to 7) were pending when the primary was last read, at 2026-05-01T10:31:02Z"),
            "{note}"
        );
        assert!(note.contains("chef-sync-ctl plan acme"), "{note}");
        let note = pending_note("acme", &row("stopped", Some(7), Some(7)), true).unwrap();
        assert!(note.contains("no feed entries were pending"), "{note}");
        let note = pending_note("acme", &row("stopped", None, None), true).unwrap();
        assert!(note.contains("never read"), "{note}");
        let note = pending_note("acme", &row("synced", Some(7), Some(7)), false).unwrap();
        assert!(note.starts_with("chef-syncd is not running"), "{note}");
        assert_eq!(
            pending_note("acme", &row("synced", Some(7), Some(7)), true),
            None
        );
    }

    #[test]
    fn table_cells_cannot_break_lines_or_drive_the_terminal() {
        let rows = vec![vec![
            "/roles/x\n2026-01-01T00:00:00Z INFO forged".to_owned(),
            "\u{1b}[2J\u{9b}31m".to_owned(),
        ]];
        let text = table(&["PATH", "ERROR"], &rows);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{9b}'),
            "{text}"
        );
        assert!(
            text.contains("/roles/x\\n2026-01-01T00:00:00Z INFO forged"),
            "{text}"
        );
    }

    #[test]
    fn show_config_names_the_file_read_and_the_one_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let rb = dir.path().join("chef-sync.rb");
        std::fs::write(&rb, "ec_sync_server['port'] = 9996\n").unwrap();
        let text = show_config(dir.path(), false).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..3],
            [
                format!("# configuration read from {}", rb.display()).as_str(),
                "# ec_sync_server['port'] is not used: the primary's feed is served by \
                 chef-sync-server, configured in its own server.toml",
                "role = \"replica\"",
            ]
        );
        // The printed configuration, written beside, loads, wins, and says so.
        let toml = dir.path().join("chef-sync.toml");
        std::fs::write(&toml, &text).unwrap();
        let text = show_config(dir.path(), false).unwrap();
        assert!(
            text.starts_with(&format!(
                "# configuration read from {}\n# {} ignored: chef-sync.toml takes precedence \
                 when a directory holds both\nrole = ",
                toml.display(),
                rb.display()
            )),
            "{text}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&show_config(dir.path(), true).unwrap()).unwrap();
        assert_eq!(json["source"]["file"], toml.display().to_string());
        assert_eq!(json["source"]["ignored"], rb.display().to_string());
        assert_eq!(json["replica"], "https://127.0.0.1");
        assert_eq!(json["notes"], serde_json::json!([]));
    }
}
