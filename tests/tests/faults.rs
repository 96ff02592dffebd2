//! chef-syncd against a scripted primary (which verifies every signature) and a real replica
//! server: transient failures, timeouts, malformed answers, hostile feed paths, ids going
//! backwards, missing or empty feeds, 410, a new primary identity, and failover.

#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chef_sync_shared::PrivateKey;
use chef_sync_tests::chef::Chef;
use chef_sync_tests::mock_primary::{Feed, MockPrimary, push_entry};
use chef_sync_tests::process::{ChefSyncServer, Process, ctl, syncd};
use chef_sync_tests::replica::files_under;
use serde_json::{Value, json};

struct Rig {
    dir: tempfile::TempDir,
    mock: MockPrimary,
    replica: Chef,
    config: PathBuf,
    server: Option<ChefSyncServer>,
    daemon: Option<Process>,
}

/// How the daemon is pointed at the servers.
#[derive(Default)]
struct Options {
    /// Unreachable primaries listed before the mock.
    dead_masters: usize,
    /// Extra `[ec_sync_client]` lines.
    client_lines: &'static str,
    /// Give the org pair as `source_url`/`destination_url` instead of `master`/`replica`.
    org_urls: bool,
}

fn run_ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A replica server, a mock primary and a daemon configured for both; `masters` may put dead
/// URLs before the mock.
async fn rig(script: impl FnOnce(&MockPrimary), dead_masters: usize) -> Rig {
    rig_with(
        script,
        Options {
            dead_masters,
            ..Options::default()
        },
    )
    .await
}

async fn rig_with(script: impl FnOnce(&MockPrimary), options: Options) -> Rig {
    let dead_masters = options.dead_masters;
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("sync.pem");
    let key = PrivateKey::generate(2048).unwrap();
    std::fs::write(&key_path, key.to_pkcs1_pem().unwrap()).unwrap();
    // chef-syncd refuses a key others may read.
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mock = MockPrimary::start(key.public_key()).await;
    script(&mock);
    let server = ChefSyncServer::start(&dir.path().join("replica"));
    let v = dir.path().join("v.pem");
    server.admin(&[
        "org-create",
        "dst",
        "Destination",
        "--filename",
        v.to_str().unwrap(),
    ]);
    let mut masters = Vec::new();
    for _ in 0..dead_masters {
        // A port that was free a moment ago: connections are refused.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        masters.push(format!("\"http://{}\"", l.local_addr().unwrap()));
    }
    masters.push(format!("\"{}\"", mock.url));
    let state = dir.path().join("syncd");
    let config = dir.path().join("chef-sync.toml");
    let (top, pair) = if options.org_urls {
        (
            String::new(),
            format!(
                "source_url = \"{}/organizations/src\"\ndestination_url = \"{}/organizations/dst\"\n",
                mock.url, server.url
            ),
        )
    } else {
        (
            format!(
                "master = [{}]\nreplica = \"{}\"\n",
                masters.join(", "),
                server.url
            ),
            String::new(),
        )
    };
    std::fs::write(
        &config,
        format!(
            r#"role = "replica"
{top}
[[organizations]]
source = "src"
destination = "dst"
{pair}
[ec_sync_client]
dir = "{state}"
log_directory = "{state}/log"
socket_path = "{state}/sock"
sync_key = "{key}"
poll_interval = 1
concurrency = 4
request_timeout = 2
{extra}
"#,
            extra = options.client_lines,
            state = state.display(),
            key = key_path.display(),
        ),
    )
    .unwrap();
    let pivotal = server.pivotal_key();
    run_ok(&ctl(
        &config,
        &[
            "prepare-org",
            "dst",
            "--server",
            &server.url,
            "--superuser-key",
            pivotal.to_str().unwrap(),
            "--replica",
        ],
    ));
    let replica = Chef::new(
        &format!("{}/organizations/dst", server.url),
        "pivotal",
        Chef::key_file(&pivotal),
    );
    run_ok(&ctl(&config, &["sync-start", "dst"]));
    let daemon = Some(syncd(&config));
    Rig {
        dir,
        mock,
        replica,
        config,
        server: Some(server),
        daemon,
    }
}

impl Rig {
    async fn wait_for(&self, what: &str, mut check: impl AsyncFnMut(&Rig) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(45);
        while !check(self).await {
            assert!(
                Instant::now() < deadline,
                "{what} did not happen; status {}; log:\n{}",
                String::from_utf8_lossy(&ctl(&self.config, &["sync-status", "--json"]).stdout),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn replica_has(&self, rel: &str, expected: &Value) -> bool {
        let (code, body) = self.replica.call("GET", rel, None).await;
        code == 200 && &body == expected
    }

    async fn replica_lacks(&self, rel: &str) -> bool {
        self.replica.call("GET", rel, None).await.0 == 404
    }

    fn status(&self) -> Value {
        let out = run_ok(&ctl(&self.config, &["sync-status", "--json"]));
        serde_json::from_str::<Value>(&out).unwrap()[0].clone()
    }

    fn unsynced(&self) -> Vec<Value> {
        let out = run_ok(&ctl(&self.config, &["unsynced-objects", "dst", "--json"]));
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&ctl(&self.config, &["sync-log", "dst", "-n", "500"]).stdout)
            .into_owned()
    }

    fn finish(mut self) {
        assert_eq!(
            self.mock.read(|s| s.bad_signatures),
            0,
            "every request to the primary was signed correctly"
        );
        if let Some(mut d) = self.daemon.take() {
            assert!(d.terminate(Duration::from_secs(30)).success());
        }
    }
}

fn role(name: &str, description: &str) -> Value {
    json!({"name": name, "description": description, "json_class": "Chef::Role", "chef_type": "role",
           "default_attributes": {}, "override_attributes": {}, "run_list": [], "env_run_lists": {}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_and_timeouts_are_retried() {
    let rig = rig(
        |m| {
            m.put("/roles/web", role("web", "v1"));
            m.edit(|s| {
                s.failures
                    .push(("/roles/web".into(), VecDeque::from([500, 502, 503])))
            });
        },
        0,
    )
    .await;
    rig.wait_for("bootstrap through 5xx", async |r| {
        r.replica_has("/roles/web", &role("web", "v1")).await
    })
    .await;
    rig.mock.edit(|s| {
        s.failures
            .push(("/roles/api".into(), VecDeque::from([500, 429])));
        s.delays
            .push(("/roles/slow".into(), Duration::from_secs(4), 2));
    });
    rig.mock.put("/roles/api", role("api", "v1"));
    rig.mock.put("/roles/slow", role("slow", "v1"));
    rig.wait_for("feed through 5xx", async |r| {
        r.replica_has("/roles/api", &role("api", "v1")).await
    })
    .await;
    rig.wait_for("feed through timeouts", async |r| {
        r.replica_has("/roles/slow", &role("slow", "v1")).await
    })
    .await;
    rig.wait_for("caught up", async |r| {
        r.status()["status"] == "synced" && r.unsynced().is_empty()
    })
    .await;
    rig.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_paths_and_malformed_objects_are_parked() {
    let rig = rig(|m| m.put("/roles/base", role("base", "v1")), 0).await;
    rig.wait_for("bootstrap", async |r| {
        r.replica_has("/roles/base", &role("base", "v1")).await
    })
    .await;
    rig.mock.edit(|s| {
        push_entry(s, "update", "/roles/../users/pivotal");
        push_entry(s, "update", "/roles/%2e%2e");
        s.raw.insert("/roles/bad".into(), "{not json".into());
        push_entry(s, "create", "/roles/bad");
        s.raw.insert("/roles/empty".into(), String::new());
        push_entry(s, "create", "/roles/empty");
    });
    rig.mock.put("/roles/good", role("good", "v1"));
    rig.wait_for("good role", async |r| {
        r.replica_has("/roles/good", &role("good", "v1")).await
    })
    .await;
    rig.wait_for("parked", async |r| r.unsynced().len() == 4)
        .await;
    let parked = rig.unsynced();
    let by_path = |p: &str| {
        parked
            .iter()
            .find(|e| e["path"] == p)
            .cloned()
            .unwrap_or_else(|| panic!("{p} not parked: {parked:?}"))
    };
    assert!(
        by_path("/roles/../users/pivotal")["error"]
            .as_str()
            .unwrap()
            .contains("rejected path")
    );
    assert!(
        by_path("/roles/%2e%2e")["error"]
            .as_str()
            .unwrap()
            .contains("rejected path")
    );
    assert!(
        by_path("/roles/bad")["error"]
            .as_str()
            .unwrap()
            .contains("invalid JSON")
    );
    assert!(
        by_path("/roles/empty")["error"]
            .as_str()
            .unwrap()
            .contains("empty body")
    );
    assert!(rig.replica_lacks("/roles/bad").await && rig.replica_lacks("/roles/empty").await);
    assert!(
        rig.mock
            .read(|s| s.seen.iter().all(|p| !p.contains("users"))),
        "a traversal path must never be requested"
    );
    // The checkpoint moved past them all.
    let head = rig.mock.read(|s| match &s.feed {
        Feed::Entries(e) => e.len() as i64,
        _ => 0,
    });
    rig.wait_for("checkpoint at head", async |r| {
        r.status()["applied_seq"] == head
    })
    .await;
    // A parked object recovers when the primary serves it properly again.
    rig.mock.edit(|s| {
        s.raw.remove("/roles/bad");
    });
    rig.mock.put("/roles/bad", role("bad", "fixed"));
    rig.wait_for("fixed role", async |r| {
        r.replica_has("/roles/bad", &role("bad", "fixed")).await
    })
    .await;
    rig.wait_for("released", async |r| {
        r.unsynced().iter().all(|e| e["path"] != "/roles/bad")
    })
    .await;
    rig.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_going_backwards_and_410_lead_to_a_full_reconcile() {
    let rig = rig(
        |m| {
            m.put("/roles/a", role("a", "v1"));
            m.put("/roles/b", role("b", "v1"));
        },
        0,
    )
    .await;
    rig.wait_for("bootstrap", async |r| {
        r.replica_has("/roles/b", &role("b", "v1")).await
    })
    .await;
    rig.wait_for("synced", async |r| r.status()["applied_seq"] == 2)
        .await;
    // Backwards: the primary now claims id 1 again, and has changed silently.
    rig.mock.edit(|s| {
        s.objects.insert("/roles/c".into(), role("c", "silent"));
        s.feed = Feed::Raw(json!([{"action": "create", "id": 1, "path": "/roles/c"}]));
    });
    rig.wait_for("reconcile after backwards ids", async |r| {
        r.replica_has("/roles/c", &role("c", "silent")).await
    })
    .await;
    assert!(rig.log().contains("went backwards"), "{}", rig.log());
    // The primary keeps repeating itself: the daemon pauses instead of reconciling in a loop,
    // and says why in the status.
    rig.wait_for("backing off from an inconsistent feed", async |r| {
        r.status()["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("inconsistent"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let passes = rig.log().matches("full reconcile started").count();
    assert!(
        passes <= 6,
        "{passes} full reconciles in a few seconds:\n{}",
        rig.log()
    );
    // The feed is sane again: following resumes.
    rig.mock.edit(|s| s.feed = Feed::Entries(Vec::new()));
    rig.wait_for("synced again", async |r| r.status()["status"] == "synced")
        .await;
    // 410: entries pruned past our position; a silent delete must still reach the replica.
    rig.mock.edit(|s| {
        s.objects.remove("/roles/a");
        s.feed = Feed::Gone;
    });
    rig.wait_for("reconcile after 410", async |r| {
        r.replica_lacks("/roles/a").await && r.log().contains("pruned")
    })
    .await;
    rig.finish();
}

async fn reconcile_mode(feed: Feed) {
    let rig = rig(
        move |m| {
            m.edit(|s| {
                s.objects.insert("/roles/a".into(), role("a", "v1"));
                s.objects.insert("/data/bag".into(), json!({}));
                s.objects.insert("/data/bag/i1".into(), json!({"id": "i1", "v": 1}));
                s.objects.insert("/environments/prod".into(), json!({"name": "prod", "description": "", "json_class": "Chef::Environment", "chef_type": "environment", "default_attributes": {}, "override_attributes": {}, "cookbook_versions": {}}));
                s.feed = feed;
            });
        },
        0,
    )
    .await;
    rig.wait_for("full copy without a feed", async |r| {
        r.replica_has("/data/bag/i1", &json!({"id": "i1", "v": 1}))
            .await
            && r.replica_has("/roles/a", &role("a", "v1")).await
    })
    .await;
    rig.wait_for("synced in reconcile mode", async |r| {
        r.status()["status"] == "synced"
    })
    .await;
    assert_eq!(rig.status()["applied_seq"], Value::Null);
    // Later changes and deletions on the primary arrive with the next pass.
    rig.mock.edit(|s| {
        s.objects.insert("/roles/a".into(), role("a", "v2"));
        s.objects.remove("/data/bag/i1");
        s.objects.remove("/data/bag");
    });
    rig.wait_for("changes by reconcile", async |r| {
        r.replica_has("/roles/a", &role("a", "v2")).await && r.replica_lacks("/data/bag").await
    })
    .await;
    rig.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_without_a_feed_is_reconciled_404() {
    reconcile_mode(Feed::Missing).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_answering_an_empty_200_is_reconciled() {
    reconcile_mode(Feed::Empty200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_primary_identity_forces_a_full_reconcile() {
    let rig = rig(|m| m.put("/roles/a", role("a", "v1")), 0).await;
    rig.wait_for("bootstrap", async |r| {
        r.replica_has("/roles/a", &role("a", "v1")).await
    })
    .await;
    rig.wait_for("checkpoint", async |r| r.status()["applied_seq"] == 1)
        .await;
    // A different org answers at the same URL now: same ids, different content.
    rig.mock.edit(|s| {
        s.guid = "fedcba9876543210fedcba9876543210".into();
        s.objects.insert("/roles/a".into(), role("a", "other org"));
    });
    rig.wait_for("reconciled", async |r| {
        r.replica_has("/roles/a", &role("a", "other org")).await
    })
    .await;
    assert!(rig.log().contains("identity changed"), "{}", rig.log());
    rig.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_first_primary_fails_over_to_the_next() {
    let rig = rig(|m| m.put("/roles/a", role("a", "v1")), 1).await;
    rig.wait_for("copied from the second primary", async |r| {
        r.replica_has("/roles/a", &role("a", "v1")).await
    })
    .await;
    assert!(rig.log().contains("failing over"), "{}", rig.log());
    rig.mock.put("/roles/b", role("b", "v1"));
    rig.wait_for("following the second primary", async |r| {
        r.replica_has("/roles/b", &role("b", "v1")).await
    })
    .await;
    rig.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_urls_work_without_master_and_replica() {
    let rig = rig_with(
        |m| m.put("/roles/a", role("a", "v1")),
        Options {
            org_urls: true,
            ..Options::default()
        },
    )
    .await;
    rig.wait_for("copied through org URLs", async |r| {
        r.replica_has("/roles/a", &role("a", "v1")).await
    })
    .await;
    rig.mock.put("/roles/b", role("b", "v1"));
    rig.wait_for("followed through org URLs", async |r| {
        r.replica_has("/roles/b", &role("b", "v1")).await
    })
    .await;
    rig.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_reconcile_repairs_silent_drift() {
    let rig = rig_with(
        |m| m.put("/roles/a", role("a", "v1")),
        Options {
            client_lines: "reconcile_interval = 2",
            ..Options::default()
        },
    )
    .await;
    rig.wait_for("bootstrap", async |r| {
        r.replica_has("/roles/a", &role("a", "v1")).await
    })
    .await;
    // A change the feed never announced (lost entry): only anti-entropy can find it.
    rig.mock.edit(|s| {
        s.objects.insert("/roles/a".into(), role("a", "drifted"));
    });
    rig.wait_for("repaired by the periodic reconcile", async |r| {
        r.replica_has("/roles/a", &role("a", "drifted")).await
    })
    .await;
    assert!(
        rig.log().contains("periodic full reconcile done"),
        "{}",
        rig.log()
    );
    rig.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_outage_is_reported_and_recovered_from() {
    let mut rig = rig(|m| m.put("/roles/a", role("a", "v1")), 0).await;
    rig.wait_for("bootstrap", async |r| {
        r.replica_has("/roles/a", &role("a", "v1")).await
    })
    .await;
    let server = rig.server.take().unwrap();
    let listen = server.url.trim_start_matches("http://").to_owned();
    drop(server);
    rig.mock.put("/roles/b", role("b", "v1"));
    rig.wait_for("error status while the replica is down", async |r| {
        let s = r.status();
        s["status"] == "error"
            && s["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("unreachable"))
    })
    .await;
    let applied = rig.status()["applied_seq"].clone();
    assert_eq!(applied, 1, "nothing is checkpointed while writes fail");
    rig.server = Some(ChefSyncServer::start_on(
        &rig.dir.path().join("replica"),
        &listen,
    ));
    rig.wait_for("recovered", async |r| {
        r.replica_has("/roles/b", &role("b", "v1")).await && r.status()["status"] == "synced"
    })
    .await;
    assert_eq!(rig.status()["last_error"], Value::Null);
    rig.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_answers_and_wrong_file_bytes_are_refused_with_bounded_memory() {
    use md5::{Digest, Md5};
    let rig = rig(|m| m.put("/roles/base", role("base", "v1")), 0).await;
    rig.wait_for("bootstrap", async |r| {
        r.replica_has("/roles/base", &role("base", "v1")).await
    })
    .await;
    let pid = rig.daemon.as_ref().unwrap().pid();

    // A feed page of 1,000,000 entries (about 60 MB), whatever position is asked for.
    let page: Vec<String> = (1..=1_000_000)
        .map(|i| {
            format!(
                r#"{{"action":"create","id":{},"path":"/roles/flood{i}"}}"#,
                i + 100
            )
        })
        .collect();
    let page = format!("[{}]", page.join(","));
    let page_bytes = page.len();
    rig.mock.edit(|s| {
        s.raw.insert("/updated_since".into(), page);
    });
    rig.wait_for("the page refused", async |r| {
        let row = r.status();
        row["status"] == "error"
            && row["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("larger than"))
    })
    .await;
    let log = rig.log();
    assert!(log.contains("larger than"), "{log}");
    rig.mock.edit(|s| {
        s.raw.remove("/updated_since");
    });

    // An object of 50 MB, streamed without a length, and a cookbook whose file bytes do not
    // match the manifest's checksum.
    let right = b"package 'nginx'\n";
    let checksum = hex::encode(Md5::digest(right));
    let manifest = json!({
        "name": "bad-1.0.0", "cookbook_name": "bad", "version": "1.0.0",
        "json_class": "Chef::CookbookVersion", "chef_type": "cookbook_version", "frozen?": false,
        "metadata": {"name": "bad", "version": "1.0.0"},
        "recipes": [{"name": "default.rb", "path": "recipes/default.rb", "checksum": checksum,
                     "specificity": "default",
                     "url": format!("{}/organizations/src/files/default.rb", rig.mock.url)}]
    });
    rig.mock.edit(|s| {
        s.streamed.insert("/roles/huge".into(), 50 << 20);
        push_entry(s, "create", "/roles/huge");
        s.objects.insert("/cookbooks/bad/1.0.0".into(), manifest);
        s.raw
            .insert("/files/default.rb".into(), "package 'evil'\n".into());
        push_entry(s, "create", "/cookbooks/bad/1.0.0");
    });
    rig.mock.put("/roles/after", role("after", "v1"));
    rig.wait_for("the good role after them", async |r| {
        r.replica_has("/roles/after", &role("after", "v1")).await
    })
    .await;
    rig.wait_for("both parked", async |r| r.unsynced().len() == 2)
        .await;
    let parked = rig.unsynced();
    let error_of = |p: &str| {
        parked
            .iter()
            .find(|e| e["path"] == p)
            .and_then(|e| e["error"].as_str())
            .unwrap_or_else(|| panic!("{p} not parked: {parked:?}"))
            .to_owned()
    };
    assert!(
        error_of("/roles/huge").contains("larger than 16777216 bytes"),
        "{parked:?}"
    );
    assert!(
        error_of("/cookbooks/bad/1.0.0").contains(&format!("manifest says {checksum}")),
        "{parked:?}"
    );
    assert!(rig.replica_lacks("/roles/huge").await);
    assert!(rig.replica_lacks("/cookbooks/bad").await);
    // The replica holds exactly what could be copied, nothing more.
    let (_, roles) = rig.replica.call("GET", "/roles", None).await;
    let names: Vec<&String> = roles.as_object().unwrap().keys().collect();
    assert_eq!(names, ["after", "base"], "{roles}");
    assert_eq!(
        rig.replica.call("GET", "/cookbooks", None).await.1,
        json!({})
    );
    let wrong = hex::encode(Md5::digest(b"package 'evil'\n"));
    let stored: Vec<String> = files_under(&rig.dir.path().join("replica"))
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        stored
            .iter()
            .all(|f| !f.contains(&checksum) && !f.contains(&wrong)),
        "the wrong bytes never reached the replica's file store: {stored:?}"
    );
    assert!(
        files_under(&rig.dir.path().join("replica/tmp")).is_empty(),
        "no staged upload left behind"
    );
    let peak = chef_sync_tests::bench::proc_stats::peak_rss(pid).unwrap();
    eprintln!(
        "feed page of {page_bytes} bytes and a 50 MB object refused; chef-syncd peak RSS {} MB",
        peak >> 20
    );
    assert!(peak < 64 << 20, "chef-syncd peak RSS {peak} bytes");
    rig.finish();
}
