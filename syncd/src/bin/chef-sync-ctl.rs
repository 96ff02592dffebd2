//! `chef-sync-ctl`: operator commands for chef-syncd and for preparing orgs on Chef servers.

use std::path::PathBuf;
use std::process::ExitCode;

use chef_sync_syncd::config::{self, DEFAULT_PATH};
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
    /// Create the sync user on a Chef server and give it what replication needs in ORG.
    #[command(name = "prepare-org")]
    PrepareOrg {
        org: String,
        /// Chef server URL (for Chef 11 style servers such as goiardi: the server itself).
        #[arg(long)]
        server: String,
        /// Superuser to act as.
        #[arg(long, default_value = "pivotal")]
        superuser: String,
        /// The superuser's private key.
        #[arg(long = "superuser-key", default_value = "/etc/opscode/pivotal.pem")]
        superuser_key: PathBuf,
        /// The sync user's key: used if it exists, else created here (mode 0600).
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
    /// Validate the configuration and make the running daemon reload it.
    Reconfigure,
    /// Print the configuration with defaults filled in.
    #[command(name = "show-config")]
    ShowConfig {
        #[arg(long)]
        json: bool,
    },
}

async fn run(cli: Cli) -> Result<Option<String>, CtlError> {
    let path = cli.config;
    match cli.command {
        Command::SyncStart { org, wait } => {
            let started = ctl::set_started(&path, &org, true).await?;
            if !wait {
                return Ok(Some(started));
            }
            println!("{started}");
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
            log_files::show(&file, lines, follow, &mut std::io::stdout())
                .await
                .map(|()| None)
        }
        Command::ManagerLog { lines, follow } => {
            let file = log_files::log_path(&path, None)?;
            log_files::show(&file, lines, follow, &mut std::io::stdout())
                .await
                .map(|()| None)
        }
        Command::PrepareOrg {
            org,
            server,
            superuser,
            superuser_key,
            sync_key,
            replica,
        } => {
            // The sync user and key come from the config when there is one (on a primary
            // there may be none: then the documented defaults apply).
            let settings = match config::Config::load(&path) {
                Ok(c) => c.ec_sync_client,
                Err(_) if !config::locate(&path).exists() => config::ClientSettings::default(),
                Err(e) => return Err(CtlError::Usage(e.to_string())),
            };
            let request = prepare_org::Request {
                org,
                server,
                superuser,
                superuser_key,
                sync_user: settings.sync_user,
                sync_key: sync_key.unwrap_or(settings.sync_key),
                replica,
            };
            prepare_org::run(&request)
                .await
                .map(|lines| Some(lines.join("\n")))
        }
        Command::Plan { org, json } => ctl::drift::plan(&path, &org, json).await.map(Some),
        Command::Verify { org, json } => ctl::drift::verify(&path, &org, json).await.map(Some),
        Command::Reconfigure => ctl::reconfigure(&path).await.map(Some),
        Command::ShowConfig { json } => report::show_config(&path, json).map(Some),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chef-sync-ctl: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // Whatever a command prints may hold text from a Chef server (paths, error messages): its
    // control characters are escaped on the way out, line breaks aside, so none reaches the
    // terminal. JSON stays valid JSON (see `text::keep_lines`).
    match runtime.block_on(run(cli)) {
        Ok(Some(text)) => {
            println!("{}", text::keep_lines(&text));
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(CtlError::Drift(report)) => {
            println!("{}", text::keep_lines(&report));
            ExitCode::from(1)
        }
        Err(e) => {
            // One line, whatever the error.
            let message = e.to_string().replace('\n', " ");
            eprintln!("chef-sync-ctl: {}", text::one_line(&message));
            ExitCode::from(e.exit_code())
        }
    }
}
