//! End to end with the real binaries: a primary and a replica chef-sync-server on 127.0.0.1,
//! prepare-org on both, chef-syncd, chef-sync-ctl. Every object type created, updated and
//! deleted on the primary must appear exactly so on the replica.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chef_sync_tests::chef::Chef;
use chef_sync_tests::process::{ChefSyncServer, ctl, syncd};
use serde_json::{Value, json};

struct Setup {
    dir: tempfile::TempDir,
    primary: ChefSyncServer,
    replica: ChefSyncServer,
    config: PathBuf,
    alice: Chef,
    replica_admin: Chef,
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let primary = ChefSyncServer::start(&dir.path().join("primary"));
    let replica = ChefSyncServer::start(&dir.path().join("replica"));
    let admin = primary.org_with_admin("acme", "alice");
    replica.admin(&[
        "org-create",
        "acme",
        "Acme",
        "--filename",
        dir.path().join("replica-validator.pem").to_str().unwrap(),
    ]);
    let config = dir.path().join("chef-sync.toml");
    let state = dir.path().join("syncd");
    std::fs::write(
        &config,
        format!(
            r#"role = "replica"
master = "{primary}"
replica = "{replica}"

[[organizations]]
source = "acme"
destination = "acme"

[ec_sync_client]
dir = "{state}"
log_directory = "{state}/log"
socket_path = "{state}/ec_sync.sock"
sync_key = "{key}"
poll_interval = 1
reconcile_interval = 0
concurrency = 4
"#,
            primary = primary.url,
            replica = replica.url,
            state = state.display(),
            key = dir.path().join("sync.pem").display(),
        ),
    )
    .unwrap();
    for (server, replica_flag) in [(&primary, false), (&replica, true)] {
        let key = server.pivotal_key();
        let mut args = vec![
            "prepare-org",
            "acme",
            "--server",
            &server.url,
            "--superuser-key",
            key.to_str().unwrap(),
        ];
        if replica_flag {
            args.push("--replica");
        }
        let first = ok(&ctl(&config, &args));
        assert!(first.contains("ec_sync_user"), "{first}");
        let again = ok(&ctl(&config, &args));
        assert!(
            again.contains("nothing to do"),
            "prepare-org is idempotent: {again}"
        );
    }
    let alice = admin.chef;
    let replica_admin = Chef::new(
        &format!("{}/organizations/acme", replica.url),
        "pivotal",
        Chef::key_file(&replica.pivotal_key()),
    );
    Setup {
        dir,
        primary,
        replica,
        config,
        alice,
        replica_admin,
    }
}

fn status(config: &Path) -> Vec<Value> {
    let out = ok(&ctl(config, &["sync-status", "--json"]));
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until the replica's snapshot equals the primary's.
async fn converge(setup: &Setup, what: &str) {
    chef_sync_tests::chef::converge(
        &setup.alice,
        &setup.replica_admin,
        what,
        Duration::from_secs(60),
        || format!("status {:?}", status(&setup.config)),
    )
    .await;
}

async fn wait_status(config: &Path, wanted: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = status(config);
        if rows[0]["status"] == wanted {
            return rows[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "status never became {wanted}: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_object_type_replicates_exactly() {
    let setup = setup();
    chef_sync_tests::sample::load(&setup.alice).await;

    // Before sync-start the org is stopped, daemon or not.
    let rows = status(&setup.config);
    assert_eq!(rows[0]["organization"], "acme");
    assert_eq!(rows[0]["status"], "stopped");
    let mut daemon = syncd(&setup.config);
    use std::os::unix::fs::PermissionsExt;
    let socket = setup.dir.path().join("syncd/ec_sync.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the control socket is owner-only");
    let out = ok(&ctl(&setup.config, &["sync-start", "acme"]));
    assert!(out.contains("sync started for acme"), "{out}");
    converge(&setup, "bootstrap").await;
    let row = wait_status(&setup.config, "synced").await;
    assert!(row["applied_seq"].as_i64().unwrap() > 0, "{row}");
    assert_eq!(row["applied_seq"], row["primary_seq"]);
    assert!(row["last_sync"].is_string());

    // Updates and deletes of every type through the feed.
    let alice = &setup.alice;
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
        .must(
            "PUT",
            "/environments/prod",
            json!({"name": "prod", "description": "changed"}),
            200,
        )
        .await;
    alice
        .must(
            "PUT",
            "/data/secrets/api",
            json!({"id": "api", "token": "rotated"}),
            200,
        )
        .await;
    alice
        .must("DELETE", "/data/secrets/db", json!(null), 200)
        .await;
    alice
        .must("POST", "/data", json!({"name": "tmp"}), 201)
        .await;
    alice
        .must("POST", "/data/tmp", json!({"id": "x"}), 201)
        .await;
    alice
        .upload_cookbook(
            "nginx",
            "1.1.0",
            &[
                ("recipes/default.rb", b"package 'nginx'\nservice 'nginx'\n"),
                ("README.md", b"# nginx\n"),
            ],
            false,
        )
        .await;
    alice
        .upload_cookbook(
            "base",
            "0.1.0",
            &[("recipes/default.rb", b"# base\n")],
            false,
        )
        .await;
    converge(&setup, "follow").await;
    alice.must("DELETE", "/data/tmp", json!(null), 200).await;
    alice
        .must("DELETE", "/cookbooks/base/0.1.0", json!(null), 200)
        .await;
    alice
        .must("DELETE", "/environments/prod", json!(null), 200)
        .await;
    converge(&setup, "deletes").await;
    let frozen = setup.replica_admin.get("/cookbooks/nginx/1.0.0").await;
    assert_eq!(frozen["frozen?"], true, "frozen state is preserved");

    // The replica org refuses writes from anyone but the sync user, the superuser included.
    let (code, body) = setup
        .replica_admin
        .call("POST", "/roles", Some(&json!({"name": "rogue"})))
        .await;
    assert_eq!(code, 403, "{body}");
    assert!(body["error"][0].as_str().unwrap().contains("replica"));

    // sync-stop holds changes back; sync-start applies them.
    let out = ok(&ctl(&setup.config, &["sync-stop", "acme"]));
    assert!(out.contains("sync stopped"), "{out}");
    wait_status(&setup.config, "stopped").await;
    alice
        .must("POST", "/roles", json!({"name": "late"}), 201)
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (code, _) = setup.replica_admin.call("GET", "/roles/late", None).await;
    assert_eq!(code, 404, "a stopped org must not sync");
    ok(&ctl(&setup.config, &["sync-start", "acme"]));
    converge(&setup, "after sync-start").await;

    // reconfigure: a valid config is reloaded; an invalid one is refused and the old one stays.
    let out = ok(&ctl(&setup.config, &["reconfigure"]));
    assert!(out.contains("reloaded"), "{out}");
    let good = std::fs::read_to_string(&setup.config).unwrap();
    std::fs::write(
        &setup.config,
        good.replace("concurrency = 4", "concurrency = 0"),
    )
    .unwrap();
    let out = ctl(&setup.config, &["reconfigure"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ec_sync_client.concurrency"));
    std::fs::write(&setup.config, good).unwrap();
    alice
        .must("POST", "/roles", json!({"name": "after-reload"}), 201)
        .await;
    converge(&setup, "after reconfigure").await;

    // unsynced-objects works with and without the daemon; logs exist and are readable.
    let unsynced = ok(&ctl(&setup.config, &["unsynced-objects", "acme", "--json"]));
    assert_eq!(serde_json::from_str::<Value>(&unsynced).unwrap(), json!([]));
    let log = ok(&ctl(&setup.config, &["sync-log", "acme", "-n", "200"]));
    assert!(log.contains("full reconcile done"), "{log}");
    let manager = ok(&ctl(&setup.config, &["manager-log"]));
    assert!(manager.contains("chef-syncd started"), "{manager}");
    let status = daemon.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}: {}", daemon.output());
    assert!(
        !setup.dir.path().join("syncd/ec_sync.sock").exists(),
        "socket removed on exit"
    );
    let rows = status_rows_offline(&setup.config);
    assert_eq!(rows[0]["status"], "synced");
    drop(setup.primary);
    drop(setup.replica);
}

fn status_rows_offline(config: &Path) -> Vec<Value> {
    status(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_during_bootstrap_converges_after_restart() {
    let setup = setup();
    chef_sync_tests::sample::load(&setup.alice).await;
    for i in 0..150 {
        setup
            .alice
            .must(
                "POST",
                "/roles",
                json!({"name": format!("r{i:03}"), "description": "x".repeat(200)}),
                201,
            )
            .await;
    }
    // Object by object, so that the bootstrap lasts long enough to be killed in the middle
    // once the first role is seen; the bulk path is killed mid-bootstrap in crash.rs.
    let mut text = std::fs::read_to_string(&setup.config).unwrap();
    text.push_str("bulk = false\n");
    std::fs::write(&setup.config, text).unwrap();
    ok(&ctl(&setup.config, &["sync-start", "acme"]));
    let mut daemon = syncd(&setup.config);
    // Kill it as soon as the bootstrap has written something.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, roles) = setup.replica_admin.call("GET", "/roles", None).await;
        if roles.as_object().is_some_and(|m| !m.is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bootstrap never started: {}",
            daemon.output()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    daemon.kill();
    let rows = status(&setup.config);
    assert_eq!(
        rows[0]["applied_seq"],
        Value::Null,
        "no checkpoint before the bootstrap finished: {rows:?}"
    );
    setup
        .alice
        .must(
            "PUT",
            "/roles/r000",
            json!({"name": "r000", "description": "changed while down"}),
            200,
        )
        .await;
    let _daemon = syncd(&setup.config);
    converge(&setup, "restart after SIGKILL").await;
    wait_status(&setup.config, "synced").await;
}

/// Requests the primary's log shows as finished for `route` (the router's pattern).
fn requests_to(log: &str, method: &str, route: &str) -> usize {
    log.lines()
        .filter(|l| {
            l.contains("request finished")
                && l.contains(&format!("method={method}"))
                && l.contains(&format!("route={route} "))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_reads_documents_a_search_page_at_a_time() {
    use chef_sync_tests::replica::Replication;
    use futures_util::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let mut primary = ChefSyncServer::start(&dir.path().join("primary"));
    let alice = primary.org_with_admin("boot", "alice").chef;
    chef_sync_tests::sample::load(&alice).await;
    alice
        .must("POST", "/data", json!({"name": "users"}), 201)
        .await;
    let writes = (0..600)
        .map(|i| {
            (
                "/roles",
                json!({"name": format!("r{i:03}"), "description": "x".repeat(i % 50)}),
            )
        })
        .chain((0..300).map(|i| ("/data/users", json!({"id": format!("u{i:03}"), "uid": i}))));
    futures_util::stream::iter(writes)
        .for_each_concurrent(8, |(collection, body)| {
            let alice = alice.clone();
            async move {
                alice.must("POST", collection, body, 201).await;
            }
        })
        .await;

    let r = Replication::start(dir.path(), &primary, 4, "bulk", true).await;
    r.wait_synced(0).await;
    // Read before the comparison below, which GETs every object itself.
    let log = primary.process.output();
    r.converge(&alice, "boot", "bulk reads").await;

    let searches = requests_to(&log, "GET", "/organizations/{org}/search/{index}");
    let role_reads = requests_to(&log, "GET", "/organizations/{org}/roles/{name}");
    let item_reads = requests_to(&log, "GET", "/organizations/{org}/data/{bag}/{item}");
    eprintln!("primary answered {searches} searches, {role_reads} role and {item_reads} item GETs");
    // 602 roles in pages of 250, 2 environments, 2 bags: a handful of pages, no object reads.
    assert!((6..=12).contains(&searches), "{searches} searches");
    assert_eq!(role_reads, 0, "roles came from search pages");
    assert_eq!(item_reads, 0, "data bag items came from search pages");
}
