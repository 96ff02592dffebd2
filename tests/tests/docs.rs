//! The operator guide (docs/OPERATIONS.md) and the migration guide (docs/MIGRATION.md) run as
//! written. Every `console` block's commands run in document order on the host its prompt
//! names (`primary$`, `replica$`; `$` is the build machine), every file block whose first line
//! names a host and a path (`# replica: /etc/chef-sync/chef-sync.toml`) is written there, and
//! the output a guide shows under a command must appear, in order, in what the command printed
//! (`…` matches anything).
//!
//! Each host is a directory standing in for its root file system: `/etc/…`, `/var/…` and
//! `/run/…` in commands and files lead there, `/usr/bin/chef-…` to the built binaries, the
//! example host names and ports to the servers this test starts. What cannot run on a test
//! machine is stood in for and named here: `sudo` runs as the test's user, `chown chef-sync:…`
//! gives files to that user, `systemctl` starts what the package's unit (and any drop-in in
//! the host's `/etc/systemd/system`) runs and waits for its READY=1 as systemd does, `scp`
//! copies between host directories, and `apt install` of the package lays down what its
//! maintainer script does; the real package is installed and checked by `scripts/package
//! check` in `.ci/run`, and `scripts/package` itself runs there (`--dev`).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chef_sync_tests::chef::{Chef, converge};
use chef_sync_tests::process::{ChefSyncServer, Process, bin, ctl, free_port};
use chef_sync_tests::sample;
use chef_sync_tests::systemd::{NotifySocket, Unit};
use serde_json::json;

const PRIMARY_URL: &str = "https://chef-primary.example.com";
const HOST_NAMES: [(&str, &str); 2] = [
    ("chef-primary.example.com", "primary"),
    ("chef-replica.example.com", "replica"),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

// ---------------------------------------------------------------------------------------------
// Reading a guide

#[derive(Debug, Clone)]
enum Step {
    /// A whole file on a host.
    File {
        host: String,
        path: String,
        text: String,
        line: usize,
    },
    /// A command on a host (`None`: the build machine), the exit code it must give, and the
    /// output shown under it.
    Command {
        host: Option<String>,
        command: String,
        exit: i32,
        shown: Vec<String>,
        line: usize,
    },
}

/// `primary$ cmd`, `replica$ cmd` or `$ cmd`.
fn prompt(line: &str) -> Option<(Option<String>, &str)> {
    if let Some(rest) = line.strip_prefix("$ ") {
        return Some((None, rest));
    }
    let (host, rest) = line.split_once("$ ")?;
    (host == "primary" || host == "replica").then(|| (Some(host.to_owned()), rest))
}

fn steps(markdown: &str) -> Vec<Step> {
    let mut out = Vec::new();
    let mut lines = markdown.lines().enumerate().peekable();
    while let Some((n, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut block = Vec::new();
        for (_, l) in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            block.push(l.to_owned());
        }
        if info.trim() == "console" {
            let mut i = 0;
            while i < block.len() {
                let Some((host, first)) = prompt(&block[i]) else {
                    panic!("line {}: console output before any command", n + 2 + i);
                };
                let mut command = first.to_owned();
                while command.ends_with('\\') && i + 1 < block.len() {
                    command.pop();
                    i += 1;
                    command.push_str(block[i].trim_start());
                }
                let line = n + 2 + i;
                i += 1;
                let mut shown = Vec::new();
                while i < block.len() && prompt(&block[i]).is_none() {
                    shown.push(block[i].clone());
                    i += 1;
                }
                let (command, exit) = match command.rsplit_once("# exits ") {
                    Some((c, code)) => (c.trim().to_owned(), code.trim().parse().unwrap()),
                    None => (command, 0),
                };
                out.push(Step::Command {
                    host,
                    command,
                    exit,
                    shown,
                    line,
                });
            }
        } else if let Some(header) = block.first().and_then(|l| l.strip_prefix("# "))
            && let Some((host, path)) = header.split_once(": ")
            && (host == "primary" || host == "replica")
            && path.starts_with('/')
        {
            out.push(Step::File {
                host: host.to_owned(),
                path: path.trim().to_owned(),
                text: block.join("\n") + "\n",
                line: n + 1,
            });
        }
    }
    out
}

/// Whether `actual` (several lines) holds the `shown` lines in order. White space runs count as
/// one space; `…` matches anything.
fn shows(actual: &str, shown: &[String]) -> Result<(), String> {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let actual: Vec<String> = actual.lines().map(norm).collect();
    let mut at = 0;
    for want in shown
        .iter()
        .map(|s| norm(s))
        .filter(|w| !w.is_empty() && w != "…")
    {
        let parts: Vec<&str> = want.split('…').collect();
        let fits = |line: &str| {
            let mut rest = line;
            for (i, part) in parts.iter().enumerate() {
                let part = if i == 0 { part.trim_end() } else { part.trim() };
                if i == 0 {
                    let Some(r) = rest.strip_prefix(part) else {
                        return false;
                    };
                    rest = r;
                } else if i == parts.len() - 1 {
                    return rest.ends_with(part);
                } else {
                    let Some(pos) = rest.find(part) else {
                        return false;
                    };
                    rest = &rest[pos + part.len()..];
                }
            }
            parts.len() > 1 || rest.is_empty()
        };
        match actual[at..].iter().position(|l| fits(l)) {
            Some(p) => at += p + 1,
            None => return Err(want),
        }
    }
    Ok(())
}

#[test]
fn shown_output_matches_in_order_with_ellipses() {
    let out = "ORGANIZATION  SOURCE  STATUS\nacme          acme    synced  2026-11-29T08:00:00Z\n";
    let shown = |s: &[&str]| s.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>();
    assert!(
        shows(
            out,
            &shown(&["ORGANIZATION SOURCE STATUS", "acme acme synced …"])
        )
        .is_ok()
    );
    assert!(
        shows(
            out,
            &shown(&["acme acme synced …", "ORGANIZATION SOURCE STATUS"])
        )
        .is_err()
    );
    assert!(shows(out, &shown(&["acme acme stopped …"])).is_err());
    assert!(shows(out, &shown(&["acme acme synced"])).is_err());
    assert!(
        shows(
            "acme: 9 object(s) compared, no drift",
            &shown(&["acme: … object(s) compared, no drift"])
        )
        .is_ok()
    );
    assert!(
        shows(
            "acme: 9 object(s) compared, 1 drift",
            &shown(&["acme: … object(s) compared, no drift"])
        )
        .is_err()
    );
}

// ---------------------------------------------------------------------------------------------
// The hosts

/// One machine of a guide: a directory for its root, the ports its example addresses stand
/// for, and the services started on it.
struct Host {
    name: String,
    root: PathBuf,
    /// `127.0.0.1:9996`: its chef-sync-server.
    server_port: u16,
    /// `127.0.0.1:9997`: chef-syncd's `metrics_listen`.
    metrics_port: u16,
    /// Stands in for 443, where the packaged server's `tls_listen` and the documented replica
    /// default `https://127.0.0.1` meet.
    tls_port: u16,
    services: BTreeMap<String, Process>,
}

/// The directory the binaries were built into.
fn bin_dir() -> PathBuf {
    bin("chef-syncd").parent().unwrap().to_owned()
}

struct World {
    hosts: Vec<Host>,
    primary_url: String,
}

impl World {
    fn new(base: &Path, primary_port: u16) -> World {
        let hosts = ["primary", "replica"]
            .into_iter()
            .map(|name| {
                let root = base.join(name);
                std::fs::create_dir_all(&root).unwrap();
                Host {
                    name: name.to_owned(),
                    root,
                    server_port: if name == "primary" {
                        primary_port
                    } else {
                        free_port()
                    },
                    metrics_port: free_port(),
                    tls_port: free_port(),
                    services: BTreeMap::new(),
                }
            })
            .collect();
        World {
            hosts,
            primary_url: format!("http://127.0.0.1:{primary_port}"),
        }
    }

    fn host(&mut self, name: &str) -> &mut Host {
        self.hosts.iter_mut().find(|h| h.name == name).unwrap()
    }

    /// `text` as it reads on `host`: its paths, ports and the primary's address.
    fn map(&self, host: &str, text: &str) -> String {
        let h = self.hosts.iter().find(|h| h.name == host).unwrap();
        let text = text.replace(PRIMARY_URL, &self.primary_url);
        // Whole ports only: the primary's own port (put in above) may begin with 443.
        let text = replace_port(&text, 9996, h.server_port);
        let text = replace_port(&text, 9997, h.metrics_port);
        let text = replace_port(&text, 443, h.tls_port).replace(
            "\"https://127.0.0.1\"",
            &format!("\"https://127.0.0.1:{}\"", h.tls_port),
        );
        let root = h.root.display().to_string();
        let mut out = String::with_capacity(text.len());
        let mut prev: Option<char> = None;
        let mut rest = text.as_str();
        while let Some(c) = rest.chars().next() {
            let at_boundary = prev.is_none_or(|p| " \"'=:(\n".contains(p));
            if c == '/'
                && at_boundary
                && ["/etc/", "/var/", "/run/"]
                    .iter()
                    .any(|p| rest.starts_with(p))
            {
                out.push_str(&root);
            }
            out.push(c);
            prev = Some(c);
            rest = &rest[c.len_utf8()..];
        }
        // Last, so that a checkout under /var is not taken for a path of the host.
        out.replace("/usr/bin/", &format!("{}/", bin_dir().display()))
    }
}

// ---------------------------------------------------------------------------------------------
// Running a guide

struct Run<'a> {
    world: World,
    guide: &'a str,
    /// Called after each command with the world and the command (to seed data, say).
    after: &'a mut dyn FnMut(&mut World, &str, &str),
}

impl Run<'_> {
    fn all(&mut self, steps: Vec<Step>) {
        for step in steps {
            match step {
                Step::File {
                    host,
                    path,
                    text,
                    line,
                } => {
                    let file = PathBuf::from(self.world.map(&host, &path));
                    eprintln!("{}:{line}: {host}: write {path}", self.guide);
                    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                    std::fs::write(&file, self.world.map(&host, &text)).unwrap();
                }
                Step::Command {
                    host,
                    command,
                    exit,
                    shown,
                    line,
                } => {
                    let at = format!("{}:{line}", self.guide);
                    eprintln!("{at}: {}$ {command}", host.as_deref().unwrap_or(""));
                    let Some(host) = host else {
                        self.build_machine(&at, &command);
                        continue;
                    };
                    let printed = self.command(&at, &host, &command, exit);
                    let shown: Vec<String> =
                        shown.iter().map(|l| self.world.map(&host, l)).collect();
                    if let Err(missing) = shows(&printed, &shown) {
                        panic!(
                            "{at}: `{command}` did not print {missing:?}; it printed:\n{printed}"
                        );
                    }
                    (self.after)(&mut self.world, &host, &command);
                }
            }
        }
    }

    /// The build machine's one command, which `.ci/run` runs.
    fn build_machine(&self, at: &str, command: &str) {
        assert_eq!(
            command, "scripts/package",
            "{at}: no stand-in for `{command}`"
        );
        let ci = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
        assert!(
            ci.contains("scripts/package --dev") && ci.contains("scripts/package check"),
            "{at}: .ci/run no longer builds and checks the package"
        );
    }

    /// Runs `command` on `host`; returns what it printed (stdout, then stderr).
    fn command(&mut self, at: &str, host: &str, command: &str, exit: i32) -> String {
        let command = command
            .strip_prefix("sudo -u chef-sync ")
            .or_else(|| command.strip_prefix("sudo "))
            .unwrap_or(command);
        let words: Vec<&str> = command.split_whitespace().collect();
        match words.as_slice() {
            ["systemctl", rest @ ..] => {
                self.systemctl(at, host, rest);
                String::new()
            }
            ["apt", "install", deb] if deb.starts_with("./chef-sync_") => {
                let script = std::fs::read_to_string(repo().join("scripts/package")).unwrap();
                assert!(
                    script.contains("apt install -y"),
                    "{at}: scripts/package check no longer installs the package with apt"
                );
                self.install_package(host);
                String::new()
            }
            ["scp", from, to] => {
                let (to_host, to_path) = to.split_once(':').unwrap();
                let to_host = HOST_NAMES
                    .iter()
                    .find(|(name, _)| *name == to_host)
                    .map(|(_, h)| *h)
                    .unwrap_or_else(|| panic!("{at}: unknown host {to_host}"));
                let from = self.world.map(host, from);
                let to = self.world.map(to_host, to_path);
                std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("{at}: {from} → {to}: {e}"));
                String::new()
            }
            _ => {
                // chown to the service user: to the test's own user.
                let command = if command.starts_with("chown ") {
                    let (uid, gid) = own_ids();
                    command.replace("chef-sync:chef-sync", &format!("{uid}:{gid}"))
                } else {
                    command.to_owned()
                };
                self.shell(at, host, &command, exit)
            }
        }
    }

    fn shell(&self, at: &str, host: &str, command: &str, exit: i32) -> String {
        let h = self.world.hosts.iter().find(|h| h.name == host).unwrap();
        let mapped = self.world.map(host, command);
        let path = format!(
            "{}:{}",
            bin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("timeout")
            .args(["180", "sh", "-c", &mapped])
            .current_dir(&h.root)
            .env("PATH", path)
            .env("CHEF_SYNC_CONFIG", h.root.join("etc/chef-sync"))
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.status.code(),
            Some(exit),
            "{at}: `{mapped}` exited {:?}, not {exit}; it printed:\n{printed}",
            out.status
        );
        printed
    }

    /// What the package's maintainer script and unit directories leave on a host.
    fn install_package(&self, host: &str) {
        let root = &self
            .world
            .hosts
            .iter()
            .find(|h| h.name == host)
            .unwrap()
            .root;
        let etc = root.join("etc/chef-sync");
        std::fs::create_dir_all(&etc).unwrap();
        for dir in ["var/lib/chef-sync", "var/log/chef-sync", "run/chef-sync"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        for example in ["chef-sync.toml", "server.toml"] {
            if example == "chef-sync.toml" && etc.join("chef-sync.rb").exists() {
                continue;
            }
            if !etc.join(example).exists() {
                let text = std::fs::read_to_string(repo().join("packaging").join(example)).unwrap();
                std::fs::write(etc.join(example), self.world.map(host, &text)).unwrap();
            }
        }
    }

    fn systemctl(&mut self, at: &str, host: &str, args: &[&str]) {
        let units: Vec<String> = args
            .iter()
            .filter(|a| !a.starts_with('-'))
            .skip(1)
            .map(|u| u.trim_end_matches(".service").to_owned())
            .collect();
        match args.first() {
            Some(&"daemon-reload") => {}
            Some(&"enable") => {
                assert!(
                    args.contains(&"--now"),
                    "{at}: enable without --now starts nothing"
                );
                for unit in &units {
                    self.start(at, host, unit);
                }
            }
            Some(&"start") => units.iter().for_each(|u| self.start(at, host, u)),
            Some(&"stop") => units.iter().for_each(|u| self.stop(at, host, u)),
            Some(&"restart") => {
                for unit in &units {
                    self.stop(at, host, unit);
                    self.start(at, host, unit);
                }
            }
            Some(&"reload") => {
                for unit in &units {
                    let dropins = self.world.map(host, "/etc/systemd/system");
                    let reload = Unit::load(unit, Path::new(&dropins)).exec_reload.join(" ");
                    assert!(!reload.is_empty(), "{at}: {unit} has no ExecReload");
                    assert!(
                        self.world.host(host).services.contains_key(unit.as_str()),
                        "{at}: reload of {unit}, which is not running"
                    );
                    self.shell(at, host, &reload, 0);
                }
            }
            other => panic!("{at}: no stand-in for systemctl {other:?}"),
        }
    }

    /// Starts a unit as systemd does with `Type=notify`: its ExecStart with `NOTIFY_SOCKET`,
    /// started once it says READY=1.
    fn start(&mut self, at: &str, host: &str, unit: &str) {
        let dropins = self.world.map(host, "/etc/systemd/system");
        let spec = Unit::load(unit, Path::new(&dropins));
        for path in &spec.read_write_paths {
            let mapped = self.world.map(host, path);
            assert!(
                Path::new(&mapped).exists(),
                "{at}: {unit}: ReadWritePaths={path} does not exist, and systemd would refuse to start it"
            );
        }
        let argv: Vec<String> = spec
            .exec_start
            .iter()
            .map(|a| self.world.map(host, a))
            .collect();
        let h = self.world.host(host);
        assert!(
            !h.services.contains_key(unit),
            "{at}: {unit} is already running"
        );
        let socket_path = h.root.join(format!("notify-{unit}"));
        let _ = std::fs::remove_file(&socket_path);
        let socket = NotifySocket::bind(&socket_path);
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .current_dir(&h.root)
            .env("NOTIFY_SOCKET", &socket_path)
            .env_remove("CHEF_SYNC_CONFIG");
        let mut process = Process::spawn(command);
        let deadline = std::time::Instant::now() + spec.timeout_start;
        loop {
            if socket
                .wait_for("READY=1", Duration::from_millis(500))
                .is_ok()
            {
                break;
            }
            if let Some(status) = process.exited() {
                panic!(
                    "{at}: {unit} exited ({status}) before READY=1:\n{}",
                    process.output()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{at}: {unit} sent no READY=1 within {:?}:\n{}",
                spec.timeout_start,
                process.output()
            );
        }
        h.services.insert(unit.to_owned(), process);
    }

    fn stop(&mut self, at: &str, host: &str, unit: &str) {
        let dropins = self.world.map(host, "/etc/systemd/system");
        let spec = Unit::load(unit, Path::new(&dropins));
        let h = self.world.host(host);
        let mut process = h
            .services
            .remove(unit)
            .unwrap_or_else(|| panic!("{at}: {unit} is not running"));
        let status = process.terminate(spec.timeout_stop);
        assert!(
            status.success(),
            "{at}: {unit} stopped with {status}:\n{}",
            process.output()
        );
    }
}

/// The test's own user and group ids, standing in for the `chef-sync` user.
/// `127.0.0.1:FROM` as a whole port (not followed by a digit) becomes `127.0.0.1:TO`.
fn replace_port(text: &str, from: u16, to: u16) -> String {
    let needle = format!("127.0.0.1:{from}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        let after = &rest[at + needle.len()..];
        out.push_str(&rest[..at]);
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(&needle);
        } else {
            out.push_str(&format!("127.0.0.1:{to}"));
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

fn own_ids() -> (String, String) {
    let id = |flag: &str| {
        let out = Command::new("id").arg(flag).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    (id("-u"), id("-g"))
}

fn read_guide(name: &str) -> Vec<Step> {
    let text = std::fs::read_to_string(repo().join("docs").join(name)).unwrap();
    steps(&text)
}

fn commands(steps: &[Step]) -> usize {
    steps
        .iter()
        .filter(|s| matches!(s, Step::Command { .. }))
        .count()
}

// ---------------------------------------------------------------------------------------------
// The guides

#[test]
fn the_operator_guide_runs_as_written() {
    let steps = read_guide("OPERATIONS.md");
    assert!(commands(&steps) >= 30, "{} commands read", commands(&steps));
    let base = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let primary_port = free_port();
    let mut seeded = false;
    let mut seed = |world: &mut World, host: &str, command: &str| {
        // Alice fills the org as soon as it exists, so the replica has something to copy.
        if host == "primary" && command.contains("org-create acme") && !seeded {
            let key = world
                .host("primary")
                .root
                .join("var/lib/chef-sync/server/alice.pem");
            let alice = Chef::new(
                &format!("{}/organizations/acme", world.primary_url),
                "alice",
                Chef::key_file(&key),
            );
            runtime.block_on(sample::load(&alice));
            seeded = true;
        }
    };
    let mut run = Run {
        world: World::new(base.path(), primary_port),
        guide: "OPERATIONS.md",
        after: &mut seed,
    };
    run.all(steps);
    let world = &run.world;
    let (primary, replica) = (&world.hosts[0], &world.hosts[1]);
    assert_eq!(primary.services.len(), 1, "the primary's server runs");
    assert_eq!(
        replica.services.len(),
        2,
        "the replica's server and chef-syncd run"
    );
    // The replica is an exact copy, and keeps following: a role written now arrives.
    let alice = Chef::new(
        &format!("{}/organizations/acme", world.primary_url),
        "alice",
        Chef::key_file(&primary.root.join("var/lib/chef-sync/server/alice.pem")),
    );
    let sync_user = Chef::new(
        &format!(
            "http://127.0.0.1:{}/organizations/acme",
            replica.server_port
        ),
        "ec_sync_user",
        Chef::key_file(&replica.root.join("etc/chef-sync/ec_sync_user.pem")),
    );
    runtime.block_on(async {
        alice
            .must("POST", "/roles", json!({"name": "after-the-guide"}), 201)
            .await;
        converge(
            &alice,
            &sync_user,
            "the guide's replica",
            Duration::from_secs(60),
            String::new,
        )
        .await;
    });
    let snapshot = runtime.block_on(sync_user.snapshot());
    assert!(snapshot.contains_key("/roles/after-the-guide"));
    assert!(snapshot.contains_key("/cookbooks/nginx/1.0.0"));
}

#[test]
fn the_migration_guide_runs_as_written() {
    let steps = read_guide("MIGRATION.md");
    assert!(commands(&steps) >= 8, "{} commands read", commands(&steps));
    let base = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // What the original chef-sync left: a primary and a replica Chef server, each org prepared
    // for ec_sync_user with the key in /etc/chef-sync, and the original's directories.
    let primary = ChefSyncServer::start(&base.path().join("primary-server"));
    let admin = primary.org_with_admin("acme", "alice");
    runtime.block_on(sample::load(&admin.chef));
    let port = |url: &str| url.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let mut world = World::new(base.path(), port(&primary.url));
    let replica_server = ChefSyncServer::start_on(
        &base.path().join("replica-server"),
        &format!("127.0.0.1:{}", world.host("replica").server_port),
    );
    replica_server.admin(&[
        "org-create",
        "acme",
        "Acme",
        "--filename",
        &base.path().join("replica-validator.pem").to_string_lossy(),
    ]);
    let root = world.host("replica").root.clone();
    for dir in [
        "etc/chef-sync",
        "var/opt/chef-sync/ec_sync_client",
        "var/log/opscode/chef-sync/client",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    let key = root.join("etc/chef-sync/ec_sync_user.pem");
    let nowhere = base.path().join("no-config.toml");
    for (server, pivotal, replica) in [
        (&primary.url, primary.pivotal_key(), false),
        (&replica_server.url, replica_server.pivotal_key(), true),
    ] {
        let mut args = vec![
            "prepare-org".to_owned(),
            "acme".into(),
            "--server".into(),
            server.clone(),
            "--superuser-key".into(),
            pivotal.display().to_string(),
            "--sync-key".into(),
            key.display().to_string(),
        ];
        if replica {
            args.push("--replica".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = ctl(&nowhere, &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The replica org is empty, as after an original that never finished its first copy.
    let sync_user = Chef::new(
        &format!("{}/organizations/acme", replica_server.url),
        "ec_sync_user",
        Chef::key_file(&key),
    );
    let primary_sync = Chef::new(
        &format!("{}/organizations/acme", primary.url),
        "ec_sync_user",
        Chef::key_file(&key),
    );
    let mut nothing = |_: &mut World, _: &str, _: &str| {};
    let mut run = Run {
        world,
        guide: "MIGRATION.md",
        after: &mut nothing,
    };
    run.all(steps);
    assert_eq!(
        run.world.host("replica").services.len(),
        1,
        "chef-syncd runs"
    );
    runtime.block_on(converge(
        &primary_sync,
        &sync_user,
        "the migrated replica",
        Duration::from_secs(60),
        String::new,
    ));
    // Its state went where the original kept its own.
    assert!(
        root.join("var/opt/chef-sync/ec_sync_client/state.db")
            .exists()
    );
    assert!(
        root.join("var/log/opscode/chef-sync/client/sync-acme.log")
            .exists()
    );
}
