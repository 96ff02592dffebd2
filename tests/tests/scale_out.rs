//! Several server processes over one PostgreSQL database (issue #7, items 3 and 4): one
//! ordered feed whatever process takes the writes, and chef-syncd failing over from a killed
//! primary to the next one without a full copy.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chef_sync_tests::chef::Chef;
use chef_sync_tests::postgres::TempDatabase;
use chef_sync_tests::process::ChefSyncServer;
use chef_sync_tests::replica::{Replication, Tuning};
use serde_json::{Value, json};

/// Processes started over `url`, sharing one data directory (keys, files), as an operator runs
/// them behind a load balancer.
fn processes(dir: &std::path::Path, url: &str, n: usize) -> Vec<ChefSyncServer> {
    (0..n)
        .map(|_| ChefSyncServer::start_with(dir, "127.0.0.1:0", Some(url)))
        .collect()
}

fn client(server: &ChefSyncServer, user: &str, key: &std::path::Path) -> Chef {
    Chef::new(
        &format!("{}/organizations/acme", server.url),
        user,
        Chef::key_file(key),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_and_six_writers_give_one_ordered_feed() {
    let Some(db) = TempDatabase::create("scale_feed").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let servers = processes(dir.path(), &db.url, 3);
    let admin = servers[0].org_with_admin("acme", "alice");
    let clients: Vec<Chef> = servers
        .iter()
        .map(|s| client(s, "alice", &admin.key))
        .collect();

    // A follower on the second process, long-polling throughout.
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (chef, seen, done) = (clients[1].clone(), seen.clone(), done.clone());
        tokio::spawn(async move {
            let mut seq = 0;
            while !done.load(Ordering::Relaxed) {
                let page = chef.get(&format!("/updated_since?seq={seq}&wait=1")).await;
                for e in page.as_array().cloned().unwrap_or_default() {
                    seq = e["id"].as_i64().unwrap();
                    seen.lock().unwrap().push(e);
                }
            }
        })
    };
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let chef = clients[w % 3].clone();
            tokio::spawn(async move {
                let mut paths = Vec::new();
                for i in 0..40 {
                    let name = format!("w{w}-{i:02}");
                    chef.must("POST", "/roles", json!({ "name": name }), 201)
                        .await;
                    paths.push(format!("/roles/{name}"));
                }
                paths
            })
        })
        .collect();
    let mut written = BTreeSet::new();
    for w in writers {
        written.extend(w.await.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().len() < written.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done.store(true, Ordering::Relaxed);
    reader.await.unwrap();

    let seen = seen.lock().unwrap();
    let ids: Vec<i64> = seen.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|p| p[0] < p[1]),
        "ids strictly ascending, none twice: {ids:?}"
    );
    let paths: Vec<String> = seen
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(paths.len(), written.len(), "every write seen exactly once");
    assert_eq!(paths.into_iter().collect::<BTreeSet<_>>(), written);
    eprintln!(
        "{} writes over three processes, each seen once and in id order by the reader",
        written.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_fails_over_to_the_second_without_a_full_copy() {
    let Some(db) = TempDatabase::create("failover").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut servers = processes(&dir.path().join("primary"), &db.url, 2);
    let admin = servers[0].org_with_admin("acme", "alice");
    let first = client(&servers[0], "alice", &admin.key);
    let second = client(&servers[1], "alice", &admin.key);
    chef_sync_tests::sample::load(&first).await;
    for i in 0..100 {
        first
            .must("POST", "/roles", json!({"name": format!("r{i:03}")}), 201)
            .await;
    }
    let tuning = Tuning::default();
    let r = Replication::start_orgs(
        dir.path(),
        &[&servers[0], &servers[1]],
        &["acme".into()],
        tuning,
        "fo",
        None,
    )
    .await;
    r.wait_synced(1).await;

    // Writes keep coming through the second process; the first dies in the middle of them.
    for i in 0..60 {
        second
            .must(
                "POST",
                "/roles",
                json!({"name": format!("late{i:02}")}),
                201,
            )
            .await;
        if i == 20 {
            servers[0].process.kill();
        }
    }
    second
        .must(
            "PUT",
            "/roles/r000",
            json!({"name": "r000", "description": "after the failover"}),
            200,
        )
        .await;
    r.converge(&second, "acme", "after failing over").await;
    let log = r.log("acme");
    assert!(log.contains("failing over to"), "{log}");
    assert_eq!(
        log.matches("full reconcile started").count(),
        1,
        "only the first bootstrap copied in full:\n{log}"
    );
    drop(servers);
}
