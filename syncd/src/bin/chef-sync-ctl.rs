//! `chef-sync-ctl`: operator commands for chef-syncd and for preparing orgs on Chef servers.
//!
//! Output goes through one writer whose errors are returned, not `println!`, which panics when
//! stdout is a pipe whose reader has gone (`chef-sync-ctl sync-status | head -1`). A reader
//! that went away ends the command quietly with the exit status it would have had otherwise
//! (0 on success), as ripgrep does; nothing is printed about it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chef_sync_syncd::config::{self, DEFAULT_PATH};
use chef_sync_syncd::ctl::own_server::Flags;
use chef_sync_syncd::ctl::{self, CtlError, log_files, prepare_org, report};
use chef_sync_syncd::text;
use clap::{Parser, Subcommand};

/// Operator CLI for chef-syncd.
#[derive(Debug, Parser)]
#[command(name = "chef-sync-ctl", version)]
struct Cli {
    /// Configuration file (TOML, or chef-sync.rb), or a directory holding chef-sync.toml or,
    /// failing that, chef-sync.rb.
    #[arg(long, global = true, env = "CHEF_SYNC_CONFIG", default_value = DEFAULT_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start syncing ORG (a destination org); the choice survives restarts.
    #[command(name = "sync-start")]
    SyncStart {
        org: String,
        /// Show the bootstrap's progress and return once ORG is synced (needs the daemon).
        #[arg(long)]
        wait: bool,
    },
    /// Stop syncing ORG.
    #[command(name = "sync-stop")]
    SyncStop { org: String },
    /// Show every configured org's sync status.
    #[command(name = "sync-status")]
    SyncStatus {
        #[arg(long)]
        json: bool,
    },
    /// List ORG's feed entries not yet applied and its parked objects.
    #[command(name = "unsynced-objects")]
    UnsyncedObjects {
        org: String,
        #[arg(long)]
        json: bool,
    },
    /// Print ORG's sync log.
    #[command(name = "sync-log")]
    SyncLog {
        org: String,
        /// Lines to print.
        #[arg(short = 'n', long = "lines", default_value_t = 50)]
        lines: usize,
        /// Keep printing new lines.
        #[arg(short = 'f', long = "follow")]
        follow: bool,
    },
    /// Print the daemon's own log.
    #[command(name = "manager-log")]
    ManagerLog {
        #[arg(short = 'n', long = "lines", default_value_t = 50)]
        lines: usize,
        #[arg(short = 'f', long = "follow")]
        follow: bool,
    },
    /// Create the sync user on this host's Chef server (or --server) and give it what
    /// replication needs in ORG: membership and the admins group.
    #[command(name = "prepare-org")]
    PrepareOrg {
        org: String,
        #[command(flatten)]
        server: ServerArgs,
        /// The sync user's key: used if it exists, else created here (mode 0600). Default: the
        /// configuration's sync_key.
        #[arg(long = "sync-key")]
        sync_key: Option<PathBuf>,
        /// Also make ORG a replica org (read-only for everyone but the sync user).
        #[arg(long)]
        replica: bool,
    },
    /// Show, without writing anything, what the next sync of ORG would create, update and
    /// delete on the replica.
    Plan {
        org: String,
        #[arg(long)]
        json: bool,
    },
    /// Compare ORG on the primary and the replica in full and report drift (objects that
    /// differ with no pending sync to explain it); exits 1 when there is drift.
    Verify {
        org: String,
        #[arg(long)]
        json: bool,
    },
    /// On a replica: validate the configuration and make the running daemon reload it. On a
    /// master: create or check the sync user and its key on the master's Chef server.
    Reconfigure {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print the configuration with defaults filled in.
    #[command(name = "show-config")]
    ShowConfig {
        #[arg(long)]
        json: bool,
    },
}

/// The Chef server and superuser of `prepare-org` and (on a master) `reconfigure`.
#[derive(Debug, clap::Args)]
struct ServerArgs {
    /// Chef server URL (for Chef 11 style servers such as goiardi: the server itself).
    /// Default: this host's server as the configuration names it (`master` on a master,
    /// `replica` on a replica; https://127.0.0.1 when it names none).
    #[arg(long)]
    server: Option<String>,
    /// Superuser to act as [default: pivotal].
    #[arg(long)]
    superuser: Option<String>,
    /// The superuser's private key. Default: the first that exists of DATA_DIR/pivotal.pem of
    /// the chef-sync-server configuration in CHEF_SYNC_SERVER_CONFIG or beside this one
    /// (server.toml), /var/lib/chef-sync/server/pivotal.pem, /etc/opscode/pivotal.pem,
    /// /var/opt/chef-sync/server/pivotal.pem.
    #[arg(long = "superuser-key")]
    superuser_key: Option<PathBuf>,
}

impl From<ServerArgs> for Flags {
    fn from(a: ServerArgs) -> Flags {
        Flags {
            server: a.server,
            superuser: a.superuser,
            superuser_key: a.superuser_key,
        }
    }
}

/// Writes `text` and a line break to `out`, control characters escaped (whatever a command
/// prints may hold text from a Chef server: none of it reaches the terminal; JSON stays valid
/// JSON, see `text::keep_lines`), and flushes, so that a failed write is seen here.
fn emit(out: &mut impl Write, text: &str) -> Result<(), CtlError> {
    writeln!(out, "{}", text::keep_lines(text))
        .and_then(|()| out.flush())
        .map_err(CtlError::Output)
}

async fn run(cli: Cli, out: &mut impl Write) -> Result<Option<String>, CtlError> {
    let path = cli.config;
    match cli.command {
        Command::SyncStart { org, wait } => {
            let started = ctl::set_started(&path, &org, true).await?;
            if !wait {
                return Ok(Some(started));
            }
            emit(out, &started)?;
            let config = ctl::load_replica(&path, "sync-start")?;
            ctl::wait::until_synced(&config.ec_sync_client.socket_path, &org)
                .await
                .map(Some)
        }
        Command::SyncStop { org } => ctl::set_started(&path, &org, false).await.map(Some),
        Command::SyncStatus { json } => report::sync_status(&path, json).await.map(Some),
        Command::UnsyncedObjects { org, json } => {
            report::unsynced_objects(&path, &org, json).await.map(Some)
        }
        Command::SyncLog { org, lines, follow } => {
            let file = log_files::log_path(&path, Some(&org))?;
            log_files::show(&file, lines, follow, out)
                .await
                .map(|()| None)
        }
        Command::ManagerLog { lines, follow } => {
            let file = log_files::log_path(&path, None)?;
            log_files::show(&file, lines, follow, out)
                .await
                .map(|()| None)
        }
        Command::PrepareOrg {
            org,
            server,
            sync_key,
            replica,
        } => prepare_org::prepare(&path, org, server.into(), sync_key, replica)
            .await
            .map(|lines| Some(lines.join("\n"))),
        Command::Plan { org, json } => ctl::drift::plan(&path, &org, json).await.map(Some),
        Command::Verify { org, json } => ctl::drift::verify(&path, &org, json).await.map(Some),
        Command::Reconfigure { server } => ctl::reconfigure(&path, server.into()).await.map(Some),
        Command::ShowConfig { json } => report::show_config(&path, json).map(Some),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Commands keep to the file a running chef-syncd read (config::resolve); said once, here,
    // when the directory's other file now takes precedence.
    if let Some(warning) = config::resolve(&cli.config).ok().and_then(|s| s.warning()) {
        ctl::warn(&format!(
            "chef-sync-ctl: warning: {}",
            text::one_line(&warning)
        ));
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            ctl::warn(&format!(
                "chef-sync-ctl: cannot start the async runtime: {e}"
            ));
            return ExitCode::from(1);
        }
    };
    let mut out = std::io::stdout();
    let result = runtime.block_on(run(cli, &mut out));
    ExitCode::from(finish(result, &mut out))
}

/// Prints what the command returned and gives the exit code.
fn finish(result: Result<Option<String>, CtlError>, out: &mut impl Write) -> u8 {
    let (text, code) = match result {
        Ok(text) => (text, 0),
        Err(CtlError::Drift(report)) => (Some(report), 1),
        // The reader left while the command was writing (`sync-log -f | head`): its
        // ordinary end.
        Err(CtlError::Output(e)) if ctl::is_closed_output(&e) => (None, 0),
        Err(e) => {
            // One line, whatever the error.
            let message = e.to_string().replace('\n', " ");
            ctl::warn(&format!("chef-sync-ctl: {}", text::one_line(&message)));
            return e.exit_code();
        }
    };
    match text.map(|t| emit(out, &t)) {
        Some(Err(CtlError::Output(e))) if !ctl::is_closed_output(&e) => {
            ctl::warn(&format!("chef-sync-ctl: cannot write the output: {e}"));
            1
        }
        _ => code,
    }
}
