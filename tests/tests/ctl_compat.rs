//! chef-sync-ctl as Chef documented the original's: `reconfigure` on the primary creates the
//! sync user and its key, `prepare-org ORG` takes everything else from the configuration, on
//! both sides, and prints the organizations, groups and actors it dealt with; `reconfigure` on
//! a replica reloads the daemon. Also: a closed stdout (`chef-sync-ctl sync-status | true`)
//! ends every command quietly with its usual exit status, and nothing chef-sync-ctl prints
//! carries Rust's debug formatting (`Some(12)`, `None`).

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chef_sync_shared::{PrivateKey, PublicKey};
use chef_sync_tests::chef::Chef;
use chef_sync_tests::process::{ChefSyncServer, bin, ctl, syncd};
use chef_sync_tests::replica::{Replication, Tuning};
use serde_json::{Value, json};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The output of a command that must have succeeded.
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}{}",
        out.status,
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(out);
    no_debug_formatting(&text);
    text
}

/// Nothing an operator reads is Rust's `Debug` of an `Option`.
fn no_debug_formatting(text: &str) {
    assert!(
        !text.contains("Some(") && !text.contains("None"),
        "debug formatting in: {text}"
    );
}

/// `chef-sync-ctl --config CONFIG ARGS…` with `CHEF_SYNC_SERVER_CONFIG` set.
fn ctl_with_server_config(config: &Path, server_config: &Path, args: &[&str]) -> Output {
    Command::new(bin("chef-sync-ctl"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("CHEF_SYNC_SERVER_CONFIG", server_config)
        .output()
        .unwrap()
}

/// chef-sync-server's `server.toml` naming `server`'s data directory, as the package lays it
/// down in /etc/chef-sync.
fn write_server_toml(path: &Path, server: &ChefSyncServer) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        path,
        format!(
            "listen = \"127.0.0.1:9996\"\ndata_dir = \"{}\"\n",
            server.data_dir.display()
        ),
    )
    .unwrap();
}

fn pivotal(server: &ChefSyncServer) -> Chef {
    Chef::new(
        &server.url,
        "pivotal",
        Chef::key_file(&server.pivotal_key()),
    )
}

/// The sync user's `default` public key on `server`.
async fn sync_user_key(server: &ChefSyncServer) -> PublicKey {
    let key = pivotal(server)
        .get(&format!("{}/users/ec_sync_user/keys/default", server.url))
        .await;
    PublicKey::from_pem(key["public_key"].as_str().unwrap()).unwrap()
}

fn key_in(path: &Path) -> PrivateKey {
    PrivateKey::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The primary's side, steps 2, 3 and 5: `role :master` in chef-sync.rb, `reconfigure`,
/// `prepare-org ORG`. Returns the sync key's path.
async fn primary_steps(etc: &Path, primary: &ChefSyncServer) -> PathBuf {
    let key = etc.join("ec_sync_user.pem");
    std::fs::create_dir_all(etc).unwrap();
    std::fs::write(
        etc.join("chef-sync.rb"),
        format!(
            "role :master\nmaster \"{}\"\nec_sync_client['sync_key'] = '{}'\n",
            primary.url,
            key.display()
        ),
    )
    .unwrap();
    write_server_toml(&etc.join("server.toml"), primary);
    let out = ok(&ctl(etc, &["reconfigure"]));
    for line in [
        "is valid",
        &format!("created sync key {}", key.display()),
        "created user ec_sync_user",
        &format!("copy {} to each replica", key.display()),
    ] {
        assert!(out.contains(line), "no {line:?} in: {out}");
    }
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(sync_user_key(primary).await, key_in(&key).public_key());
    let pem = std::fs::read(&key).unwrap();
    let again = ok(&ctl(etc, &["reconfigure"]));
    assert!(again.contains("nothing to do"), "{again}");
    assert!(!again.contains("created"), "{again}");
    assert_eq!(std::fs::read(&key).unwrap(), pem, "the key is kept");

    let out = ok(&ctl(etc, &["prepare-org", "acme"]));
    for line in [
        format!("preparing acme on {} as pivotal", primary.url),
        "associated ec_sync_user with acme".into(),
        "added ec_sync_user to the admins group of acme".into(),
        "organizations: acme".into(),
        "groups: admins".into(),
        "actors: ec_sync_user (user)".into(),
    ] {
        assert!(out.contains(&line), "no {line:?} in: {out}");
    }
    assert!(!out.contains("created"), "reconfigure made both: {out}");
    let again = ok(&ctl(etc, &["prepare-org", "acme"]));
    assert!(again.contains("nothing to do"), "{again}");
    assert!(again.contains("organizations: acme"), "{again}");
    key
}

/// The replica's side, steps 6 to 9: the key copied over, chef-sync.toml, `reconfigure`,
/// `prepare-org ORG`; the superuser key found through `CHEF_SYNC_SERVER_CONFIG`.
fn replica_steps(etc: &Path, state: &Path, replica: &ChefSyncServer, primary_url: &str) -> PathBuf {
    let config = etc.join("chef-sync.toml");
    std::fs::write(
        &config,
        format!(
            "role = \"replica\"\nmaster = \"{primary_url}\"\nreplica = \"{}\"\n\
             [[organizations]]\nsource = \"acme\"\ndestination = \"acme\"\n\
             [ec_sync_client]\ndir = \"{s}\"\nlog_directory = \"{s}/log\"\n\
             socket_path = \"{s}/sock\"\nsync_key = \"{k}\"\npoll_interval = 1\n",
            replica.url,
            s = state.display(),
            k = etc.join("ec_sync_user.pem").display()
        ),
    )
    .unwrap();
    // Without the daemon, reconfigure checks the file and says the daemon is not running.
    let out = ctl(&config, &["reconfigure"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chef-syncd is not running"),
        "{out:?}"
    );
    // The master's flags make no sense here.
    let out = ctl(&config, &["reconfigure", "--superuser", "pivotal"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let server_toml = state.join("elsewhere/server.toml");
    write_server_toml(&server_toml, replica);
    let out = ok(&ctl_with_server_config(
        &config,
        &server_toml,
        &["prepare-org", "acme"],
    ));
    for line in [
        format!("preparing acme on {} as pivotal", replica.url),
        "created user ec_sync_user".into(),
        "associated ec_sync_user with acme".into(),
        "actors: ec_sync_user (user)".into(),
    ] {
        assert!(out.contains(&line), "no {line:?} in: {out}");
    }
    assert!(
        !out.contains("created sync key"),
        "the copied key is used: {out}"
    );
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_steps_run_without_flags() {
    let dir = tempfile::tempdir().unwrap();
    let primary = ChefSyncServer::start(&dir.path().join("primary"));
    let alice = primary.org_with_admin("acme", "alice").chef;
    alice
        .must("POST", "/roles", json!({"name": "web"}), 201)
        .await;
    let replica = ChefSyncServer::start(&dir.path().join("replica"));
    pivotal(&replica)
        .must(
            "POST",
            &format!("{}/organizations", replica.url),
            json!({"name": "acme", "full_name": "Acme"}),
            201,
        )
        .await;

    let primary_etc = dir.path().join("primary-host/etc/chef-sync");
    let key = primary_steps(&primary_etc, &primary).await;
    let admins = alice.get("/groups/admins").await;
    assert!(
        admins["users"]
            .as_array()
            .unwrap()
            .contains(&json!("ec_sync_user")),
        "{admins}"
    );

    // Step 6: the key goes to the replica.
    let replica_etc = dir.path().join("replica-host/etc/chef-sync");
    std::fs::create_dir_all(&replica_etc).unwrap();
    std::fs::copy(&key, replica_etc.join("ec_sync_user.pem")).unwrap();
    std::fs::set_permissions(
        replica_etc.join("ec_sync_user.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let state = dir.path().join("replica-host/var");
    let config = replica_steps(&replica_etc, &state, &replica, &primary.url);
    assert_eq!(sync_user_key(&replica).await, key_in(&key).public_key());

    // With the daemon running, reconfigure reloads it, and the org syncs with that key.
    let _daemon = syncd(&config);
    let out = ok(&ctl(&config, &["reconfigure"]));
    assert!(out.contains("chef-syncd reloaded"), "{out}");
    ok(&ctl(&config, &["sync-start", "acme"]));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows: Value =
            serde_json::from_slice(&ctl(&config, &["sync-status", "--json"]).stdout).unwrap();
        if rows[0]["status"] == "synced" {
            break;
        }
        assert!(Instant::now() < deadline, "not synced: {rows}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pivotal(&replica)
        .get(&format!("{}/organizations/acme/roles/web", replica.url))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superuser_key_is_named_or_found() {
    let dir = tempfile::tempdir().unwrap();
    let server = ChefSyncServer::start(&dir.path().join("server"));
    server.org_with_admin("acme", "alice");
    let config = dir.path().join("chef-sync.toml");
    std::fs::write(
        &config,
        format!(
            "role = \"master\"\nmaster = \"{}\"\n[ec_sync_client]\nsync_key = \"{}\"\n",
            server.url,
            dir.path().join("sync.pem").display()
        ),
    )
    .unwrap();
    // Nothing beside the config names the server's data: the fixed places are tried, and on a
    // test machine they hold no key.
    let fixed = [
        "/var/lib/chef-sync/server/pivotal.pem",
        "/etc/opscode/pivotal.pem",
        "/var/opt/chef-sync/server/pivotal.pem",
    ];
    if !fixed.iter().any(|p| Path::new(p).exists()) {
        let out = ctl(&config, &["prepare-org", "acme"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("no superuser key found"), "{stderr}");
        assert!(stderr.contains("/etc/opscode/pivotal.pem"), "{stderr}");
        assert!(stderr.contains("--superuser-key"), "{stderr}");
    }
    // A key that is not the server's: the refusal names the key.
    let other = dir.path().join("other.pem");
    std::fs::write(
        &other,
        PrivateKey::generate(2048).unwrap().to_pkcs1_pem().unwrap(),
    )
    .unwrap();
    let out = ctl(
        &config,
        &[
            "prepare-org",
            "acme",
            "--superuser-key",
            other.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("is {} its superuser key?", other.display())),
        "{stderr}"
    );
    // The flags still win over the configuration: another server, named.
    let pivotal_key = server.pivotal_key();
    let out = ok(&ctl(
        &config,
        &[
            "prepare-org",
            "acme",
            "--server",
            &server.url,
            "--superuser",
            "pivotal",
            "--superuser-key",
            pivotal_key.to_str().unwrap(),
        ],
    ));
    assert!(out.contains("created user ec_sync_user"), "{out}");
    // reconfigure on the master takes the same flags.
    let out = ok(&ctl(
        &config,
        &[
            "reconfigure",
            "--superuser-key",
            pivotal_key.to_str().unwrap(),
        ],
    ));
    assert!(out.contains("nothing to do"), "{out}");
}

/// A chef-sync-ctl whose stdout (and, with `stderr_too`, stderr) is a pipe nobody reads any
/// more, as in `chef-sync-ctl sync-status | true`; killed on drop.
struct Closed(Child);

impl Drop for Closed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the command that way; its exit code (`None`: killed by a signal) and stderr.
fn closed_stdout(config: &Path, args: &[&str], stderr_too: bool) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut command = Command::new(bin("chef-sync-ctl"));
    command
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null());
    if stderr_too {
        command.stderr(writer.try_clone().unwrap());
    } else {
        command.stderr(Stdio::piped());
    }
    let mut child = Closed(command.stdout(writer).spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "{args:?} still runs");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.0.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
    }
    (status.code(), stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_ends_every_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let primary = ChefSyncServer::start(&dir.path().join("primary"));
    let alice = primary.org_with_admin("acme", "alice").chef;
    chef_sync_tests::sample::load(&alice).await;
    let orgs = ["acme".to_owned()];
    let r =
        Replication::start_orgs(dir.path(), &[&primary], &orgs, Tuning::default(), "p", None).await;
    r.wait_synced(1).await;
    // Drift for `verify` (exit 1 with a report): a role written on the replica by the one
    // actor allowed to.
    let sync_key = r.config.with_file_name("sync.pem");
    Chef::new(
        &format!("{}/organizations/acme", r.replica.url),
        "ec_sync_user",
        Chef::key_file(&sync_key),
    )
    .must("POST", "/roles", json!({"name": "drifted"}), 201)
    .await;
    let pivotal_key = r.replica.pivotal_key();
    let prepare = [
        "prepare-org",
        "acme",
        "--server",
        &r.replica.url,
        "--superuser-key",
        pivotal_key.to_str().unwrap(),
    ];
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["sync-status"], 0),
        (vec!["sync-status", "--json"], 0),
        (vec!["unsynced-objects", "acme"], 0),
        (vec!["unsynced-objects", "acme", "--json"], 0),
        (vec!["sync-log", "acme"], 0),
        (vec!["sync-log", "acme", "-f"], 0),
        (vec!["manager-log"], 0),
        (vec!["manager-log", "-f", "-n", "5"], 0),
        (vec!["show-config"], 0),
        (vec!["show-config", "--json"], 0),
        (vec!["plan", "acme"], 0),
        (vec!["plan", "acme", "--json"], 0),
        (vec!["verify", "acme"], 1),
        (vec!["verify", "acme", "--json"], 1),
        (vec!["sync-start", "acme"], 0),
        (vec!["sync-start", "acme", "--wait"], 0),
        (vec!["reconfigure"], 0),
        (prepare.to_vec(), 0),
        (vec!["--help"], 0),
        (vec!["sync-status", "--help"], 0),
        (vec!["--version"], 0),
        (vec!["sync-stop", "acme"], 0),
    ];
    // Every process here is a child: blocking this thread while they run is harmless.
    let config = &r.config;
    for (args, code) in cases {
        let (got, stderr) = closed_stdout(config, &args, false);
        assert_eq!(got, Some(code), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?} said something on stderr");
        // The same command's ordinary output has no debug formatting (the logs print what
        // the daemon wrote, which is the daemon's concern).
        if !matches!(args[0], "sync-log" | "manager-log") && !args.contains(&"-f") {
            no_debug_formatting(&stdout(&ctl(config, &args)));
        }
    }
    // A failure still says why, and a broken stderr does not make it a panic either.
    let (got, stderr) = closed_stdout(config, &["sync-log", "nope"], false);
    assert_eq!(got, Some(2));
    assert!(
        stderr.starts_with("chef-sync-ctl: organization 'nope'"),
        "{stderr}"
    );
    assert_eq!(
        closed_stdout(config, &["sync-log", "nope"], true).0,
        Some(2)
    );
    assert_eq!(closed_stdout(config, &["sync-status"], true).0, Some(0));
}
