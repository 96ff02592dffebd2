//! Every key a configuration may hold, checked before anything is read, so that a mistyped key
//! is an error that names it once and suggests the key that was meant.

use serde_json::{Map, Value};

use super::{ConfigError, Locator};

/// Top-level settings: ours, and every one of the original's settings table.
const TOP: &[&str] = &[
    "role",
    "master",
    "replica",
    "organizations",
    "organization",
    "ec_sync_client",
    "ec_sync_server",
    "bootstrap",
    "chef_base_path",
    "install_path",
    "name",
    "user",
];

/// `ec_sync_client`: chef-syncd's settings, then the original's that are accepted.
pub(super) const CLIENT: &[&str] = &[
    "dir",
    "log_directory",
    "log_rotation",
    "socket_path",
    "sync_user",
    "sync_key",
    "poll_interval",
    "reconcile_interval",
    "concurrency",
    "metrics_listen",
    "request_timeout",
    "long_poll",
    "bulk_reads",
    "bulk",
    "stall_timeout",
    "max_parked_objects",
    "insecure_key_permissions",
    "enable",
    "ha",
    "master",
    "replica",
    "organizations",
];

/// `ec_sync_server`, as the original's settings table lists it.
const SERVER: &[&str] = &[
    "auth_skew",
    "db_pool_size",
    "dir",
    "enable",
    "ha",
    "listen",
    "log_directory",
    "log_rotation",
    "port",
    "vip",
];

const USER: &[&str] = &["home", "shell", "username"];
const ORG: &[&str] = &["source", "destination", "source_url", "destination_url"];
const ROTATION: &[&str] = &["file_maxbytes", "num_to_keep"];

/// Checks every key of a parsed configuration (before the original's settings are moved).
pub(super) fn check(value: &Value, at: &Locator<'_>) -> Result<(), ConfigError> {
    let Value::Object(top) = value else {
        return Ok(());
    };
    known(top, "", TOP, at)?;
    for list in ["organizations", "organization"] {
        orgs(top.get(list), list, at)?;
    }
    for (section, keys) in [("ec_sync_client", CLIENT), ("ec_sync_server", SERVER)] {
        let Some(table) = table(top, section, at)? else {
            continue;
        };
        known(table, section, keys, at)?;
        if let Some(Value::Object(rotation)) = table.get("log_rotation") {
            known(rotation, &format!("{section}.log_rotation"), ROTATION, at)?;
        }
        let client_orgs = format!("{section}.organizations");
        orgs(table.get("organizations"), &client_orgs, at)?;
    }
    if let Some(user) = table(top, "user", at)? {
        known(user, "user", USER, at)?;
    }
    Ok(())
}

/// `top[name]` when it is a table; an error when it is something else.
fn table<'v>(
    top: &'v Map<String, Value>,
    name: &str,
    at: &Locator<'_>,
) -> Result<Option<&'v Map<String, Value>>, ConfigError> {
    match top.get(name) {
        None => Ok(None),
        Some(Value::Object(table)) => Ok(Some(table)),
        Some(_) => Err(at.error(
            name,
            format!("must be a table of settings ({name}['KEY'] = VALUE in chef-sync.rb)"),
        )),
    }
}

/// Org pairs: a list of tables (or one table, for the singular `organization`).
fn orgs(value: Option<&Value>, list: &str, at: &Locator<'_>) -> Result<(), ConfigError> {
    let entries: Vec<&Value> = match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return Ok(()),
    };
    for (i, entry) in entries.into_iter().enumerate() {
        if let Value::Object(pair) = entry {
            known(pair, &format!("{list}[{i}]"), ORG, at)?;
        }
    }
    Ok(())
}

fn known(
    table: &Map<String, Value>,
    prefix: &str,
    keys: &[&str],
    at: &Locator<'_>,
) -> Result<(), ConfigError> {
    let Some(unknown) = table.keys().find(|k| !keys.contains(&k.as_str())) else {
        return Ok(());
    };
    let full = if prefix.is_empty() {
        unknown.clone()
    } else {
        format!("{prefix}.{unknown}")
    };
    let mut message = format!("unknown key {full}");
    if let Some(meant) = suggestion(unknown, prefix, keys) {
        message.push_str(&format!("; did you mean {meant}?"));
    } else if keys.len() <= ORG.len() {
        message.push_str(&format!(" (expected {})", keys.join(", ")));
    }
    // The list's line stands in for the line of a key inside one of its entries.
    let list = prefix.split('[').next().unwrap_or(prefix);
    let line = at
        .line(&format!("{list}.{unknown}"))
        .or_else(|| at.line(&full))
        .or_else(|| at.line(list));
    Err(at.syntax(line, message))
}

/// The key most likely meant: a near spelling in the same table, or, at the top level, a
/// daemon setting written outside its `ec_sync_client` table.
fn suggestion(unknown: &str, prefix: &str, keys: &[&str]) -> Option<String> {
    let near = keys
        .iter()
        .map(|k| (distance(unknown, k), *k))
        .filter(|(d, k)| *d <= 2.min(k.len() / 3).max(1))
        .min();
    if let Some((_, k)) = near {
        return Some(k.to_owned());
    }
    (prefix.is_empty() && CLIENT.contains(&unknown)).then(|| format!("ec_sync_client.{unknown}"))
}

/// Edit distance (insertions, deletions, substitutions, and swaps of neighbours).
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_spellings_are_suggested_far_ones_are_not() {
        assert_eq!(distance("sync_usr", "sync_user"), 1);
        assert_eq!(distance("cnocurrency", "concurrency"), 1);
        assert_eq!(
            suggestion("sync_usr", "ec_sync_client", CLIENT).as_deref(),
            Some("sync_user")
        );
        assert_eq!(
            suggestion("auth_skw", "ec_sync_server", SERVER).as_deref(),
            Some("auth_skew")
        );
        assert_eq!(
            suggestion("sync_key", "", TOP).as_deref(),
            Some("ec_sync_client.sync_key")
        );
        assert_eq!(suggestion("foo", "", TOP), None);
        // A short key is not "near" everything short.
        assert_eq!(suggestion("ha", "ec_sync_server", &["vip", "dir"]), None);
    }

    #[test]
    fn every_client_setting_is_a_known_key() {
        let mut settings = super::super::ClientSettings {
            metrics_listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        };
        settings.sync_user = "x".into();
        let Ok(Value::Object(fields)) = serde_json::to_value(&settings) else {
            panic!("settings serialise to a table");
        };
        for field in fields.keys() {
            assert!(CLIENT.contains(&field.as_str()), "{field} is missing");
        }
    }
}
