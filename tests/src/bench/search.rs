//! Search at fleet size (issue #16): an org of 10,000 nodes carrying ohai-like automatic
//! attributes of ~2,000 leaves each, 500 roles and 50 data bags of 100 items, on SQLite and
//! PostgreSQL. Measures the two queries the issue names under 8 clients (and one client
//! alone), a node save with its index update, the server's memory while the clients search,
//! and the size of the index on disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::load::{self, CONNECTIONS, Prepared};
use super::ohai;
use super::proc_stats;
use super::report::Report;
use crate::chef::Chef;
use crate::postgres::TempDatabase;
use crate::process::{ChefSyncServer, OrgAdmin};

/// Writes in flight while loading the data set.
const LOADERS: usize = 8;

/// Node `i`'s name and role: every 20th node, and the 5th of every 20, is a web node, so
/// `role:web` finds 10 % and `role:web AND platform:ubuntu` 5 % (see `ohai::platform`); names
/// are `ROLE-i`, so `name:web-1*` finds the web nodes numbered 100–199, 1000–1999, ….
fn node_name(i: usize) -> (String, &'static str) {
    let role = if i.is_multiple_of(20) || i % 20 == 5 {
        "web"
    } else {
        "app"
    };
    (format!("{role}-{i}"), role)
}

fn node(i: usize, run: u64) -> Value {
    let (name, role) = node_name(i);
    json!({
        "name": name,
        "chef_environment": if i.is_multiple_of(3) { "prod" } else { "staging" },
        "run_list": [format!("role[{role}]"), "recipe[base::default]", "recipe[monitoring]"],
        "normal": {"tags": ["fleet"], "app": {"version": format!("2.{}", i % 7)}},
        "default": {"base": {"ntp": ["pool.ntp.org"]}},
        "override": {},
        "automatic": ohai::automatic(i, &name, run),
    })
}

/// Sends `bodies` as `method` to `path(i)` with `LOADERS` in flight; panics on any failure.
async fn load_all(chef: &Chef, count: usize, what: &str, make: impl Fn(usize) -> (String, Value)) {
    let started = Instant::now();
    let done = AtomicU64::new(0);
    futures_util::stream::iter(0..count)
        .map(|i| {
            let (path, body) = make(i);
            let done = &done;
            async move {
                chef.must("POST", &path, body, 201).await;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of(1000) {
                    eprintln!(
                        "search bench: {n}/{count} {what} in {:.0} s",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        })
        .buffer_unordered(LOADERS)
        .collect::<Vec<()>>()
        .await;
}

/// The largest resident set of `pid` sampled every 100 ms while `run` lasts.
async fn with_rss_sampled<T>(pid: u32, run: impl std::future::Future<Output = T>) -> (T, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicU64::new(proc_stats::rss(pid).unwrap_or(0)));
    let sampler = {
        let (stop, most) = (stop.clone(), most.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                most.fetch_max(proc_stats::rss(pid).unwrap_or(0), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let out = run.await;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    (out, most.load(Ordering::Relaxed))
}

/// Bytes of the search index and of the whole database.
async fn sizes(server: &ChefSyncServer, database: Option<&str>) -> (Option<u64>, u64) {
    match database {
        Some(url) => {
            let sql = "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::BIGINT AS n \
                       FROM pg_class c WHERE c.relname LIKE 'search_%' AND c.relkind = 'r'";
            let Ok(pool) = sqlx::PgPool::connect(url).await else {
                return (None, 0);
            };
            let index: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap_or(0);
            let total: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(&pool)
                .await
                .unwrap_or(0);
            pool.close().await;
            (Some(index as u64), total as u64)
        }
        None => {
            let total = ["chef-sync.db", "chef-sync.db-wal"]
                .iter()
                .filter_map(|f| std::fs::metadata(server.data_dir.join(f)).ok())
                .map(|m| m.len())
                .sum();
            // SQLite keeps every table in one file; the index's share is measured by its
            // pages through the dbstat table where the library has it.
            (
                sqlite_index_bytes(&server.data_dir.join("chef-sync.db")).await,
                total,
            )
        }
    }
}

/// The pages of the search tables and their indexes (SQLite's dbstat table, which the
/// bundled library has).
async fn sqlite_index_bytes(file: &Path) -> Option<u64> {
    let url = format!("sqlite://{}?mode=ro", file.display());
    let pool = sqlx::SqlitePool::connect(&url).await.ok()?;
    let bytes: Option<i64> = sqlx::query_scalar(
        "SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'search_%' \
         OR name LIKE 'sqlite_autoindex_search_%'",
    )
    .fetch_one(&pool)
    .await
    .ok()?;
    pool.close().await;
    bytes.map(|b| b as u64)
}

/// The roles, data bags and items beside the nodes.
async fn load_others(chef: &Chef, roles: usize, bags: usize) {
    load_all(chef, roles, "roles", |i| {
        let role = json!({"name": format!("role-{i}"), "run_list": [format!("recipe[r{}]", i % 40)],
                          "default_attributes": {"tier": i % 5, "app": {"port": 8000 + i}}});
        ("/roles".into(), role)
    })
    .await;
    load_all(chef, bags, "bags", |b| {
        ("/data".into(), json!({"name": format!("bag{b}")}))
    })
    .await;
    load_all(chef, bags * 100, "items", |i| {
        let item = json!({"id": format!("item{}", i % 100), "owner": format!("team{}", i % 9),
                          "settings": {"size": i % 50, "flags": ["a", "b"]}});
        (format!("/data/bag{}", i / 100), item)
    })
    .await;
}

/// One backend: load (unless an earlier run kept its data set), then measure.
async fn measure(
    report: &mut Report,
    dir: &Path,
    seconds: u64,
    scale: f64,
    backend: &str,
    database: Option<&str>,
) {
    let data_dir = dir.join(format!("search-{backend}"));
    let loaded_marker = data_dir.join("bench-data-loaded");
    let loaded = loaded_marker.exists();
    if !loaded && data_dir.exists() {
        // What a run stopped while loading left behind.
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    let server = ChefSyncServer::start_with(&data_dir, "127.0.0.1:0", database);
    let pid = server.process.pid();
    let org = if loaded {
        let key = data_dir.join("bench.pem");
        let org_url = format!("{}/organizations/bench", server.url);
        OrgAdmin {
            chef: Chef::new(&org_url, "bench", Chef::key_file(&key)),
            org_url,
            validator_key: data_dir.join("bench-validator.pem"),
            key,
        }
    } else {
        server.org_with_admin("bench", "bench")
    };
    let key = Chef::key_file(&org.key);
    let nodes = ((10_000.0 * scale) as usize).max(100);
    let roles = ((500.0 * scale) as usize).max(10);
    let bags = ((50.0 * scale) as usize).max(2);
    let sample = node(1, 0);
    eprintln!(
        "search bench ({backend}): {nodes} nodes of {} leaves ({} KB), {roles} roles, {bags} bags of 100 items",
        ohai::leaves(&sample),
        sample.to_string().len() / 1024
    );
    let node_load = if loaded {
        eprintln!("search bench ({backend}): measuring the data set an earlier run loaded");
        None
    } else {
        let started = Instant::now();
        load_all(&org.chef, nodes, "nodes", |i| ("/nodes".into(), node(i, 0))).await;
        let node_load = started.elapsed().as_secs_f64();
        load_others(&org.chef, roles, bags).await;
        if let Err(e) = std::fs::write(&loaded_marker, b"") {
            eprintln!(
                "search bench: cannot write {}: {e}",
                loaded_marker.display()
            );
        }
        Some(node_load)
    };
    if let Some(url) = database {
        settle_postgres(url).await;
    }
    let (index_bytes, db_bytes) = sizes(&server, database).await;
    let node_rate = node_load.map(|seconds| nodes as f64 / seconds);
    println!(
        "search ours/{backend}: loaded {nodes} nodes in {} s ({} nodes/s); database {:.0} MB, search index {}",
        node_load.map_or("(earlier run)".to_owned(), |s| format!("{s:.0}")),
        node_rate.map_or("-".to_owned(), |r| format!("{r:.1}")),
        db_bytes as f64 / 1e6,
        index_bytes.map_or("(not measured on SQLite)".to_owned(), |b| format!(
            "{:.0} MB",
            b as f64 / 1e6
        )),
    );
    report.add(
        "search",
        &format!("ours/{backend} data set: {nodes} nodes (~2,000 ohai leaves), {roles} roles, {bags}×100 items"),
        json!({"node_load_per_s": node_rate, "database_mb": db_bytes as f64 / 1e6,
               "index_mb": index_bytes.map(|b| b as f64 / 1e6)}),
        None,
    );

    let search = |q: &str| format!("{}/search/node?q={q}", org.org_url);
    for (what, url, target_ms) in [
        (
            "role:web AND platform:ubuntu (5 %, rows 1000)",
            search("role:web%20AND%20platform:ubuntu&rows=1000"),
            50.0,
        ),
        ("name:web-1*", search("name:web-1*"), 20.0),
    ] {
        let matched = org
            .chef
            .call("GET", &url.replace(&org.org_url, ""), None)
            .await
            .1["total"]
            .as_u64()
            .unwrap_or(0);
        // Untimed first: the first answers after a start read the rows from disk and grow
        // the reader connections' caches.
        let single = vec![vec![load::prepare(&key, "bench", "GET", &url, b"")]];
        load::run(single.clone(), Duration::from_secs(2)).await;
        let one = load::run(single, Duration::from_secs(seconds)).await;
        let requests: Vec<Vec<Prepared>> = (0..CONNECTIONS)
            .map(|_| vec![load::prepare(&key, "bench", "GET", &url, b"")])
            .collect();
        let (eight, most_rss) =
            with_rss_sampled(pid, load::run(requests, Duration::from_secs(seconds))).await;
        println!(
            "search ours/{backend} {what}: {matched} matches; 1 client p50 {:.1} ms p99 {:.1} ms; 8 clients {:.0} req/s p50 {:.1} ms p99 {:.1} ms, {} errors; server RSS ≤ {:.0} MB",
            one.p50_ms,
            one.p99_ms,
            eight.rps,
            eight.p50_ms,
            eight.p99_ms,
            eight.errors,
            most_rss as f64 / 1e6
        );
        report.add(
            "search",
            &format!("ours/{backend} {what}, {nodes} nodes"),
            json!({"matches": matched, "one_client_p50_ms": one.p50_ms, "one_client_p99_ms": one.p99_ms,
                   "rps_8_clients": eight.rps, "p50_ms_8_clients": eight.p50_ms, "p99_ms_8_clients": eight.p99_ms,
                   "errors": eight.errors + one.errors, "server_rss_mb": most_rss as f64 / 1e6}),
            Some((
                &format!("p99 ≤ {target_ms} ms; RSS ≤ 300 MB"),
                one.p99_ms <= target_ms && most_rss <= 300_000_000,
            )),
        );
    }

    // A node save: each connection saves its own nodes, alternating two runs' ohai data, so
    // every PUT changes a few values (uptime, free memory, timestamps) as chef-client's do.
    let saves: Vec<Vec<Prepared>> = (0..CONNECTIONS)
        .map(|c| {
            (0..4)
                .flat_map(|k| {
                    let i = (c * 4 + k) * (nodes / (CONNECTIONS * 4)).max(1) % nodes;
                    let (name, _) = node_name(i);
                    let url = format!("{}/nodes/{name}", org.org_url);
                    [1, 2].map(|run| {
                        load::prepare(
                            &key,
                            "bench",
                            "PUT",
                            &url,
                            node(i, run).to_string().as_bytes(),
                        )
                    })
                })
                .collect()
        })
        .collect();
    let one = load::run(vec![saves[0].clone()], Duration::from_secs(seconds)).await;
    println!(
        "search ours/{backend} node save, 1 client: p50 {:.1} ms, p99 {:.1} ms, {} errors",
        one.p50_ms, one.p99_ms, one.errors
    );
    report.add(
        "search",
        &format!("ours/{backend} node save with its index update, 1 client"),
        json!({"rps": one.rps, "p50_ms": one.p50_ms, "p99_ms": one.p99_ms, "errors": one.errors}),
        Some(("p99 ≤ 30 ms", one.p99_ms <= 30.0)),
    );
    let (saved, most_rss) =
        with_rss_sampled(pid, load::run(saves, Duration::from_secs(seconds))).await;
    println!(
        "search ours/{backend} node save (~{} KB, index updated): {:.0} saves/s, p50 {:.1} ms, p99 {:.1} ms, {} errors; server RSS ≤ {:.0} MB",
        sample.to_string().len() / 1024,
        saved.rps,
        saved.p50_ms,
        saved.p99_ms,
        saved.errors,
        most_rss as f64 / 1e6
    );
    report.add(
        "search",
        &format!("ours/{backend} node save with its index update, 8 clients"),
        json!({"rps": saved.rps, "p50_ms": saved.p50_ms, "p99_ms": saved.p99_ms, "errors": saved.errors,
               "server_rss_mb": most_rss as f64 / 1e6}),
        // The target is one save's latency (the row above); eight at once queue for
        // the one writer on SQLite, which this row shows.
        Some(("RSS ≤ 300 MB", most_rss <= 300_000_000)),
    );
}

/// SQLite, then PostgreSQL when it is reachable; `CHEF_SYNC_BENCH_BACKENDS=postgres` (or
/// `sqlite`) measures one of them.
pub async fn run(report: &mut Report, dir: &Path, seconds: u64, scale: f64) {
    let backends =
        std::env::var("CHEF_SYNC_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".to_owned());
    // Loading 10,000 nodes takes minutes; with CHEF_SYNC_BENCH_SEARCH_KEEP=DIR the data set
    // is loaded into DIR (and a kept PostgreSQL database) once and measured again by later
    // runs, to compare server changes on the same data.
    let keep = std::env::var_os("CHEF_SYNC_BENCH_SEARCH_KEEP").map(PathBuf::from);
    let dir = keep.as_deref().unwrap_or(dir);
    if backends.split(',').any(|b| b == "sqlite") {
        measure(report, dir, seconds, scale, "sqlite", None).await;
    }
    if !backends.split(',').any(|b| b == "postgres") {
        return;
    }
    let database = if keep.is_some() {
        let fresh = !dir.join("search-postgres/bench-data-loaded").exists();
        TempDatabase::kept("chef_sync_bench_search_kept", fresh).await
    } else {
        TempDatabase::create("bench_search").await
    };
    if let Some(db) = database {
        measure(report, dir, seconds, scale, "postgres", Some(&db.url)).await;
    }
}

/// What PostgreSQL's autovacuum does in the background of a running server, done at once
/// after the bulk load so that the queries are measured as they run in steady state: the
/// planner's statistics and the visibility map (which lets index-only scans skip the heap).
async fn settle_postgres(url: &str) {
    match sqlx::PgPool::connect(url).await {
        Ok(pool) => {
            if let Err(e) = sqlx::query("VACUUM (ANALYZE)").execute(&pool).await {
                eprintln!("search bench: VACUUM ANALYZE failed: {e}");
            }
            pool.close().await;
        }
        Err(e) => eprintln!("search bench: cannot reach {url}: {e}"),
    }
}
