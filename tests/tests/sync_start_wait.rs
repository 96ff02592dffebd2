//! `chef-sync-ctl sync-start ORG --wait` with the real daemon: it reports the bootstrap's
//! progress (plain lines when stderr is not a terminal) and returns once the org is synced;
//! without a running daemon it says so and exits 1.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chef_sync_tests::fault_proxy::FaultProxy;
use chef_sync_tests::process::{ChefSyncServer, ctl};
use chef_sync_tests::replica::{Replication, Tuning};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_shows_the_bootstrap_and_returns_when_synced() {
    let dir = tempfile::tempdir().unwrap();
    let primary = ChefSyncServer::start(&dir.path().join("primary"));
    let alice = primary.org_with_admin("acme", "alice").chef;
    chef_sync_tests::sample::load(&alice).await;
    {
        use futures_util::StreamExt;
        futures_util::stream::iter(0..600)
            .for_each_concurrent(8, |i| {
                let alice = alice.clone();
                async move {
                    alice
                        .must("POST", "/roles", json!({"name": format!("r{i:03}")}), 201)
                        .await;
                }
            })
            .await;
    }
    // A primary 20 ms away, read one object at a time: a bootstrap of a few seconds.
    let proxy = FaultProxy::start(&primary.url).await;
    proxy.add_latency(Duration::from_millis(20));
    let tuning = Tuning {
        start: false,
        bulk_reads: false,
        ..Tuning::default()
    };
    let r = Replication::start_via(dir.path(), &primary, &proxy.url, "acme", tuning, "wait").await;

    let config = r.config.clone();
    let out = tokio::task::spawn_blocking(move || ctl(&config, &["sync-start", "acme", "--wait"]))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.starts_with("sync started for acme\n"), "{stdout}");
    assert!(stdout.contains("acme synced (feed position "), "{stdout}");
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("acme: bootstrapping, "))
        .collect();
    assert!(!progress.is_empty(), "no progress line in: {stderr}");
    let total: u64 = progress[0]
        .split(" objects")
        .next()
        .and_then(|s| s.rsplit('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(total > 600, "{stderr}");
    assert!(progress[0].contains("MB of files"), "{stderr}");
    // Returned only once synced.
    let status = ctl(&r.config, &["sync-status", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(rows[0]["status"], "synced", "{rows}");
    r.converge(&alice, "acme", "after --wait").await;

    // Already synced: returns at once.
    let out = ctl(&r.config, &["sync-start", "acme", "--wait"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("acme synced"));
}

#[test]
fn wait_without_a_daemon_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "role = \"replica\"\nmaster = \"http://127.0.0.1:9\"\nreplica = \"http://127.0.0.1:9\"\n[[organizations]]\nsource = \"acme\"\ndestination = \"acme\"\n[ec_sync_client]\ndir = \"{d}\"\nsocket_path = \"{d}/sock\"\nlog_directory = \"{d}/log\"\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    let out = ctl(&config, &["sync-start", "acme", "--wait"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("chef-syncd is not running"), "{stderr}");
    assert!(stderr.contains("--wait needs it"), "{stderr}");
}
