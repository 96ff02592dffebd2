//! Policyfiles: the bootstrap of a Policyfile org (50 policies × 10 revisions locking 300
//! shared cookbook artifacts, each policy's newest revisions assigned to three groups), and
//! the replication lag of a policy group change, the step a `chef push` ends with.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::bootstrap::concurrent;
use super::lag::{self, Lags};
use super::proc_stats;
use super::report::Report;
use crate::chef::Chef;
use crate::process::ChefSyncServer;
use crate::replica::{Replication, Tuning};

const GROUPS: [&str; 3] = ["dev", "staging", "prod"];
/// Artifacts each revision locks.
const LOCKS: usize = 8;

/// The sizes of the Policyfile org.
#[derive(Debug, Clone, Copy)]
struct Shape {
    policies: usize,
    revisions: usize,
    artifacts: usize,
}

impl Shape {
    fn scaled(scale: f64) -> Shape {
        let n = |full: usize| ((full as f64 * scale).round() as usize).max(1);
        Shape {
            policies: n(50),
            revisions: 10,
            artifacts: n(300).max(LOCKS),
        }
    }

    /// Objects a replica receives: artifacts, revisions, assignments.
    fn objects(&self) -> usize {
        self.artifacts + self.policies * self.revisions + self.policies * GROUPS.len()
    }
}

fn identifier(kind: char, n: usize) -> String {
    format!("{kind}{n:039x}")
}

fn recipe(n: usize) -> Vec<u8> {
    format!("# artifact {n}\n").repeat(40).into_bytes()
}

fn artifact_manifest(n: usize, checksum: &str) -> Value {
    let name = format!("cb{}", n % 60);
    json!({
        "name": name, "identifier": identifier('a', n), "version": format!("1.0.{n}"),
        "chef_type": "cookbook_version", "frozen?": false,
        "metadata": {"name": name, "version": format!("1.0.{n}"),
                     "providing": {format!("{name}::default"): ">= 0.0.0"}},
        "recipes": [{"name": "default.rb", "path": "recipes/default.rb",
                     "checksum": checksum, "specificity": "default"}],
    })
}

/// Revision `r` of policy `p`: locks `LOCKS` artifacts of the pool, overlapping other
/// policies' locks.
fn revision(shape: Shape, p: usize, r: usize) -> Value {
    let mut locks = serde_json::Map::new();
    for i in 0..LOCKS {
        let n = (p * 7 + r * 3 + i * 37) % shape.artifacts;
        let name = format!("cb{}", n % 60);
        locks.insert(
            name,
            json!({"identifier": identifier('a', n), "version": format!("1.0.{n}"),
                   "dotted_decimal_identifier": "1.0.0", "source_options": {"path": "."}}),
        );
    }
    let run_list: Vec<String> = locks
        .keys()
        .map(|cb| format!("recipe[{cb}::default]"))
        .collect();
    json!({
        "revision_id": identifier('r', p * 1000 + r), "name": format!("policy{p:02}"),
        "run_list": run_list, "named_run_lists": {}, "cookbook_locks": locks,
        "default_attributes": {"revision": r}, "override_attributes": {},
        "solution_dependencies": {"Policyfile": [], "dependencies": {}},
    })
}

/// Writes the Policyfile org into `chef`, 8 requests at a time.
async fn load_org(chef: &Chef, shape: Shape) {
    let recipes: Vec<Vec<u8>> = (0..shape.artifacts).map(recipe).collect();
    let files: Vec<&[u8]> = recipes.iter().map(Vec::as_slice).collect();
    chef.upload_files(&files).await;
    let md5 = |b: &[u8]| {
        use md5::Digest;
        hex::encode(md5::Md5::digest(b))
    };
    let writes = (0..shape.artifacts).map(|n| {
        (
            "PUT",
            format!("/cookbook_artifacts/cb{}/{}", n % 60, identifier('a', n)),
            artifact_manifest(n, &md5(&recipes[n])),
        )
    });
    run_writes(chef, writes.collect()).await;
    let revisions = (0..shape.policies).flat_map(|p| {
        (0..shape.revisions).map(move |r| {
            (
                "POST",
                format!("/policies/policy{p:02}/revisions"),
                revision(shape, p, r),
            )
        })
    });
    run_writes(chef, revisions.collect()).await;
    let assignments = (0..shape.policies).flat_map(|p| {
        GROUPS.iter().enumerate().map(move |(g, group)| {
            let r = shape.revisions - 1 - g.min(shape.revisions - 1);
            (
                "PUT",
                format!("/policy_groups/{group}/policies/policy{p:02}"),
                revision(shape, p, r),
            )
        })
    });
    run_writes(chef, assignments.collect()).await;
}

async fn run_writes(chef: &Chef, writes: Vec<(&'static str, String, Value)>) {
    futures_util::stream::iter(writes)
        .for_each_concurrent(8, |(method, rel, body)| async move {
            let (status, reply) = chef.call(method, &rel, Some(&body)).await;
            assert!(
                status == 200 || status == 201,
                "{method} {rel}: {status} {reply}"
            );
        })
        .await;
}

/// Both benchmarks.
pub async fn run(report: &mut Report, dir: &Path, seconds: u64, scale: f64) {
    bootstrap(report, dir, scale).await;
    lag(report, dir, seconds).await;
}

async fn bootstrap(report: &mut Report, dir: &Path, scale: f64) {
    let shape = Shape::scaled(scale);
    let primary = ChefSyncServer::start(&dir.join("pf-boot-primary"));
    let chef = primary.org_with_admin("boot", "boot").chef;
    load_org(&chef, shape).await;
    let r = Replication::start_orgs(
        dir,
        &[&primary],
        &["boot".to_owned()],
        concurrent(),
        "pf-boot",
        None,
    )
    .await;
    r.wait_synced(1).await;
    let seconds = r.started.elapsed().as_secs_f64();
    let syncd_rss = proc_stats::peak_rss(r.daemon.pid()).unwrap_or(0);
    // Checked, not timed: the copy is exact.
    r.converge(&chef, "boot", "Policyfile bootstrap").await;
    let objects = shape.objects() as f64;
    println!(
        "Policyfile bootstrap: {objects} objects in {seconds:.1} s, {:.0} objects/s, chef-syncd peak RSS {} MB",
        objects / seconds,
        syncd_rss / 1_000_000
    );
    report.add(
        "policyfiles",
        &format!(
            "bootstrap of {} policies × {} revisions locking {} shared artifacts ({} in each revision), newest revisions in 3 groups: {objects} objects, concurrency 8, SQLite → SQLite",
            shape.policies, shape.revisions, shape.artifacts, LOCKS
        ),
        json!({"seconds": seconds, "objects_per_s": objects / seconds, "chef_syncd_peak_mb": syncd_rss as f64 / 1e6}),
        Some(("chef-syncd ≤ 64 MB", syncd_rss <= 64_000_000)),
    );
}

/// The replica's feed read until `until`: when each policy's assignment entry arrived, keyed
/// by the revision the replica's feed created just before it for that policy.
fn follow_replica(
    replica: Chef,
    start_seq: i64,
    until: Instant,
    arrived: Arc<Mutex<HashMap<String, Instant>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seq = start_seq;
        let mut newest: HashMap<String, String> = HashMap::new();
        while Instant::now() < until {
            let (code, page) = replica
                .call("GET", &format!("/updated_since?seq={seq}&wait=2"), None)
                .await;
            let now = Instant::now();
            if code != 200 {
                continue;
            }
            for e in page.as_array().cloned().unwrap_or_default() {
                seq = e["id"].as_i64().unwrap_or(seq);
                let path = e["path"].as_str().unwrap_or_default();
                let parts: Vec<&str> = path.split('/').collect();
                match parts.as_slice() {
                    ["", "policies", policy, "revisions", rev] => {
                        newest.insert((*policy).to_owned(), (*rev).to_owned());
                    }
                    ["", "policy_groups", _, "policies", policy] => {
                        if let (Some(rev), Ok(mut a)) = (newest.get(*policy), arrived.lock()) {
                            a.entry(rev.clone()).or_insert(now);
                        }
                    }
                    _ => {}
                }
            }
        }
    })
}

/// 10 policy group changes per second for `seconds`, each a new revision of one of 20
/// policies assigned to `prod` in one PUT: its commit on the primary → the assignment in the
/// replica's feed.
async fn lag(report: &mut Report, dir: &Path, seconds: u64) {
    let shape = Shape {
        policies: 20,
        revisions: 1,
        artifacts: LOCKS,
    };
    let primary = ChefSyncServer::start(&dir.join("pf-lag-primary"));
    let chef = primary.org_with_admin("boot", "boot").chef;
    load_org(&chef, shape).await;
    let tuning = Tuning {
        concurrency: 8,
        long_poll: true,
        ..Tuning::default()
    };
    let r = Replication::start_orgs(
        dir,
        &[&primary],
        &["boot".to_owned()],
        tuning,
        "pf-lag",
        None,
    )
    .await;
    r.wait_synced(1).await;
    let replica = r.replica_admin("boot");
    let start_seq = lag::feed_head(&replica).await;
    let committed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let reader = follow_replica(
        replica,
        start_seq,
        deadline + Duration::from_secs(5),
        arrived.clone(),
    );
    let mut k = 0usize;
    let mut next = Instant::now();
    while Instant::now() < deadline {
        let p = k % shape.policies;
        let mut doc = revision(shape, p, 0);
        let rev = identifier('c', k);
        doc["revision_id"] = json!(rev);
        chef.must(
            "PUT",
            &format!("/policy_groups/prod/policies/policy{p:02}"),
            doc,
            200,
        )
        .await;
        if let Ok(mut c) = committed.lock() {
            c.insert(rev, Instant::now());
        }
        k += 1;
        next += Duration::from_millis(100);
        tokio::time::sleep_until(next.into()).await;
    }
    let _ = reader.await;
    let Lags {
        count,
        p50,
        p99,
        missing,
    } = Lags::of(&committed, &arrived);
    println!(
        "policy group change lag: {} changes, p50 {p50:.1} ms, p99 {p99:.1} ms, {missing} not seen",
        count
    );
    report.add(
        "policyfiles",
        &format!(
            "policy group changes (a new revision assigned to prod in one PUT, as `chef push` ends), 10/s for {seconds} s, long-poll: commit on the primary → assignment in the replica's feed"
        ),
        json!({"changes": count, "p50_ms": p50, "p99_ms": p99, "not_arrived": missing}),
        Some(("p99 ≤ 250 ms", p99 <= 250.0 && missing == 0)),
    );
}
