//! Third-party Chef software for the interop suites, installed by `scripts/interop/setup.sh`:
//! goiardi started per test on a free 127.0.0.1 port (and killed with the test), and
//! pythonchef driven through `tests/interop/pythonchef_client.py`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Peer;
use crate::process::Process;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// `scripts/interop/setup.sh`.
pub fn setup_script() -> PathBuf {
    repo_root().join("scripts/interop/setup.sh")
}

/// True when goiardi, mixlib and pythonchef are installed; in CI their absence fails the test,
/// elsewhere it prints SKIPPED.
pub fn available() -> bool {
    Peer {
        name: "goiardi, ruby-mixlib-authentication and pythonchef",
        install_hint: "run `scripts/interop/setup.sh install` as root",
    }
    .require(Command::new(setup_script()).arg("check"))
}

/// A goiardi (Chef 11 style, single org) with authentication on.
#[derive(Debug)]
pub struct Goiardi {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The admin user's key goiardi wrote at start (user `admin`).
    pub admin_key: PathBuf,
    /// The process.
    pub process: Process,
}

impl Goiardi {
    /// Starts goiardi with its state under `dir`.
    pub fn start(dir: &Path) -> Goiardi {
        let port = crate::process::free_port();
        let mut command = Command::new(setup_script());
        command.arg("goiardi").arg(dir).arg(port.to_string());
        let process = Process::spawn(command);
        let admin_key = dir.join("conf/admin.pem");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            if up && std::fs::metadata(&admin_key).is_ok_and(|m| m.len() > 0) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "goiardi did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Goiardi {
            url: format!("http://127.0.0.1:{port}"),
            admin_key,
            process,
        }
    }
}

/// Runs `pythonchef_client.py COMMAND URL KEY USER` and returns its JSON.
pub fn pythonchef(command: &str, url: &str, key: &Path, user: &str) -> Value {
    pythonchef_try(command, url, key, user).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`pythonchef`], returning its failure: a snapshot of a server that chef-syncd is
/// writing to may find an item listed and then deleted before it is read.
pub fn pythonchef_try(command: &str, url: &str, key: &Path, user: &str) -> Result<Value, String> {
    let python = Command::new(setup_script())
        .arg("python")
        .output()
        .expect("setup.sh python");
    assert!(
        python.status.success(),
        "{}",
        String::from_utf8_lossy(&python.stderr)
    );
    let python = String::from_utf8_lossy(&python.stdout).trim().to_owned();
    let out = Command::new(python)
        .arg(repo_root().join("tests/interop/pythonchef_client.py"))
        .args([command, url])
        .arg(key)
        .arg(user)
        .output()
        .expect("run pythonchef");
    if !out.status.success() {
        return Err(format!(
            "pythonchef {command} against {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("pythonchef JSON: {e}"))
}
