//! Settings of the original chef-sync that a `chef-sync.rb` written for it may hold and that
//! chef-syncd has no use for or keeps elsewhere. They are accepted, so that such a file loads as
//! it is, and each one is reported as a note instead of being silently dropped.

use serde_json::{Map, Value};

use super::{ConfigError, Locator};

/// The original's per-client copies of the top-level settings (its omnibus recipe filled them
/// in from the top level, and some files set them directly).
const HOISTED: [&str; 3] = ["master", "replica", "organizations"];

/// Removes or moves the original's settings in a parsed chef-sync.rb; returns one note per
/// setting that is not used.
pub(super) fn adopt(value: &mut Value, at: &Locator<'_>) -> Result<Vec<String>, ConfigError> {
    let Value::Object(top) = value else {
        return Ok(Vec::new());
    };
    let mut notes = Vec::new();
    if let Some(Value::Object(server)) = top.remove("ec_sync_server") {
        for key in server.keys() {
            notes.push(format!(
                "ec_sync_server['{key}'] is not used: the primary's feed is served by \
                 chef-sync-server, configured in its own server.toml"
            ));
        }
    }
    let Some(Value::Object(client)) = top.get_mut("ec_sync_client") else {
        return Ok(notes);
    };
    if client.remove("enable").is_some() {
        notes.push(
            "ec_sync_client['enable'] is not used: systemd decides whether chef-syncd runs \
             (systemctl enable or disable chef-syncd)"
                .to_owned(),
        );
    }
    if client.remove("ha").is_some() {
        notes.push(
            "ec_sync_client['ha'] is not used: run chef-syncd on one host of each replica"
                .to_owned(),
        );
    }
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
    Ok(notes)
}
