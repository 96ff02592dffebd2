//! `prepare-org`: gives the sync user what it needs on a server. On an org-style server (ours,
//! Chef Infra Server): the user (with the sync key), membership of the org and of its
//! `admins` group, and with `--replica` the org's replica flag. On a Chef 11 style server
//! (goiardi), which has no users-in-orgs: an admin client named after the sync user with the
//! sync key. Running it again changes nothing.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chef_sync_shared::{PrivateKey, PublicKey};
use serde_json::{Value, json};

use super::CtlError;
use super::own_server::{self, Flags};
use crate::chef_client::retry::RetryPolicy;
use crate::chef_client::{ChefError, ChefServer, Peer, http_client};

/// What `prepare-org` was asked to do.
#[derive(Debug, Clone)]
pub struct Request {
    /// The org.
    pub org: String,
    /// Server root URL (or, for Chef 11 style servers, the org URL).
    pub server: String,
    /// Superuser name.
    pub superuser: String,
    /// Superuser private key.
    pub superuser_key: PathBuf,
    /// Sync user name.
    pub sync_user: String,
    /// Sync private key: used if it exists, created (0600) if not.
    pub sync_key: PathBuf,
    /// Make the org a replica org.
    pub replica: bool,
}

fn failed(context: &str, e: ChefError) -> CtlError {
    CtlError::Failed(format!("{context}: {e}"))
}

/// `prepare-org ORG` with the flags given: the sync user and key from the config when there
/// is one (on a primary there may be none: the documented defaults apply), the server and
/// superuser as [`own_server::resolve`] finds them.
pub async fn prepare(
    config_path: &Path,
    org: String,
    flags: Flags,
    sync_key: Option<PathBuf>,
    replica: bool,
) -> Result<Vec<String>, CtlError> {
    let config = own_server::load_optional(config_path)?;
    let settings = config
        .as_ref()
        .map(|c| c.ec_sync_client.clone())
        .unwrap_or_default();
    let target = own_server::resolve(config_path, config.as_ref(), Some(&org), flags)?;
    let request = Request {
        org,
        server: target.server,
        superuser: target.superuser,
        superuser_key: target.superuser_key,
        sync_user: settings.sync_user,
        sync_key: sync_key.unwrap_or(settings.sync_key),
        replica,
    };
    run(&request).await
}

/// Loads the sync key, or, when the file does not exist and `create` allows, creates it
/// (mode 0600 from the moment it exists). Returns the key and whether it was created.
pub(super) fn sync_key(path: &Path, create: bool) -> Result<(PrivateKey, bool), CtlError> {
    match std::fs::read_to_string(path) {
        Ok(pem) => PrivateKey::from_pem(&pem)
            .map(|k| (k, false))
            .map_err(|e| CtlError::Failed(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            write_new_key(path).map(|k| (k, true))
        }
        Err(e) => Err(CtlError::Failed(format!(
            "sync key {}: {e}",
            path.display()
        ))),
    }
}

fn write_new_key(path: &Path) -> Result<PrivateKey, CtlError> {
    let key = PrivateKey::generate(2048).map_err(|e| CtlError::Failed(e.to_string()))?;
    let pem = key
        .to_pkcs1_pem()
        .map_err(|e| CtlError::Failed(e.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CtlError::Failed(format!("{}: {e}", dir.display())))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CtlError::Failed(format!("{}: {e}", path.display())))?;
    std::io::Write::write_all(&mut file, pem.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| CtlError::Failed(format!("{}: {e}", path.display())))?;
    Ok(key)
}

/// The public half of `key`, as PEM.
pub(super) fn public_pem(key: &PrivateKey) -> Result<String, CtlError> {
    key.public_key()
        .to_pem()
        .map_err(|e| CtlError::Failed(e.to_string()))
}

/// A client of `server` signing as the superuser with the key in `key_path`.
pub(super) fn superuser_client(
    peer: Peer,
    server: &str,
    superuser: &str,
    key_path: &Path,
) -> Result<ChefServer, CtlError> {
    let unusable = |e: &dyn std::fmt::Display| {
        CtlError::Failed(format!("superuser key {}: {e}", key_path.display()))
    };
    let pem = std::fs::read_to_string(key_path).map_err(|e| unusable(&e))?;
    let key = PrivateKey::from_pem(&pem).map_err(|e| unusable(&e))?;
    let http = http_client(Duration::from_secs(60));
    // An operator's command: a failure is reported at once, not retried.
    Ok(
        ChefServer::new(peer, server, superuser, Arc::new(key), http)
            .with_retry(RetryPolicy::once()),
    )
}

/// The error for a failed first request to the server: a refused signature names the key,
/// which may have been found rather than given.
pub(super) fn unreachable(server: &str, superuser: &str, key: &Path, e: ChefError) -> CtlError {
    match e {
        ChefError::Rejected { status: 401, .. } => CtlError::Failed(format!(
            "{server} refused the signature of {superuser} ({e}): is {} its superuser key? pass --superuser-key FILE",
            key.display()
        )),
        e => failed(&format!("cannot reach {server}"), e),
    }
}

fn same_key(a: &str, b: &str) -> bool {
    match (PublicKey::from_pem(a), PublicKey::from_pem(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// What the original's prepare-org listed: "a list of group names, organization names, and
/// actors (users, clients, and groups)", here the ones it checked or changed.
fn touched(organizations: &[&str], groups: &[&str], actors: &[String]) -> Vec<String> {
    let list = |names: Vec<String>| {
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    vec![
        format!("organizations: {}", list(owned(organizations))),
        format!("groups: {}", list(owned(groups))),
        format!("actors: {}", list(actors.to_vec())),
    ]
}

/// Runs prepare-org; returns the lines to print: the server and superuser used, one line per
/// change made (or "nothing to do"), then the organizations, groups and actors involved.
pub async fn run(req: &Request) -> Result<Vec<String>, CtlError> {
    let peer = if req.replica {
        Peer::Replica
    } else {
        Peer::Primary
    };
    let root = superuser_client(peer, &req.server, &req.superuser, &req.superuser_key)?;
    let (key, created) = sync_key(&req.sync_key, true)?;
    let public = public_pem(&key)?;
    let mut done = Vec::new();
    if created {
        done.push(format!("created sync key {}", req.sync_key.display()));
    }
    let user = &req.sync_user;
    let summary = match root.get(&format!("/organizations/{}", req.org)).await {
        Ok(Value::Object(org)) if org.contains_key("name") => {
            org_style(&root, req, &public, &org, &mut done).await?;
            touched(&[&req.org], &["admins"], &[format!("{user} (user)")])
        }
        Err(ChefError::NotFound) => {
            return Err(CtlError::Failed(format!(
                "organization '{}' does not exist on {}",
                req.org, req.server
            )));
        }
        // goiardi answers 200 with an empty body for paths it does not know.
        Ok(_) | Err(ChefError::Malformed(_)) => {
            chef11_style(&root, req, &public, &mut done).await?;
            touched(&[], &[], &[format!("{user} (client)")])
        }
        Err(e) => {
            return Err(unreachable(
                &req.server,
                &req.superuser,
                &req.superuser_key,
                e,
            ));
        }
    };
    if done.is_empty() {
        done.push(format!(
            "{} is already prepared on {}; nothing to do",
            req.org, req.server
        ));
    }
    let mut lines = vec![format!(
        "preparing {} on {} as {} (key {})",
        req.org,
        req.server,
        req.superuser,
        req.superuser_key.display()
    )];
    lines.extend(done);
    lines.extend(summary);
    Ok(lines)
}

/// Makes `user` exist on the server with the sync key as its `default` key (created, or its
/// key replaced when it differs). Adds a line to `done` for each change.
/// `first_error` words a failure of the first request, which may be the first one made to the
/// server at all.
pub(super) async fn ensure_user(
    root: &ChefServer,
    user: &str,
    public: &str,
    done: &mut Vec<String>,
    first_error: &dyn Fn(ChefError) -> CtlError,
) -> Result<(), CtlError> {
    match root.get(&format!("/users/{user}")).await {
        Ok(_) => {
            let key = root
                .get(&format!("/users/{user}/keys/default"))
                .await
                .map_err(|e| failed("reading the sync user's key", e))?;
            let current = key.get("public_key").and_then(Value::as_str).unwrap_or("");
            if !same_key(current, public) {
                root.put(
                    &format!("/users/{user}/keys/default"),
                    &json!({"name": "default", "public_key": public, "expiration_date": "infinity"}),
                )
                .await
                .map_err(|e| failed("replacing the sync user's key", e))?;
                done.push(format!(
                    "replaced the default key of user {user} with the sync key"
                ));
            }
        }
        Err(ChefError::NotFound) => {
            root.post(
                "/users",
                &json!({
                    "username": user, "display_name": user, "first_name": "chef-sync",
                    "last_name": "replication", "email": format!("{user}@localhost"),
                    "public_key": public,
                }),
            )
            .await
            .map_err(|e| failed("creating the sync user", e))?;
            done.push(format!("created user {user}"));
        }
        Err(e) => return Err(first_error(e)),
    }
    Ok(())
}

async fn org_style(
    root: &ChefServer,
    req: &Request,
    public: &str,
    org: &serde_json::Map<String, Value>,
    done: &mut Vec<String>,
) -> Result<(), CtlError> {
    let user = &req.sync_user;
    ensure_user(root, user, public, done, &|e| {
        failed("reading the sync user", e)
    })
    .await?;
    let org_rel = format!("/organizations/{}", req.org);
    match root.get(&format!("{org_rel}/users/{user}")).await {
        Ok(_) => {}
        Err(ChefError::NotFound) => {
            match root
                .post(&format!("{org_rel}/users"), &json!({"username": user}))
                .await
            {
                Ok(_) | Err(ChefError::Rejected { status: 409, .. }) => {}
                Err(e) => return Err(failed("associating the sync user", e)),
            }
            done.push(format!("associated {user} with {}", req.org));
        }
        Err(e) => return Err(failed("reading the org's users", e)),
    }
    join_admins(root, &org_rel, user, &req.org, done).await?;
    if req.replica {
        let is_replica = org.get("replica").and_then(Value::as_bool) == Some(true)
            && org.get("sync_user").and_then(Value::as_str) == Some(user.as_str());
        if !is_replica {
            root.put(&org_rel, &json!({"replica": true, "sync_user": user}))
                .await
                .map_err(|e| {
                    failed(
                        "marking the org as a replica (this needs a chef-sync-server)",
                        e,
                    )
                })?;
            done.push(format!(
                "{} is now a replica org written only by {user}",
                req.org
            ));
        }
    }
    Ok(())
}

/// Adds `user` to the org's `admins` group unless it is there.
async fn join_admins(
    root: &ChefServer,
    org_rel: &str,
    user: &String,
    org: &str,
    done: &mut Vec<String>,
) -> Result<(), CtlError> {
    let admins = root
        .get(&format!("{org_rel}/groups/admins"))
        .await
        .map_err(|e| failed("reading the admins group", e))?;
    let list = |k: &str| -> Vec<String> {
        admins
            .get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut users = list("users");
    if !users.contains(user) {
        users.push(user.clone());
        root.put(
            &format!("{org_rel}/groups/admins"),
            &json!({"groupname": "admins", "actors": {"users": users, "clients": list("clients"), "groups": list("groups")}}),
        )
        .await
        .map_err(|e| failed("adding the sync user to admins", e))?;
        done.push(format!("added {user} to the admins group of {org}"));
    }
    Ok(())
}

async fn chef11_style(
    root: &ChefServer,
    req: &Request,
    public: &str,
    done: &mut Vec<String>,
) -> Result<(), CtlError> {
    if req.replica {
        return Err(CtlError::Failed(format!(
            "{} has no organizations (Chef 11 style): it cannot be made a replica org; run without --replica",
            req.server
        )));
    }
    let user = &req.sync_user;
    let wanted = json!({"name": user, "admin": true, "validator": false, "public_key": public});
    match root.get(&format!("/clients/{user}")).await {
        Ok(client) => {
            let admin = client.get("admin").and_then(Value::as_bool) == Some(true);
            let current = client
                .get("public_key")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !admin || !same_key(current, public) {
                root.put(&format!("/clients/{user}"), &wanted)
                    .await
                    .map_err(|e| failed("updating the sync client", e))?;
                done.push(format!("updated client {user}: admin with the sync key"));
            }
        }
        Err(ChefError::NotFound) => {
            root.post("/clients", &wanted)
                .await
                .map_err(|e| failed("creating the sync client", e))?;
            done.push(format!("created admin client {user} with the sync key"));
        }
        Err(e) => return Err(failed("reading the sync client", e)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_lists_organizations_groups_and_actors() {
        assert_eq!(
            touched(&["acme"], &["admins"], &["ec_sync_user (user)".into()]),
            [
                "organizations: acme",
                "groups: admins",
                "actors: ec_sync_user (user)"
            ]
        );
        assert_eq!(
            touched(&[], &[], &["ec_sync_user (client)".into()]),
            [
                "organizations: none",
                "groups: none",
                "actors: ec_sync_user (client)"
            ]
        );
    }

    #[test]
    fn a_sync_key_is_made_owner_only_or_not_at_all() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/ec_sync_user.pem");
        let err = sync_key(&path, false).unwrap_err();
        assert!(err.to_string().contains("ec_sync_user.pem"), "{err}");
        assert!(!path.exists());
        let (made, created) = sync_key(&path, true).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (read, created) = sync_key(&path, true).unwrap();
        assert!(!created);
        assert_eq!(read.public_key(), made.public_key());
    }
}
