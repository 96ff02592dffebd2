//! Monitoring with the real binaries: chef-syncd's `/metrics`, `/healthz` and `/readyz` on
//! `metrics_listen` (a slow org is `behind` and ready, a stalled one is `stalled` and not), and
//! the server's `/metrics`.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use chef_sync_tests::chef::Chef;
use chef_sync_tests::fault_proxy::FaultProxy;
use chef_sync_tests::process::ChefSyncServer;
use chef_sync_tests::replica::{Replication, Tuning};
use serde_json::{Value, json};

async fn get(url: &str) -> (u16, String) {
    let resp = reqwest::get(url).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

async fn readyz(base: &str) -> (u16, Value) {
    let (status, body) = get(&format!("{base}/readyz")).await;
    (status, serde_json::from_str(&body).unwrap())
}

/// The value of the sample `name{labels}` in a Prometheus exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Polls `/readyz` until `wanted` holds for the first org, or panics after `limit`.
async fn readyz_until(base: &str, limit: Duration, wanted: impl Fn(u16, &Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = readyz(base).await;
        if wanted(status, &body) {
            return body;
        }
        assert!(started.elapsed() < limit, "last /readyz: {status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn roles(chef: &Chef, from: usize, count: usize) {
    for i in from..from + count {
        chef.must("POST", "/roles", json!({"name": format!("r{i:03}")}), 201)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_tell_caught_up_behind_and_stalled_apart() {
    let dir = tempfile::tempdir().unwrap();
    let primary = ChefSyncServer::start(&dir.path().join("primary"));
    let alice = primary.org_with_admin("acme", "alice").chef;
    chef_sync_tests::sample::load(&alice).await;
    let proxy = FaultProxy::start(&primary.url).await;
    // Object by object: each object read through the slow primary below takes a second, so
    // the org is seen behind while work gets done. (On the bulk paths a feed page brings its
    // documents, and the same writes are applied before a probe could see them pending.)
    let tuning = Tuning {
        monitoring: true,
        stall_timeout: 4,
        request_timeout: 2,
        bulk: false,
        ..Tuning::default()
    };
    let mut r =
        Replication::start_via(dir.path(), &primary, &proxy.url, "acme", tuning, "mon").await;
    let base = r.monitoring_url();
    r.converge(&alice, "acme", "before monitoring").await;

    // Caught up: alive, ready, and the metrics say what happened.
    let (status, body) = get(&format!("{base}/healthz")).await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"alive"}"#));
    let ready = readyz_until(&base, Duration::from_secs(30), |s, b| {
        s == 200 && b["organizations"][0]["sync"] == "caught_up"
    })
    .await;
    let org = &ready["organizations"][0];
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["state_db"]["ok"], true);
    assert_eq!(org["primary"]["ok"], true, "{ready}");
    assert_eq!(org["replica"]["ok"], true, "{ready}");
    let (status, text) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    assert!(text.ends_with("# EOF\n"), "{text}");
    let written = sample(
        &text,
        r#"chef_sync_objects_applied_total{org="acme",type="role",action="write"}"#,
    );
    assert_eq!(written, Some(2.0), "{text}");
    assert_eq!(sample(&text, r#"chef_sync_seq_lag{org="acme"}"#), Some(0.0));
    assert_eq!(
        sample(&text, r#"chef_sync_parked_objects{org="acme"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, r#"chef_sync_reconcile_runs_total{org="acme"}"#),
        Some(1.0)
    );
    let applied = sample(&text, r#"chef_sync_applied_seq{org="acme"}"#).unwrap();
    assert!(applied >= 6.0, "{text}");
    let since = sample(&text, r#"chef_sync_seconds_since_last_sync{org="acme"}"#).unwrap();
    assert!((0.0..60.0).contains(&since), "{text}");
    let files = sample(
        &text,
        r#"chef_sync_bytes_transferred_total{org="acme",peer="primary",direction="received"}"#,
    )
    .unwrap();
    assert!(files > 1000.0, "{text}");
    assert!(
        sample(
            &text,
            r#"chef_sync_request_duration_seconds_count{org="acme",peer="replica",status="201"}"#
        )
        .unwrap()
            >= 2.0,
        "{text}"
    );
    assert!(
        !text.contains("r000") && !text.contains("/roles/web"),
        "no object names in labels"
    );

    // Slow: every answer of the primary takes 1 s; work still gets done, so the org is
    // behind but ready.
    proxy.hold_answers(Duration::from_secs(1));
    roles(&alice, 0, 30).await;
    let behind = readyz_until(&base, Duration::from_secs(60), |_, b| {
        b["organizations"][0]["sync"] == "behind"
    })
    .await;
    assert_eq!(behind["organizations"][0]["ok"], true, "{behind}");
    proxy.hold_answers(Duration::ZERO);
    r.converge(&alice, "acme", "after the slow primary").await;

    // Stalled: answers held beyond the daemon's timeout, nothing gets done; after
    // stall_timeout the org is stalled and the daemon not ready, and the body says why.
    proxy.hold_answers(Duration::from_secs(30));
    roles(&alice, 30, 3).await;
    let stalled = readyz_until(&base, Duration::from_secs(90), |s, b| {
        s == 503 && b["organizations"][0]["sync"] == "stalled"
    })
    .await;
    let org = &stalled["organizations"][0];
    assert_eq!(stalled["status"], "unready");
    assert_eq!(org["ok"], false);
    assert!(org["idle_seconds"].as_u64().unwrap() >= 4, "{stalled}");
    assert_eq!(org["primary"]["ok"], false, "{stalled}");
    assert!(
        org["primary"]["error"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{stalled}"
    );
    assert_eq!(org["replica"]["ok"], true, "{stalled}");
    // /readyz answers from probes it reuses for 2 s, so it may say "stalled" before the
    // daemon's first request to the held primary has timed out and been retried: the retry
    // and the timeout are counted within a request timeout after that.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let text = loop {
        let (_, text) = get(&format!("{base}/metrics")).await;
        let retries = sample(&text, r#"chef_sync_retries_total{org="acme"}"#).unwrap_or(0.0);
        let timeouts = sample(
            &text,
            r#"chef_sync_request_duration_seconds_count{org="acme",peer="primary",status="error"}"#,
        )
        .unwrap_or(0.0);
        if (retries >= 1.0 && timeouts >= 1.0) || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        sample(&text, r#"chef_sync_retries_total{org="acme"}"#).unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    let timeouts = sample(
        &text,
        r#"chef_sync_request_duration_seconds_count{org="acme",peer="primary",status="error"}"#,
    );
    assert!(timeouts.unwrap_or(0.0) >= 1.0, "{text}");

    // Back: ready again by itself.
    proxy.hold_answers(Duration::ZERO);
    readyz_until(&base, Duration::from_secs(120), |s, b| {
        s == 200 && b["organizations"][0]["sync"] == "caught_up"
    })
    .await;
    r.converge(&alice, "acme", "after the stall").await;
}

#[tokio::test]
async fn the_server_counts_requests_by_route_and_reports_feed_length() {
    let dir = tempfile::tempdir().unwrap();
    let server = ChefSyncServer::start(&dir.path().join("server"));
    let alice = server.org_with_admin("acme", "alice").chef;
    for i in 0..3 {
        alice
            .must("POST", "/roles", json!({"name": format!("web{i}")}), 201)
            .await;
    }
    alice.get("/roles/web0").await;
    let (status, _) = alice.call("GET", "/roles/nothing", None).await;
    assert_eq!(status, 404);
    // Unsigned, like Prometheus scrapes it.
    let (status, text) = get(&format!("{}/metrics", server.url)).await;
    assert_eq!(status, 200);
    for (series, value) in [
        (
            r#"chef_sync_server_http_requests_total{route="/organizations/{org}/roles",method="POST",status="201"}"#,
            3.0,
        ),
        (
            r#"chef_sync_server_http_requests_total{route="/organizations/{org}/roles/{name}",method="GET",status="200"}"#,
            1.0,
        ),
        (
            r#"chef_sync_server_http_requests_total{route="/organizations/{org}/roles/{name}",method="GET",status="404"}"#,
            1.0,
        ),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
    // Org names and feed sizes only behind metrics_token or on metrics_listen
    // (server/tests/attacks_api.rs).
    assert!(
        !text.contains("feed_entries") && !text.contains("acme"),
        "{text}"
    );
    assert!(
        text.contains(r#"chef_sync_server_http_request_duration_seconds_bucket{le="#)
            || text.contains("chef_sync_server_http_request_duration_seconds_bucket{route="),
        "{text}"
    );
    assert!(!text.contains("web0"), "no object names in labels");
}
