//! Policyfiles end to end with the real binaries: an org pushed the way `chef push` does on the
//! primary is an exact copy on the replica after the bootstrap, and stays one through the feed
//! as groups move to new revisions, policies and artifacts are deleted; `verify` compares them
//! and tells drift on the replica.

#![allow(clippy::unwrap_used)]

use std::process::Output;

use chef_sync_tests::chef::{Artifact, Chef};
use chef_sync_tests::process::{ChefSyncServer, ctl};
use chef_sync_tests::replica::{Replication, Tuning};
use serde_json::{Value, json};

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

const APP_1: Artifact = Artifact {
    name: "app",
    identifier: "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
    version: "1.0.0",
    files: &[("recipes/default.rb", b"package 'app'\n")],
};
const APP_2: Artifact = Artifact {
    name: "app",
    identifier: "a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2",
    version: "1.1.0",
    files: &[
        ("recipes/default.rb", b"package 'app'\nservice 'app'\n"),
        ("templates/default/app.conf.erb", b"port <%= @port %>\n"),
    ],
};
/// Shared by both policies.
const BASE: Artifact = Artifact {
    name: "base",
    identifier: "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0",
    version: "2.3.4",
    files: &[
        ("recipes/default.rb", b"include_recipe 'base::users'\n"),
        ("recipes/users.rb", b"user 'deploy'\n"),
        ("files/default/motd", &[0, 159, 146, 150, 255]),
    ],
};
const DB: Artifact = Artifact {
    name: "db",
    identifier: "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1",
    version: "0.3.0",
    files: &[("recipes/default.rb", b"package 'postgresql'\n")],
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_policyfile_org_replicates_exactly_and_stays_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let primary = ChefSyncServer::start(&dir.path().join("primary"));
    let alice = primary.org_with_admin("acme", "alice").chef;
    // Two policies, two groups, shared artifacts, with roles and cookbooks beside them.
    chef_sync_tests::sample::load(&alice).await;
    let (app_r1, app_r2) = ("1".repeat(40), "2".repeat(40));
    let db_r1 = "3".repeat(40);
    for group in ["staging", "production"] {
        alice
            .push_policy(group, "app", &app_r1, &[APP_1, BASE])
            .await;
    }
    alice
        .push_policy("staging", "db", &db_r1, &[BASE, DB])
        .await;

    let r = Replication::start_orgs(
        dir.path(),
        &[&primary],
        &["acme".to_owned()],
        Tuning::default(),
        "pf",
        None,
    )
    .await;
    r.converge(&alice, "acme", "bootstrap with Policyfiles")
        .await;
    r.wait_synced(1).await;
    let replica = r.replica_admin("acme");
    assert_eq!(
        replica.get("/policy_groups/production/policies/app").await["revision_id"],
        app_r1
    );
    let verified = report(&ctl(&r.config, &["verify", "acme", "--json"]));
    assert_eq!(verified["drift"], 0, "{verified}");

    // Through the feed: staging moves to a new revision with a new artifact (the step a
    // `chef push` ends with), a new group, the db policy and its own artifact deleted.
    alice
        .push_policy("staging", "app", &app_r2, &[APP_2, BASE])
        .await;
    alice
        .push_policy("qa", "app", &app_r2, &[APP_2, BASE])
        .await;
    alice.must("DELETE", "/policies/db", Value::Null, 200).await;
    alice
        .must(
            "DELETE",
            &format!("/cookbook_artifacts/db/{}", DB.identifier),
            Value::Null,
            200,
        )
        .await;
    r.converge(&alice, "acme", "feed with Policyfile changes")
        .await;
    assert_eq!(
        replica.get("/policy_groups/staging/policies/app").await["revision_id"],
        app_r2
    );
    assert_eq!(replica.call("GET", "/policies/db", None).await.0, 404);
    let artifacts = replica.get("/cookbook_artifacts").await;
    assert!(artifacts.get("db").is_none(), "{artifacts}");
    assert_eq!(
        replica.get("/policy_groups/staging").await["policies"],
        json!({"app": {"revision_id": app_r2}}),
        "the group stays, without the deleted policy"
    );

    // Drift made on the replica is told, and the next full reconcile repairs it.
    let sync_user = Chef::new(
        &format!("{}/organizations/acme", r.replica.url),
        "ec_sync_user",
        Chef::key_file(&r.config.with_file_name("sync.pem")),
    );
    assert!(ctl(&r.config, &["sync-stop", "acme"]).status.success());
    sync_user
        .must(
            "DELETE",
            "/policy_groups/production/policies/app",
            Value::Null,
            200,
        )
        .await;
    sync_user
        .must(
            "DELETE",
            &format!("/cookbook_artifacts/app/{}", APP_2.identifier),
            Value::Null,
            200,
        )
        .await;
    sync_user.push_policy("extra", "stray", &db_r1, &[DB]).await;
    let out = ctl(&r.config, &["verify", "acme", "--json"]);
    assert_eq!(out.status.code(), Some(1), "drift exits 1: {out:?}");
    let verified = report(&out);
    let mut found: Vec<(String, String)> = verified["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["path"].as_str().unwrap().to_owned(),
                d["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    let stray = |p: &str| (p.to_owned(), "delete".to_owned());
    assert_eq!(
        found,
        [
            (
                format!("/cookbook_artifacts/app/{}", APP_2.identifier),
                "create".to_owned()
            ),
            stray(&format!("/cookbook_artifacts/db/{}", DB.identifier)),
            stray("/policies/stray"),
            stray(&format!("/policies/stray/revisions/{db_r1}")),
            stray("/policy_groups/extra"),
            stray("/policy_groups/extra/policies/stray"),
            (
                "/policy_groups/production/policies/app".to_owned(),
                "create".to_owned()
            ),
        ],
        "{verified}"
    );
}
