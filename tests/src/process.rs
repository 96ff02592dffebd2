//! Starting the real binaries on 127.0.0.1 for a test, and killing them when the test ends,
//! pass or fail ([`Process`] kills its child on drop).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::chef::Chef;

/// A built workspace binary (`target/<profile>/NAME`). `cargo test --workspace` builds every
/// binary of the workspace before the tests run.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // Tests live in target/<profile>/deps, programs such as the demo in target/<profile>.
    let here = exe.parent().expect("executable directory");
    let path = [here, here.parent().unwrap_or(here)]
        .iter()
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| here.join(name));
    assert!(
        path.exists(),
        "{} is not built; run the tests with `cargo test --workspace` (it builds every binary)",
        path.display()
    );
    path
}

/// A port of 127.0.0.1 that was free a moment ago, for a program that must be told its port
/// (goiardi, socat, a guide's example address).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A child process killed on drop; its stderr lines are collected.
#[derive(Debug)]
pub struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Process {
    /// SIGTERM first, so a process that started others (the demo) stops them too, then SIGKILL
    /// if it has not exited within five seconds.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Spawns `command` with stderr captured.
    pub fn spawn(mut command: Command) -> Process {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("NO_COLOR", "1")
            .spawn()
            .expect("spawn");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Process {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `needle` and returns it.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line containing {needle:?} within {timeout:?}; output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Everything printed so far.
    pub fn output(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }

    /// The exit status, once the child has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs `chef-sync-server ARGS… --data-dir DIR [--database URL]`, which must succeed (also
/// before any server of that data runs, as the benchmarks fill a database first).
pub fn server_admin(data_dir: &Path, database: Option<&str>, args: &[&str]) -> Output {
    let out = Command::new(bin("chef-sync-server"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .args(database.iter().flat_map(|url| ["--database", url]))
        .output()
        .expect("run chef-sync-server");
    assert!(
        out.status.success(),
        "chef-sync-server {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A `chef-sync-server` on 127.0.0.1 with its own data directory and SQLite database.
#[derive(Debug)]
pub struct ChefSyncServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// DATA_DIR.
    pub data_dir: PathBuf,
    /// The running process.
    pub process: Process,
    /// `--database`, when not the SQLite file in the data directory.
    pub database: Option<String>,
}

impl ChefSyncServer {
    /// Starts a server whose data lives in `data_dir`, on a port the OS picks.
    pub fn start(data_dir: &Path) -> ChefSyncServer {
        ChefSyncServer::start_on(data_dir, "127.0.0.1:0")
    }

    /// Starts a server on `listen` (to restart one on the port it had).
    pub fn start_on(data_dir: &Path, listen: &str) -> ChefSyncServer {
        ChefSyncServer::start_with(data_dir, listen, None)
    }

    /// Starts a server on `listen` over `database` (a PostgreSQL URL shared by several
    /// processes, say), or the data directory's SQLite file when `None`.
    pub fn start_with(data_dir: &Path, listen: &str, database: Option<&str>) -> ChefSyncServer {
        ChefSyncServer::start_logging(data_dir, listen, database, None)
    }

    /// Like [`ChefSyncServer::start_with`], logging with `rust_log` (`RUST_LOG`) when given.
    pub fn start_logging(
        data_dir: &Path,
        listen: &str,
        database: Option<&str>,
        rust_log: Option<&str>,
    ) -> ChefSyncServer {
        let mut command = Command::new(bin("chef-sync-server"));
        command
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", rust_log.unwrap_or("chef_sync_server=info"));
        if let Some(url) = database {
            command.args(["--database", url]);
        }
        let mut process = Process::spawn(command);
        let line = process.wait_for_line("listening", Duration::from_secs(60));
        let addr = line
            .split("addr=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("address in the listening line")
            .to_owned();
        ChefSyncServer {
            url: format!("http://{addr}"),
            data_dir: data_dir.to_owned(),
            process,
            database: database.map(str::to_owned),
        }
    }

    /// Runs an admin command (`user-create`, `org-create`, …) against this server's data.
    pub fn admin(&self, args: &[&str]) -> Output {
        server_admin(&self.data_dir, self.database.as_deref(), args)
    }

    /// `DATA_DIR/pivotal.pem`.
    pub fn pivotal_key(&self) -> PathBuf {
        self.data_dir.join("pivotal.pem")
    }

    /// Creates `user` and org `org` with the user as its admin (the `user-create` and
    /// `org-create --association_user` commands); the keys are written beside the server's data.
    pub fn org_with_admin(&self, org: &str, user: &str) -> OrgAdmin {
        let key = self.data_dir.join(format!("{user}.pem"));
        let validator_key = self.data_dir.join(format!("{org}-validator.pem"));
        let email = format!("{user}@example.com");
        self.admin(&[
            "user-create",
            user,
            user,
            "Admin",
            &email,
            "--filename",
            &key.to_string_lossy(),
        ]);
        self.admin(&[
            "org-create",
            org,
            org,
            "--association_user",
            user,
            "--filename",
            &validator_key.to_string_lossy(),
        ]);
        let org_url = format!("{}/organizations/{org}", self.url);
        OrgAdmin {
            chef: Chef::new(&org_url, user, Chef::key_file(&key)),
            org_url,
            key,
            validator_key,
        }
    }
}

/// An org made by [`ChefSyncServer::org_with_admin`].
#[derive(Debug, Clone)]
pub struct OrgAdmin {
    /// Signs as the admin user against the org.
    pub chef: Chef,
    /// `http://127.0.0.1:PORT/organizations/ORG`.
    pub org_url: String,
    /// The admin user's private key.
    pub key: PathBuf,
    /// The org validator's private key.
    pub validator_key: PathBuf,
}

/// Runs `chef-sync-ctl --config CONFIG ARGS…`.
pub fn ctl(config: &Path, args: &[&str]) -> Output {
    Command::new(bin("chef-sync-ctl"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run chef-sync-ctl")
}

/// Starts `chef-syncd --config CONFIG` and waits until it serves its control socket.
pub fn syncd(config: &Path) -> Process {
    syncd_logging(config, None)
}

/// Like [`syncd`], logging with `rust_log` (`RUST_LOG`) when given.
pub fn syncd_logging(config: &Path, rust_log: Option<&str>) -> Process {
    let mut command = Command::new(bin("chef-syncd"));
    command.arg("--config").arg(config).env(
        "RUST_LOG",
        rust_log.unwrap_or("chef_sync_syncd=debug,chef_syncd=info"),
    );
    let mut process = Process::spawn(command);
    process.wait_for_line("chef-syncd started", Duration::from_secs(60));
    process
}
