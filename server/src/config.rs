//! The server's one typed configuration, loaded once: defaults, then the TOML file, then flags.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where cookbook file contents live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobStoreKind {
    /// Files under DATA_DIR (embedded default).
    Filesystem,
    /// In the database, so several server processes can share one PostgreSQL.
    Database,
}

/// Server settings. TOML keys are the field names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listen address.
    pub listen: String,
    /// `sqlite://PATH` or `postgres://…`; default `sqlite://DATA_DIR/chef-sync.db`.
    pub database: Option<String>,
    /// Keys, files and the default SQLite database live here.
    pub data_dir: PathBuf,
    /// Allowed clock skew of signed requests, seconds.
    pub auth_skew: u64,
    /// Largest request body accepted, bytes (413 above).
    pub max_request_size: usize,
    /// Database connections.
    pub db_pool_size: u32,
    /// Cookbook file storage.
    pub blob_store: BlobStoreKind,
    /// Largest cookbook file accepted through an upload URL, bytes (Chef's nginx default, 250 MB).
    pub max_file_size: u64,
    /// Lifetime of pre-signed file URLs, seconds (bookshelf's default).
    pub file_url_ttl: u64,
    /// A separate listener for `/metrics` (e.g. `127.0.0.1:9998`); the API listener then
    /// answers `/metrics` with 404.
    pub metrics_listen: Option<String>,
    /// When set, `/metrics` on the API listener needs `Authorization: Bearer TOKEN`.
    pub metrics_token: Option<String>,
    /// Keys one user or client may hold; adding one more is refused (409).
    pub max_keys_per_actor: usize,
    /// Smallest RSA key accepted for a new or replaced public key, bits.
    pub min_key_bits: usize,
    /// Seconds an uncommitted sandbox lives; then it and the uploads no org references are
    /// removed.
    pub sandbox_ttl: u64,
    /// A second listener speaking HTTPS (e.g. `127.0.0.1:443`, where the original chef-sync's
    /// replica default `https://127.0.0.1` looks).
    pub tls_listen: Option<String>,
    /// Its certificate chain (PEM); default `DATA_DIR/tls/server.crt`, made self-signed on
    /// first start when neither it nor the key exists.
    pub tls_certificate: Option<PathBuf>,
    /// Its private key (PEM); default `DATA_DIR/tls/server.key`.
    pub tls_key: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:9996".into(),
            database: None,
            data_dir: PathBuf::from("/var/opt/chef-sync/server"),
            auth_skew: 900,
            max_request_size: 2_000_000,
            db_pool_size: 10,
            blob_store: BlobStoreKind::Filesystem,
            max_file_size: 250 * 1024 * 1024,
            file_url_ttl: 900,
            metrics_listen: None,
            metrics_token: None,
            max_keys_per_actor: 20,
            min_key_bits: 2048,
            sandbox_ttl: 86_400,
            tls_listen: None,
            tls_certificate: None,
            tls_key: None,
        }
    }
}

/// Values given on the command line, which win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--database`.
    pub database: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
}

/// A config file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable file.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or unknown/mistyped keys.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
}

impl Config {
    /// Loads the file (if any) over the defaults, then applies the flags.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Config::from_toml(&text).map_err(|message| ConfigError::Parse {
                    path: path.to_owned(),
                    message,
                })?
            }
            None => Config::default(),
        };
        if let Some(v) = overrides.listen {
            config.listen = v;
        }
        if let Some(v) = overrides.database {
            config.database = Some(v);
        }
        if let Some(v) = overrides.data_dir {
            config.data_dir = v;
        }
        Ok(config)
    }

    fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string().replace('\n', " "))
    }

    /// `auth_skew` as a duration.
    pub fn auth_skew_duration(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.auth_skew)
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.sqlite_file().display()))
    }

    /// The embedded database file, used when no `database` URL is set.
    pub fn sqlite_file(&self) -> PathBuf {
        self.data_dir.join("chef-sync.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_interface() {
        let c = Config::default();
        assert_eq!(c.listen, "127.0.0.1:9996");
        assert_eq!(c.auth_skew, 900);
        assert_eq!(c.max_request_size, 2_000_000);
        assert_eq!(c.db_pool_size, 10);
        assert_eq!(c.blob_store, BlobStoreKind::Filesystem);
        assert_eq!(
            c.database_url(),
            "sqlite:///var/opt/chef-sync/server/chef-sync.db"
        );
    }

    #[test]
    fn file_then_flags() {
        let c = Config::from_toml(
            "listen = \"127.0.0.1:1\"\nauth_skew = 60\nblob_store = \"database\"\n",
        )
        .unwrap();
        assert_eq!(c.auth_skew, 60);
        assert_eq!(c.blob_store, BlobStoreKind::Database);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\n").unwrap();
        let c = Config::load(
            Some(&path),
            Overrides {
                listen: Some("127.0.0.1:2".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:2");
    }

    #[test]
    fn unknown_keys_name_the_line() {
        let err = Config::from_toml("listen = \"x\"\nauth_skw = 5\n").unwrap_err();
        assert!(err.contains("auth_skw") && err.contains("line 2"), "{err}");
    }
}
