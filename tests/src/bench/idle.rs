//! Idle cost: chef-syncd following 50 caught-up orgs by long-poll, nothing changing.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::proc_stats;
use super::report::Report;
use crate::chef::Chef;
use crate::process::ChefSyncServer;
use crate::replica::{Replication, Tuning};

/// Org pairs the daemon follows.
const ORGS: usize = 50;

/// Sets up `ORGS` orgs with a role each, waits until all are synced, then reads the daemon's
/// CPU time and memory over `seconds` of quiet.
pub async fn run(report: &mut Report, dir: &Path, seconds: u64) {
    let primary = ChefSyncServer::start(&dir.join("idle-primary"));
    let orgs: Vec<String> = (0..ORGS).map(|i| format!("org{i:02}")).collect();
    let superuser = Chef::new(
        &primary.url,
        "pivotal",
        Chef::key_file(&primary.pivotal_key()),
    );
    for org in &orgs {
        let base = format!("{}/organizations", primary.url);
        superuser
            .must("POST", &base, json!({"name": org, "full_name": org}), 201)
            .await;
        superuser
            .must(
                "POST",
                &format!("{base}/{org}/roles"),
                json!({"name": "web"}),
                201,
            )
            .await;
    }
    let tuning = Tuning {
        concurrency: 8,
        long_poll: true,
        ..Tuning::default()
    };
    let r = Replication::start_orgs(dir, &[&primary], &orgs, tuning, "idle", None).await;
    r.wait_synced(1).await;
    // Let start-up work (first reconcile bookkeeping, connection set-up) settle first.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pid = r.daemon.pid();
    let before = proc_stats::cpu_time(pid).unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let used = proc_stats::cpu_time(pid)
        .unwrap_or_default()
        .saturating_sub(before);
    let core_share = used.as_secs_f64() / seconds as f64;
    let rss = proc_stats::rss(pid).unwrap_or(0);
    let peak = proc_stats::peak_rss(pid).unwrap_or(0);
    println!(
        "idle: chef-syncd with {ORGS} caught-up orgs used {:.2} % of a core over {seconds} s, RSS {:.1} MB (peak {:.1} MB)",
        core_share * 100.0,
        rss as f64 / 1e6,
        peak as f64 / 1e6
    );
    report.add(
        "idle",
        &format!("chef-syncd following {ORGS} caught-up orgs by long-poll, {seconds} s of quiet"),
        json!({"core_percent": core_share * 100.0, "rss_mb": rss as f64 / 1e6, "peak_rss_mb": peak as f64 / 1e6}),
        Some(("< 1 % of a core, ≤ 30 MB", core_share < 0.01 && rss <= 30_000_000)),
    );
}
