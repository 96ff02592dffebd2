//! The daemon's one typed configuration, read from TOML or from the documented `chef-sync.rb`
//! subset; both produce the same [`Config`]. Every problem is reported with the file, the line
//! and the key.

mod chef_sync_rb;
mod keys;
mod legacy;
mod source;
mod toml_file;

#[cfg(test)]
mod documented;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use source::{RECORD, Record, Source, choose, locate, resolve};

/// Default of `max_parked_objects`: objects that may still be applied (valid path) parked per
/// org. Here rather than in `state`, which uses it too, because this module is also compiled
/// alone (the chef_sync_rb fuzz target).
pub const DEFAULT_MAX_PARKED: usize = 10_000;

/// Where the configuration is looked for when none is named (see [`choose`]).
pub const DEFAULT_PATH: &str = "/etc/chef-sync";

/// The original's default for `replica`, and for `master` on a primary: this host's own Chef
/// server.
pub const LOCAL_SERVER: &str = "https://127.0.0.1";

/// What this machine is in the replication topology (`replica` when not set, as in the
/// original).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The primary: runs no daemon.
    Master,
    /// A replica: runs chef-syncd.
    #[default]
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
    /// Between chef-sync servers: read feed pages with their documents and write into the
    /// replica with its bulk write (both detected, and other servers written object by
    /// object); off, every object is read and written with its own request.
    pub bulk: bool,
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
            bulk: true,
            stall_timeout: 300,
            max_parked_objects: DEFAULT_MAX_PARKED,
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
    /// Primary URLs, in failover order (on a primary, [`LOCAL_SERVER`] when not set).
    pub master: Vec<String>,
    /// The replica's URL; always set once loaded ([`LOCAL_SERVER`] when not written).
    pub replica: Option<String>,
    /// Org pairs.
    pub organizations: Vec<OrgPair>,
    /// Daemon settings.
    pub ec_sync_client: ClientSettings,
    /// Settings of the original chef-sync found in the file and not used, one sentence each
    /// (logged by the daemon at start, shown by `show-config`).
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
    /// The key, when one is at fault and the message does not name it already.
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
    /// The line `key` (`table.key`) was written on.
    pub(crate) fn line(&self, key: &str) -> Option<usize> {
        self.lines.get(key).copied()
    }

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
    /// Reads and validates `path` (a directory: the file [`resolve`] picks there): `.rb` as
    /// chef-sync.rb, anything else as TOML.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_source(path).map(|(config, _)| config)
    }

    /// [`Config::load`], also saying which file was read and which was not.
    pub fn load_with_source(path: &Path) -> Result<(Config, Source), ConfigError> {
        let source = resolve(path)?;
        let config = Config::read(&source.file)?;
        Ok((config, source))
    }

    /// Reads and validates one file.
    pub fn read(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
            file: file.to_owned(),
            line: None,
            key: None,
            message: format!("cannot read the configuration: {e}"),
        })?;
        Config::parse(file, &text)
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
        keys::check(&value, &at)?;
        let style = if is_rb {
            legacy::Style::Rb
        } else {
            legacy::Style::Toml
        };
        let notes = legacy::adopt(&mut value, &at, style)?;
        let raw: RawConfig =
            serde_path_to_error::deserialize(value).map_err(|e| serde_error(&e, &at))?;
        let mut config = validate(raw, &at)?;
        config.notes = notes;
        Ok(config)
    }
}

/// A value of the wrong type or shape, located at its key.
fn serde_error(e: &serde_path_to_error::Error<serde_json::Error>, at: &Locator<'_>) -> ConfigError {
    let message = e.inner().to_string();
    let path = e.path().to_string();
    // The key check runs first, so this is a safety net: the message names the key once.
    if let Some(unknown) = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
    {
        let key = if path == "." {
            unknown.to_owned()
        } else {
            format!("{path}.{unknown}")
        };
        return at.syntax(at.line(&key), format!("unknown key {key}"));
    }
    // Paths into lists (`organizations[1].source`) are located at the list.
    let located = path.split('[').next().unwrap_or(&path).to_owned();
    let mut error = at.error(&located, message);
    error.key = Some(path);
    error
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
    let role = raw.role.unwrap_or_default();
    let master = match raw.master {
        None if role == Role::Master => vec![LOCAL_SERVER.to_owned()],
        None => Vec::new(),
        Some(OneOrMany::One(u)) => vec![u],
        Some(OneOrMany::Many(list)) => list,
    };
    for url in &master {
        check_url(at, "master", url)?;
    }
    let replica = raw.replica.unwrap_or_else(|| LOCAL_SERVER.to_owned());
    check_url(at, "replica", &replica)?;
    validate_client(&raw.ec_sync_client, at)?;
    validate_orgs(&raw.organizations, at)?;
    // The original defaulted master to this host too, which on a replica would copy each org
    // onto itself: a replica is told where its primary is.
    if role.runs_daemon()
        && master.is_empty()
        && raw.organizations.iter().any(|p| p.source_url.is_none())
    {
        return Err(at.error(
            "master",
            "a replica needs the primary's URL (master \"https://FQDN_OF_MASTER\", or \
             source_url on every organization)",
        ));
    }
    Ok(Config {
        role,
        master,
        replica: Some(replica),
        organizations: raw.organizations,
        ec_sync_client: raw.ec_sync_client,
        notes: Vec::new(),
    })
}

fn validate_client(client: &ClientSettings, at: &Locator<'_>) -> Result<(), ConfigError> {
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
    Ok(())
}

fn validate_orgs(pairs: &[OrgPair], at: &Locator<'_>) -> Result<(), ConfigError> {
    let mut seen = std::collections::BTreeSet::new();
    for pair in pairs {
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
    Ok(())
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
        assert!(a.ec_sync_client.bulk);
        let off = Config::parse(
            Path::new("c.toml"),
            &TOML.replace("concurrency = 4", "concurrency = 4\nbulk = false"),
        )
        .unwrap();
        let off_rb = Config::parse(
            Path::new("chef-sync.rb"),
            &format!("{RB}ec_sync_client['bulk'] = false\n"),
        )
        .unwrap();
        assert!(!off.ec_sync_client.bulk);
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
        assert_eq!(
            e.to_string(),
            "c.toml:18: unknown key ec_sync_client.concurency; did you mean concurrency?"
        );

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

        // The same settings load from TOML, noted with TOML's names.
        let config = Config::parse(
            Path::new("c.toml"),
            &format!("{TOML}[ec_sync_server]\nlisten = \"x\"\n"),
        )
        .unwrap();
        assert_eq!(
            config.notes,
            [
                "ec_sync_server.listen is not used: the primary's feed is served by \
              chef-sync-server, configured in its own server.toml"
            ]
        );
    }

    #[test]
    fn role_and_replica_default_as_the_original_documented() {
        let rb =
            "master 'https://p.example'\norganizations [{:source => 'a', :destination => 'a'}]\n";
        let toml =
            "master = 'https://p.example'\n[[organizations]]\nsource = 'a'\ndestination = 'a'\n";
        for config in [
            Config::parse(Path::new("chef-sync.rb"), rb).unwrap(),
            Config::parse(Path::new("chef-sync.toml"), toml).unwrap(),
        ] {
            assert_eq!(config.role, Role::Replica);
            assert_eq!(config.replica.as_deref(), Some(LOCAL_SERVER));
            assert_eq!(config.master, ["https://p.example"]);
        }
        // A primary is this host: master and replica both default to it.
        let primary = Config::parse(Path::new("chef-sync.rb"), "role :master\n").unwrap();
        assert_eq!(primary.master, [LOCAL_SERVER]);
        assert_eq!(primary.replica.as_deref(), Some(LOCAL_SERVER));
        // An empty file is a replica with nothing to copy yet.
        let empty = Config::parse(Path::new("chef-sync.rb"), "").unwrap();
        assert_eq!(empty.role, Role::Replica);
        assert!(empty.master.is_empty());
        // A replica with orgs and no primary is still refused, and told what to write.
        let e = Config::parse(
            Path::new("chef-sync.rb"),
            "organizations [{:source => 'a', :destination => 'a'}]\n",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("master"), "{e}");
        assert!(
            e.to_string().contains("master \"https://FQDN_OF_MASTER\""),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_are_named_once_with_the_key_meant() {
        let cases: [(&str, &str, &str); 7] = [
            ("c.toml", "foo = 1\n", "c.toml:1: unknown key foo"),
            ("c.toml", "[foo]\nfoo = 1\n", "c.toml:1: unknown key foo"),
            (
                "chef-sync.rb",
                "role :replica\nec_sync_client['sync_usr'] = 'x'\n",
                "chef-sync.rb:2: unknown key ec_sync_client.sync_usr; did you mean sync_user?",
            ),
            (
                "chef-sync.rb",
                "ec_sync_server['auth_skw'] = 900\n",
                "chef-sync.rb:1: unknown key ec_sync_server.auth_skw; did you mean auth_skew?",
            ),
            (
                "chef-sync.rb",
                "user['homedir'] = '/x'\n",
                "chef-sync.rb:1: unknown key user.homedir (expected home, shell, username)",
            ),
            (
                "c.toml",
                "master = 'https://p'\n[[organizations]]\nsourc = 'a'\ndestination = 'a'\n",
                "c.toml:3: unknown key organizations[0].sourc; did you mean source?",
            ),
            (
                "c.toml",
                "sync_key = '/k.pem'\n",
                "c.toml:1: unknown key sync_key; did you mean ec_sync_client.sync_key?",
            ),
        ];
        for (file, text, want) in cases {
            let e = Config::parse(Path::new(file), text).unwrap_err();
            assert_eq!(e.to_string(), want);
        }
        // A section that is not a table is named, not taken apart.
        let e = Config::parse(Path::new("chef-sync.rb"), "ec_sync_server 1\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("ec_sync_server"), "{e}");
    }

    #[test]
    fn organization_is_organizations_and_hashes_nest() {
        let rb = "master 'https://p'\n\
                  organization [{:destination => 'b', :source => 'a'}]\n\
                  ec_sync_client['log_rotation']['num_to_keep'] = 3\n";
        let config = Config::parse(Path::new("chef-sync.rb"), rb).unwrap();
        assert_eq!(config.organizations.len(), 1);
        assert_eq!(config.organizations[0].source, "a");
        assert_eq!(config.ec_sync_client.log_rotation.num_to_keep, 3);
        let one = Config::parse(
            Path::new("c.toml"),
            "master = 'https://p'\n[organization]\nsource = 'a'\ndestination = 'b'\n",
        )
        .unwrap();
        assert_eq!(one.organizations, config.organizations);
        let both = format!("{rb}organizations []\n");
        let e = Config::parse(Path::new("chef-sync.rb"), &both).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("organization"), "{e}");
        assert_eq!(e.line, Some(2), "{e}");
        let e = Config::parse(
            Path::new("chef-sync.rb"),
            "bootstrap true\nbootstrap['enable'] = true\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }
}
