//! This host's own Chef server and its superuser, for `prepare-org` and, on a primary,
//! `reconfigure`. Chef documented both with no arguments (`chef-sync-ctl prepare-org ORG`), so
//! the server comes from the configuration and pivotal's key from where Chef servers keep it;
//! `--server`, `--superuser` and `--superuser-key` override each.

use std::path::{Path, PathBuf};

use super::CtlError;
use crate::config::{Config, Role, locate};

/// The documented default of both `master` and `replica` in chef-sync.rb: this host's Chef
/// server behind its own (self-signed) TLS listener.
pub const DEFAULT_URL: &str = "https://127.0.0.1";

/// The superuser Chef servers create, and chef-sync-server too.
pub const SUPERUSER: &str = "pivotal";

/// Where pivotal's key is looked for after the `server.toml` files (see [`key_candidates`]):
/// chef-sync-server as packaged, Chef Infra Server (where the original chef-sync read it), and
/// chef-sync-server's built-in `data_dir` when it runs without a configuration.
pub const KEY_PLACES: [&str; 3] = [
    "/var/lib/chef-sync/server/pivotal.pem",
    "/etc/opscode/pivotal.pem",
    "/var/opt/chef-sync/server/pivotal.pem",
];

/// chef-sync-server's `data_dir` when its `server.toml` names none.
const SERVER_DEFAULT_DATA_DIR: &str = "/var/opt/chef-sync/server";

/// What the operator passed on the command line; each `None` is looked up.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--server URL`.
    pub server: Option<String>,
    /// `--superuser NAME`.
    pub superuser: Option<String>,
    /// `--superuser-key FILE`.
    pub superuser_key: Option<PathBuf>,
}

impl Flags {
    /// Whether any was given.
    pub fn any(&self) -> bool {
        self.server.is_some() || self.superuser.is_some() || self.superuser_key.is_some()
    }
}

/// The server to act on and who to act as.
#[derive(Debug, Clone)]
pub struct Target {
    /// Server root URL (for a Chef 11 style server, the server itself).
    pub server: String,
    /// Superuser name.
    pub superuser: String,
    /// Its private key.
    pub superuser_key: PathBuf,
}

/// Loads the config if there is one: on a primary there may be none, and then the documented
/// defaults apply (`Ok(None)`). A config that exists and does not load is an error (exit 2).
pub fn load_optional(path: &Path) -> Result<Option<Config>, CtlError> {
    match Config::load(path) {
        Ok(config) => Ok(Some(config)),
        Err(_) if !locate(path).exists() => Ok(None),
        Err(e) => Err(CtlError::Usage(e.to_string())),
    }
}

/// This host's Chef server for `org` as the config names it: on a master the `master` URL
/// (or the org's `source_url`), on a replica (and on a host that is both, whose own server is
/// its replica side) the `replica` URL (or the org's `destination_url`); the documented
/// default `https://127.0.0.1` when the config names none or there is no config.
pub fn own_url(config: Option<&Config>, org: Option<&str>) -> String {
    let Some(config) = config else {
        return DEFAULT_URL.to_owned();
    };
    let url = match config.role {
        Role::Master => org
            .and_then(|o| config.organizations.iter().find(|p| p.source == o))
            .and_then(|p| p.source_url.clone())
            .or_else(|| config.master.first().cloned()),
        Role::Replica | Role::MasterAndReplica => org
            .and_then(|o| config.pair(o))
            .and_then(|p| p.destination_url.clone())
            .or_else(|| config.replica.clone()),
    };
    url.unwrap_or_else(|| DEFAULT_URL.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// chef-sync-server's `data_dir` as `file` (a `server.toml`) sets it; `None` when the file
/// does not exist or is not TOML (it is then not chef-sync-server's configuration).
fn server_data_dir(file: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(file).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    Some(match table.get("data_dir").and_then(toml::Value::as_str) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(SERVER_DEFAULT_DATA_DIR),
    })
}

/// Where pivotal's key is looked for when `--superuser-key` is not given, in order:
/// `DATA_DIR/pivotal.pem` of the chef-sync-server configuration named by
/// `CHEF_SYNC_SERVER_CONFIG`, then of the `server.toml` beside the configuration (as packaged:
/// `/etc/chef-sync/server.toml`), then [`KEY_PLACES`].
pub fn key_candidates(config_path: &Path) -> Vec<PathBuf> {
    let named = std::env::var_os("CHEF_SYNC_SERVER_CONFIG").map(PathBuf::from);
    candidates(named, config_path)
}

fn candidates(server_config: Option<PathBuf>, config_path: &Path) -> Vec<PathBuf> {
    let config_dir = if config_path.is_dir() {
        Some(config_path)
    } else {
        config_path.parent()
    };
    let server_configs = server_config
        .into_iter()
        .chain(config_dir.map(|d| d.join("server.toml")));
    let mut out: Vec<PathBuf> = Vec::new();
    let found = server_configs
        .filter_map(|f| server_data_dir(&f))
        .map(|dir| dir.join("pivotal.pem"))
        .chain(KEY_PLACES.iter().map(PathBuf::from));
    for candidate in found {
        if !out.contains(&candidate) {
            out.push(candidate);
        }
    }
    out
}

/// The first candidate that exists. One whose existence cannot be checked (a data directory
/// only its service user may enter) stops the search: it is most likely the one meant.
pub fn find_key(candidates: &[PathBuf]) -> Result<PathBuf, CtlError> {
    for candidate in candidates {
        match candidate.try_exists() {
            Ok(true) => return Ok(candidate.clone()),
            Ok(false) => {}
            Err(e) => {
                return Err(CtlError::Failed(format!(
                    "cannot look for the superuser key at {}: {e} (run as root, or pass --superuser-key FILE)",
                    candidate.display()
                )));
            }
        }
    }
    let tried: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
    Err(CtlError::Usage(format!(
        "no superuser key found (looked for {}); pass --superuser-key FILE",
        tried.join(", ")
    )))
}

/// The server and superuser for `org` (none: the server itself, for `reconfigure`).
pub fn resolve(
    config_path: &Path,
    config: Option<&Config>,
    org: Option<&str>,
    flags: Flags,
) -> Result<Target, CtlError> {
    let server = flags.server.unwrap_or_else(|| own_url(config, org));
    let superuser_key = match flags.superuser_key {
        Some(key) => key,
        None => find_key(&key_candidates(config_path))?,
    };
    Ok(Target {
        server,
        superuser: flags.superuser.unwrap_or_else(|| SUPERUSER.to_owned()),
        superuser_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(Path::new("c.toml"), text).unwrap()
    }

    #[test]
    fn the_own_server_follows_the_role() {
        assert_eq!(own_url(None, Some("acme")), DEFAULT_URL);
        let master = config("role = \"master\"\n");
        assert_eq!(own_url(Some(&master), Some("acme")), DEFAULT_URL);
        let master = config("role = \"master\"\nmaster = \"http://10.0.0.1:9996/\"\n");
        assert_eq!(own_url(Some(&master), None), "http://10.0.0.1:9996");
        let replica = config(
            "role = \"replica\"\nmaster = \"https://p.example\"\nreplica = \"https://r.example\"\n\
             [[organizations]]\nsource = \"a\"\ndestination = \"b\"\n\
             [[organizations]]\nsource = \"c\"\ndestination = \"d\"\n\
             destination_url = \"http://127.0.0.1:4646\"\n",
        );
        assert_eq!(own_url(Some(&replica), Some("b")), "https://r.example");
        assert_eq!(own_url(Some(&replica), Some("d")), "http://127.0.0.1:4646");
        assert_eq!(own_url(Some(&replica), None), "https://r.example");
        let both = config(
            "role = \"master_and_replica\"\nmaster = \"https://p.example\"\nreplica = \"https://r.example\"\n",
        );
        assert_eq!(own_url(Some(&both), None), "https://r.example");
    }

    #[test]
    fn pivotal_is_looked_for_in_the_servers_data_dir_first() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::write(
            dir.path().join("server.toml"),
            format!(
                "listen = \"127.0.0.1:9996\"\ndata_dir = \"{}\"\n",
                data.display()
            ),
        )
        .unwrap();
        let list = candidates(None, &dir.path().join("chef-sync.toml"));
        assert_eq!(list.first(), Some(&data.join("pivotal.pem")));
        assert_eq!(
            list[list.len() - KEY_PLACES.len()..]
                .iter()
                .map(|p| p.to_str().unwrap())
                .collect::<Vec<_>>(),
            KEY_PLACES
        );
        // A directory as the config means the same.
        assert_eq!(candidates(None, dir.path()), list);
        // A server.toml without data_dir: the server's default.
        std::fs::write(dir.path().join("server.toml"), "listen = \"127.0.0.1:1\"\n").unwrap();
        assert_eq!(
            candidates(None, dir.path()).first().unwrap(),
            Path::new("/var/opt/chef-sync/server/pivotal.pem")
        );
    }

    #[test]
    fn the_first_existing_key_wins_and_none_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.pem");
        let b = dir.path().join("b.pem");
        std::fs::write(&b, "x").unwrap();
        assert_eq!(find_key(&[a.clone(), b.clone()]).unwrap(), b);
        std::fs::write(&a, "x").unwrap();
        assert_eq!(find_key(&[a.clone(), b]).unwrap(), a);
        let err = find_key(&[dir.path().join("none.pem")]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--superuser-key"), "{err}");
    }
}
