//! How chef-syncd and chef-sync-ctl reach an org pair: the sync key, one HTTP client, the
//! URLs of the primaries and the replica org, and the signed clients built from them. The
//! daemon and the commands that read both sides (`plan`, `verify`) wire them the same way.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chef_sync_shared::PrivateKey;

use crate::chef_client::{ChefServer, Peer, http_client};
use crate::config::{Config, OrgPair};
use crate::engine::offers::Offer;
use crate::engine::progress::Progress;
use crate::engine::sides::Sides;
use crate::metrics::OrgMetrics;
use crate::tls_trust::Http;

/// The sync key cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("sync_key {path}: {problem}")]
pub struct KeyProblem {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// Reads the sync key, refusing a file group or others may read unless the configuration
/// (`insecure_key_permissions = true`) says to go on, with a warning.
pub fn load_key(path: &Path, insecure_permissions: bool) -> Result<PrivateKey, KeyProblem> {
    use std::os::unix::fs::PermissionsExt;
    let problem = |problem: String| KeyProblem {
        path: path.display().to_string(),
        problem,
    };
    let mode = std::fs::metadata(path)
        .map_err(|e| problem(e.to_string()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        let why = format!("group or others may read it (mode {mode:o})");
        if !insecure_permissions {
            return Err(problem(format!(
                "{why}; run chmod 600 {} (or set insecure_key_permissions = true)",
                path.display()
            )));
        }
        tracing::warn!(
            "sync_key {}: {why}; accepted because insecure_key_permissions = true",
            path.display()
        );
    }
    let text = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
    PrivateKey::from_pem(&text).map_err(|e| problem(e.to_string()))
}

/// The URLs of a pair: primaries in failover order, and the replica org.
pub fn endpoints(config: &Config, pair: &OrgPair) -> (Vec<String>, String) {
    let primaries = match &pair.source_url {
        Some(url) => vec![url.trim_end_matches('/').to_owned()],
        None => config
            .master
            .iter()
            .map(|m| format!("{}/organizations/{}", m.trim_end_matches('/'), pair.source))
            .collect(),
    };
    let replica = match (&pair.destination_url, &config.replica) {
        (Some(url), _) => url.trim_end_matches('/').to_owned(),
        (None, Some(r)) => format!(
            "{}/organizations/{}",
            r.trim_end_matches('/'),
            pair.destination
        ),
        (None, None) => String::new(),
    };
    (primaries, replica)
}

/// What every org pair's clients share: the sync user, its key, the HTTP client and the
/// request timeout.
#[derive(Debug, Clone)]
pub struct Wiring {
    user: String,
    key: Arc<PrivateKey>,
    http: Http,
    timeout: Duration,
}

/// One org pair's signed clients.
#[derive(Debug, Clone)]
pub struct Servers {
    /// The primaries, in failover order.
    pub primaries: Vec<ChefServer>,
    /// The replica org.
    pub replica: ChefServer,
}

impl Wiring {
    /// Loads the sync key; requests time out after `request_timeout` (plus `held`, the
    /// longest a server may hold a long-poll, for the HTTP client as a whole).
    pub fn load(config: &Config, held: Duration) -> Result<Wiring, KeyProblem> {
        let client = &config.ec_sync_client;
        let key = load_key(&client.sync_key, client.insecure_key_permissions)?;
        let timeout = Duration::from_secs(client.request_timeout);
        Ok(Wiring {
            user: client.sync_user.clone(),
            key: Arc::new(key),
            http: http_client(held + timeout),
            timeout,
        })
    }

    /// The clients of `pair`, counting their requests in `metrics` when given.
    pub fn servers(
        &self,
        config: &Config,
        pair: &OrgPair,
        metrics: Option<&OrgMetrics>,
    ) -> Servers {
        let (primaries, replica) = endpoints(config, pair);
        let server = |peer, base: &str| {
            let server =
                ChefServer::new(peer, base, &self.user, self.key.clone(), self.http.clone())
                    .with_timeout(self.timeout);
            match metrics {
                Some(m) => server.with_metrics(m.clone()),
                None => server,
            }
        };
        Servers {
            primaries: primaries.iter().map(|p| server(Peer::Primary, p)).collect(),
            replica: server(Peer::Replica, &replica),
        }
    }

    /// Both sides of `pair` as a sync would see them from its first primary; `None` when no
    /// primary is configured.
    pub fn sides(&self, config: &Config, pair: &OrgPair) -> Option<Sides> {
        let servers = self.servers(config, pair, None);
        Some(Sides {
            primary: servers.primaries.into_iter().next()?,
            replica: servers.replica,
            metrics: None,
            progress: Arc::new(Progress::default()),
            bulk_write: Arc::new(Offer::default()),
        })
    }
}
