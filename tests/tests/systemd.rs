//! The systemd protocol (`Type=notify`, `WatchdogSec=`) spoken by the real binaries to a
//! notification socket of the test's own: READY=1 only once they serve, WATCHDOG=1 at half the
//! watchdog period while healthy, STOPPING=1 on SIGTERM.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chef_sync_tests::process::{Process, bin};
use chef_sync_tests::systemd::NotifySocket;

/// `program args…` started as systemd starts a service with `WatchdogSec=1`: the socket in
/// `NOTIFY_SOCKET`, the period in `WATCHDOG_USEC`, and its own pid in `WATCHDOG_PID` (which
/// only a shell that then execs the program can know beforehand).
fn watched(program: &str, args: &[&str], socket: &Path, rust_log: &str) -> Process {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" \"$@\"")
        .arg(bin(program))
        .args(args)
        .env("NOTIFY_SOCKET", socket)
        .env("WATCHDOG_USEC", "1000000")
        .env("RUST_LOG", rust_log);
    Process::spawn(command)
}

#[test]
fn chef_syncd_is_ready_once_it_serves_and_feeds_the_watchdog() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "role = \"replica\"\nmaster = \"http://127.0.0.1:9\"\nreplica = \"http://127.0.0.1:9\"\n[[organizations]]\nsource = \"acme\"\ndestination = \"acme\"\n[ec_sync_client]\ndir = \"{d}/state\"\nsocket_path = \"{d}/sock\"\nlog_directory = \"{d}/log\"\nsync_key = \"{d}/sync.pem\"\n"
        ),
    )
    .unwrap();
    let key = chef_sync_shared::PrivateKey::generate(2048).unwrap();
    std::fs::write(dir.path().join("sync.pem"), key.to_pkcs1_pem().unwrap()).unwrap();
    // chef-syncd refuses a key others may read.
    std::fs::set_permissions(
        dir.path().join("sync.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let manager = NotifySocket::bind(&dir.path().join("notify"));
    let mut daemon = watched(
        "chef-syncd",
        &["--config", config.to_str().unwrap()],
        &dir.path().join("notify"),
        "chef_syncd=info",
    );

    let ready = manager.until("READY=1", Duration::from_secs(30));
    assert!(
        ready.contains("STATUS=syncing 1 organization(s)"),
        "{ready}"
    );
    assert!(
        dir.path().join("sock").exists(),
        "READY=1 came before the control socket"
    );
    // Two pings within two periods: fed at half the period.
    let started = Instant::now();
    manager.until("WATCHDOG=1", Duration::from_secs(3));
    manager.until("WATCHDOG=1", Duration::from_secs(3));
    assert!(started.elapsed() < Duration::from_secs(3));

    daemon.terminate(Duration::from_secs(20));
    manager.until("STOPPING=1", Duration::from_secs(5));
}

#[test]
fn chef_sync_server_is_ready_once_it_listens_and_feeds_the_watchdog() {
    let dir = tempfile::tempdir().unwrap();
    let manager = NotifySocket::bind(&dir.path().join("notify"));
    let data = dir.path().join("data");
    let mut server = watched(
        "chef-sync-server",
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &dir.path().join("notify"),
        "chef_sync_server=info",
    );
    manager.until("READY=1", Duration::from_secs(60));
    let line = server.wait_for_line("listening", Duration::from_secs(1));
    assert!(line.contains("addr=127.0.0.1:"), "{line}");
    manager.until("WATCHDOG=1", Duration::from_secs(3));
    manager.until("WATCHDOG=1", Duration::from_secs(3));
    server.terminate(Duration::from_secs(20));
    manager.until("STOPPING=1", Duration::from_secs(5));
}

#[test]
fn chef_sync_server_stops_at_once_while_replicas_long_poll() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = chef_sync_tests::process::ChefSyncServer::start(&dir.path().join("data"));
    let admin = server.org_with_admin("acme", "alice");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // A follower waiting for news that will not come before the stop.
    let poll = runtime.spawn(async move {
        admin
            .chef
            .call("GET", "/updated_since?seq=1000000&wait=60", None)
            .await
    });
    std::thread::sleep(Duration::from_millis(700));
    let asked = Instant::now();
    let status = server.process.terminate(Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    // Not held for the long-poll's 60 s wait (systemd's TimeoutStopSec is 30).
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    let (code, body) = runtime.block_on(poll).unwrap();
    assert_eq!((code, body), (200, serde_json::json!([])));
}
