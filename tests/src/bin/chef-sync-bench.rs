//! `chef-sync-bench`: starts everything itself on 127.0.0.1, generates its data
//! deterministically, measures, and writes `bench.json` and `bench.md` (see
//! docs/BENCHMARKS.md for the command and the latest figures).
//!
//!   chef-sync-bench [--out DIR] [--seconds N] [--only read,feed,...]

use std::path::PathBuf;
use std::time::Duration;

use chef_sync_shared::PrivateKey;
use chef_sync_tests::bench::load::{self, Prepared};
use chef_sync_tests::bench::proc_stats;
use chef_sync_tests::bench::report::Report;
use chef_sync_tests::chef::Chef;
use chef_sync_tests::peers::Goiardi;
use chef_sync_tests::process::ChefSyncServer;
use serde_json::json;

/// Roles the read/write load cycles over.
const ROLES: usize = 16;
/// Keep-alive connections of the load generator.
const CONNECTIONS: usize = 8;

struct Options {
    out: PathBuf,
    seconds: u64,
    only: Option<Vec<String>>,
    /// Fraction of the bootstrap data set (1.0 = 10,000 roles, …).
    scale: f64,
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        out: PathBuf::from("target/bench"),
        seconds: 10,
        only: None,
        scale: 1.0,
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => o.out = args.next().map(PathBuf::from).unwrap_or(o.out),
            "--seconds" => {
                o.seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(o.seconds)
            }
            "--only" => {
                o.only = args
                    .next()
                    .map(|s| s.split(',').map(str::to_owned).collect())
            }
            "--scale" => o.scale = args.next().and_then(|s| s.parse().ok()).unwrap_or(o.scale),
            other => {
                eprintln!("chef-sync-bench: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    o
}

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

async fn bench_read(report: &mut Report, dir: &std::path::Path, seconds: u64) {
    let key = PrivateKey::generate(2048).expect("key");
    let key_pem = dir.join("bench.pem");
    std::fs::write(&key_pem, key.to_pkcs1_pem().expect("pem")).expect("write key");

    // Ours, SQLite.
    let server = ChefSyncServer::start(&dir.join("ours-sqlite"));
    let org = server.org_with_admin("bench", "bench");
    let org_url = org.org_url.clone();
    let ours_key = Chef::key_file(&org.key);
    let chef = org.chef;
    for i in 0..ROLES {
        chef.must(
            "POST",
            "/roles",
            serde_json::from_slice(&role_body(i, "init")).unwrap_or_default(),
            201,
        )
        .await;
    }
    let ours = read_write(
        report,
        "ours/sqlite",
        server.process.pid(),
        &ours_key,
        "bench",
        &org_url,
        seconds,
    )
    .await;
    drop(server);

    // goiardi, same generator and key size (a 2048-bit admin client registered with our key).
    if !chef_sync_tests::peers::available() {
        return;
    }
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
    let ratio = ours.0 / theirs.0.max(1.0);
    report.add(
        "server throughput",
        "GET role: ours/sqlite vs goiardi",
        json!({"ratio": ratio}),
        Some(("≥ 3× goiardi's requests/s", ratio >= 3.0)),
    );
    report.add(
        "server throughput",
        "PUT role: ours/sqlite vs goiardi",
        json!({"ratio": ours.1 / theirs.1.max(1.0)}),
        None,
    );
}

/// Entries in the feed benchmark's change log.
const FEED_ENTRIES: i64 = 1_000_000;

/// Writes `FEED_ENTRIES` change-log entries straight into a stopped server's SQLite database
/// (the API would take minutes to make that many), in one transaction.
async fn fill_log(db: &std::path::Path, org: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open the server database");
    let org_id: i64 = sqlx::query_scalar("SELECT id FROM orgs WHERE name = ?1")
        .bind(org)
        .fetch_one(&mut conn)
        .await
        .expect("org");
    let mut tx = conn.begin().await.expect("begin");
    let now = chrono::Utc::now().timestamp_millis();
    let batch = 500;
    for start in (1..=FEED_ENTRIES).step_by(batch) {
        let end = (start + batch as i64 - 1).min(FEED_ENTRIES);
        let values: Vec<String> = (start..=end)
            .map(|seq| {
                format!(
                    "({org_id}, {seq}, 'update', '/roles/r{:05}', {now})",
                    seq % 10_000
                )
            })
            .collect();
        sqlx::query(&format!(
            "INSERT INTO change_log (org_id, seq, action, path, created_at) VALUES {}",
            values.join(",")
        ))
        .execute(&mut *tx)
        .await
        .expect("insert");
    }
    sqlx::query("UPDATE orgs SET last_seq = ?1 WHERE id = ?2")
        .bind(FEED_ENTRIES)
        .bind(org_id)
        .execute(&mut *tx)
        .await
        .expect("last_seq");
    tx.commit().await.expect("commit");
}

async fn bench_feed(report: &mut Report, dir: &std::path::Path, seconds: u64) {
    let data = dir.join("feed");
    let admin = |args: &[&str]| {
        let out = std::process::Command::new(chef_sync_tests::process::bin("chef-sync-server"))
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .expect("chef-sync-server");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let user_pem = dir.join("feeduser.pem");
    admin(&[
        "user-create",
        "feed",
        "F",
        "U",
        "f@x",
        "pw",
        "--filename",
        user_pem.to_str().unwrap_or_default(),
    ]);
    let v = dir.join("feed-v.pem");
    admin(&[
        "org-create",
        "feed",
        "Feed",
        "--association_user",
        "feed",
        "--filename",
        v.to_str().unwrap_or_default(),
    ]);
    let filled = std::time::Instant::now();
    fill_log(&data.join("chef-sync.db"), "feed").await;
    println!(
        "feed: {FEED_ENTRIES} entries written in {:.1} s",
        filled.elapsed().as_secs_f64()
    );
    let server = ChefSyncServer::start(&data);
    let key = Chef::key_file(&user_pem);
    // The query string is not signed, so one signature serves every position; positions are
    // spread over the whole log (deterministic).
    let per_connection: Vec<Vec<Prepared>> = (0..CONNECTIONS)
        .map(|c| {
            (0..64)
                .map(|i| {
                    let seq = ((c * 64 + i) as i64 * 7_919 * 1_000) % (FEED_ENTRIES - 1_000);
                    let mut p = load::prepare(
                        &key,
                        "feed",
                        "GET",
                        &format!("{}/organizations/feed/updated_since", server.url),
                        b"",
                    );
                    p.url = format!(
                        "{}/organizations/feed/updated_since?seq={seq}&limit=1000",
                        server.url
                    );
                    p
                })
                .collect()
        })
        .collect();
    for (label, requests) in [
        ("1 connection", vec![per_connection[0].clone()]),
        ("8 connections", per_connection),
    ] {
        let result = load::run(requests, Duration::from_secs(seconds)).await;
        println!(
            "feed page of 1000 ({label}): {:.0} pages/s, p50 {:.2} ms, p99 {:.2} ms",
            result.rps, result.p50_ms, result.p99_ms
        );
        report.add(
            "feed",
            &format!("ours/sqlite updated_since limit=1000 over 10^6 entries, {label}"),
            json!({"pages_per_s": result.rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "errors": result.errors}),
            Some(("p99 < 5 ms", result.p99_ms < 5.0 && result.errors == 0)),
        );
    }
}

/// Deterministic bytes for a cookbook file (a small linear congruential generator).
fn file_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            b'a' + ((x >> 33) % 26) as u8
        })
        .collect()
}

/// The data set, scaled: roles, environments, bags × items, cookbook versions × files.
struct DataSet {
    roles: usize,
    environments: usize,
    bags: usize,
    items_per_bag: usize,
    cookbook_versions: usize,
    files_per_version: usize,
    file_bytes: usize,
}

impl DataSet {
    fn scaled(scale: f64) -> DataSet {
        let n = |full: f64| ((full * scale).round() as usize).max(1);
        DataSet {
            roles: n(10_000.0),
            environments: n(2_000.0),
            bags: n(100.0),
            items_per_bag: 50,
            cookbook_versions: n(200.0),
            files_per_version: 20,
            file_bytes: 2_500,
        }
    }

    fn objects(&self) -> usize {
        self.roles
            + self.environments
            + self.bags * (1 + self.items_per_bag)
            + self.cookbook_versions
    }

    /// Writes the data set through the API, 8 requests at a time.
    async fn load(&self, chef: &Chef) {
        use futures_util::StreamExt;
        let mut writes: Vec<(String, serde_json::Value)> = Vec::new();
        for i in 0..self.roles {
            writes.push(("/roles".into(), json!({"name": format!("role{i:05}"), "run_list": ["recipe[base]"], "default_attributes": {"i": i}})));
        }
        for i in 0..self.environments {
            writes.push((
                "/environments".into(),
                json!({"name": format!("env{i:05}"), "cookbook_versions": {"base": ">= 1.0"}}),
            ));
        }
        for b in 0..self.bags {
            writes.push(("/data".into(), json!({"name": format!("bag{b:03}")})));
        }
        futures_util::stream::iter(writes)
            .for_each_concurrent(8, |(rel, body)| async move {
                chef.must("POST", &rel, body, 201).await;
            })
            .await;
        let mut items = Vec::new();
        for b in 0..self.bags {
            for i in 0..self.items_per_bag {
                items.push((format!("/data/bag{b:03}"), json!({"id": format!("item{i:03}"), "value": i, "secret": {"encrypted_data": "x", "iv": "y", "version": 3}})));
            }
        }
        futures_util::stream::iter(items)
            .for_each_concurrent(8, |(rel, body)| async move {
                chef.must("POST", &rel, body, 201).await;
            })
            .await;
        let versions: Vec<usize> = (0..self.cookbook_versions).collect();
        futures_util::stream::iter(versions)
            .for_each_concurrent(4, |v| async move {
                let files: Vec<(String, Vec<u8>)> = (0..self.files_per_version)
                    .map(|f| {
                        (
                            format!("files/default/f{f:02}.txt"),
                            file_bytes((v * 1000 + f) as u64, self.file_bytes),
                        )
                    })
                    .collect();
                let refs: Vec<(&str, &[u8])> = files
                    .iter()
                    .map(|(p, b)| (p.as_str(), b.as_slice()))
                    .collect();
                chef.upload_cookbook(
                    &format!("cb{:02}", v / 10),
                    &format!("1.0.{}", v % 10),
                    &refs,
                    false,
                )
                .await;
            })
            .await;
    }
}

fn syncd_config(
    path: &std::path::Path,
    state: &std::path::Path,
    key: &std::path::Path,
    primary: &str,
    replica: &str,
    concurrency: usize,
    long_poll: bool,
) {
    let text = format!(
        "role = \"replica\"\nmaster = \"{primary}\"\nreplica = \"{replica}\"\n[[organizations]]\nsource = \"boot\"\ndestination = \"boot\"\n[ec_sync_client]\ndir = \"{s}\"\nlog_directory = \"{s}/log\"\nsocket_path = \"{s}/sock\"\nsync_key = \"{k}\"\npoll_interval = 1\nconcurrency = {concurrency}\nlong_poll = {long_poll}\n",
        s = state.display(),
        k = key.display()
    );
    std::fs::write(path, text).expect("config");
}

/// A replica server with chef-syncd following `primary`'s org `boot`.
struct Replication {
    replica: ChefSyncServer,
    config: PathBuf,
    daemon: chef_sync_tests::process::Process,
}

impl Replication {
    async fn start(
        dir: &std::path::Path,
        primary: &ChefSyncServer,
        concurrency: usize,
        tag: &str,
        long_poll: bool,
    ) -> Replication {
        use chef_sync_tests::process::{ctl, syncd};
        let replica = ChefSyncServer::start(&dir.join(format!("replica-{tag}")));
        let v = dir.join(format!("v-{tag}.pem"));
        replica.admin(&[
            "org-create",
            "boot",
            "Boot",
            "--filename",
            v.to_str().unwrap_or_default(),
        ]);
        let config = dir.join(format!("syncd-{tag}.toml"));
        let key = dir.join("sync.pem");
        syncd_config(
            &config,
            &dir.join(format!("state-{tag}")),
            &key,
            &primary.url,
            &replica.url,
            concurrency,
            long_poll,
        );
        for (server, flag) in [(primary, false), (&replica, true)] {
            let pivotal = server.pivotal_key();
            let mut args = vec![
                "prepare-org",
                "boot",
                "--server",
                server.url.as_str(),
                "--superuser-key",
                pivotal.to_str().unwrap_or_default(),
            ];
            if flag {
                args.push("--replica");
            }
            let out = ctl(&config, &args);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let out = ctl(&config, &["sync-start", "boot"]);
        assert!(out.status.success());
        let daemon = syncd(&config);
        Replication {
            replica,
            config,
            daemon,
        }
    }

    /// Waits until the org is synced at the primary's head `at_least`.
    async fn wait_synced(&self, at_least: i64) {
        loop {
            let out = chef_sync_tests::process::ctl(&self.config, &["sync-status", "--json"]);
            let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            if rows[0]["status"] == "synced"
                && rows[0]["applied_seq"]
                    .as_i64()
                    .is_some_and(|s| s >= at_least)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One bootstrap into a fresh replica; returns (seconds, syncd peak RSS, replica peak RSS).
async fn one_bootstrap(
    dir: &std::path::Path,
    primary: &ChefSyncServer,
    concurrency: usize,
    tag: &str,
) -> (f64, u64, u64) {
    let started = std::time::Instant::now();
    let r = Replication::start(dir, primary, concurrency, tag, true).await;
    r.wait_synced(1).await;
    let seconds = started.elapsed().as_secs_f64();
    let syncd_rss = proc_stats::peak_rss(r.daemon.pid()).unwrap_or(0);
    let replica_rss = proc_stats::peak_rss(r.replica.process.pid()).unwrap_or(0);
    (seconds, syncd_rss, replica_rss)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// A new version of a 100-file cookbook that changes one file: bytes stored on the replica.
async fn bench_delta(report: &mut Report, dir: &std::path::Path) {
    let primary = ChefSyncServer::start(&dir.join("delta-primary"));
    let chef = primary.org_with_admin("boot", "boot").chef;
    let mut files: Vec<(String, Vec<u8>)> = (0..100)
        .map(|f| {
            (
                format!("files/default/f{f:03}.txt"),
                file_bytes(f as u64, 2_500),
            )
        })
        .collect();
    let refs = |files: &[(String, Vec<u8>)]| {
        files
            .iter()
            .map(|(p, b)| (p.clone(), b.clone()))
            .collect::<Vec<_>>()
    };
    let upload = |version: &'static str, files: Vec<(String, Vec<u8>)>| {
        let chef = chef.clone();
        async move {
            let r: Vec<(&str, &[u8])> = files
                .iter()
                .map(|(p, b)| (p.as_str(), b.as_slice()))
                .collect();
            chef.upload_cookbook("big", version, &r, false).await;
        }
    };
    upload("1.0.0", refs(&files)).await;
    let r = Replication::start(dir, &primary, 8, "delta", true).await;
    r.wait_synced(1).await;
    let blobs = r.replica.data_dir.join("blobs");
    let before = dir_bytes(&blobs);
    files[42].1 = file_bytes(4242, 2_600);
    let changed = files[42].1.len() as u64;
    upload("1.1.0", refs(&files)).await;
    r.wait_synced(2).await;
    let added = dir_bytes(&blobs) - before;
    println!(
        "cookbook delta: one changed file of {changed} bytes; the replica stored {added} new bytes"
    );
    report.add(
        "cookbook delta",
        "new version of a 100-file cookbook, one file changed",
        json!({"changed_file_bytes": changed, "bytes_stored_on_replica": added, "versions_on_replica": 2}),
        Some(("only the changed file's bytes are transferred", added == changed)),
    );
}

/// Replication lag under a steady writer: 20 role writes per second on the primary for
/// `seconds`; each write's commit (the primary's answer) to its arrival in the replica's own
/// change feed, which a long-polling reader follows.
async fn bench_lag(report: &mut Report, dir: &std::path::Path, seconds: u64, long_poll: bool) {
    let tag = if long_poll { "lag-lp" } else { "lag-poll" };
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
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
    let (_, head) = replica_admin
        .call("GET", "/updated_since?seq=0&limit=10000", None)
        .await;
    let start_seq = head
        .as_array()
        .and_then(|a| a.last())
        .and_then(|e| e["id"].as_i64())
        .unwrap_or(0);
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
    let committed = committed.lock().map(|c| c.clone()).unwrap_or_default();
    let arrived = arrived.lock().map(|a| a.clone()).unwrap_or_default();
    let mut lags: Vec<u64> = committed
        .iter()
        .filter_map(|(p, c)| {
            arrived
                .get(p)
                .map(|a| a.saturating_duration_since(*c).as_micros() as u64)
        })
        .collect();
    lags.sort_unstable();
    let missing = committed.len() - lags.len();
    let p50 = load::percentile(&lags, 50.0);
    let p99 = load::percentile(&lags, 99.0);
    let mode = if long_poll {
        "long-poll"
    } else {
        "plain polling every 1 s"
    };
    println!(
        "lag with {mode}: {} writes, p50 {p50:.1} ms, p99 {p99:.1} ms, {missing} not seen",
        committed.len()
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
        json!({"writes": committed.len(), "p50_ms": p50, "p99_ms": p99, "not_arrived": missing}),
        Some((target, met && missing == 0)),
    );
}

async fn bench_bootstrap(report: &mut Report, dir: &std::path::Path, scale: f64) {
    let data = DataSet::scaled(scale);
    let primary = ChefSyncServer::start(&dir.join("boot-primary"));
    let chef = primary.org_with_admin("boot", "boot").chef;
    let loading = std::time::Instant::now();
    data.load(&chef).await;
    let objects = data.objects();
    let mb = (data.cookbook_versions * data.files_per_version * data.file_bytes) as f64 / 1e6;
    println!(
        "bootstrap: loaded {objects} objects ({mb:.1} MB of files) in {:.1} s",
        loading.elapsed().as_secs_f64()
    );
    let (fast, syncd_rss, replica_rss) = one_bootstrap(dir, &primary, 8, "c8").await;
    println!(
        "bootstrap, concurrency 8: {fast:.1} s, {:.0} objects/s, chef-syncd peak RSS {} MB, replica server peak RSS {} MB",
        objects as f64 / fast,
        syncd_rss / 1_000_000,
        replica_rss / 1_000_000
    );
    let (serial, _, _) = one_bootstrap(dir, &primary, 1, "c1").await;
    println!(
        "bootstrap, serial (concurrency 1): {serial:.1} s, {:.0} objects/s",
        objects as f64 / serial
    );
    let primary_rss = proc_stats::peak_rss(primary.process.pid()).unwrap_or(0);
    report.add(
        "bootstrap",
        &format!(
            "{objects} objects, {mb:.1} MB of files, concurrency 8, into an empty replica (SQLite)"
        ),
        json!({"seconds": fast, "objects_per_s": objects as f64 / fast}),
        None,
    );
    report.add(
        "bootstrap",
        "same copy, serial (concurrency 1)",
        json!({"seconds": serial, "objects_per_s": objects as f64 / serial, "speedup": serial / fast}),
        Some(("≥ 10× the serial copy", serial / fast >= 10.0)),
    );
    report.add(
        "memory",
        "peak RSS during the bootstrap",
        json!({"chef_syncd_mb": syncd_rss as f64 / 1e6, "replica_server_mb": replica_rss as f64 / 1e6, "primary_server_mb": primary_rss as f64 / 1e6}),
        Some(("chef-syncd ≤ 64 MB, server ≤ 150 MB", syncd_rss <= 64_000_000 && replica_rss.max(primary_rss) <= 150_000_000)),
    );
}

#[tokio::main]
async fn main() {
    let options = options();
    let wanted = |b: &str| {
        options
            .only
            .as_ref()
            .is_none_or(|o| o.iter().any(|x| x == b))
    };
    let work = tempfile::tempdir().expect("tempdir");
    let mut report = Report {
        started: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        machine: format!(
            "{} CPUs, {}",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(
                    |c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                        .split(':')
                        .nth(1)
                        .unwrap_or("")
                        .trim()
                        .to_owned())
                )
                .unwrap_or_default()
        ),
        rows: Vec::new(),
    };
    if wanted("read") {
        bench_read(&mut report, work.path(), options.seconds).await;
    }
    if wanted("feed") {
        bench_feed(&mut report, work.path(), options.seconds).await;
    }
    if wanted("lag") {
        bench_lag(&mut report, work.path(), options.seconds * 6, true).await;
        bench_lag(&mut report, work.path(), options.seconds * 6, false).await;
    }
    if wanted("delta") {
        bench_delta(&mut report, work.path()).await;
    }
    if wanted("bootstrap") {
        bench_bootstrap(&mut report, work.path(), options.scale).await;
    }
    if let Err(e) = std::fs::create_dir_all(&options.out) {
        eprintln!("chef-sync-bench: {}: {e}", options.out.display());
        std::process::exit(1);
    }
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    let md = report.markdown();
    let _ = std::fs::write(options.out.join("bench.json"), json);
    let _ = std::fs::write(options.out.join("bench.md"), &md);
    println!("\n{md}");
}
