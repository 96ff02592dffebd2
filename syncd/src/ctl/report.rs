//! `sync-status`, `unsynced-objects` and `show-config`: JSON or a table.

use std::path::Path;

use crate::control::client::{self, ControlError};
use crate::status::{self, StatusRow, UnsyncedRow};
use crate::text::one_line;

use super::{CtlError, load, load_replica, open_state, require_org};

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

/// `sync-status [--json]`.
pub async fn sync_status(path: &Path, json: bool) -> Result<String, CtlError> {
    let config = load_replica(path, "sync-status")?;
    let rows: Vec<StatusRow> =
        match client::call(&config.ec_sync_client.socket_path, "GET", "/status").await {
            Ok(value) => {
                serde_json::from_value(value).map_err(|e| CtlError::Failed(e.to_string()))?
            }
            Err(ControlError::NotRunning(_)) => {
                let state = open_state(&config).await?;
                let rows = status::rows(&config, &state, |_| 0).await?;
                state.close().await;
                rows
            }
            Err(e) => return Err(CtlError::Failed(e.to_string())),
        };
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
                num(r.primary_seq),
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

/// `unsynced-objects ORG [--json]`.
pub async fn unsynced_objects(path: &Path, org: &str, json: bool) -> Result<String, CtlError> {
    let config = load_replica(path, "unsynced-objects")?;
    require_org(&config, path, org)?;
    let rows: Vec<UnsyncedRow> = match client::call(
        &config.ec_sync_client.socket_path,
        "GET",
        &format!("/orgs/{org}/unsynced"),
    )
    .await
    {
        Ok(value) => serde_json::from_value(value).map_err(|e| CtlError::Failed(e.to_string()))?,
        Err(ControlError::NotRunning(_)) => {
            let state = open_state(&config).await?;
            let rows = status::parked_rows(&state, org).await?;
            state.close().await;
            rows
        }
        Err(e) => return Err(CtlError::Failed(e.to_string())),
    };
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
    Ok(table(
        &["PATH", "ACTION", "SEQ", "ATTEMPTS", "ERROR"],
        &cells,
    ))
}

/// `show-config [--json]`: the configuration as chef-syncd reads it, defaults filled in.
pub fn show_config(path: &Path, json: bool) -> Result<String, CtlError> {
    let config = load(path)?;
    if json {
        serde_json::to_string_pretty(&config).map_err(|e| CtlError::Failed(e.to_string()))
    } else {
        let body = toml::to_string_pretty(&config).map_err(|e| CtlError::Failed(e.to_string()))?;
        // The settings of the original chef-sync that were read and not used head the file as
        // comments, so the printed configuration still loads.
        let notes: String = config
            .notes
            .iter()
            .map(|note| format!("# {note}\n"))
            .collect();
        Ok(format!("{notes}{body}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
