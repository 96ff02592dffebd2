//! chef-syncd itself: loads the config, opens the state, starts one worker per org pair, serves
//! the control socket, reloads on request, and stops cleanly on SIGTERM/SIGINT.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError};
use crate::engine::handle::Handle;
use crate::engine::worker::{Settings, Worker};
use crate::logs::{RotatingFile, org_log_path};
use crate::metrics::Metrics;
use crate::org_pair::{KeyProblem, Servers, Wiring, load_key};
use crate::state::{OrgState, State, StateError, StateResult};

/// Why the daemon cannot run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration is invalid (exit 2).
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The config is valid but says this machine runs no daemon (exit 2).
    #[error("{0}")]
    WrongRole(String),
    /// The sync key cannot be used.
    #[error(transparent)]
    Key(#[from] KeyProblem),
    /// The new configuration moves what only a restart can move.
    #[error("{0}")]
    NeedsRestart(String),
    /// The state database failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The `metrics_listen` address could not be bound.
    #[error("metrics_listen {address}: {problem}")]
    Listen {
        /// The address.
        address: String,
        /// What is wrong.
        problem: String,
    },
    /// The control socket could not be set up.
    #[error("control socket {path}: {problem}")]
    Socket {
        /// The socket path.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

/// `wait` sent on feed requests, seconds.
pub const LONG_POLL_SECONDS: u64 = 25;
const LONG_POLL: Duration = Duration::from_secs(LONG_POLL_SECONDS);

/// Loads the config for the daemon: valid, and for a role that runs chef-syncd.
pub fn load_config(path: &Path) -> Result<Config, DaemonError> {
    let config = Config::load(path)?;
    if !config.role.runs_daemon() {
        return Err(DaemonError::WrongRole(format!(
            "{}: role is master; chef-syncd and its org commands run on a replica (role replica or master_and_replica)",
            path.display()
        )));
    }
    Ok(config)
}

struct Running {
    config: Config,
    handles: HashMap<String, Arc<Handle>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// The running daemon.
#[derive(Clone)]
pub struct Daemon {
    config_path: PathBuf,
    /// `ec_sync_client.dir` and `socket_path` as started: the state database and the control
    /// socket stay where they were opened until a restart.
    fixed: (PathBuf, PathBuf),
    state: State,
    running: Arc<Mutex<Running>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("config", &self.config_path)
            .finish()
    }
}

fn spawn(config: &Config, state: &State, metrics: &Arc<Metrics>) -> Result<Running, DaemonError> {
    let client = &config.ec_sync_client;
    let wiring = Wiring::load(config, LONG_POLL)?;
    let state = &state.clone().with_max_parked(client.max_parked_objects);
    let settings = Settings {
        poll_interval: Duration::from_secs(client.poll_interval),
        reconcile_interval: Duration::from_secs(client.reconcile_interval),
        concurrency: client.concurrency,
        long_poll: if client.long_poll {
            LONG_POLL
        } else {
            Duration::ZERO
        },
        bulk_reads: client.bulk_reads,
        bulk: client.bulk,
        metrics: None,
        max_org_backoff: Duration::from_secs(300),
    };
    let (stop, stop_rx) = watch::channel(false);
    let mut handles = HashMap::new();
    let mut tasks = Vec::new();
    for pair in &config.organizations {
        let org_metrics = metrics.org(&pair.destination);
        let Servers { primaries, replica } = wiring.servers(config, pair, Some(&org_metrics));
        let handle = Arc::new(Handle::new(primaries.clone(), replica.clone()));
        let worker = Worker::new(
            pair.destination.clone(),
            primaries,
            replica,
            state.clone(),
            handle.clone(),
            RotatingFile::new(
                org_log_path(&client.log_directory, &pair.destination),
                client.log_rotation.clone(),
            ),
            Settings {
                metrics: Some(org_metrics.clone()),
                ..settings.clone()
            },
            stop_rx.clone(),
        );
        handles.insert(pair.destination.clone(), handle);
        tasks.push(tokio::spawn(worker.run()));
    }
    Ok(Running {
        config: config.clone(),
        handles,
        stop,
        tasks,
    })
}

async fn stop_workers(running: &mut Running) {
    let _ = running.stop.send(true);
    for task in running.tasks.drain(..) {
        // A worker abandons its batch at the next await; nothing is checkpointed for it.
        if tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .is_err()
        {
            tracing::warn!("a worker did not stop in time; abandoning it");
        }
    }
}

fn fixed_paths(config: &Config) -> (PathBuf, PathBuf) {
    (
        config.ec_sync_client.dir.clone(),
        config.ec_sync_client.socket_path.clone(),
    )
}

impl Daemon {
    /// Opens the state for `config` and starts the workers.
    pub async fn start(config_path: &Path, config: Config) -> Result<Daemon, DaemonError> {
        let state = State::open(&config.state_path()).await?;
        for pair in &config.organizations {
            state.ensure_org(&pair.destination, &pair.source).await?;
        }
        let metrics = Arc::new(Metrics::new());
        let running = spawn(&config, &state, &metrics)?;
        Ok(Daemon {
            config_path: config_path.to_owned(),
            fixed: fixed_paths(&config),
            state,
            running: Arc::new(Mutex::new(running)),
            metrics,
        })
    }

    /// The state database.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The daemon's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// An org's worker handle.
    pub async fn handle(&self, org: &str) -> Option<Arc<Handle>> {
        self.running.lock().await.handles.get(org).cloned()
    }

    /// The config in force.
    pub async fn config(&self) -> Config {
        self.running.lock().await.config.clone()
    }

    /// Wakes an org's worker (after sync-start/stop changed its flag).
    pub async fn wake(&self, org: &str) -> bool {
        match self.running.lock().await.handles.get(org) {
            Some(h) => {
                h.wake.notify_one();
                true
            }
            None => false,
        }
    }

    /// What the org's worker is doing now (nothing, without a worker).
    pub async fn live(&self, org: &str) -> crate::status::Live {
        self.handle(org).await.map(|h| h.live()).unwrap_or_default()
    }

    /// The org's state row as it stands now: what its last cycle recorded, with what its
    /// worker is doing shown over it.
    pub async fn org(&self, org: &str) -> StateResult<Option<OrgState>> {
        let live = self.live(org).await;
        let mut row = self.state.org(org).await?;
        if let Some(row) = row.as_mut() {
            live.show(row);
        }
        Ok(row)
    }

    /// Entries the org's worker has in flight.
    pub async fn pending(&self, org: &str) -> Vec<crate::engine::handle::Pending> {
        self.running
            .lock()
            .await
            .handles
            .get(org)
            .and_then(|h| h.pending.lock().ok().map(|p| p.clone()))
            .unwrap_or_default()
    }

    /// Re-reads the config and restarts the workers with it; the old config stays in force
    /// if the new one is invalid.
    pub async fn reload(&self) -> Result<(), DaemonError> {
        let config = load_config(&self.config_path)?;
        // chef-sync-ctl follows the file: were these to change here, it would look for a
        // socket and a state database the running daemon does not use.
        let (dir, socket) = fixed_paths(&config);
        for (key, now, then) in [
            ("ec_sync_client.dir", &dir, &self.fixed.0),
            ("ec_sync_client.socket_path", &socket, &self.fixed.1),
        ] {
            if now != then {
                return Err(DaemonError::NeedsRestart(format!(
                    "{key} changed from {} to {}: it moves only when chef-syncd restarts (systemctl restart chef-syncd); the running configuration stays in force",
                    then.display(),
                    now.display()
                )));
            }
        }
        for pair in &config.organizations {
            self.state
                .ensure_org(&pair.destination, &pair.source)
                .await?;
        }
        let mut running = self.running.lock().await;
        // Check the key before stopping anything.
        load_key(
            &config.ec_sync_client.sync_key,
            config.ec_sync_client.insecure_key_permissions,
        )?;
        stop_workers(&mut running).await;
        *running = spawn(&config, &self.state, &self.metrics)?;
        tracing::info!(orgs = config.organizations.len(), "configuration reloaded");
        Ok(())
    }

    /// Stops every worker.
    pub async fn shutdown(&self) {
        let mut running = self.running.lock().await;
        stop_workers(&mut running).await;
        self.state.close().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A replica configuration without orgs whose state lives in `dir`.
    fn write_config(file: &Path, dir: &Path, key: &Path) {
        let text = format!(
            "role = \"replica\"\nmaster = \"http://127.0.0.1:1\"\nreplica = \"http://127.0.0.1:1\"\n\n[ec_sync_client]\ndir = \"{d}\"\nlog_directory = \"{d}\"\nsocket_path = \"{d}/ec_sync.sock\"\nsync_key = \"{k}\"\n",
            d = dir.display(),
            k = key.display()
        );
        std::fs::write(file, text).unwrap();
    }

    #[tokio::test]
    async fn a_reload_that_moves_the_state_or_socket_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("sync.pem");
        std::fs::write(
            &key,
            include_str!("../../shared/tests/fixtures/fixed-key.pem"),
        )
        .unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let file = tmp.path().join("chef-sync.toml");
        let first = tmp.path().join("first");
        write_config(&file, &first, &key);
        let daemon = Daemon::start(&file, load_config(&file).unwrap())
            .await
            .unwrap();
        daemon.reload().await.unwrap();
        write_config(&file, &tmp.path().join("second"), &key);
        let err = daemon.reload().await.unwrap_err().to_string();
        assert!(
            err.contains("ec_sync_client.dir changed") && err.contains("restart"),
            "{err}"
        );
        // The state database stayed where it was opened.
        assert!(first.join("state.db").exists());
        daemon.shutdown().await;
    }
}
