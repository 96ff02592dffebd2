//! Server throughput: signed GET and PUT of a role from the keep-alive generator, ours on
//! SQLite and PostgreSQL against goiardi, with server CPU per request.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chef_sync_shared::PrivateKey;
use serde_json::json;

use super::load::{self, CONNECTIONS, Prepared};
use super::proc_stats;
use super::report::Report;
use crate::chef::Chef;
use crate::peers::Goiardi;
use crate::postgres::TempDatabase;
use crate::process::ChefSyncServer;

/// Roles the read/write load cycles over.
const ROLES: usize = 16;

fn role_body(i: usize, variant: &str) -> Vec<u8> {
    json!({"name": format!("role{i:02}"), "description": format!("bench {variant}"),
           "json_class": "Chef::Role", "chef_type": "role", "run_list": ["recipe[base]"],
           "default_attributes": {"tier": i}, "override_attributes": {}, "env_run_lists": {}})
    .to_string()
    .into_bytes()
}

/// GET and PUT requests for every connection, signed in advance. PUT bodies alternate
/// between two versions so every PUT is a real change.
fn prepared(
    key: &PrivateKey,
    user: &str,
    org_url: &str,
) -> (Vec<Vec<Prepared>>, Vec<Vec<Prepared>>) {
    let mut gets = Vec::new();
    let mut puts = Vec::new();
    for c in 0..CONNECTIONS {
        let mut g = Vec::new();
        let mut p = Vec::new();
        for i in 0..ROLES {
            let url = format!("{org_url}/roles/role{i:02}");
            g.push(load::prepare(key, user, "GET", &url, b""));
            for variant in ["a", "b"] {
                p.push(load::prepare(
                    key,
                    user,
                    "PUT",
                    &url,
                    &role_body(i, &format!("{variant}{c}")),
                ));
            }
        }
        gets.push(g);
        puts.push(p);
    }
    (gets, puts)
}

/// Measures one server: GET then PUT, with its CPU per request.
async fn read_write(
    report: &mut Report,
    subject: &str,
    pid: u32,
    key: &PrivateKey,
    user: &str,
    org_url: &str,
    seconds: u64,
) -> (f64, f64) {
    let (gets, puts) = prepared(key, user, org_url);
    let mut rps = (0.0, 0.0);
    // CHEF_SYNC_BENCH_PIN=1 gives the server core 0 and the generator core 1, so that each
    // server's figure is its own ceiling on one core rather than its share of two.
    let _pinned = std::env::var_os("CHEF_SYNC_BENCH_PIN").map(|_| Pinned::new(pid));
    for (what, requests) in [("GET role", gets), ("PUT role", puts)] {
        let before = proc_stats::cpu_time(pid).unwrap_or_default();
        // CHEF_SYNC_BENCH_PERF=DIR records a CPU profile of the server during each run.
        let profiler = std::env::var_os("CHEF_SYNC_BENCH_PERF").map(|dir| {
            let file = PathBuf::from(dir).join(format!(
                "{}-{}.perf",
                subject.replace('/', "-"),
                what.replace(' ', "-")
            ));
            std::process::Command::new("perf")
                .args([
                    "record",
                    "-F",
                    "499",
                    "-e",
                    "cpu-clock",
                    "-g",
                    "-p",
                    &pid.to_string(),
                    "-o",
                ])
                .arg(file)
                .args(["--", "sleep", &seconds.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
        });
        let result = load::run(requests, Duration::from_secs(seconds)).await;
        if let Some(Ok(mut p)) = profiler {
            let _ = p.wait();
        }
        let cpu = proc_stats::cpu_time(pid)
            .unwrap_or_default()
            .saturating_sub(before);
        let cpu_us = cpu.as_secs_f64() * 1e6 / result.requests.max(1) as f64;
        println!(
            "{subject} {what}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {cpu_us:.0} µs server CPU/request, {} errors",
            result.rps, result.p50_ms, result.p99_ms, result.errors
        );
        report.add(
            "server throughput",
            &format!("{subject} {what}"),
            json!({"rps": result.rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms,
                   "server_cpu_us_per_request": cpu_us, "requests": result.requests, "errors": result.errors}),
            None,
        );
        if what == "GET role" {
            rps.0 = result.rps;
        } else {
            rps.1 = result.rps;
        }
    }
    rps
}

/// The server on core 0 and this process (the generator) on core 1, every thread of each,
/// until dropped.
struct Pinned {
    server: u32,
}

impl Pinned {
    fn new(server: u32) -> Pinned {
        pin(server, "0");
        pin(std::process::id(), "1");
        Pinned { server }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        pin(self.server, "0-1");
        pin(std::process::id(), "0-1");
    }
}

fn pin(pid: u32, cpus: &str) {
    let done = std::process::Command::new("taskset")
        .args(["--all-tasks", "--pid", "--cpu-list", cpus, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status();
    if !done.is_ok_and(|s| s.success()) {
        eprintln!("CHEF_SYNC_BENCH_PIN: taskset could not pin {pid} to {cpus}");
    }
}

/// Creates the bench org and its roles on a fresh server of ours and measures it.
async fn ours(
    report: &mut Report,
    dir: &Path,
    seconds: u64,
    backend: &str,
    database: Option<&str>,
) -> (f64, f64) {
    let server = ChefSyncServer::start_with(
        &dir.join(format!("ours-{backend}")),
        "127.0.0.1:0",
        database,
    );
    let org = server.org_with_admin("bench", "bench");
    let key = Chef::key_file(&org.key);
    for i in 0..ROLES {
        org.chef
            .must(
                "POST",
                "/roles",
                serde_json::from_slice(&role_body(i, "init")).unwrap_or_default(),
                201,
            )
            .await;
    }
    read_write(
        report,
        &format!("ours/{backend}"),
        server.process.pid(),
        &key,
        "bench",
        &org.org_url,
        seconds,
    )
    .await
}

/// Ours on SQLite and on PostgreSQL, then goiardi with the same generator and key size.
pub async fn run(report: &mut Report, dir: &Path, seconds: u64) {
    let ours_sqlite = ours(report, dir, seconds, "sqlite", None).await;
    if let Some(db) = TempDatabase::create("bench_read").await {
        ours(report, dir, seconds, "postgres", Some(&db.url)).await;
    }

    if !crate::peers::available() {
        return;
    }
    // goiardi: a 2048-bit admin client registered with a key of ours.
    let key = PrivateKey::generate(2048).expect("key");
    let goiardi = Goiardi::start(&dir.join("goiardi"));
    let admin = Chef::new(&goiardi.url, "admin", Chef::key_file(&goiardi.admin_key));
    admin
        .must("POST", "/clients", json!({"name": "bench", "admin": true, "public_key": key.public_key().to_pem().unwrap_or_default()}), 201)
        .await;
    let chef = Chef::new(&goiardi.url, "bench", key.clone());
    for i in 0..ROLES {
        chef.must(
            "POST",
            "/roles",
            serde_json::from_slice(&role_body(i, "init")).unwrap_or_default(),
            201,
        )
        .await;
    }
    let theirs = read_write(
        report,
        "goiardi",
        goiardi.process.pid(),
        &key,
        "bench",
        &goiardi.url,
        seconds,
    )
    .await;
    let ratio = ours_sqlite.0 / theirs.0.max(1.0);
    report.add(
        "server throughput",
        "GET role: ours/sqlite vs goiardi",
        json!({"ratio": ratio}),
        Some(("≥ 3× goiardi's requests/s", ratio >= 3.0)),
    );
    report.add(
        "server throughput",
        "PUT role: ours/sqlite vs goiardi",
        json!({"ratio": ours_sqlite.1 / theirs.1.max(1.0)}),
        None,
    );
}
