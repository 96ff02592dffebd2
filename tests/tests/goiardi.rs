//! chef-syncd with goiardi, a Chef server nobody here wrote: our primary replicated into
//! goiardi, and goiardi (no feed) replicated into our server by full reconcile. Both sides are
//! read with pythonchef, not with our own client.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use chef_sync_tests::peers::{self, Goiardi, pythonchef, pythonchef_try};
use chef_sync_tests::process::{ChefSyncServer, ctl, syncd};
use serde_json::{Value, json};

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write_config(path: &Path, state: &Path, sync_key: &Path, pair: &str, top: &str) {
    std::fs::write(
        path,
        format!(
            "role = \"replica\"\n{top}\n[[organizations]]\n{pair}\n[ec_sync_client]\ndir = \"{s}\"\nlog_directory = \"{s}/log\"\nsocket_path = \"{s}/sock\"\nsync_key = \"{k}\"\npoll_interval = 1\nconcurrency = 4\n",
            s = state.display(),
            k = sync_key.display()
        ),
    )
    .unwrap();
}

/// Waits until pythonchef sees the same objects on both sides.
fn converge(what: &str, a: impl Fn() -> Value, b: impl Fn() -> Value) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (left, right) = (a(), b());
        if left == right {
            return;
        }
        if Instant::now() > deadline {
            let (Some(l), Some(r)) = (left.as_object(), right.as_object()) else {
                panic!("{what}: not converged\nleft {left}\nright {right}");
            };
            let diff: Vec<_> = l
                .keys()
                .chain(r.keys())
                .filter(|k| l.get(*k) != r.get(*k))
                .collect();
            panic!("{what}: not converged; differing paths {diff:?}\nleft {left}\nright {right}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_primary_replicates_into_goiardi() {
    if !peers::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let primary = ChefSyncServer::start(&dir.path().join("primary"));
    let goiardi = Goiardi::start(&dir.path().join("goiardi"));
    let admin = primary.org_with_admin("acme", "alice");
    let alice_pem = admin.key.clone();
    let alice = admin.chef;
    chef_sync_tests::sample::load(&alice).await;
    // goiardi keeps a bag and its items in one record: items written into one bag at the same
    // time would lose each other (every one of these must arrive).
    alice
        .must("POST", "/data", json!({"name": "users"}), 201)
        .await;
    for i in 0..40 {
        alice
            .must(
                "POST",
                "/data/users",
                json!({"id": format!("u{i:02}")}),
                201,
            )
            .await;
    }

    let config = dir.path().join("chef-sync.toml");
    let sync_key = dir.path().join("sync.pem");
    write_config(
        &config,
        &dir.path().join("syncd"),
        &sync_key,
        &format!(
            "source = \"acme\"\ndestination = \"acme\"\ndestination_url = \"{}\"",
            goiardi.url
        ),
        &format!("master = \"{}\"", primary.url),
    );
    let pivotal = primary.pivotal_key();
    ok(&ctl(
        &config,
        &[
            "prepare-org",
            "acme",
            "--server",
            &primary.url,
            "--superuser-key",
            pivotal.to_str().unwrap(),
        ],
    ));
    let out = ok(&ctl(
        &config,
        &[
            "prepare-org",
            "acme",
            "--server",
            &goiardi.url,
            "--superuser",
            "admin",
            "--superuser-key",
            goiardi.admin_key.to_str().unwrap(),
        ],
    ));
    assert!(out.contains("created admin client ec_sync_user"), "{out}");
    let out = ok(&ctl(
        &config,
        &[
            "prepare-org",
            "acme",
            "--server",
            &goiardi.url,
            "--superuser",
            "admin",
            "--superuser-key",
            goiardi.admin_key.to_str().unwrap(),
        ],
    ));
    assert!(out.contains("nothing to do"), "{out}");

    let _daemon = syncd(&config);
    ok(&ctl(&config, &["sync-start", "acme"]));
    let primary_view = || {
        pythonchef(
            "snapshot",
            &format!("{}/organizations/acme", primary.url),
            &alice_pem,
            "alice",
        )
    };
    // goiardi is the side chef-syncd writes to here: see `replica_view` below.
    let goiardi_view = || {
        pythonchef_try("snapshot", &goiardi.url, &goiardi.admin_key, "admin")
            .unwrap_or_else(Value::String)
    };
    converge("bootstrap into goiardi", primary_view, goiardi_view);

    alice
        .must(
            "PUT",
            "/roles/web",
            json!({"name": "web", "run_list": ["recipe[nginx]", "role[db]"]}),
            200,
        )
        .await;
    alice.must("DELETE", "/roles/db", json!(null), 200).await;
    alice
        .must("DELETE", "/data/secrets/db", json!(null), 200)
        .await;
    alice
        .must(
            "PUT",
            "/environments/prod",
            json!({"name": "prod", "description": "changed"}),
            200,
        )
        .await;
    alice
        .upload_cookbook(
            "nginx",
            "1.1.0",
            &[("recipes/default.rb", b"package 'nginx'\nservice 'nginx'\n")],
            false,
        )
        .await;
    converge(
        "updates and deletes into goiardi",
        primary_view,
        goiardi_view,
    );
    let rows: Value = serde_json::from_str(&ok(&ctl(&config, &["sync-status", "--json"]))).unwrap();
    assert_eq!(rows[0]["unsynced"], 0, "{rows}");

    // goiardi has no Policyfile endpoints: what `chef push` leaves on the primary is parked,
    // each object with that reason, and the org goes on replicating everything else.
    let files: &[(&str, &[u8])] = &[("recipes/default.rb", b"log 'app'\n")];
    let app = chef_sync_tests::chef::Artifact {
        name: "app",
        identifier: "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
        version: "1.0.0",
        files,
    };
    alice
        .push_policy("prod", "app", &"1".repeat(40), &[app])
        .await;
    alice
        .must("POST", "/roles", json!({"name": "after-policies"}), 201)
        .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    // Parked rows carry their error; entries of a batch in flight are listed without one.
    let parked = loop {
        let listed: Value =
            serde_json::from_str(&ok(&ctl(&config, &["unsynced-objects", "acme", "--json"])))
                .unwrap();
        let parked: Vec<Value> = listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["error"].is_string())
            .cloned()
            .collect();
        let arrived = pythonchef_try("snapshot", &goiardi.url, &goiardi.admin_key, "admin")
            .is_ok_and(|v| v.to_string().contains("after-policies"));
        if parked.len() >= 3 && arrived {
            break parked;
        }
        assert!(Instant::now() < deadline, "{listed}");
        std::thread::sleep(Duration::from_millis(300));
    };
    let paths: Vec<&str> = parked.iter().map(|p| p["path"].as_str().unwrap()).collect();
    for wanted in [
        "/cookbook_artifacts/app/a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
        "/policy_groups/prod/policies/app",
    ] {
        assert!(paths.contains(&wanted), "{parked:?}");
    }
    for p in &parked {
        let error = p["error"].as_str().unwrap();
        assert!(
            error.contains("has no Policyfile endpoints"),
            "{}: {error}",
            p["path"]
        );
    }
    let rows: Value = serde_json::from_str(&ok(&ctl(&config, &["sync-status", "--json"]))).unwrap();
    assert_ne!(rows[0]["status"], "error", "{rows}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goiardi_without_a_feed_replicates_into_our_server_by_reconcile() {
    if !peers::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let goiardi = Goiardi::start(&dir.path().join("goiardi"));
    let replica = ChefSyncServer::start(&dir.path().join("replica"));
    let v = dir.path().join("v.pem");
    replica.admin(&[
        "org-create",
        "acme",
        "Acme",
        "--filename",
        v.to_str().unwrap(),
    ]);
    pythonchef("load", &goiardi.url, &goiardi.admin_key, "admin");

    let config = dir.path().join("chef-sync.toml");
    let sync_key = dir.path().join("sync.pem");
    write_config(
        &config,
        &dir.path().join("syncd"),
        &sync_key,
        &format!(
            "source = \"acme\"\ndestination = \"acme\"\nsource_url = \"{}\"",
            goiardi.url
        ),
        &format!("replica = \"{}\"", replica.url),
    );
    let out = ok(&ctl(
        &config,
        &[
            "prepare-org",
            "acme",
            "--server",
            &goiardi.url,
            "--superuser",
            "admin",
            "--superuser-key",
            goiardi.admin_key.to_str().unwrap(),
        ],
    ));
    assert!(out.contains("created admin client"), "{out}");
    let pivotal = replica.pivotal_key();
    ok(&ctl(
        &config,
        &[
            "prepare-org",
            "acme",
            "--server",
            &replica.url,
            "--superuser-key",
            pivotal.to_str().unwrap(),
            "--replica",
        ],
    ));

    // Policyfiles on the replica: a primary without Policyfile endpoints says nothing about
    // them, so they are left alone rather than deleted.
    let sync_user = chef_sync_tests::chef::Chef::new(
        &format!("{}/organizations/acme", replica.url),
        "ec_sync_user",
        chef_sync_tests::chef::Chef::key_file(&sync_key),
    );
    sync_user
        .push_policy("prod", "local", &"5".repeat(40), &[])
        .await;

    let _daemon = syncd(&config);
    ok(&ctl(&config, &["sync-start", "acme"]));
    let goiardi_view = || pythonchef("snapshot", &goiardi.url, &goiardi.admin_key, "admin");
    // Read while chef-syncd writes: an item listed and deleted before it is read fails one
    // snapshot, which is then only "not converged yet".
    let replica_view = || {
        pythonchef_try(
            "snapshot",
            &format!("{}/organizations/acme", replica.url),
            &pivotal,
            "pivotal",
        )
        .unwrap_or_else(Value::String)
    };
    converge("full copy from goiardi", goiardi_view, replica_view);
    pythonchef("mutate", &goiardi.url, &goiardi.admin_key, "admin");
    converge(
        "later changes and deletions on goiardi",
        goiardi_view,
        replica_view,
    );
    // A pass that finds nothing left to copy reports synced.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows: Value =
            serde_json::from_str(&ok(&ctl(&config, &["sync-status", "--json"]))).unwrap();
        if rows[0]["status"] == "synced" {
            assert_eq!(
                rows[0]["applied_seq"],
                Value::Null,
                "no feed position on a feedless primary"
            );
            assert_eq!(rows[0]["unsynced"], 0, "{rows}");
            break;
        }
        assert!(Instant::now() < deadline, "never synced: {rows}");
        std::thread::sleep(Duration::from_millis(300));
    }
    sync_user.get("/policy_groups/prod/policies/local").await;
}
