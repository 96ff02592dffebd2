//! Bulk replication between chef-sync servers with the real binaries (issue #21): the
//! bootstrap and the feed write into the replica through its bulk write, feed pages bring
//! their documents (no GET per object on the primary while following), and `bulk = false`
//! keeps the per-object path. Each side's request counts come from its `/metrics`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chef_sync_tests::chef::Chef;
use chef_sync_tests::process::ChefSyncServer;
use chef_sync_tests::replica::{Replication, Tuning};
use serde_json::json;

/// Requests the server at `url` answered on `route` with `method`, whatever their status.
async fn requests(url: &str, route: &str, method: &str) -> u64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix =
        format!("chef_sync_server_http_requests_total{{route=\"{route}\",method=\"{method}\",");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

const ROLE: &str = "/organizations/{org}/roles/{name}";
const ITEM: &str = "/organizations/{org}/data/{bag}/{item}";
const BULK: &str = "/organizations/{org}/_bulk_write";

/// Roles and data bag items enough for several bulk batches and search pages.
async fn load(alice: &Chef, roles: usize, items: usize) {
    use futures_util::StreamExt;
    chef_sync_tests::sample::load(alice).await;
    alice
        .must("POST", "/data", json!({"name": "many"}), 201)
        .await;
    let writes = (0..roles)
        .map(|i| {
            (
                "/roles".to_owned(),
                json!({"name": format!("r{i:04}"), "description": format!("role {i}")}),
            )
        })
        .chain((0..items).map(|i| {
            (
                "/data/many".to_owned(),
                json!({"id": format!("i{i:04}"), "n": i}),
            )
        }));
    futures_util::stream::iter(writes)
        .for_each_concurrent(8, |(rel, body)| {
            let alice = alice.clone();
            async move {
                alice.must("POST", &rel, body, 201).await;
            }
        })
        .await;
}

/// The primary's newest feed id.
async fn head(alice: &Chef) -> i64 {
    let mut after = 0;
    loop {
        let page = alice
            .get(&format!("/updated_since?seq={after}&limit=10000"))
            .await;
        match page.as_array().and_then(|p| p.last()) {
            Some(last) => after = last["id"].as_i64().unwrap(),
            None => return after,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chef_sync_servers_replicate_through_the_bulk_paths() {
    let dir = tempfile::tempdir().unwrap();
    let primary = ChefSyncServer::start(&dir.path().join("primary"));
    let alice = primary.org_with_admin("acme", "alice").chef;
    load(&alice, 600, 400).await;
    let r = Replication::start_orgs(
        dir.path(),
        &[&primary],
        &["acme".into()],
        Tuning::default(),
        "bulk",
        None,
    )
    .await;
    r.converge(&alice, "acme", "after the bootstrap").await;
    let replica = &r.replica.url;
    let batches = requests(replica, BULK, "POST").await;
    assert!(
        batches >= 2,
        "the bootstrap wrote in bulk ({batches} requests)"
    );
    for (route, method) in [
        (ROLE, "PUT"),
        ("/organizations/{org}/roles", "POST"),
        (ITEM, "PUT"),
        ("/organizations/{org}/data/{bag}", "POST"),
    ] {
        assert_eq!(
            requests(replica, route, method).await,
            0,
            "no per-object {method} {route} on the replica"
        );
    }

    // Following: the feed's pages bring the documents, so the primary is not asked for them.
    let role_gets = requests(&primary.url, ROLE, "GET").await;
    let item_gets = requests(&primary.url, ITEM, "GET").await;
    for i in 0..200 {
        alice
            .must(
                "PUT",
                &format!("/roles/r{i:04}"),
                json!({"name": format!("r{i:04}"), "description": "changed"}),
                200,
            )
            .await;
    }
    for i in 0..100 {
        alice
            .must(
                "POST",
                "/data/many",
                json!({"id": format!("new{i}"), "n": i}),
                201,
            )
            .await;
    }
    for i in 300..320 {
        let (status, _) = alice.call("DELETE", &format!("/roles/r{i:04}"), None).await;
        assert_eq!(status, 200);
    }
    let head = head(&alice).await;
    tokio::time::timeout(Duration::from_secs(120), r.wait_synced(head))
        .await
        .expect("synced at the primary's head");
    assert_eq!(requests(&primary.url, ROLE, "GET").await, role_gets);
    assert_eq!(requests(&primary.url, ITEM, "GET").await, item_gets);
    assert!(requests(replica, BULK, "POST").await > batches);
    assert_eq!(requests(replica, ROLE, "PUT").await, 0);
    r.converge(&alice, "acme", "after following").await;
    // The replica's own feed logged each object once, as the per-object writes would have.
    let replica_admin = r.replica_admin("acme");
    let feed = replica_admin.get("/updated_since?seq=0&limit=10000").await;
    let deletes = feed
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "delete")
        .count();
    assert_eq!(deletes, 20, "one delete entry per role deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_off_writes_object_by_object() {
    let dir = tempfile::tempdir().unwrap();
    let primary = ChefSyncServer::start(&dir.path().join("primary"));
    let alice = primary.org_with_admin("acme", "alice").chef;
    load(&alice, 40, 40).await;
    let tuning = Tuning {
        bulk: false,
        ..Tuning::default()
    };
    let r = Replication::start_orgs(
        dir.path(),
        &[&primary],
        &["acme".into()],
        tuning,
        "off",
        None,
    )
    .await;
    r.converge(&alice, "acme", "after the bootstrap").await;
    let role_gets = requests(&primary.url, ROLE, "GET").await;
    alice
        .must(
            "PUT",
            "/roles/r0001",
            json!({"name": "r0001", "description": "x"}),
            200,
        )
        .await;
    let head = head(&alice).await;
    tokio::time::timeout(Duration::from_secs(120), r.wait_synced(head))
        .await
        .expect("synced at the primary's head");
    // The changed role was read with its own GET and written with its own PUT.
    assert_eq!(requests(&primary.url, ROLE, "GET").await, role_gets + 1);
    let replica = &r.replica.url;
    assert_eq!(requests(replica, BULK, "POST").await, 0);
    assert!(requests(replica, "/organizations/{org}/roles", "POST").await >= 40);
    assert!(requests(replica, ROLE, "PUT").await >= 1);
    r.converge(&alice, "acme", "after following").await;
}
