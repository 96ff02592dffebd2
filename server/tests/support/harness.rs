//! Shared by the HTTP test files: a server (real router, real store) on a fresh SQLite file or
//! a fresh, uniquely named PostgreSQL database, and Chef-signed requests into it. PostgreSQL
//! tests print SKIPPED when no server answers outside CI; under CI=true they fail instead.

#![allow(dead_code)]

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use base64::Engine;
use chef_sync_server::config::{BlobStoreKind, Config};
use chef_sync_server::{AppState, Store, accounts, app};
use chef_sync_shared::PrivateKey;
use chef_sync_shared::signing::{self, RequestToSign, SigningVersion, sign_request};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use tower::ServiceExt;

const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

pub struct Harness {
    pub app: Router,
    /// The state behind `app` (for the other listeners a server may run).
    pub state: AppState,
    pub store: Store,
    pub pivotal: PrivateKey,
    pub dir: tempfile::TempDir,
    pg_db: Option<String>,
}

/// A fresh database URL for `backend`, or `None` (after printing SKIPPED) when PostgreSQL is
/// unreachable outside CI.
pub async fn fresh_database(
    backend: &str,
    dir: &std::path::Path,
) -> Option<(String, Option<String>)> {
    match backend {
        "sqlite" => Some((format!("sqlite://{}", dir.join("t.db").display()), None)),
        _ => {
            let name = format!("chef_sync_test_{}", rand_suffix());
            if let Err(e) = pg_admin(&format!("CREATE DATABASE {name}")).await {
                assert!(!in_ci(), "PostgreSQL is required in CI: {e}");
                eprintln!(
                    "SKIPPED: PostgreSQL at 127.0.0.1:5432 is not reachable ({e}); this test did not run"
                );
                return None;
            }
            Some((
                format!("postgres://postgres@127.0.0.1:5432/{name}"),
                Some(name),
            ))
        }
    }
}

/// Drops a database made by [`fresh_database`].
pub async fn drop_database(name: &str) {
    pg_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
}

impl Harness {
    pub async fn new(backend: &str) -> Option<Harness> {
        Harness::with_blobs(backend, BlobStoreKind::Filesystem).await
    }

    pub async fn with_blobs(backend: &str, blobs: BlobStoreKind) -> Option<Harness> {
        Harness::with_config(backend, |c| c.blob_store = blobs).await
    }

    /// A harness whose server config is the test default changed by `tweak`.
    pub async fn with_config(backend: &str, tweak: impl FnOnce(&mut Config)) -> Option<Harness> {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg_db) = fresh_database(backend, dir.path()).await?;
        let store = Store::connect(&url, 10).await.unwrap();
        let pivotal = fixture_key();
        let public = pivotal.public_key().to_pem().unwrap();
        accounts::create_user(
            &store,
            "pivotal",
            &json!({"username": "pivotal"}),
            true,
            Some(&public),
            2048,
        )
        .await
        .unwrap();
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            database: Some(url),
            max_request_size: 100_000,
            max_file_size: 1_000_000,
            ..Config::default()
        };
        tweak(&mut config);
        let state = AppState::new(config, store.clone()).await.unwrap();
        let app = app(state.clone());
        Some(Harness {
            app,
            state,
            store,
            pivotal,
            dir,
            pg_db,
        })
    }

    pub async fn finish(self) {
        self.store.close().await;
        if let Some(db) = self.pg_db {
            drop_database(&db).await;
        }
    }

    /// Sends a request; the body is parsed as JSON when it is JSON, else kept as a string.
    pub async fn send(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let (status, headers, bytes) = self.send_raw(req).await;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, headers, body)
    }

    pub async fn send_raw(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, headers, bytes.to_vec())
    }

    pub async fn call(
        &self,
        user: &str,
        key: &PrivateKey,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_versioned(user, key, method, path, body, "1")
            .await
    }

    pub async fn call_versioned(
        &self,
        user: &str,
        key: &PrivateKey,
        method: &str,
        path: &str,
        body: Option<Value>,
        api_version: &str,
    ) -> (StatusCode, Value) {
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let req = signed_api(
            user,
            key,
            method,
            path,
            bytes.as_bytes(),
            SigningVersion::V1_3,
            chrono::Utc::now(),
            api_version,
        );
        let (status, _, body) = self.send(req).await;
        (status, body)
    }

    pub async fn as_pivotal(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call("pivotal", &self.pivotal, method, path, body)
            .await
    }

    /// Requests signed as `name`.
    pub fn actor<'a>(&'a self, name: &'a str, key: &'a PrivateKey) -> As<'a> {
        As { h: self, name, key }
    }
}

/// Requests made by one actor.
pub struct As<'a> {
    h: &'a Harness,
    name: &'a str,
    key: &'a PrivateKey,
}

impl As<'_> {
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.h.call(self.name, self.key, "GET", path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.h
            .call(self.name, self.key, "POST", path, Some(body))
            .await
    }
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.h
            .call(self.name, self.key, "PUT", path, Some(body))
            .await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.h.call(self.name, self.key, "DELETE", path, None).await
    }
    pub async fn with_api(
        &self,
        api: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.h
            .call_versioned(self.name, self.key, method, path, body, api)
            .await
    }
}

pub fn rand_suffix() -> String {
    (0..8)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

pub fn fixture_key() -> PrivateKey {
    PrivateKey::from_pem(include_str!("../../../shared/tests/fixtures/fixed-key.pem")).unwrap()
}

pub fn other_key() -> PrivateKey {
    PrivateKey::from_pem(include_str!("../../../shared/tests/fixtures/other-key.pem")).unwrap()
}

async fn pg_admin(sql: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(PG_ADMIN_URL).await?;
    sqlx::query(sql).execute(&mut conn).await?;
    conn.close().await
}

pub fn signed(
    user: &str,
    key: &PrivateKey,
    method: &str,
    path: &str,
    body: &[u8],
    version: SigningVersion,
    at: chrono::DateTime<chrono::Utc>,
) -> Request<Body> {
    signed_api(user, key, method, path, body, version, at, "1")
}

/// A signed request sending (and, for 1.3, signing) `X-Ops-Server-API-Version: api`.
#[allow(clippy::too_many_arguments)]
pub fn signed_api(
    user: &str,
    key: &PrivateKey,
    method: &str,
    path: &str,
    body: &[u8],
    version: SigningVersion,
    at: chrono::DateTime<chrono::Utc>,
    api: &str,
) -> Request<Body> {
    let headers = sign_request(
        key,
        &RequestToSign {
            version,
            method,
            path: path.split('?').next().unwrap_or(path),
            body: signing::Body::Bytes(body),
            user_id: user,
            timestamp: at,
            server_api_version: api,
        },
    )
    .unwrap();
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "chef.test");
    for (k, v) in headers.iter() {
        req = req.header(k, v);
    }
    req.header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .unwrap()
}

/// Creates org `acme` with `alice` (admin) and `bob` (member); returns their keys.
pub async fn org_with_users(h: &Harness) -> (PrivateKey, PrivateKey) {
    let (status, body) = h
        .as_pivotal(
            "POST",
            "/organizations",
            Some(json!({"name": "acme", "full_name": "Acme"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let org = h.store.org("acme").await.unwrap().unwrap();
    let alice_key = fixture_key();
    let bob_key = other_key();
    for (name, key, admin) in [("alice", &alice_key, true), ("bob", &bob_key, false)] {
        let public = key.public_key().to_pem().unwrap();
        let (user, _) = accounts::create_user(
            &h.store,
            name,
            &json!({"username": name}),
            false,
            Some(&public),
            2048,
        )
        .await
        .unwrap();
        accounts::associate(&h.store, &org, &user, admin)
            .await
            .unwrap();
    }
    (alice_key, bob_key)
}

/// Takes `user` out of the org's `users` group: an org member who only reads (Chef's default
/// ACLs give writes to the replicated types to `users`).
pub async fn reader_only(h: &Harness, org: &str, user: &str) {
    let org = h.store.org(org).await.unwrap().unwrap();
    let mut members = h.store.group_members(org.id, "users").await.unwrap();
    members.users.retain(|u| u != user);
    h.store
        .set_group_members(org.id, "users", &members)
        .await
        .unwrap();
}

/// Serves the harness's router on 127.0.0.1 (for attacks that need a real socket); the task
/// ends with the test.
pub async fn listen(h: &Harness) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = h.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// `/_status` latencies (ms) probed every 20 ms until `stop` is set.
pub async fn probe_status(url: String, stop: tokio::sync::watch::Receiver<bool>) -> Vec<f64> {
    let client = reqwest::Client::new();
    let mut took = Vec::new();
    while !*stop.borrow() {
        let started = std::time::Instant::now();
        let resp = client.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        took.push(started.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    took
}

/// Asserts `/_status` kept answering while an attack ran: at least `min_probes` probes, none
/// over a second (a stalled server holds a probe for the whole attack), and at most one probe in
/// `slow_one_in`, rounded up, over 100 ms (a probe that lost the core to the test's own
/// attackers on a two-core machine; a short run of 17 probes may have one).
#[track_caller]
pub fn status_kept_answering(
    attack: &str,
    mut took: Vec<f64>,
    slow_one_in: usize,
    min_probes: usize,
) {
    took.sort_by(f64::total_cmp);
    let slow = took.iter().filter(|ms| **ms > 100.0).count();
    eprintln!(
        "{attack}: /_status {} probes, median {:.1} ms, max {:.1} ms, {slow} over 100 ms",
        took.len(),
        took[took.len() / 2],
        took[took.len() - 1],
    );
    assert!(
        took.len() >= min_probes,
        "{attack}: too few probes: {took:?}"
    );
    assert!(
        slow <= took.len().div_ceil(slow_one_in) && took[took.len() - 1] < 1_000.0,
        "{attack}: /_status slower than 100 ms in {slow} of {} probes: {took:?}",
        took.len()
    );
}

#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test] async fn $name() { if let Some(h) = super::Harness::new("sqlite").await { super::$name(&h).await; h.finish().await; } } )* }
        mod postgres { $( #[tokio::test] async fn $name() { if let Some(h) = super::Harness::new("postgres").await { super::$name(&h).await; h.finish().await; } } )* }
    };
}

pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

pub fn md5_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
}

/// The path-and-query of an absolute URL handed out by the server.
pub fn local(url: &str) -> String {
    url.strip_prefix("http://chef.test").unwrap().to_owned()
}

pub async fn upload(h: &Harness, url: &str, bytes: &[u8], content_md5: &str) -> StatusCode {
    let req = Request::put(local(url))
        .header("host", "chef.test")
        .header("content-type", "application/x-binary")
        .header("content-md5", content_md5)
        .body(Body::from(bytes.to_vec()))
        .unwrap();
    h.send(req).await.0
}

pub async fn download(h: &Harness, url: &str) -> (StatusCode, Vec<u8>) {
    let req = Request::get(local(url))
        .header("host", "chef.test")
        .body(Body::empty())
        .unwrap();
    let (status, _, bytes) = h.send_raw(req).await;
    (status, bytes)
}

/// Uploads `files` through a sandbox into org `acme` as `alice`; returns the sandbox reply.
pub async fn upload_files(h: &Harness, alice: &As<'_>, files: &[&[u8]]) -> Value {
    let checksums: serde_json::Map<String, Value> =
        files.iter().map(|f| (md5_hex(f), Value::Null)).collect();
    let (status, sandbox) = alice
        .post(
            "/organizations/acme/sandboxes",
            json!({ "checksums": checksums }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sandbox}");
    for file in files {
        let entry = &sandbox["checksums"][md5_hex(file)];
        if entry["needs_upload"] == true {
            let status = upload(h, entry["url"].as_str().unwrap(), file, &md5_b64(file)).await;
            assert_eq!(status, StatusCode::NO_CONTENT);
        }
    }
    let (status, body) = alice
        .put(
            &local(sandbox["uri"].as_str().unwrap()),
            json!({"is_completed": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    sandbox
}
