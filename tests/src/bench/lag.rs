//! Replication lag under a steady writer, long-poll and plain polling.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::load;
use super::report::Report;
use crate::chef::Chef;
use crate::process::ChefSyncServer;
use crate::replica::Replication;

/// The newest id in `chef`'s org feed (0 for an empty feed): where a reader starts.
pub async fn feed_head(chef: &Chef) -> i64 {
    let (_, head) = chef
        .call("GET", "/updated_since?seq=0&limit=10000", None)
        .await;
    head.as_array()
        .and_then(|a| a.last())
        .and_then(|e| e["id"].as_i64())
        .unwrap_or(0)
}

/// Commit-to-arrival lags of writes keyed alike in `committed` and `arrived`, in ms.
#[derive(Debug, Clone, Copy)]
pub struct Lags {
    /// Writes committed.
    pub count: usize,
    /// Median lag.
    pub p50: f64,
    /// 99th percentile lag.
    pub p99: f64,
    /// Writes that never arrived.
    pub missing: usize,
}

impl Lags {
    /// From the commit and arrival times recorded by a writer and a reader.
    pub fn of(
        committed: &Mutex<HashMap<String, Instant>>,
        arrived: &Mutex<HashMap<String, Instant>>,
    ) -> Lags {
        let committed = committed.lock().map(|c| c.clone()).unwrap_or_default();
        let arrived = arrived.lock().map(|a| a.clone()).unwrap_or_default();
        let mut lags: Vec<u64> = committed
            .iter()
            .filter_map(|(key, c)| {
                arrived
                    .get(key)
                    .map(|a| a.saturating_duration_since(*c).as_micros() as u64)
            })
            .collect();
        lags.sort_unstable();
        Lags {
            count: committed.len(),
            p50: load::percentile(&lags, 50.0),
            p99: load::percentile(&lags, 99.0),
            missing: committed.len() - lags.len(),
        }
    }
}

/// Replication lag under a steady writer: 20 role writes per second on the primary for
/// `seconds`; each write's commit (the primary's answer) to its arrival in the replica's own
/// change feed, which a long-polling reader follows.
pub async fn run(report: &mut Report, dir: &Path, seconds: u64, long_poll: bool) {
    let tag = if long_poll { "lag-lp" } else { "lag-poll" };
    let primary = ChefSyncServer::start(&dir.join(format!("{tag}-primary")));
    let chef = primary.org_with_admin("boot", "boot").chef;
    chef.must("POST", "/roles", json!({"name": "warmup"}), 201)
        .await;
    let r = Replication::start(dir, &primary, 8, tag, long_poll).await;
    r.wait_synced(1).await;
    let replica_admin = Chef::new(
        &format!("{}/organizations/boot", r.replica.url),
        "pivotal",
        Chef::key_file(&r.replica.pivotal_key()),
    );
    let start_seq = feed_head(&replica_admin).await;
    let committed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let reader = {
        let arrived = arrived.clone();
        let replica_admin = replica_admin.clone();
        tokio::spawn(async move {
            let mut seq = start_seq;
            while Instant::now() < deadline + Duration::from_secs(5) {
                let (code, page) = replica_admin
                    .call("GET", &format!("/updated_since?seq={seq}&wait=2"), None)
                    .await;
                let now = Instant::now();
                if code != 200 {
                    continue;
                }
                for e in page.as_array().cloned().unwrap_or_default() {
                    seq = e["id"].as_i64().unwrap_or(seq);
                    if let (Some(path), Ok(mut a)) = (e["path"].as_str(), arrived.lock()) {
                        a.entry(path.to_owned()).or_insert(now);
                    }
                }
            }
        })
    };
    let mut k = 0u64;
    let interval = Duration::from_millis(50);
    let mut next = Instant::now();
    while Instant::now() < deadline {
        let name = format!("lag{k:05}");
        chef.must("POST", "/roles", json!({"name": name}), 201)
            .await;
        if let Ok(mut c) = committed.lock() {
            c.insert(format!("/roles/{name}"), Instant::now());
        }
        k += 1;
        next += interval;
        tokio::time::sleep_until(next.into()).await;
    }
    let _ = reader.await;
    let Lags {
        count,
        p50,
        p99,
        missing,
    } = Lags::of(&committed, &arrived);
    let mode = if long_poll {
        "long-poll"
    } else {
        "plain polling every 1 s"
    };
    println!(
        "lag with {mode}: {} writes, p50 {p50:.1} ms, p99 {p99:.1} ms, {missing} not seen",
        count
    );
    let (target, met) = if long_poll {
        ("p50 ≤ 50 ms, p99 ≤ 250 ms", p50 <= 50.0 && p99 <= 250.0)
    } else {
        ("p99 ≤ 1.2 s", p99 <= 1200.0)
    };
    report.add(
        "lag",
        &format!(
            "20 writes/s for {seconds} s, {mode}, commit on the primary → in the replica's feed"
        ),
        json!({"writes": count, "p50_ms": p50, "p99_ms": p99, "not_arrived": missing}),
        Some((target, met && missing == 0)),
    );
}
