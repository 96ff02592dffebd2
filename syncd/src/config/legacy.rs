//! Settings of the original chef-sync (its documented settings table) that chef-syncd has no
//! use for or keeps elsewhere. They are accepted, in chef-sync.rb and in TOML alike, so that a
//! file written for the original loads as it is, and each one is reported as a note instead of
//! being silently dropped.

use serde_json::{Map, Value};

use super::{ConfigError, Locator};

/// How the file names a setting in notes: `user['home']` in chef-sync.rb, `user.home` in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    Rb,
    Toml,
}

impl Style {
    fn name(self, section: &str, key: &str) -> String {
        match self {
            Style::Rb => format!("{section}['{key}']"),
            Style::Toml => format!("{section}.{key}"),
        }
    }
}

/// The original's per-client copies of the top-level settings (its omnibus recipe filled them
/// in from the top level, and some files set them directly).
const HOISTED: [&str; 3] = ["master", "replica", "organizations"];

/// Top-level settings of the original's omnibus install, and why each one is not used.
const UNUSED_TOP: [(&str, &str); 4] = [
    (
        "bootstrap",
        "chef-syncd bootstraps no Chef server; it uses the servers it is given, over their API",
    ),
    (
        "chef_base_path",
        "chef-syncd reaches the Chef servers over their API, not through their installation",
    ),
    (
        "install_path",
        "the package installs its programs in /usr/bin",
    ),
    (
        "name",
        "the services are the systemd units chef-syncd and chef-sync-server",
    ),
];

/// Removes or moves the original's settings in a parsed configuration; returns one note per
/// setting that is not used.
pub(super) fn adopt(
    value: &mut Value,
    at: &Locator<'_>,
    style: Style,
) -> Result<Vec<String>, ConfigError> {
    let Value::Object(top) = value else {
        return Ok(Vec::new());
    };
    let mut notes = Vec::new();
    for (key, why) in UNUSED_TOP {
        if top.remove(key).is_some() {
            notes.push(format!("{key} is not used: {why}"));
        }
    }
    if let Some(Value::Object(user)) = top.remove("user") {
        for key in user.keys() {
            notes.push(format!(
                "{} is not used: chef-syncd and chef-sync-server run as the system user \
                 chef-sync (User= in their systemd units)",
                style.name("user", key)
            ));
        }
    }
    if let Some(Value::Object(server)) = top.remove("ec_sync_server") {
        for key in server.keys() {
            notes.push(format!(
                "{} is not used: the primary's feed is served by chef-sync-server, configured \
                 in its own server.toml",
                style.name("ec_sync_server", key)
            ));
        }
    }
    singular_organization(top, at)?;
    if let Some(Value::Object(client)) = top.get_mut("ec_sync_client") {
        notes.extend(unused_client(client, style));
        hoist(top, at)?;
    }
    Ok(notes)
}

/// `organization`, as the settings table spells it, is `organizations` (one pair may be
/// written without the list around it).
fn singular_organization(
    top: &mut Map<String, Value>,
    at: &Locator<'_>,
) -> Result<(), ConfigError> {
    let Some(pairs) = top.remove("organization") else {
        return Ok(());
    };
    if top.contains_key("organizations") {
        return Err(at.error(
            "organization",
            "is another name for organizations, which is also set; keep one of them",
        ));
    }
    let pairs = match pairs {
        one @ Value::Object(_) => Value::Array(vec![one]),
        list => list,
    };
    top.insert("organizations".to_owned(), pairs);
    Ok(())
}

fn unused_client(client: &mut Map<String, Value>, style: Style) -> Vec<String> {
    let mut notes = Vec::new();
    if client.remove("enable").is_some() {
        notes.push(format!(
            "{} is not used: systemd decides whether chef-syncd runs (systemctl enable or \
             disable chef-syncd)",
            style.name("ec_sync_client", "enable")
        ));
    }
    if client.remove("ha").is_some() {
        notes.push(format!(
            "{} is not used: run chef-syncd on one host of each replica",
            style.name("ec_sync_client", "ha")
        ));
    }
    notes
}

/// Moves the per-client copies to the top level, where they stand in for missing settings
/// and must agree with present ones.
fn hoist(top: &mut Map<String, Value>, at: &Locator<'_>) -> Result<(), ConfigError> {
    let Some(Value::Object(client)) = top.get_mut("ec_sync_client") else {
        return Ok(());
    };
    let moved: Map<String, Value> = HOISTED
        .iter()
        .filter_map(|key| client.remove(*key).map(|v| ((*key).to_owned(), v)))
        .collect();
    for (key, v) in moved {
        match top.get(&key) {
            Some(existing) if *existing != v => {
                return Err(at.error(
                    &format!("ec_sync_client.{key}"),
                    format!("differs from the top-level {key}; keep one of them"),
                ));
            }
            Some(_) => {}
            None => {
                top.insert(key, v);
            }
        }
    }
    Ok(())
}
