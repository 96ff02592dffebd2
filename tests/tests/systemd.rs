//! The systemd protocol (`Type=notify`, `WatchdogSec=`) spoken by the real binaries to a
//! notification socket of the test's own: READY=1 only once they serve, WATCHDOG=1 at half the
//! watchdog period while healthy, STOPPING=1 on SIGTERM.

#![allow(clippy::unwrap_used)]

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chef_sync_tests::process::{Process, bin};

/// A notification socket: what the service manager would read.
struct Manager {
    socket: UnixDatagram,
}

impl Manager {
    fn bind(path: &Path) -> Manager {
        let socket = UnixDatagram::bind(path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Manager { socket }
    }

    /// Messages received until one contains `wanted` (which is returned), or panics.
    fn until(&self, wanted: &str, limit: Duration) -> String {
        let started = Instant::now();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while started.elapsed() < limit {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                if message.lines().any(|l| l == wanted) {
                    return message;
                }
                seen.push(message);
            }
        }
        panic!("no {wanted} within {limit:?}; got {seen:?}");
    }
}

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
    let manager = Manager::bind(&dir.path().join("notify"));
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
    let manager = Manager::bind(&dir.path().join("notify"));
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
