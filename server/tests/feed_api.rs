//! The change feed under load and after pruning, on SQLite and PostgreSQL: concurrent writers
//! never let a reader see ids out of order or with holes, and pruned positions answer 410.

#![allow(clippy::unwrap_used)]

#[path = "support/harness.rs"]
mod harness;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::StatusCode;
use chef_sync_server::store::WriteMode;
use chef_sync_shared::ObjectPath;
use harness::*;
use serde_json::{Value, json};

on_both_backends!(
    concurrent_writers_are_seen_in_order,
    pruned_positions_are_gone
);

const WRITERS: usize = 8;
const WRITES_PER_WRITER: usize = 300;

/// 8 writers each create and update their own roles while a reader follows the feed over
/// HTTP the whole time: every id must arrive exactly once, in order, with no holes.
async fn concurrent_writers_are_seen_in_order(h: &Harness) {
    let (alice_key, _) = org_with_users(h).await;
    let org = h.store.org("acme").await.unwrap().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = h.store.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..WRITES_PER_WRITER {
                // Half creates, half updates of the writer's own roles.
                let name = format!("w{w}-r{}", i / 2);
                let path = ObjectPath::role(&name).unwrap();
                let body = json!({"name": name, "description": i}).to_string();
                let mode = if i % 2 == 0 {
                    WriteMode::Create
                } else {
                    WriteMode::Update
                };
                store
                    .write_object(org.id, &path, &body, mode)
                    .await
                    .unwrap();
            }
        }));
    }
    let total = (WRITERS * WRITES_PER_WRITER) as i64;
    let reader = {
        let done = done.clone();
        async move {
            let mut seen = BTreeSet::new();
            let mut last = 0i64;
            let mut polls = 0;
            while last < total {
                let (status, page) = h
                    .call(
                        "alice",
                        &alice_key,
                        "GET",
                        &format!("/organizations/acme/updated_since?seq={last}&limit=500"),
                        None,
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{page}");
                polls += 1;
                for entry in page.as_array().unwrap() {
                    let id = entry["id"].as_i64().unwrap();
                    assert_eq!(id, last + 1, "feed skipped or repeated an id");
                    assert!(seen.insert(id));
                    last = id;
                }
                assert!(
                    polls < 100_000 || done.load(Ordering::SeqCst),
                    "reader made no progress"
                );
            }
            (seen.len(), polls)
        }
    };
    let writers_done = async {
        for w in writers {
            w.await.unwrap();
        }
        done.store(true, Ordering::SeqCst);
    };
    let ((seen, polls), ()) = tokio::join!(reader, writers_done);
    assert_eq!(seen as i64, total);
    assert!(polls > 1, "the reader should have polled while writers ran");
    assert_eq!(h.store.last_seq(org.id).await.unwrap(), total);
}

async fn page(h: &Harness, seq: i64) -> (StatusCode, Value) {
    h.as_pivotal(
        "GET",
        &format!("/organizations/acme/updated_since?seq={seq}"),
        None,
    )
    .await
}

async fn pruned_positions_are_gone(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice);
    alice
        .post("/organizations/acme/roles", json!({"name": "a"}))
        .await; // 1
    alice
        .put("/organizations/acme/roles/a", json!({"description": "x"}))
        .await; // 2
    alice
        .post("/organizations/acme/roles", json!({"name": "b"}))
        .await; // 3
    alice.delete("/organizations/acme/roles/b").await; // 4
    alice
        .post("/organizations/acme/roles", json!({"name": "c"}))
        .await; // 5
    let org = h.store.org("acme").await.unwrap().unwrap();
    // Nothing is old enough yet: nothing goes.
    let week_ago = chrono::Utc::now() - chrono::Duration::days(7);
    assert_eq!(
        h.store
            .prune_log(org.id, week_ago.timestamp_millis())
            .await
            .unwrap(),
        (0, 0)
    );
    let future = chrono::Utc::now() + chrono::Duration::seconds(5);
    let (removed, through) = h
        .store
        .prune_log(org.id, future.timestamp_millis())
        .await
        .unwrap();
    // 1 (superseded), 3 and 4 (b no longer exists) go; 2 and 5 are the latest of live paths.
    assert_eq!((removed, through), (3, 4));
    for behind in [0, 3] {
        let (status, body) = page(h, behind).await;
        assert_eq!(status, StatusCode::GONE, "seq={behind}");
        assert!(body["error"][0].as_str().unwrap().contains("reconcile"));
    }
    let (status, body) = page(h, 4).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!([{"action": "create", "id": 5, "path": "/roles/c"}])
    );
    let (_, body) = page(h, 5).await;
    assert_eq!(body, json!([]));
    // New writes continue the sequence.
    alice
        .post("/organizations/acme/roles", json!({"name": "d"}))
        .await;
    let (_, body) = page(h, 5).await;
    assert_eq!(body[0]["id"], 6);
}
