//! Feed page latency: `updated_since` pages of 1000 over a change log of 10^6 entries, on
//! SQLite and PostgreSQL.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::load::{self, CONNECTIONS, Prepared};
use super::report::Report;
use crate::chef::Chef;
use crate::postgres::TempDatabase;
use crate::process::ChefSyncServer;

/// Entries in the feed benchmark's change log.
const FEED_ENTRIES: i64 = 1_000_000;

/// Writes `FEED_ENTRIES` change-log entries straight into a stopped server's database (the
/// API would take minutes to make that many), in one transaction. The SQL is the same for
/// both backends; the values are ours, so they are written inline.
async fn fill_log(url: &str, org: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .expect("open the server database");
    let org_id: i64 = sqlx::query_scalar(&format!("SELECT id FROM orgs WHERE name = '{org}'"))
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
    sqlx::query(&format!(
        "UPDATE orgs SET last_seq = {FEED_ENTRIES} WHERE id = {org_id}"
    ))
    .execute(&mut *tx)
    .await
    .expect("last_seq");
    tx.commit().await.expect("commit");
    // What autovacuum would do on a server that grew its log over time.
    sqlx::query("ANALYZE change_log")
        .execute(&mut conn)
        .await
        .expect("analyze");
}

/// SQLite, then PostgreSQL.
pub async fn run(report: &mut Report, dir: &Path, seconds: u64) {
    one(report, dir, seconds, "sqlite", None).await;
    if let Some(db) = TempDatabase::create("bench_feed").await {
        one(report, dir, seconds, "postgres", Some(&db.url)).await;
    }
}

async fn one(report: &mut Report, dir: &Path, seconds: u64, backend: &str, database: Option<&str>) {
    let data = dir.join(format!("feed-{backend}"));
    let admin = |args: &[&str]| {
        crate::process::server_admin(&data, database, args);
    };
    let user_pem = dir.join(format!("feeduser-{backend}.pem"));
    admin(&[
        "user-create",
        "feed",
        "F",
        "U",
        "f@x",
        "--filename",
        user_pem.to_str().unwrap_or_default(),
    ]);
    let v = dir.join(format!("feed-v-{backend}.pem"));
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
    let url = database.map_or_else(
        || format!("sqlite://{}", data.join("chef-sync.db").display()),
        str::to_owned,
    );
    fill_log(&url, "feed").await;
    println!(
        "feed: {FEED_ENTRIES} entries written in {:.1} s",
        filled.elapsed().as_secs_f64()
    );
    let server = ChefSyncServer::start_with(&data, "127.0.0.1:0", database);
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
            "feed page of 1000, {backend} ({label}): {:.0} pages/s, p50 {:.2} ms, p99 {:.2} ms",
            result.rps, result.p50_ms, result.p99_ms
        );
        report.add(
            "feed",
            &format!("ours/{backend} updated_since limit=1000 over 10^6 entries, {label}"),
            json!({"pages_per_s": result.rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "errors": result.errors}),
            Some(("p99 < 5 ms", result.p99_ms < 5.0 && result.errors == 0)),
        );
    }
}
