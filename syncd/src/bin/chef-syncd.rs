//! `chef-syncd`: keeps destination orgs on a replica in step with source orgs on a primary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chef_sync_syncd::config::{self, DEFAULT_PATH};
use chef_sync_syncd::control::server;
use chef_sync_syncd::daemon::{Daemon, DaemonError, LONG_POLL_SECONDS, load_config};
use chef_sync_syncd::logs::{RotatingFile, manager_log_path, safe_stderr};
use chef_sync_syncd::monitoring::{self, Monitoring};
use chef_sync_syncd::watchdog;
use clap::Parser;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Replica daemon: follows the primary's change feed and writes into the replica. Runs in the
/// foreground until SIGTERM or SIGINT.
#[derive(Debug, Parser)]
#[command(name = "chef-syncd", version)]
struct Cli {
    /// Configuration file (TOML, or chef-sync.rb), or a directory: its chef-sync.toml, or its
    /// chef-sync.rb when only that exists. Chosen once, at start; reloads re-read that file.
    #[arg(long, env = "CHEF_SYNC_CONFIG", default_value = DEFAULT_PATH)]
    config: PathBuf,
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

/// Logs to stderr and to the manager log, both with every control character escaped.
fn init_logging(client: &config::ClientSettings) {
    let manager = RotatingFile::new(
        manager_log_path(&client.log_directory),
        client.log_rotation.clone(),
    );
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "chef_sync_syncd=info,chef_syncd=info".into());
    tracing_subscriber::registry()
        .with(filter)
        // No colours: every control character a record holds is escaped (a path sent by a
        // primary may hold escape sequences of its own), colour codes included.
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(safe_stderr),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(manager),
        )
        .init();
}

/// Says once which file was read (and which one was not), then each setting it does not use.
fn announce(source: &config::Source, config: &config::Config) {
    for line in source.describe() {
        tracing::info!("{line}");
    }
    for note in &config.notes {
        tracing::warn!("{note}");
    }
}

/// Bound before anything starts, so a taken port is a startup error, not a silent gap.
async fn bind_monitoring(
    client: &config::ClientSettings,
) -> Result<Option<tokio::net::TcpListener>, DaemonError> {
    let Some(address) = &client.metrics_listen else {
        return Ok(None);
    };
    let listener =
        tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| DaemonError::Listen {
                address: address.clone(),
                problem: e.to_string(),
            })?;
    Ok(Some(listener))
}

/// Records the file read in the state directory, for chef-sync-ctl (see config::resolve).
fn record(path: &std::path::Path, config: &config::Config) -> config::Record {
    let record = config::Record::new(path, config);
    let dir = &config.ec_sync_client.dir;
    if let Err(e) = record.write(dir) {
        tracing::warn!(
            "cannot record the configuration file in {}: {e}; chef-sync-ctl follows the \
             precedence rule alone",
            dir.display()
        );
    }
    record
}

async fn run(cli: Cli) -> Result<(), DaemonError> {
    // The file is chosen once, here: reloads re-read it, and it is recorded in the state
    // directory so that chef-sync-ctl keeps to it even if the directory's other file is
    // written meanwhile (see config::resolve).
    let source = config::choose(&cli.config);
    let path = source.file.clone();
    let config = load_config(&path)?;
    let client = &config.ec_sync_client;
    init_logging(client);
    announce(&source, &config);
    let socket = client.socket_path.clone();
    let listener = server::bind(&socket)?;
    let monitoring_listener = bind_monitoring(client).await?;
    let daemon = Daemon::start(&path, config.clone()).await?;
    let shutdown = shutdown_signal();
    let record = record(&path, &config);
    tracing::info!(
        orgs = config.organizations.len(),
        socket = %socket.display(),
        "chef-syncd started"
    );
    let (stop_monitoring, monitoring_stopped) = tokio::sync::watch::channel(false);
    let monitoring = monitoring_listener.map(|listener| {
        tokio::spawn(serve_monitoring(
            listener,
            Monitoring {
                daemon: daemon.clone(),
                metrics: daemon.metrics().clone(),
                config_path: path.display().to_string(),
            },
            monitoring_stopped,
        ))
    });
    watchdog::ready(config.organizations.len());
    let feeding = watchdog::period().map(|period| {
        // The longest a healthy worker goes without a beat: a request retried to the end of
        // its attempts, or a long-poll plus its timeout, with a minute to spare.
        let stale_after = Duration::from_secs(client.request_timeout * 5 + LONG_POLL_SECONDS + 60);
        tokio::spawn(watchdog::feed(daemon.clone(), period, stale_after))
    });
    let control =
        axum::serve(listener, server::router(daemon.clone())).with_graceful_shutdown(shutdown);
    if let Err(e) = control.await {
        tracing::error!(error = %e, "control socket failed");
    }
    let _ = stop_monitoring.send(true);
    if let Some(task) = monitoring {
        let _ = task.await;
    }
    tracing::info!("shutting down");
    watchdog::stopping();
    if let Some(task) = feeding {
        task.abort();
    }
    daemon.shutdown().await;
    record.remove(&client.dir);
    let _ = std::fs::remove_file(&socket);
    Ok(())
}

/// Serves `/metrics`, `/healthz` and `/readyz` until told to stop.
async fn serve_monitoring(
    listener: tokio::net::TcpListener,
    monitoring: Monitoring,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "metrics and health checks listening");
    }
    let served =
        axum::serve(listener, monitoring::router(monitoring)).with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        });
    if let Err(e) = served.await {
        tracing::error!(error = %e, "metrics listener failed");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chef-syncd: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chef-syncd: {e}");
            match e {
                DaemonError::Config(_) | DaemonError::WrongRole(_) => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
    }
}
