//! Standing in for systemd where a test needs it: the notification socket a service manager
//! reads (`Type=notify`), and the package's unit files, with drop-ins, read for the commands
//! they run.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A notification socket: what the service manager would read.
#[derive(Debug)]
pub struct NotifySocket {
    socket: UnixDatagram,
}

impl NotifySocket {
    /// Binds the socket at `path`.
    pub fn bind(path: &Path) -> NotifySocket {
        let socket = UnixDatagram::bind(path).expect("bind the notification socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        NotifySocket { socket }
    }

    /// Reads messages until one has the line `wanted` (that message is returned) or `limit`
    /// has passed (`Err` with what came instead).
    pub fn wait_for(&self, wanted: &str, limit: Duration) -> Result<String, Vec<String>> {
        let started = Instant::now();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while started.elapsed() < limit {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                if message.lines().any(|l| l == wanted) {
                    return Ok(message);
                }
                seen.push(message);
            }
        }
        Err(seen)
    }

    /// Like [`NotifySocket::wait_for`], panicking when the message does not come.
    pub fn until(&self, wanted: &str, limit: Duration) -> String {
        self.wait_for(wanted, limit)
            .unwrap_or_else(|seen| panic!("no {wanted} within {limit:?}; got {seen:?}"))
    }
}

/// What a unit of the package runs, after its drop-ins.
#[derive(Debug, Clone, Default)]
pub struct Unit {
    /// `ExecStart=`, split at white space.
    pub exec_start: Vec<String>,
    /// `ExecReload=`, split at white space (empty: none).
    pub exec_reload: Vec<String>,
    /// Every `ReadWritePaths=` entry.
    pub read_write_paths: Vec<String>,
    /// `TimeoutStartSec=`.
    pub timeout_start: Duration,
    /// `TimeoutStopSec=`.
    pub timeout_stop: Duration,
}

/// The repository's `packaging/systemd/` directory.
pub fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/systemd")
}

impl Unit {
    /// `packaging/systemd/chef-sync.NAME.service`, then every `NAME.service.d/*.conf` under
    /// `dropins` in name order, as systemd merges them: a later setting wins, an empty
    /// `ExecStart=` or `ExecReload=` clears the one before, `ReadWritePaths=` accumulates.
    pub fn load(name: &str, dropins: &Path) -> Unit {
        let main = units_dir().join(format!("chef-sync.{name}.service"));
        let mut files = vec![main];
        if let Ok(entries) = std::fs::read_dir(dropins.join(format!("{name}.service.d"))) {
            let mut extra: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                .collect();
            extra.sort();
            files.extend(extra);
        }
        let mut unit = Unit {
            timeout_start: Duration::from_secs(90),
            timeout_stop: Duration::from_secs(90),
            ..Unit::default()
        };
        for file in files {
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for line in text.lines().map(str::trim) {
                let Some((key, value)) = line.split_once('=') else {
                    continue;
                };
                let words = || value.split_whitespace().map(str::to_owned).collect();
                let seconds = || Duration::from_secs(value.trim().parse().unwrap_or(90));
                match key.trim() {
                    "ExecStart" => unit.exec_start = words(),
                    "ExecReload" => unit.exec_reload = words(),
                    "ReadWritePaths" => unit.read_write_paths.extend(words()),
                    "TimeoutStartSec" => unit.timeout_start = seconds(),
                    "TimeoutStopSec" => unit.timeout_stop = seconds(),
                    _ => {}
                }
            }
        }
        assert!(!unit.exec_start.is_empty(), "{name}: no ExecStart");
        unit
    }
}
