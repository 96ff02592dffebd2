//! `reconfigure` on a primary: step 3 of Chef's setup ("On the primary Chef server, run
//! chef-sync-ctl reconfigure"). There the original created the sync user on the primary's own
//! Chef server and wrote its key to `/etc/chef-sync/ec_sync_user.pem`, which step 6 copies to
//! every replica. This does the same through the superuser, found as `prepare-org` finds it,
//! and changes nothing when all is in place.

use std::path::Path;

use super::CtlError;
use super::own_server::{self, Flags};
use super::prepare_org::{ensure_user, public_pem, superuser_client, sync_key, unreachable};
use crate::chef_client::Peer;
use crate::config::{ClientSettings, Config, Role, locate};

/// The master's part of `reconfigure`; returns the lines to print. On a host that is both
/// master and replica the sync key is its primary's, copied here, so it is never made anew.
pub async fn reconfigure(
    config_path: &Path,
    config: &Config,
    flags: Flags,
) -> Result<Vec<String>, CtlError> {
    let settings = &config.ec_sync_client;
    let key_path = &settings.sync_key;
    let create = config.role == Role::Master;
    if !create && !key_path.exists() {
        return Err(CtlError::Failed(format!(
            "sync key {} does not exist: on a host that is also a replica it is the primary's key, copied here",
            key_path.display()
        )));
    }
    let target = own_server::resolve(config_path, Some(config), None, flags)?;
    let root = superuser_client(
        Peer::Primary,
        &target.server,
        &target.superuser,
        &target.superuser_key,
    )?;
    let (key, created) = sync_key(key_path, create)?;
    let public = public_pem(&key)?;
    let mut lines = vec![
        format!("configuration {} is valid", locate(config_path).display()),
        format!(
            "preparing sync user {} on {} as {} (key {})",
            settings.sync_user,
            target.server,
            target.superuser,
            target.superuser_key.display()
        ),
    ];
    if created {
        lines.push(format!("created sync key {}", key_path.display()));
    }
    let mut done = Vec::new();
    let first_error = |e| unreachable(&target.server, &target.superuser, &target.superuser_key, e);
    ensure_user(&root, &settings.sync_user, &public, &mut done, &first_error).await?;
    if done.is_empty() {
        lines.push(format!(
            "user {} already signs with the sync key; nothing to do",
            settings.sync_user
        ));
    }
    lines.extend(done);
    lines.push(format!(
        "copy {} to each replica, where its configuration's sync_key names it (by default {}), readable by its owner only (mode 0600)",
        key_path.display(),
        ClientSettings::default().sync_key.display()
    ));
    lines.push("then prepare each source org here: chef-sync-ctl prepare-org ORG".to_owned());
    Ok(lines)
}
