//! Crash consistency (issue #7, item 1): chef-syncd killed with SIGKILL at random moments during
//! a bootstrap and during heavy follow traffic (on the bulk paths between chef-sync servers,
//! issue #21, and object by object with `bulk = false`), and the server killed during
//! concurrent writes on SQLite and on PostgreSQL. Each scenario ends with an exact comparison.
//!
//! The moments come from a seeded generator: `CHEF_SYNC_FAULT_SEED=N` replays a run (the seed
//! is printed). `CHEF_SYNC_FAULTS=full` multiplies the kills and the data; CI runs the bounded
//! form (30 daemon kills in bulk, 16 object by object, 3 server kills per backend).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chef_sync_tests::chef::{Artifact, Chef};
use chef_sync_tests::postgres::TempDatabase;
use chef_sync_tests::process::ChefSyncServer;
use chef_sync_tests::replica::{Replication, Tuning};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

fn full() -> bool {
    std::env::var("CHEF_SYNC_FAULTS").is_ok_and(|v| v == "full")
}

fn seeded(what: &str) -> StdRng {
    let seed = std::env::var("CHEF_SYNC_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_122);
    eprintln!("{what}: CHEF_SYNC_FAULT_SEED={seed}");
    StdRng::seed_from_u64(seed)
}

/// `PRAGMA integrity_check` of a SQLite file nobody has open.
async fn integrity(db: &Path) -> String {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    rows.join("; ")
}

/// `chef push GROUP` of revision `k` of `policy`, locking one of 20 artifacts (the same
/// identifier always with the same content, so later pushes share earlier uploads).
async fn push(chef: &Chef, group: &str, policy: &str, k: u32) {
    let id = format!("{:040x}", k % 20);
    let recipe = format!("log 'artifact {}'\n", k % 20);
    let files = [("recipes/default.rb", recipe.as_bytes())];
    let artifact = Artifact {
        name: "pcb",
        identifier: &id,
        version: "1.0.0",
        files: &files,
    };
    chef.push_policy(group, policy, &format!("{k:040x}"), &[artifact])
        .await;
}

/// Random writes on the primary until `stop`: roles and items created, changed and deleted,
/// now and then a new cookbook version, and Policyfiles pushed, unassigned and deleted.
async fn churn(chef: Chef, stop: Arc<AtomicBool>, mut rng: StdRng) {
    let mut k = 0u32;
    while !stop.load(Ordering::Relaxed) {
        k += 1;
        let n = rng.gen_range(0..40);
        let (policy, group) = (format!("pol{}", n % 5), format!("g{}", n % 3));
        match rng.gen_range(0..13) {
            10 => push(&chef, &group, &policy, 1000 + k).await,
            11 => {
                chef.call("DELETE", &format!("/policies/{policy}"), None)
                    .await;
            }
            12 => {
                let rel = format!("/policy_groups/{group}/policies/{policy}");
                chef.call("DELETE", &rel, None).await;
            }
            0..=3 => {
                let body = json!({"name": format!("churn{n}"), "default_attributes": {"k": k}});
                let (code, _) = chef
                    .call("PUT", &format!("/roles/churn{n}"), Some(&body))
                    .await;
                if code == 404 {
                    chef.call("POST", "/roles", Some(&body)).await;
                }
            }
            4 => {
                chef.call("DELETE", &format!("/roles/churn{n}"), None).await;
            }
            5..=7 => {
                let body = json!({"id": format!("i{n}"), "k": k});
                let (code, _) = chef
                    .call("PUT", &format!("/data/churn/i{n}"), Some(&body))
                    .await;
                if code == 404 {
                    chef.call("POST", "/data/churn", Some(&body)).await;
                }
            }
            8 => {
                chef.call("DELETE", &format!("/data/churn/i{n}"), None)
                    .await;
            }
            _ => {
                let content = format!("version {k}\n").repeat(rng.gen_range(1..200));
                chef.upload_cookbook(
                    "churn",
                    &format!("1.0.{k}"),
                    &[("recipes/default.rb", content.as_bytes())],
                    false,
                )
                .await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncd_killed_at_random_moments_converges_to_an_exact_copy() {
    // Between chef-sync servers: the bulk paths (feed pages with documents, bulk writes).
    syncd_killed_at_random_moments(true, if full() { 120 } else { 30 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncd_killed_at_random_moments_converges_object_by_object() {
    // `bulk = false`: one request per object, as into goiardi or Chef Infra Server.
    syncd_killed_at_random_moments(false, if full() { 60 } else { 16 }).await;
}

async fn syncd_killed_at_random_moments(bulk: bool, kills: usize) {
    let mut rng = seeded(if bulk {
        "syncd kills"
    } else {
        "syncd kills, per object"
    });
    let dir = tempfile::tempdir().unwrap();
    let primary = ChefSyncServer::start(&dir.path().join("primary"));
    let alice = primary.org_with_admin("acme", "alice").chef;
    chef_sync_tests::sample::load(&alice).await;
    alice
        .must("POST", "/data", json!({"name": "churn"}), 201)
        .await;
    for k in 0..30u32 {
        push(&alice, &format!("g{}", k % 3), &format!("pol{}", k % 5), k).await;
    }
    let roles = if full() { 3_000 } else { 800 };
    let bodies: Vec<Value> = (0..roles)
        .map(|i| json!({"name": format!("r{i:04}"), "description": "x".repeat(i % 300)}))
        .collect();
    {
        use futures_util::StreamExt;
        futures_util::stream::iter(bodies)
            .for_each_concurrent(8, |b| {
                let alice = alice.clone();
                async move {
                    alice.must("POST", "/roles", b, 201).await;
                }
            })
            .await;
    }
    let tuning = Tuning {
        concurrency: 8,
        long_poll: true,
        bulk,
        ..Tuning::default()
    };
    let mut r =
        Replication::start_orgs(dir.path(), &[&primary], &["acme".into()], tuning, "k", None).await;
    let replica_url = r.replica.url.clone();

    let stop = Arc::new(AtomicBool::new(false));
    let mut writer = None;
    let mut during_bootstrap = 0;
    let mut during_follow = 0;
    for i in 0..kills {
        // The second half runs under heavy follow traffic, once the bootstrap has finished.
        if i == kills / 2 {
            wait_checkpoint(&r).await;
            let seed = rng.r#gen();
            writer = Some(tokio::spawn(churn(
                alice.clone(),
                stop.clone(),
                StdRng::seed_from_u64(seed),
            )));
        }
        // Shorter pauses while bootstrapping, so the first half lands inside the bootstrap on
        // a fast, idle machine too (a resumed bootstrap is not redone, so it finishes after a
        // few seconds of cumulative running time whatever the pauses).
        let pause = if i < kills / 2 { 30..250 } else { 30..600 };
        tokio::time::sleep(Duration::from_millis(rng.gen_range(pause))).await;
        r.daemon.kill();
        let row = r.status()[0].clone();
        recorded_whole(&row, i);
        if row["applied_seq"].is_null() {
            during_bootstrap += 1;
        } else {
            during_follow += 1;
        }
        assert_eq!(
            integrity(&r.state_db()).await,
            "ok",
            "state database after kill {i}"
        );
        r.restart_daemon();
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(w) = writer {
        w.await.unwrap();
    }
    eprintln!(
        "{kills} kills: {during_bootstrap} during the bootstrap, {during_follow} while following"
    );
    assert_eq!(
        during_bootstrap,
        kills / 2,
        "the first half lands in the bootstrap"
    );
    assert_eq!(during_follow, kills - kills / 2);
    r.converge(&alice, "acme", "after the last restart").await;
    let status = r.status();
    assert_eq!(status[0]["unsynced"], 0, "{status}");
    let metrics = reqwest::get(format!("{replica_url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metrics.contains("route=\"/organizations/{org}/_bulk_write\""),
        bulk,
        "the replica was written {}",
        if bulk { "in bulk" } else { "object by object" }
    );
    r.daemon.terminate(Duration::from_secs(30));
    assert_eq!(integrity(&r.state_db()).await, "ok");
}

/// A cycle's record is whole whenever the daemon dies: a checkpoint is only ever stored with
/// the primary's head it was taken from and the status the cycle ended in, never beside the
/// status of a bootstrap still under way (as separate writes could leave it).
fn recorded_whole(row: &Value, kill: usize) {
    let Some(applied) = row["applied_seq"].as_i64() else {
        return;
    };
    assert_ne!(row["status"], "bootstrapping", "after kill {kill}: {row}");
    let head = row["primary_seq"].as_i64();
    assert!(
        head.is_some_and(|h| h >= applied),
        "after kill {kill}: checkpoint {applied} beyond the head recorded: {row}"
    );
    assert!(row["last_sync"].is_string(), "after kill {kill}: {row}");
}

/// Waits (without kills) until the daemon has checkpointed its first feed position.
async fn wait_checkpoint(r: &Replication) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = r.status();
        if !status[0]["applied_seq"].is_null() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "bootstrap never finished: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the writers were told was stored.
#[derive(Default)]
struct Acked {
    created: BTreeSet<String>,
    /// Writer → the last counter value acknowledged.
    counters: BTreeMap<usize, u64>,
}

/// Writer `w`: creates roles `w{w}-{i}` and every fifth time bumps its counter role, until
/// the server stops answering.
async fn write_until_killed(chef: Chef, w: usize, round: usize, acked: Arc<Mutex<Acked>>) {
    for i in 0u64.. {
        let name = format!("w{w}-{round}-{i}");
        let body = json!({"name": name, "default_attributes": {"i": i}});
        match chef.try_call("POST", "/roles", Some(&body)).await {
            Ok((201, _)) => {
                acked
                    .lock()
                    .unwrap()
                    .created
                    .insert(format!("/roles/{name}"));
            }
            Ok((code, reply)) => panic!("POST {name}: {code} {reply}"),
            Err(_) => return,
        }
        if i % 5 == 0 {
            // Rounds count on from each other, so an acknowledged value is never written again.
            let n = round as u64 * 1_000_000 + i;
            let counter = json!({"name": format!("counter{w}"), "default_attributes": {"n": n}});
            match chef
                .try_call("PUT", &format!("/roles/counter{w}"), Some(&counter))
                .await
            {
                Ok((200, _)) => {
                    acked.lock().unwrap().counters.insert(w, n);
                }
                Ok((code, reply)) => panic!("PUT counter{w}: {code} {reply}"),
                Err(_) => return,
            }
        }
    }
}

/// Every feed entry of the org, in order.
async fn whole_feed(chef: &Chef) -> Vec<Value> {
    let mut all = Vec::new();
    let mut seq = 0;
    loop {
        let page = chef
            .get(&format!("/updated_since?seq={seq}&limit=10000"))
            .await;
        let entries = page.as_array().cloned().unwrap_or_default();
        if entries.is_empty() {
            return all;
        }
        seq = entries.last().unwrap()["id"].as_i64().unwrap();
        all.extend(entries);
    }
}

async fn server_killed_during_writes(database: Option<&str>, backend: &str) {
    let mut rng = seeded(&format!("server kills ({backend})"));
    let rounds = if full() { 10 } else { 3 };
    let writers = 4;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let mut server = ChefSyncServer::start_with(&data, "127.0.0.1:0", database);
    let org = server.org_with_admin("acme", "alice");
    for w in 0..writers {
        org.chef
            .must(
                "POST",
                "/roles",
                json!({"name": format!("counter{w}"), "default_attributes": {"n": 0}}),
                201,
            )
            .await;
    }
    let listen = server.url.trim_start_matches("http://").to_owned();
    let acked = Arc::new(Mutex::new(Acked::default()));
    for round in 0..rounds {
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                tokio::spawn(write_until_killed(
                    org.chef.clone(),
                    w,
                    round,
                    acked.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..1500))).await;
        server.process.kill();
        for t in tasks {
            t.await.unwrap();
        }
        server = ChefSyncServer::start_with(&data, &listen, database);

        let (created, counters) = {
            let a = acked.lock().unwrap();
            (a.created.clone(), a.counters.clone())
        };
        let listing = org.chef.get("/roles").await;
        let stored: BTreeSet<String> = listing
            .as_object()
            .unwrap()
            .keys()
            .map(|n| format!("/roles/{n}"))
            .collect();
        for path in &created {
            assert!(
                stored.contains(path),
                "round {round}: acknowledged {path} lost"
            );
        }
        for (w, n) in &counters {
            let role = org.chef.get(&format!("/roles/counter{w}")).await;
            let now = role["default_attributes"]["n"].as_u64().unwrap();
            // A write in flight at the kill may have landed after the acknowledged one.
            assert!(
                now >= *n,
                "round {round}: counter{w} is {now}, acknowledged {n}"
            );
        }
        let feed = whole_feed(&org.chef).await;
        let ids: Vec<i64> = feed.iter().map(|e| e["id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|p| p[0] < p[1]), "feed ids in order");
        let mut last_action: BTreeMap<String, String> = BTreeMap::new();
        for e in &feed {
            last_action.insert(
                e["path"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
            );
        }
        let logged: BTreeSet<String> = last_action
            .iter()
            .filter(|(p, a)| p.starts_with("/roles/") && a.as_str() != "delete")
            .map(|(p, _)| p.clone())
            .collect();
        assert_eq!(
            stored, logged,
            "round {round}: every stored role has its feed entry and every entry its role"
        );
    }
    let (created, counters) = {
        let a = acked.lock().unwrap();
        (a.created.len(), a.counters.len())
    };
    eprintln!(
        "{backend}: {rounds} kills; {created} acknowledged creates and {counters} counters present, every role with its feed entry"
    );
    if database.is_none() {
        drop(server);
        assert_eq!(integrity(&data.join("chef-sync.db")).await, "ok");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_during_writes_keeps_every_acknowledged_write_sqlite() {
    server_killed_during_writes(None, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_during_writes_keeps_every_acknowledged_write_postgres() {
    let Some(db) = TempDatabase::create("crash").await else {
        return;
    };
    server_killed_during_writes(Some(&db.url), "postgres").await;
}
