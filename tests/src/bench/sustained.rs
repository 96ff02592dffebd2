//! Sustained load followed live (issue #21): 8 writers create roles and data bag items on the
//! primary at a fixed total rate; chef-syncd follows; each write's lag is its commit (the
//! primary's answer) to its arrival in the replica's own feed. The target rate runs for the
//! full time, then shorter steps at higher rates find the highest rate the replica keeps up
//! with (p99 ≤ 500 ms, nothing missing).
//!
//! Every request is signed before its step starts (RSA would otherwise take more CPU than the
//! servers), and a writer that falls behind its schedule sends at once, so the offered rate is
//! the rate asked for whenever the primary can take it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::lag::{Lags, feed_head};
use super::load::{self, Prepared};
use super::report::Report;
use crate::chef::Chef;
use crate::process::ChefSyncServer;
use crate::replica::{Replication, Tuning};

/// Writers on the primary.
pub const WRITERS: usize = 8;
/// The target: writes per second followed with p50 ≤ 100 ms and p99 ≤ 500 ms.
pub const TARGET_RATE: usize = 1000;
/// Rates tried after the target, each for a quarter of its time.
const STEPS: [usize; 3] = [1500, 2000, 3000];

/// What one step measured.
struct Step {
    offered: f64,
    lags: Lags,
}

/// The target rate for `seconds`, then the steps above it, with `bulk` on or off.
pub async fn run(report: &mut Report, dir: &Path, seconds: u64, bulk: bool) {
    let tag = if bulk { "sustained" } else { "sustained-off" };
    let primary = ChefSyncServer::start(&dir.join(format!("{tag}-primary")));
    let admin = primary.org_with_admin("boot", "boot");
    let chef = admin.chef.clone();
    chef.must("POST", "/data", json!({"name": "load"}), 201)
        .await;
    let tuning = Tuning {
        concurrency: 8,
        bulk,
        ..Tuning::default()
    };
    let r = Replication::start_orgs(dir, &[&primary], &["boot".into()], tuning, tag, None).await;
    r.wait_synced(1).await;
    let replica = r.replica_admin("boot");
    let mode = if bulk { "bulk" } else { "bulk = false" };
    let mut kept_up = None;
    for (i, rate) in std::iter::once(TARGET_RATE).chain(STEPS).enumerate() {
        let secs = if i == 0 {
            seconds
        } else {
            (seconds / 4).max(5)
        };
        let step = one(&chef, &admin.key, &replica, rate, secs, i).await;
        let Lags {
            count,
            p50,
            p99,
            missing,
        } = step.lags;
        println!(
            "sustained {rate} writes/s ({mode}) for {secs} s: offered {:.0}/s, {count} writes, lag p50 {p50:.1} ms, p99 {p99:.1} ms, {missing} not seen",
            step.offered
        );
        let kept = missing == 0 && p99 <= 500.0;
        // The writers wait for each answer, so a primary slower than the rate asked offers
        // less: asking for more then measures nothing new.
        let offered_all = step.offered >= 0.95 * rate as f64;
        if i == 0 {
            report.add(
                "lag",
                &format!(
                    "sustained: {rate} writes/s (roles and data bag items, {WRITERS} writers) for {secs} s, {mode}, commit on the primary → in the replica's feed"
                ),
                json!({"writes": count, "offered_per_s": step.offered, "p50_ms": p50, "p99_ms": p99, "not_arrived": missing}),
                Some((
                    "1,000 writes/s offered, lag p50 ≤ 100 ms, p99 ≤ 500 ms, none missing",
                    offered_all && p50 <= 100.0 && kept,
                )),
            );
        }
        if !kept {
            break;
        }
        kept_up = Some(kept_up.unwrap_or(0.0_f64).max(step.offered));
        if !offered_all {
            break;
        }
    }
    report.add(
        "lag",
        &format!("sustained, {mode}: highest rate the primary took that the replica kept up with (p99 ≤ 500 ms, none missing)"),
        json!({"writes_per_s": kept_up}),
        None,
    );
}

/// One rate for `secs`: names are unique to the step (`step`), so every write is a create.
async fn one(chef: &Chef, key: &Path, replica: &Chef, rate: usize, secs: u64, step: usize) -> Step {
    let writes = rate * secs as usize;
    let per_writer = writes / WRITERS;
    let key = Chef::key_file(key);
    let base = chef.org_url.clone();
    let user = chef.user.clone();
    // Signed on both cores before the step; a role, then an item, alternately.
    let signers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (key, base, user) = (key.clone(), base.clone(), user.clone());
            tokio::task::spawn_blocking(move || {
                (0..per_writer)
                    .map(|i| {
                        let name = format!("s{step}w{w}n{i:06}");
                        let (url, body, path) = if i % 2 == 0 {
                            (
                                format!("{base}/roles"),
                                json!({"name": name, "description": "sustained"}),
                                format!("/roles/{name}"),
                            )
                        } else {
                            (
                                format!("{base}/data/load"),
                                json!({"id": name, "n": i}),
                                format!("/data/load/{name}"),
                            )
                        };
                        let body = body.to_string().into_bytes();
                        (path, load::prepare(&key, &user, "POST", &url, &body))
                    })
                    .collect::<Vec<(String, Prepared)>>()
            })
        })
        .collect();
    let mut lists = Vec::new();
    for s in signers {
        lists.push(s.await.expect("signing"));
    }
    let start_seq = feed_head(replica).await;
    let committed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let started = Instant::now();
    let reader = follow(replica.clone(), start_seq, arrived.clone(), writes);
    let interval = Duration::from_secs_f64(WRITERS as f64 / rate as f64);
    let writers: Vec<_> = lists
        .into_iter()
        .map(|list| {
            let committed = committed.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut next = Instant::now();
                for (path, r) in list {
                    let mut req = client.request(r.method.clone(), &r.url).body(r.body);
                    for (k, v) in &r.headers {
                        req = req.header(k, v);
                    }
                    if let Ok(resp) = req.send().await
                        && resp.status().as_u16() == 201
                        && let Ok(mut c) = committed.lock()
                    {
                        c.insert(path, Instant::now());
                    }
                    next += interval;
                    tokio::time::sleep_until(next.into()).await;
                }
            })
        })
        .collect();
    for w in writers {
        let _ = w.await;
    }
    let offered = writes as f64 / started.elapsed().as_secs_f64();
    let mut reader = reader;
    if tokio::time::timeout(Duration::from_secs(30), &mut reader)
        .await
        .is_err()
    {
        // What has not arrived by now counts as missing; the reader must not outlive the
        // replica it reads.
        reader.abort();
    }
    Step {
        offered,
        lags: Lags::of(&committed, &arrived),
    }
}

/// Follows the replica's feed from `seq` until `expected` entries arrived (or the caller
/// stops waiting), noting when each path first appears.
fn follow(
    replica: Chef,
    mut seq: i64,
    arrived: Arc<Mutex<HashMap<String, Instant>>>,
    expected: usize,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = 0;
        while seen < expected {
            let Ok((code, page)) = replica
                .try_call("GET", &format!("/updated_since?seq={seq}&wait=2"), None)
                .await
            else {
                return;
            };
            let now = Instant::now();
            if code != 200 {
                continue;
            }
            for e in page.as_array().cloned().unwrap_or_default() {
                seq = e["id"].as_i64().unwrap_or(seq);
                if let (Some(path), Ok(mut a)) = (e["path"].as_str(), arrived.lock())
                    && !a.contains_key(path)
                {
                    a.insert(path.to_owned(), now);
                    seen += 1;
                }
            }
        }
    })
}
