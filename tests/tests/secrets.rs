//! Secrets (issue #7, item 8): every key file and the server's database (which holds the
//! file-URL signing key) are 0600, the control socket is 0600, and nothing a full replication
//! run logs — with every crate at debug level, on both servers and the daemon — holds PEM
//! text, a signature header or a pre-signed URL's signature.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use chef_sync_tests::process::{ChefSyncServer, ctl};
use chef_sync_tests::replica::{Replication, Tuning, files_under};
use serde_json::json;

/// Everything at debug: our crates, hyper, reqwest, sqlx, tower.
const EVERYTHING: &str = "debug";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The longest run of base64 characters in `line` (signature header chunks and PEM lines are
/// 60–64 of them; nothing we log legitimately comes close).
fn longest_base64_run(line: &str) -> usize {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '='))
        .map(str::len)
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_socket_are_private_and_no_log_holds_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let primary_dir = dir.path().join("primary");
    std::fs::create_dir_all(&primary_dir).unwrap();
    // A key file that already exists world-readable is narrowed when a key is written to it.
    let alice_key = primary_dir.join("alice.pem");
    std::fs::write(&alice_key, "old").unwrap();
    std::fs::set_permissions(&alice_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut primary =
        ChefSyncServer::start_logging(&primary_dir, "127.0.0.1:0", None, Some(EVERYTHING));
    let admin = primary.org_with_admin("acme", "alice");
    let alice = admin.chef.clone();
    chef_sync_tests::sample::load(&alice).await;
    let tuning = Tuning {
        rust_log: Some(EVERYTHING),
        ..Tuning::default()
    };
    let mut r =
        Replication::start_orgs(dir.path(), &[&primary], &["acme".into()], tuning, "s", None).await;
    r.converge(&alice, "acme", "bootstrap").await;
    // Follow traffic of every kind, cookbook files included.
    alice
        .must(
            "PUT",
            "/roles/web",
            json!({"name": "web", "description": "changed"}),
            200,
        )
        .await;
    alice.call("DELETE", "/data/secrets/api", None).await;
    alice
        .upload_cookbook(
            "nginx",
            "1.1.0",
            &[("recipes/default.rb", b"package 'nginx' # 1.1\n")],
            false,
        )
        .await;
    r.converge(&alice, "acme", "follow").await;

    let state = dir.path().join("state-s");
    let private = [
        primary.pivotal_key(),
        alice_key.clone(),
        admin.validator_key.clone(),
        r.replica.pivotal_key(),
        dir.path().join("sync.pem"),
        primary_dir.join("chef-sync.db"),
        r.replica.data_dir.join("chef-sync.db"),
        state.join("sock"),
    ];
    for path in &private {
        assert_eq!(format!("{:o}", mode(path)), "600", "{}", path.display());
    }
    for wal in ["chef-sync.db-wal", "chef-sync.db-shm"] {
        let path = primary_dir.join(wal);
        if path.exists() {
            assert_eq!(format!("{:o}", mode(&path)), "600", "{}", path.display());
        }
    }

    // Every log: the three processes' output, the manager log and the org's sync log.
    let manager = ctl(&r.config, &["manager-log", "-n", "100000"]);
    let sync_log = ctl(&r.config, &["sync-log", "acme", "-n", "100000"]);
    r.daemon.terminate(std::time::Duration::from_secs(30));
    let mut logs = vec![
        ("primary", primary.process.output()),
        ("replica", r.replica.process.output()),
        ("chef-syncd", r.daemon.output()),
        (
            "manager-log",
            String::from_utf8_lossy(&manager.stdout).into_owned(),
        ),
        (
            "sync-log",
            String::from_utf8_lossy(&sync_log.stdout).into_owned(),
        ),
    ];
    for file in files_under(&state.join("log")) {
        logs.push(("log file", std::fs::read_to_string(&file).unwrap()));
    }
    let total: usize = logs.iter().map(|(_, text)| text.lines().count()).sum();
    // The run really logged at debug level, from the HTTP stacks too.
    assert!(total > 500, "only {total} log lines");
    for what in ["hyper", "reqwest", "sqlx"] {
        assert!(
            logs.iter().any(|(_, text)| text.contains(what)),
            "no {what} debug output"
        );
    }
    for (source, text) in &logs {
        for line in text.lines() {
            let lower = line.to_ascii_lowercase();
            assert!(
                !line.contains("-----BEGIN") && !lower.contains("private key"),
                "{source} logged key material: {line}"
            );
            assert!(
                !lower.contains("x-ops-authorization") && !lower.contains("x-ops-content-hash"),
                "{source} logged a signature header: {line}"
            );
            assert!(
                !lower.contains("signature="),
                "{source} logged a pre-signed URL: {line}"
            );
            assert!(
                longest_base64_run(line) < 56,
                "{source} logged something that looks like a signature or a key: {line}"
            );
        }
    }
    eprintln!(
        "{total} log lines from {} sources checked; {} files are 0600",
        logs.len(),
        private.len()
    );
}
