//! `chef-sync-ctl plan` and `verify` against real servers: after a converged sync, edits made
//! on the replica are drift, changes made on the primary since are pending, `plan` shows only
//! what the next sync would do, and neither command writes anything.

#![allow(clippy::unwrap_used)]

use std::process::Output;

use chef_sync_tests::chef::Chef;
use chef_sync_tests::process::{ChefSyncServer, ctl};
use chef_sync_tests::replica::{Replication, Tuning};
use serde_json::{Value, json};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            stdout(out),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `(path, action, pending)` of a verify report, sorted.
fn findings(report: &Value) -> Vec<(String, String, bool)> {
    let mut f: Vec<(String, String, bool)> = report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["path"].as_str().unwrap().to_owned(),
                d["action"].as_str().unwrap().to_owned(),
                d["pending"].as_bool().unwrap(),
            )
        })
        .collect();
    f.sort();
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_verify_tell_pending_work_from_drift_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let primary = ChefSyncServer::start(&dir.path().join("primary"));
    let alice = primary.org_with_admin("acme", "alice").chef;
    chef_sync_tests::sample::load(&alice).await;
    let r = Replication::start_orgs(
        dir.path(),
        &[&primary],
        &["acme".to_owned()],
        Tuning::default(),
        "pv",
        None,
    )
    .await;
    r.converge(&alice, "acme", "first sync").await;
    r.wait_synced(1).await;

    // In step: nothing to plan, nothing drifted.
    let out = ctl(&r.config, &["plan", "acme"]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("nothing to do"), "{}", stdout(&out));
    let out = ctl(&r.config, &["verify", "acme", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let report = json_of(&out);
    assert_eq!(report["drift"], 0, "{report}");
    assert!(report["compared"].as_u64().unwrap() >= 6, "{report}");

    // Pause the sync, then change both sides.
    assert!(ctl(&r.config, &["sync-stop", "acme"]).status.success());
    let sync_user = Chef::new(
        &format!("{}/organizations/acme", r.replica.url),
        "ec_sync_user",
        Chef::key_file(&r.config.with_file_name("sync.pem")),
    );
    sync_user
        .must(
            "PUT",
            "/roles/web",
            json!({"name": "web", "description": "edited on the replica"}),
            200,
        )
        .await;
    sync_user
        .must("DELETE", "/roles/db", Value::Null, 200)
        .await;
    sync_user
        .must("POST", "/roles", json!({"name": "extra"}), 201)
        .await;
    alice
        .must(
            "PUT",
            "/environments/prod",
            json!({"name": "prod", "description": "changed on the primary"}),
            200,
        )
        .await;
    alice
        .must("POST", "/roles", json!({"name": "new"}), 201)
        .await;

    let out = ctl(&r.config, &["verify", "acme", "--json"]);
    assert_eq!(out.status.code(), Some(1), "drift exits 1: {out:?}");
    let report = json_of(&out);
    assert_eq!(report["drift"], 3, "{report}");
    assert_eq!(
        findings(&report),
        [
            ("/environments/prod".into(), "update".into(), true),
            ("/roles/db".into(), "create".into(), false),
            ("/roles/extra".into(), "delete".into(), false),
            ("/roles/new".into(), "create".into(), true),
            ("/roles/web".into(), "update".into(), false),
        ]
    );
    let out = ctl(&r.config, &["verify", "acme"]);
    assert_eq!(out.status.code(), Some(1));
    let table = stdout(&out);
    assert!(table.starts_with("SYNC WOULD"), "{table}");
    assert!(
        table.contains("/roles/extra") && table.contains("drift"),
        "{table}"
    );
    assert!(table.contains("5 differ, 3 drifted"), "{table}");

    // The next sync follows the feed: it applies the two primary changes, not the drift.
    let out = ctl(&r.config, &["plan", "acme", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let plan = json_of(&out);
    assert_eq!(plan["mode"], "feed");
    assert_eq!(
        plan["changes"],
        json!([
            {"path": "/environments/prod", "action": "update"},
            {"path": "/roles/new", "action": "create"},
        ])
    );
    let out = ctl(&r.config, &["plan", "acme"]);
    assert!(
        stdout(&out).contains("would create 1, update 1, delete 0"),
        "{}",
        stdout(&out)
    );

    // Nothing was written by either command.
    let replica = r.replica_admin("acme");
    assert_eq!(
        replica.get("/roles/web").await["description"],
        "edited on the replica"
    );
    replica.get("/roles/extra").await;
    let (status, _) = replica.call("GET", "/roles/new", None).await;
    assert_eq!(status, 404);

    // Unknown org: a usage error.
    let out = ctl(&r.config, &["verify", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'nope' is not a destination"));
}
