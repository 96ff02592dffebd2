//! The daemon's one typed configuration, read from TOML or from the documented `chef-sync.rb`
//! subset; both produce the same [`Config`]. Every problem is reported with the file, the line
//! and the key.

mod chef_sync_rb;
mod legacy;
mod toml_file;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the configuration is looked for when none is named (see [`locate`]).
pub const DEFAULT_PATH: &str = "/etc/chef-sync";

/// The file `--config PATH` means: PATH itself, or for a directory its `chef-sync.toml`, or its
/// `chef-sync.rb` when only that exists, so that a replica set up for the original chef-sync
/// (which kept `/etc/chef-sync/chef-sync.rb`) needs no flag.
pub fn locate(path: &Path) -> PathBuf {
    if !path.is_dir() {
        return path.to_owned();
    }
    let toml = path.join("chef-sync.toml");
    let rb = path.join("chef-sync.rb");
    if !toml.exists() && rb.exists() {
        rb
    } else {
        toml
    }
}

/// What this machine is in the replication topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The primary: runs no daemon.
    Master,
    /// A replica: runs chef-syncd.
    Replica,
    /// Both at once (a replica that is also a primary for others).
    MasterAndReplica,
}

impl Role {
    /// Whether chef-syncd runs here.
    pub fn runs_daemon(self) -> bool {
        !matches!(self, Role::Master)
    }
}

/// One source org → destination org pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgPair {
    /// Org on the primary.
    pub source: String,
    /// Org on the replica; also the name operators use in commands.
    pub destination: String,
    /// Full org URL on the primary, for servers without `/organizations` (Chef 11 style).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// Full org URL on the replica, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_url: Option<String>,
}

/// Log file rotation by size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogRotation {
    /// Rotate when a file reaches this size.
    pub file_maxbytes: u64,
    /// Rotated files kept.
    pub num_to_keep: u32,
}

impl Default for LogRotation {
    fn default() -> Self {
        LogRotation {
            file_maxbytes: 104_857_600,
            num_to_keep: 10,
        }
    }
}

/// `ec_sync_client` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSettings {
    /// The state database lives here.
    pub dir: PathBuf,
    /// Manager and per-org logs.
    pub log_directory: PathBuf,
    /// Size rotation of those logs.
    pub log_rotation: LogRotation,
    /// The control socket.
    pub socket_path: PathBuf,
    /// The user the daemon signs as, on both servers.
    pub sync_user: String,
    /// Its private key.
    pub sync_key: PathBuf,
    /// Seconds between polls when the primary has no long-poll.
    pub poll_interval: u64,
    /// Seconds between full anti-entropy passes (0 = off).
    pub reconcile_interval: u64,
    /// Objects in flight per org.
    pub concurrency: usize,
    /// Optional TCP listener for /metrics and /healthz.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
    /// Seconds before a request to a Chef server is abandoned and retried (a long-poll's
    /// wait is added to it).
    pub request_timeout: u64,
    /// Ask the primary to hold feed requests until there is news (`wait`); off, the feed is
    /// polled every `poll_interval`.
    pub long_poll: bool,
    /// Read the primary's roles, environments and data bag items a page at a time through
    /// Chef search during a full reconcile; off, every object is read with its own GET.
    pub bulk_reads: bool,
    /// Seconds an org may go without getting anything done while the primary has entries
    /// before `/readyz` calls it stalled.
    pub stall_timeout: u64,
    /// Objects that may still be applied parked per org; one more holds the org's checkpoint
    /// until some are applied.
    pub max_parked_objects: usize,
    /// Start even though `sync_key` can be read by group or others (otherwise a refusal).
    pub insecure_key_permissions: bool,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            dir: PathBuf::from("/var/opt/chef-sync/ec_sync_client"),
            log_directory: PathBuf::from("/var/log/opscode/chef-sync/client"),
            log_rotation: LogRotation::default(),
            socket_path: PathBuf::from("/var/opt/chef-sync/ec_sync_client/ec_sync.sock"),
            sync_user: "ec_sync_user".into(),
            sync_key: PathBuf::from("/etc/chef-sync/ec_sync_user.pem"),
            poll_interval: 10,
            reconcile_interval: 3600,
            concurrency: 8,
            metrics_listen: None,
            request_timeout: 60,
            long_poll: true,
            bulk_reads: true,
            stall_timeout: 300,
            max_parked_objects: crate::state::DEFAULT_MAX_PARKED,
            insecure_key_permissions: false,
        }
    }
}

/// `master` is one URL or a list tried in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    role: Option<Role>,
    master: Option<OneOrMany>,
    replica: Option<String>,
    #[serde(default)]
    organizations: Vec<OrgPair>,
    #[serde(default)]
    ec_sync_client: ClientSettings,
}

/// The loaded configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    /// This machine's role.
    pub role: Role,
    /// Primary URLs, in failover order.
    pub master: Vec<String>,
    /// The replica's URL.
    pub replica: Option<String>,
    /// Org pairs.
    pub organizations: Vec<OrgPair>,
    /// Daemon settings.
    pub ec_sync_client: ClientSettings,
    /// Settings of the original chef-sync found in a chef-sync.rb and not used, one sentence
    /// each (logged by the daemon at start, shown by `show-config`).
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// A configuration problem: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The key, when one is at fault.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Where each key was written: `role`, `ec_sync_client.concurrency`, `organizations`, ….
pub(crate) type KeyLines = BTreeMap<String, usize>;

/// Turns problems found in the parsed values into located errors.
pub(crate) struct Locator<'a> {
    pub file: &'a Path,
    pub lines: &'a KeyLines,
}

impl Locator<'_> {
    pub(crate) fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let line = self.lines.get(key).copied().or_else(|| {
            // `ec_sync_client.x` may have been written as a nested table entry.
            key.rsplit('.').next().and_then(|k| {
                self.lines
                    .iter()
                    .find(|(name, _)| name.rsplit('.').next() == Some(k))
                    .map(|(_, l)| *l)
            })
        });
        ConfigError {
            file: self.file.to_owned(),
            line,
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }

    pub(crate) fn syntax(&self, line: Option<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            line,
            key: None,
            message: message.into(),
        }
    }
}

impl Config {
    /// Reads and validates `path` (a directory: the file [`locate`] finds there): `.rb` as
    /// chef-sync.rb, anything else as TOML.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let path = &locate(path);
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            line: None,
            key: None,
            message: format!("cannot read the configuration: {e}"),
        })?;
        Config::parse(path, &text)
    }

    /// Parses configuration text; `path` decides the format and names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let is_rb = path.extension().is_some_and(|e| e == "rb");
        let (mut value, lines) = if is_rb {
            chef_sync_rb::parse(path, text)?
        } else {
            toml_file::parse(path, text)?
        };
        let at = Locator {
            file: path,
            lines: &lines,
        };
        let notes = if is_rb {
            legacy::adopt(&mut value, &at)?
        } else {
            Vec::new()
        };
        let raw: RawConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let message = e.inner().to_string();
            // An unknown field is named in the message; anything else by its path.
            let key = match message.split('`').nth(1) {
                Some(unknown) if message.starts_with("unknown field") => {
                    let parent = e.path().to_string();
                    if parent == "." {
                        unknown.to_owned()
                    } else {
                        format!("{parent}.{unknown}")
                    }
                }
                _ => e.path().to_string(),
            };
            // Paths into lists (`organizations[1].source`) are located at the list.
            let located = key.split('[').next().unwrap_or(&key).to_owned();
            let mut error = at.error(&located, message);
            error.key = Some(key);
            error
        })?;
        let mut config = validate(raw, &at)?;
        config.notes = notes;
        Ok(config)
    }
}

fn check_url(at: &Locator<'_>, key: &str, url: &str) -> Result<(), ConfigError> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() > "https://".len()
        && !url.contains(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(at.error(key, format!("'{url}' is not an http:// or https:// URL")))
    }
}

fn validate(raw: RawConfig, at: &Locator<'_>) -> Result<Config, ConfigError> {
    let role = raw.role.ok_or_else(|| {
        at.error(
            "role",
            "is required (master, replica or master_and_replica)",
        )
    })?;
    let master = match raw.master {
        None => Vec::new(),
        Some(OneOrMany::One(u)) => vec![u],
        Some(OneOrMany::Many(list)) => list,
    };
    for url in &master {
        check_url(at, "master", url)?;
    }
    if let Some(url) = &raw.replica {
        check_url(at, "replica", url)?;
    }
    let client = raw.ec_sync_client;
    if client.concurrency == 0 || client.concurrency > 256 {
        return Err(at.error("ec_sync_client.concurrency", "must be between 1 and 256"));
    }
    if client.max_parked_objects == 0 {
        return Err(at.error("ec_sync_client.max_parked_objects", "must be at least 1"));
    }
    if client.stall_timeout == 0 {
        return Err(at.error("ec_sync_client.stall_timeout", "must be at least 1"));
    }
    if client.request_timeout == 0 {
        return Err(at.error(
            "ec_sync_client.request_timeout",
            "must be at least 1 second",
        ));
    }
    if client.poll_interval == 0 {
        return Err(at.error("ec_sync_client.poll_interval", "must be at least 1 second"));
    }
    if client.sync_user.is_empty() {
        return Err(at.error("ec_sync_client.sync_user", "must not be empty"));
    }
    if client.log_rotation.file_maxbytes < 4096 {
        return Err(at.error(
            "ec_sync_client.log_rotation",
            "file_maxbytes must be at least 4096",
        ));
    }
    if let Some(listen) = &client.metrics_listen
        && listen.parse::<std::net::SocketAddr>().is_err()
    {
        return Err(at.error(
            "ec_sync_client.metrics_listen",
            format!("'{listen}' is not an address:port"),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for pair in &raw.organizations {
        for name in [&pair.source, &pair.destination] {
            chef_sync_shared::path::validate_name(
                chef_sync_shared::path::NameKind::Organization,
                name,
            )
            .map_err(|e| at.error("organizations", e.to_string()))?;
        }
        if !seen.insert(pair.destination.clone()) {
            return Err(at.error(
                "organizations",
                format!("destination '{}' appears twice", pair.destination),
            ));
        }
        for url in pair.source_url.iter().chain(pair.destination_url.iter()) {
            check_url(at, "organizations", url)?;
        }
    }
    if role.runs_daemon() {
        if master.is_empty() && raw.organizations.iter().any(|p| p.source_url.is_none()) {
            return Err(at.error(
                "master",
                "a replica needs the primary's URL (or source_url on every organization)",
            ));
        }
        if raw.replica.is_none()
            && raw
                .organizations
                .iter()
                .any(|p| p.destination_url.is_none())
        {
            return Err(at.error(
                "replica",
                "a replica needs its own URL (or destination_url on every organization)",
            ));
        }
    }
    Ok(Config {
        role,
        master,
        replica: raw.replica,
        organizations: raw.organizations,
        ec_sync_client: client,
        notes: Vec::new(),
    })
}

impl Config {
    /// The pair whose destination is `org`.
    pub fn pair(&self, org: &str) -> Option<&OrgPair> {
        self.organizations.iter().find(|p| p.destination == org)
    }

    /// The state database.
    pub fn state_path(&self) -> PathBuf {
        self.ec_sync_client.dir.join("state.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
role = "replica"
master = ["https://a.example", "https://b.example"]
replica = "https://127.0.0.1"

[[organizations]]
source = "acme"
destination = "acme-copy"

[[organizations]]
source = "goi"
destination = "goi"
source_url = "http://127.0.0.1:4646"

[ec_sync_client]
dir = "/tmp/state"
sync_user = "syncer"
concurrency = 4
log_rotation = { file_maxbytes = 10000, num_to_keep = 3 }
"#;

    const RB: &str = r#"
# The documented chef-sync.rb
role :replica
master ["https://a.example", "https://b.example"]
replica "https://127.0.0.1"
organizations [{:source => "acme", :destination => "acme-copy"},
               {source: "goi", destination: "goi", source_url: "http://127.0.0.1:4646"}]
ec_sync_client['dir'] = '/tmp/state'   # state lives here
ec_sync_client['sync_user'] = "syncer"
ec_sync_client['concurrency'] = 4
ec_sync_client['log_rotation'] = { 'file_maxbytes' => 10000, 'num_to_keep' => 3 }
"#;

    #[test]
    fn toml_and_rb_give_the_same_config() {
        let a = Config::parse(Path::new("c.toml"), TOML).unwrap();
        let b = Config::parse(Path::new("chef-sync.rb"), RB).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.master.len(), 2);
        assert_eq!(a.ec_sync_client.concurrency, 4);
        assert_eq!(a.ec_sync_client.poll_interval, 10);
        assert!(a.ec_sync_client.long_poll);
        assert!(a.ec_sync_client.bulk_reads);
        assert_eq!(a.ec_sync_client.log_rotation.num_to_keep, 3);
        let off = Config::parse(
            Path::new("c.toml"),
            &TOML.replace("concurrency = 4", "concurrency = 4\nbulk_reads = false"),
        )
        .unwrap();
        let off_rb = Config::parse(
            Path::new("chef-sync.rb"),
            &format!("{RB}ec_sync_client['bulk_reads'] = false\n"),
        )
        .unwrap();
        assert!(!off.ec_sync_client.bulk_reads);
        assert_eq!(off, off_rb);
        assert_eq!(a.ec_sync_client.max_parked_objects, 10_000);
        assert!(!a.ec_sync_client.insecure_key_permissions);
        let relaxed = Config::parse(
            Path::new("c.toml"),
            &TOML.replace(
                "concurrency = 4",
                "concurrency = 4\ninsecure_key_permissions = true\nmax_parked_objects = 50",
            ),
        )
        .unwrap();
        let relaxed_rb = Config::parse(
            Path::new("chef-sync.rb"),
            &format!(
                "{RB}ec_sync_client['insecure_key_permissions'] = true\n\
                 ec_sync_client['max_parked_objects'] = 50\n"
            ),
        )
        .unwrap();
        assert!(relaxed.ec_sync_client.insecure_key_permissions);
        assert_eq!(relaxed.ec_sync_client.max_parked_objects, 50);
        assert_eq!(relaxed, relaxed_rb);
        let e = Config::parse(
            Path::new("c.toml"),
            &TOML.replace(
                "concurrency = 4",
                "concurrency = 4\ninsecure_key_permissions = 1",
            ),
        )
        .unwrap_err();
        assert_eq!(
            e.key.as_deref(),
            Some("ec_sync_client.insecure_key_permissions"),
            "{e}"
        );
        assert_eq!(
            a.organizations[1].source_url.as_deref(),
            Some("http://127.0.0.1:4646")
        );
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let bad = TOML.replace("concurrency = 4", "concurrency = 0");
        let e = Config::parse(Path::new("c.toml"), &bad).unwrap_err();
        assert_eq!(e.line, Some(18), "{e}");
        assert_eq!(
            e.to_string(),
            "c.toml:18: ec_sync_client.concurrency: must be between 1 and 256"
        );

        let bad = TOML.replace("concurrency = 4", "concurency = 4");
        let e = Config::parse(Path::new("c.toml"), &bad).unwrap_err();
        assert_eq!(e.line, Some(18), "{e}");
        assert!(e.to_string().contains("unknown field `concurency`"), "{e}");

        let bad = RB.replace(
            "ec_sync_client['concurrency'] = 4",
            "ec_sync_client['concurrency'] = 0",
        );
        let e = Config::parse(Path::new("chef-sync.rb"), &bad).unwrap_err();
        assert_eq!(e.line, Some(10), "{e}");

        let e = Config::parse(Path::new("c.toml"), "role = \"boss\"\n").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
        assert_eq!(e.key.as_deref(), Some("role"));

        let e = Config::parse(
            Path::new("c.toml"),
            "role = \"replica\"\nmaster = \"ftp://x\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");

        let e = Config::parse(Path::new("c.toml"), "role = \n").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");

        let e = Config::parse(
            Path::new("c.rb"),
            "role :replica\nmaster 'https://x'\nreplica [1,\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
    }

    #[test]
    fn a_replica_needs_urls() {
        let e = Config::parse(
            Path::new("c.toml"),
            "role = \"replica\"\n[[organizations]]\nsource = \"a\"\ndestination = \"a\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("master"));
        let ok = Config::parse(Path::new("c.toml"), "role = \"master\"\n").unwrap();
        assert!(ok.organizations.is_empty());
    }

    #[test]
    fn settings_of_the_original_chef_sync_load_and_are_noted() {
        let original = format!(
            "{RB}ec_sync_client['enable'] = true\nec_sync_client['ha'] = false\n\
             ec_sync_client['master'] = [\"https://a.example\", \"https://b.example\"]\n\
             ec_sync_server['listen'] = '127.0.0.1'\nec_sync_server['auth_skew'] = 900\n"
        );
        let config = Config::parse(Path::new("chef-sync.rb"), &original).unwrap();
        let plain = Config::parse(Path::new("chef-sync.rb"), RB).unwrap();
        assert_eq!(config.ec_sync_client, plain.ec_sync_client);
        assert_eq!(config.master, plain.master);
        assert_eq!(config.notes.len(), 4, "{:?}", config.notes);
        assert!(
            config
                .notes
                .iter()
                .any(|n| n.starts_with("ec_sync_server['auth_skew'] is not used"))
        );
        assert!(
            config
                .notes
                .iter()
                .any(|n| n.starts_with("ec_sync_client['enable'] is not used"))
        );

        // The per-client copy stands in for a missing top-level setting …
        let only_client = RB.replace(
            "master [\"https://a.example\", \"https://b.example\"]",
            "ec_sync_client['master'] = 'https://c.example'",
        );
        let config = Config::parse(Path::new("chef-sync.rb"), &only_client).unwrap();
        assert_eq!(config.master, vec!["https://c.example".to_owned()]);
        // … and may not contradict a present one.
        let e = Config::parse(
            Path::new("chef-sync.rb"),
            &format!("{RB}ec_sync_client['replica'] = 'https://elsewhere.example'\n"),
        )
        .unwrap_err();
        assert_eq!(e.line, Some(12), "{e}");
        assert!(
            e.to_string()
                .contains("ec_sync_client.replica: differs from the top-level replica"),
            "{e}"
        );

        // A TOML file is ours: the original's sections are unknown there.
        let e = Config::parse(
            Path::new("c.toml"),
            &format!("{TOML}[ec_sync_server]\nlisten = \"x\"\n"),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("unknown field `ec_sync_server`"),
            "{e}"
        );
    }

    #[test]
    fn a_directory_means_its_toml_or_else_its_chef_sync_rb() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("chef-sync.toml");
        let rb = dir.path().join("chef-sync.rb");
        assert_eq!(locate(dir.path()), toml);
        std::fs::write(&rb, RB).unwrap();
        assert_eq!(locate(dir.path()), rb);
        std::fs::write(&toml, TOML).unwrap();
        assert_eq!(locate(dir.path()), toml);
        assert_eq!(locate(&rb), rb);
    }
}
