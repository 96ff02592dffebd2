//! chef-sync-ctl's commands. Each returns a `CtlError` whose kind decides the exit code: usage
//! or configuration problems exit 2, everything else 1.

pub mod drift;
pub mod log_files;
pub mod master;
pub mod own_server;
pub mod prepare_org;
pub mod report;
pub mod wait;

use std::path::Path;

use crate::config::{Config, Role};
use crate::control::client::{self, ControlError};
use crate::state::State;

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// Usage or configuration error (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Operational failure (exit 1).
    #[error("{0}")]
    Failed(String),
    /// `verify` found drift: the report goes to stdout, and the exit code is 1.
    #[error("{0}")]
    Drift(String),
    /// Writing the command's output failed (exit 1), or its reader went away (a closed pipe:
    /// see [`is_closed_output`]).
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

impl CtlError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Usage(_) => 2,
            CtlError::Failed(_) | CtlError::Drift(_) | CtlError::Output(_) => 1,
        }
    }
}

/// Whether a write failed because the reader of stdout went away (`| head`, `| true`): not a
/// failure of the command, which then ends quietly.
pub fn is_closed_output(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}

/// Writes one line to stderr. A closed or broken stderr is ignored rather than a panic as with
/// `eprintln!`: there is nowhere left to say anything.
pub fn warn(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

impl From<crate::state::StateError> for CtlError {
    fn from(e: crate::state::StateError) -> Self {
        CtlError::Failed(e.to_string())
    }
}

/// Loads the config (exit 2 on any problem).
pub fn load(path: &Path) -> Result<Config, CtlError> {
    Config::load(path).map_err(|e| CtlError::Usage(e.to_string()))
}

/// The config, for a command that only makes sense where chef-syncd runs.
pub fn load_replica(path: &Path, command: &str) -> Result<Config, CtlError> {
    let config = load(path)?;
    if !config.role.runs_daemon() {
        return Err(CtlError::Usage(format!(
            "{command} runs on a replica, where chef-syncd runs; {} says role master",
            path.display()
        )));
    }
    Ok(config)
}

fn require_org(config: &Config, path: &Path, org: &str) -> Result<(), CtlError> {
    if config.pair(org).is_some() {
        Ok(())
    } else {
        let known: Vec<&str> = config
            .organizations
            .iter()
            .map(|p| p.destination.as_str())
            .collect();
        Err(CtlError::Usage(format!(
            "organization '{org}' is not a destination in {} (configured: {})",
            path.display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )))
    }
}

/// Opens the state database named by the config.
pub async fn open_state(config: &Config) -> Result<State, CtlError> {
    State::open(&config.state_path())
        .await
        .map_err(|e| CtlError::Failed(e.to_string()))
}

/// `sync-start` / `sync-stop`: records the choice in the state (so it survives restarts and
/// works without the daemon) and tells a running daemon at once. Returns what to print.
pub async fn set_started(path: &Path, org: &str, started: bool) -> Result<String, CtlError> {
    let command = if started { "sync-start" } else { "sync-stop" };
    let config = load_replica(path, command)?;
    require_org(&config, path, org)?;
    let pair = config
        .pair(org)
        .ok_or_else(|| CtlError::Usage(format!("unknown org {org}")))?;
    let state = open_state(&config).await?;
    state.ensure_org(&pair.destination, &pair.source).await?;
    state.set_started(org, started).await?;
    state.close().await;
    let verb = if started { "started" } else { "stopped" };
    match client::call(
        &config.ec_sync_client.socket_path,
        "POST",
        &format!("/orgs/{org}/wake"),
    )
    .await
    {
        Ok(_) => Ok(format!("sync {verb} for {org}")),
        Err(ControlError::NotRunning(_)) => Ok(format!(
            "sync {verb} for {org} (chef-syncd is not running; it takes effect when it starts)"
        )),
        Err(e) => Err(CtlError::Failed(e.to_string())),
    }
}

/// `reconfigure`. On a replica: validates the config and makes the running daemon reload it.
/// On a master (Chef's step 3 for the primary): creates or checks the sync user and its key on
/// the master's own Chef server (see [`master`]). A host that is both does both.
pub async fn reconfigure(path: &Path, flags: own_server::Flags) -> Result<String, CtlError> {
    let config = load(path)?;
    match config.role {
        Role::Master => Ok(master::reconfigure(path, &config, flags).await?.join("\n")),
        Role::Replica if flags.any() => Err(CtlError::Usage(format!(
            "--server, --superuser and --superuser-key are for reconfigure on a master; {} says role replica",
            crate::config::locate(path).display()
        ))),
        Role::Replica => reload(path, &config, false).await,
        Role::MasterAndReplica => {
            let mut lines = master::reconfigure(path, &config, flags).await?;
            lines.push(reload(path, &config, true).await?);
            Ok(lines.join("\n"))
        }
    }
}

/// Makes the running daemon reload the config. A daemon that is not running is a failure on a
/// replica (the operator expects the change to take effect) unless `optional`.
async fn reload(path: &Path, config: &Config, optional: bool) -> Result<String, CtlError> {
    match client::call(&config.ec_sync_client.socket_path, "POST", "/reload").await {
        Ok(_) => Ok(format!(
            "chef-syncd reloaded {}",
            crate::config::locate(path).display()
        )),
        Err(ControlError::NotRunning(socket)) if optional => Ok(format!(
            "chef-syncd is not running (no control socket at {socket}); it reads the configuration when it starts"
        )),
        Err(ControlError::NotRunning(socket)) => Err(CtlError::Failed(format!(
            "configuration is valid, but chef-syncd is not running (no control socket at {socket}); it is read when chef-syncd starts"
        ))),
        Err(ControlError::Refused(why)) => Err(CtlError::Usage(why)),
        Err(e) => Err(CtlError::Failed(e.to_string())),
    }
}
