//! `chef-sync-server`: parse the command line, load the config once, run the command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use axum::serve::ListenerExt;
use chef_sync_server::config::Overrides;
use chef_sync_server::{AppState, Config, Store, accounts, app, metrics_app};
use clap::{Parser, Subcommand};

/// Chef-API-compatible server for roles, environments, data bags and cookbooks, with the
/// `updated_since` change feed that chef-syncd follows.
#[derive(Debug, Parser)]
#[command(name = "chef-sync-server", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// TOML config file.
    #[arg(long, env = "CHEF_SYNC_SERVER_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://…
    #[arg(long)]
    database: Option<String>,
    /// Data directory (keys, files, default SQLite database).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Listen address.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        common: Common,
    },
    /// Create a user; its private key goes to --filename.
    #[command(name = "user-create")]
    UserCreate {
        username: String,
        first_name: String,
        last_name: String,
        email: String,
        /// Accepted as chef-server-ctl takes it, and not used: chef-sync-server knows users
        /// by their keys only. Leave it out: on a command line any local user sees it in `ps`.
        password: Option<String>,
        /// Accepted as chef-server-ctl takes it; nothing is asked, no password is used.
        #[arg(short = 'p', long = "prompt-for-password")]
        prompt_for_password: bool,
        /// Where to write the user's private key.
        #[arg(long)]
        filename: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Create an org; its validator key goes to --filename.
    #[command(name = "org-create")]
    OrgCreate {
        shortname: String,
        full_name: String,
        /// Join this user to the org and its admins group.
        #[arg(long = "association_user", alias = "association-user")]
        association_user: Option<String>,
        /// Where to write the validator's private key.
        #[arg(long)]
        filename: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Remove change-log entries older than --keep-days, keeping the latest entry of every
    /// object that still exists; replicas behind the removed entries must reconcile in full.
    #[command(name = "prune-log")]
    PruneLog {
        org: String,
        /// Keep entries younger than this many days.
        #[arg(long = "keep-days", alias = "keep_days")]
        keep_days: u32,
        #[command(flatten)]
        common: Common,
    },
    /// List the users.
    #[command(name = "user-list")]
    UserList {
        #[command(flatten)]
        common: Common,
    },
    /// Delete a user, its keys and its memberships.
    #[command(name = "user-delete")]
    UserDelete {
        username: String,
        #[command(flatten)]
        common: Common,
    },
    /// List the orgs.
    #[command(name = "org-list")]
    OrgList {
        #[command(flatten)]
        common: Common,
    },
    /// Delete an org with everything in it.
    #[command(name = "org-delete")]
    OrgDelete {
        org: String,
        #[command(flatten)]
        common: Common,
    },
    /// List the clients of an org.
    #[command(name = "client-list")]
    ClientList {
        org: String,
        #[command(flatten)]
        common: Common,
    },
    /// Delete a client of an org.
    #[command(name = "client-delete")]
    ClientDelete {
        org: String,
        client: String,
        #[command(flatten)]
        common: Common,
    },
    /// Replace a user's `default` key; the new private key goes to --filename.
    #[command(name = "user-key-rotate")]
    UserKeyRotate {
        username: String,
        /// Where to write the new private key.
        #[arg(long)]
        filename: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Replace a client's `default` key; the new private key goes to --filename.
    #[command(name = "client-key-rotate")]
    ClientKeyRotate {
        org: String,
        client: String,
        /// Where to write the new private key.
        #[arg(long)]
        filename: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Make a replica org writable by its admins (a planned move; not disaster recovery).
    #[command(name = "org-writable")]
    OrgWritable {
        org: String,
        #[command(flatten)]
        common: Common,
    },
    /// Make an org a replica, written only by the sync user.
    #[command(name = "org-replica")]
    OrgReplica {
        org: String,
        /// The user chef-syncd signs as.
        #[arg(long = "sync-user", default_value = "ec_sync_user")]
        sync_user: String,
        #[command(flatten)]
        common: Common,
    },
    /// Associate a user with an org.
    #[command(name = "org-user-add")]
    OrgUserAdd {
        org: String,
        username: String,
        /// Also add the user to the org's admins group.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        common: Common,
    },
}

fn load(common: &Common, listen: Option<String>) -> anyhow::Result<Config> {
    Ok(Config::load(
        common.config.as_deref(),
        Overrides {
            listen,
            database: common.database.clone(),
            data_dir: common.data_dir.clone(),
        },
    )?)
}

async fn open(config: &Config) -> anyhow::Result<Store> {
    if config.database.is_none() {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        // The database holds the key that signs file URLs: owner-only from the first byte
        // (SQLite gives its -wal and -shm files the same mode).
        let file = config.sqlite_file();
        if !file.exists() {
            create_private(&file)?;
        }
    }
    Store::connect(&config.database_url(), config.db_pool_size)
        .await
        .context("cannot open the database")
}

/// Opens `path` for writing, truncated and readable only by its owner, even when it existed
/// before with a wider mode.
fn create_private(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    Ok(f)
}

/// Writes a private key readable only by its owner.
fn write_key(path: &std::path::Path, pem: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = create_private(path)?;
    f.write_all(pem.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// Creates the superuser `pivotal` on first start, keeping an existing DATA_DIR/pivotal.pem.
async fn bootstrap_pivotal(store: &Store, config: &Config) -> anyhow::Result<()> {
    if store.user("pivotal").await?.is_some() {
        return Ok(());
    }
    let path = config.data_dir.join("pivotal.pem");
    std::fs::create_dir_all(&config.data_dir)?;
    let existing = std::fs::read_to_string(&path).ok();
    let public = match &existing {
        Some(pem) => Some(
            chef_sync_shared::PrivateKey::from_pem(pem)?
                .public_key()
                .to_pem()?,
        ),
        None => None,
    };
    let body = serde_json::json!({"username": "pivotal", "display_name": "pivotal"});
    // pivotal's key is this host's own file, not a submission: any size it has is kept.
    let private = match accounts::create_user(store, "pivotal", &body, true, public.as_deref(), 0)
        .await
    {
        Ok((_, private)) => private,
        // Several fresh processes over one PostgreSQL started at once: another one created
        // pivotal first. Its key is the one to share; a key made here would not authenticate.
        Err(chef_sync_server::error::ApiError::Conflict(_)) => {
            tracing::info!(
                "superuser pivotal was created by another server process; give this one its pivotal.pem"
            );
            return Ok(());
        }
        Err(e) => anyhow::bail!("cannot create pivotal: {e}"),
    };
    if let Some(pem) = private {
        write_key(&path, &pem)?;
    }
    tracing::info!(key = %path.display(), "created superuser pivotal");
    Ok(())
}

/// Registers SIGTERM at once (a signal that arrives before this would kill the process
/// without a clean shutdown); the returned future completes on SIGTERM or SIGINT.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let term = async {
            match term {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term => {} }
    }
}

/// systemd's watchdog period, when it asked for one (`WatchdogSec=`).
fn watchdog_period() -> Option<std::time::Duration> {
    let mut usec = 0;
    sd_notify::watchdog_enabled(false, &mut usec).then(|| std::time::Duration::from_micros(usec))
}

/// Feeds systemd's watchdog at half its period while the database answers: a server that
/// lost its database gets restarted rather than answering 503 forever.
async fn feed_watchdog(store: Store, period: std::time::Duration) {
    loop {
        tokio::time::sleep(period / 2).await;
        match store.ping().await {
            Ok(()) => {
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            }
            Err(e) => {
                tracing::error!(error = %e, "database unavailable; not feeding the systemd watchdog")
            }
        }
    }
}

/// Binds `metrics_listen` (when set) before the server reports ready, so a taken port stops
/// the start instead of leaving metrics silently missing.
async fn serve_metrics(state: &AppState) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(addr) = state.config.metrics_listen.clone() else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("metrics_listen {addr}: cannot listen"))?;
    tracing::info!(addr = %listener.local_addr()?, "metrics listening");
    let app = metrics_app(state.clone());
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics listener stopped");
        }
    })))
}

/// Starts the HTTPS listener (when `tls_listen` is set) before the server reports ready,
/// making a self-signed certificate first if there is none.
async fn serve_tls(state: &AppState) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    use chef_sync_server::tls;
    let config = &state.config;
    let Some(addr) = config.tls_listen.clone() else {
        return Ok(None);
    };
    let (cert, key) = tls::paths(
        &config.data_dir,
        config.tls_certificate.as_deref(),
        config.tls_key.as_deref(),
    );
    if tls::ensure_certificate(&cert, &key, &[])? {
        tracing::info!(certificate = %cert.display(), "made a self-signed TLS certificate");
    }
    let listener = tls::TlsListener::bind(&addr, tls::server_config(&cert, &key)?).await?;
    tracing::info!(addr = %listener.local_addr_text(), "TLS listening");
    let app = app(state.clone());
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "TLS listener stopped");
        }
    })))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { common, listen } => {
            let config = load(&common, listen)?;
            let store = open(&config).await?;
            bootstrap_pivotal(&store, &config).await?;
            let listener = tokio::net::TcpListener::bind(&config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            let shutdown = shutdown_signal();
            tracing::info!(addr = %listener.local_addr()?, "chef-sync-server listening");
            let state = AppState::new(config, store.clone())
                .await
                .context("cannot prepare the server state")?;
            let metrics = serve_metrics(&state).await?;
            let tls = serve_tls(&state).await?;
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
            let feeding = watchdog_period().map(|p| tokio::spawn(feed_watchdog(store.clone(), p)));
            let sweeping = tokio::spawn(chef_sync_server::blob::sweep_forever(
                state.config.clone(),
                store.clone(),
            ));
            let stopping = state.stopping.clone();
            let shutdown = async move {
                shutdown.await;
                // Waiting long-polls answer now, so the graceful shutdown is not held for up
                // to a whole `wait` by every replica that follows this server.
                stopping.send_replace(true);
            };
            // Without TCP_NODELAY the last small piece of a streamed answer (a search's
            // closing `]}`) waits for the client's delayed ACK: 40 ms more on one answer in
            // ten at 10,000 nodes.
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                }
            });
            axum::serve(listener, app(state))
                .with_graceful_shutdown(shutdown)
                .await?;
            for task in [metrics, tls].into_iter().flatten() {
                task.abort();
            }
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
            if let Some(task) = feeding {
                task.abort();
            }
            sweeping.abort();
            store.close().await;
        }
        Command::Migrate { common } => {
            let config = load(&common, None)?;
            open(&config).await?;
            println!("migrations applied to {}", config.database_url());
        }
        Command::UserCreate {
            username,
            first_name,
            last_name,
            email,
            password,
            prompt_for_password: _,
            filename,
            common,
        } => {
            if password.is_some() {
                eprintln!(
                    "chef-sync-server: warning: the password is not used (users sign with their keys) and was visible to other local users in the process list; leave it out"
                );
            }
            let config = load(&common, None)?;
            let store = open(&config).await?;
            let body = serde_json::json!({
                "username": username, "first_name": first_name, "last_name": last_name,
                "display_name": format!("{first_name} {last_name}"), "email": email,
            });
            let (_, private) = accounts::create_user(&store, &username, &body, false, None, 0)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            write_key(&filename, &private.context("no key was generated")?)?;
        }
        Command::OrgCreate {
            shortname,
            full_name,
            association_user,
            filename,
            common,
        } => {
            let config = load(&common, None)?;
            let store = open(&config).await?;
            let user = match &association_user {
                Some(u) => Some(
                    store
                        .user(u)
                        .await?
                        .with_context(|| format!("no user named '{u}'"))?,
                ),
                None => None,
            };
            let (org, validator) = accounts::create_org(&store, &shortname, &full_name)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if let Some(user) = user {
                accounts::associate(&store, &org, &user, true)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            write_key(&filename, &validator)?;
        }
        Command::PruneLog {
            org,
            keep_days,
            common,
        } => {
            let config = load(&common, None)?;
            let store = open(&config).await?;
            let row = store
                .org(&org)
                .await?
                .with_context(|| format!("no organization named '{org}'"))?;
            let cutoff = chrono::Utc::now() - chrono::Duration::days(i64::from(keep_days));
            let (removed, through) = store.prune_log(row.id, cutoff.timestamp_millis()).await?;
            println!(
                "pruned {removed} change-log entries of {org}; readers behind id {through} must reconcile"
            );
        }
        admin @ (Command::UserList { .. }
        | Command::UserDelete { .. }
        | Command::OrgList { .. }
        | Command::OrgDelete { .. }
        | Command::ClientList { .. }
        | Command::ClientDelete { .. }
        | Command::UserKeyRotate { .. }
        | Command::ClientKeyRotate { .. }
        | Command::OrgWritable { .. }
        | Command::OrgReplica { .. }) => administer(admin).await?,
        Command::OrgUserAdd {
            org,
            username,
            admin,
            common,
        } => {
            let config = load(&common, None)?;
            let store = open(&config).await?;
            let org = store
                .org(&org)
                .await?
                .with_context(|| format!("no organization named '{org}'"))?;
            let user = store
                .user(&username)
                .await?
                .with_context(|| format!("no user named '{username}'"))?;
            accounts::associate(&store, &org, &user, admin)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    Ok(())
}

/// Runs the admin commands that only read or change the store, printing their lines.
async fn administer(command: Command) -> anyhow::Result<()> {
    use chef_sync_server::admin::{self, KeyHolder};
    let common = match &command {
        Command::UserList { common }
        | Command::UserDelete { common, .. }
        | Command::OrgList { common }
        | Command::OrgDelete { common, .. }
        | Command::ClientList { common, .. }
        | Command::ClientDelete { common, .. }
        | Command::UserKeyRotate { common, .. }
        | Command::ClientKeyRotate { common, .. }
        | Command::OrgWritable { common, .. }
        | Command::OrgReplica { common, .. } => common,
        _ => anyhow::bail!("not an admin command"),
    };
    let store = open(&load(common, None)?).await?;
    let lines = match &command {
        Command::UserList { .. } => admin::user_list(&store).await,
        Command::UserDelete { username, .. } => admin::user_delete(&store, username).await,
        Command::OrgList { .. } => admin::org_list(&store).await,
        Command::OrgDelete { org, .. } => admin::org_delete(&store, org).await,
        Command::ClientList { org, .. } => admin::client_list(&store, org).await,
        Command::ClientDelete { org, client, .. } => {
            admin::client_delete(&store, org, client).await
        }
        Command::UserKeyRotate {
            username, filename, ..
        } => rotate(&store, KeyHolder::User(username), filename).await,
        Command::ClientKeyRotate {
            org,
            client,
            filename,
            ..
        } => rotate(&store, KeyHolder::Client { org, client }, filename).await,
        Command::OrgWritable { org, .. } => admin::org_writable(&store, org).await,
        Command::OrgReplica { org, sync_user, .. } => {
            admin::org_replica(&store, org, sync_user).await
        }
        _ => Ok(Vec::new()),
    }
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    for line in lines {
        println!("{line}");
    }
    store.close().await;
    Ok(())
}

/// Rotates a key and writes the new private key, owner-only.
async fn rotate(
    store: &Store,
    holder: chef_sync_server::admin::KeyHolder<'_>,
    filename: &std::path::Path,
) -> chef_sync_server::error::ApiResult<Vec<String>> {
    let private = chef_sync_server::admin::key_rotate(store, holder).await?;
    write_key(filename, &private)
        .map_err(|e| chef_sync_server::error::ApiError::Internal(format!("{e:#}")))?;
    Ok(vec![format!(
        "new default key written to {}; the old one no longer authenticates",
        filename.display()
    )])
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "chef_sync_server=info,tower_http=info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into journald or a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chef-sync-server: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chef-sync-server: {e:#}");
            // A bad config file is a usage error (2); everything else is operational (1).
            if e.downcast_ref::<chef_sync_server::config::ConfigError>()
                .is_some()
            {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
