//! Cookbook file storage: content is deduplicated by SHA-256, so two orgs' different files
//! with one MD5 never stand in for one another; rows and blobs of the previous release (keyed
//! by MD5) still read; uploads never committed are swept after `sandbox_ttl`; failed uploads
//! leave nothing in the staging directory. SQLite and PostgreSQL, both blob stores.

#![allow(clippy::unwrap_used)]

#[path = "support/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use chef_sync_server::blob::{self, BlobStore, Swept};
use chef_sync_server::config::{BlobStoreKind, Config};
use chef_sync_server::{AppState, Store, accounts, app};
use chef_sync_shared::signing::SigningVersion;
use harness::*;
use md5::{Digest, Md5};
use serde_json::{Value, json};
use sha2::Sha256;
use tower::ServiceExt;

/// The classic public MD5 collision (Wang and Yu, 2004): two 128-byte messages that differ in
/// six bytes and share MD5 79054025255fb1a26e4bc422aef54eb4.
const COLLISION_A: &str = "d131dd02c5e6eec4693d9a0698aff95c2fcab58712467eab4004583eb8fb7f89\
                           55ad340609f4b30283e488832571415a085125e8f7cdc99fd91dbdf280373c5b\
                           d8823e3156348f5bae6dacd436c919c6dd53e2b487da03fd02396306d248cda0\
                           e99f33420f577ee8ce54b67080a80d1ec69821bcb6a8839396f9652b6ff72a70";
const COLLISION_B: &str = "d131dd02c5e6eec4693d9a0698aff95c2fcab50712467eab4004583eb8fb7f89\
                           55ad340609f4b30283e4888325f1415a085125e8f7cdc99fd91dbd7280373c5b\
                           d8823e3156348f5bae6dacd436c919c6dd53e23487da03fd02396306d248cda0\
                           e99f33420f577ee8ce54b67080280d1ec69821bcb6a8839396f965ab6ff72a70";

on_both_backends!(
    collision_uploaded_by_another_org_first_is_never_served,
    collision_uploaded_by_another_org_later_changes_nothing,
    uncommitted_uploads_are_swept,
    failed_uploads_leave_no_staging_files,
);

/// The same tests with file contents in the database (`blob_store = "database"`).
mod blobs_in_database {
    use super::*;

    macro_rules! on_both {
        ($($name:ident),* $(,)?) => {
            mod sqlite { $( #[tokio::test] async fn $name() { super::run("sqlite", super::super::$name).await } )* }
            mod postgres { $( #[tokio::test] async fn $name() { super::run("postgres", super::super::$name).await } )* }
        };
    }

    async fn run(backend: &str, test: impl AsyncFnOnce(&Harness)) {
        if let Some(h) = Harness::with_blobs(backend, BlobStoreKind::Database).await {
            test(&h).await;
            h.finish().await;
        }
    }

    on_both!(
        collision_uploaded_by_another_org_first_is_never_served,
        collision_uploaded_by_another_org_later_changes_nothing,
        uncommitted_uploads_are_swept_from_the_database,
    );
}

/// The legacy data set of the previous release, on every backend and blob store.
mod legacy {
    use super::*;

    #[tokio::test]
    async fn sqlite_files_on_disk() {
        legacy_rows_read_their_md5_blob("sqlite", BlobStoreKind::Filesystem).await;
    }

    #[tokio::test]
    async fn sqlite_files_in_database() {
        legacy_rows_read_their_md5_blob("sqlite", BlobStoreKind::Database).await;
    }

    #[tokio::test]
    async fn postgres_files_on_disk() {
        legacy_rows_read_their_md5_blob("postgres", BlobStoreKind::Filesystem).await;
    }

    #[tokio::test]
    async fn postgres_files_in_database() {
        legacy_rows_read_their_md5_blob("postgres", BlobStoreKind::Database).await;
    }
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

fn md5_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The collision pair, checked to be one: equal MD5, different bytes.
fn collision_pair() -> (Vec<u8>, Vec<u8>) {
    let a = hex::decode(COLLISION_A).unwrap();
    let b = hex::decode(COLLISION_B).unwrap();
    assert_ne!(a, b);
    assert_eq!(md5_hex(&a), md5_hex(&b));
    assert_eq!(md5_hex(&a), "79054025255fb1a26e4bc422aef54eb4");
    assert_ne!(sha256_hex(&a), sha256_hex(&b));
    (a, b)
}

/// The path-and-query of an absolute URL handed out by the server.
fn local(url: &str) -> String {
    url.strip_prefix("http://chef.test").unwrap().to_owned()
}

async fn upload(h: &Harness, url: &str, bytes: &[u8]) -> StatusCode {
    upload_body(h, url, Body::from(bytes.to_vec()), &md5_b64(bytes)).await
}

async fn upload_body(h: &Harness, url: &str, body: Body, content_md5: &str) -> StatusCode {
    let req = Request::put(local(url))
        .header("host", "chef.test")
        .header("content-type", "application/x-binary")
        .header("content-md5", content_md5)
        .body(body)
        .unwrap();
    h.send(req).await.0
}

async fn download(h: &Harness, url: &str) -> (StatusCode, Vec<u8>) {
    let req = Request::get(local(url))
        .header("host", "chef.test")
        .body(Body::empty())
        .unwrap();
    let (status, _, bytes) = h.send_raw(req).await;
    (status, bytes)
}

/// Org `evil` with its admin `mallory`.
async fn evil_org(h: &Harness) -> chef_sync_shared::PrivateKey {
    let (status, body) = h
        .as_pivotal(
            "POST",
            "/organizations",
            Some(json!({"name": "evil", "full_name": "Evil"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let org = h.store.org("evil").await.unwrap().unwrap();
    let key = other_key();
    let public = key.public_key().to_pem().unwrap();
    let (user, _) = accounts::create_user(
        &h.store,
        "mallory",
        &json!({"username": "mallory"}),
        false,
        Some(&public),
        2048,
    )
    .await
    .unwrap();
    accounts::associate(&h.store, &org, &user, true)
        .await
        .unwrap();
    key
}

/// Opens a sandbox in `org` for `files`; returns its reply.
async fn open_sandbox(actor: &As<'_>, org: &str, files: &[&[u8]]) -> Value {
    let checksums: serde_json::Map<String, Value> =
        files.iter().map(|f| (md5_hex(f), Value::Null)).collect();
    let (status, sandbox) = actor
        .post(
            &format!("/organizations/{org}/sandboxes"),
            json!({ "checksums": checksums }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sandbox}");
    sandbox
}

/// Uploads `file` into an open sandbox (it must need an upload).
async fn upload_into(h: &Harness, sandbox: &Value, file: &[u8]) {
    let entry = &sandbox["checksums"][md5_hex(file)];
    assert_eq!(entry["needs_upload"], true, "{sandbox}");
    let status = upload(h, entry["url"].as_str().unwrap(), file).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

async fn commit(actor: &As<'_>, sandbox: &Value) -> (StatusCode, Value) {
    actor
        .put(
            &local(sandbox["uri"].as_str().unwrap()),
            json!({"is_completed": true}),
        )
        .await
}

/// Uploads `file` through a sandbox of `org` and publishes cookbook `demo` 1.0.0 with it as
/// its recipe; returns the recipe's download URL from the cookbook.
async fn publish(h: &Harness, actor: &As<'_>, org: &str, file: &[u8]) -> String {
    let sandbox = open_sandbox(actor, org, &[file]).await;
    upload_into(h, &sandbox, file).await;
    let (status, body) = commit(actor, &sandbox).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let manifest = json!({
        "name": "demo-1.0.0", "cookbook_name": "demo", "version": "1.0.0",
        "json_class": "Chef::CookbookVersion", "chef_type": "cookbook_version", "frozen?": false,
        "metadata": {"name": "demo", "version": "1.0.0"},
        "recipes": [{"name": "default.rb", "path": "recipes/default.rb", "checksum": md5_hex(file), "specificity": "default"}],
    });
    let url = format!("/organizations/{org}/cookbooks/demo/1.0.0");
    let (status, body) = actor.put(&url, manifest).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, cookbook) = actor.get(&url).await;
    assert_eq!(status, StatusCode::OK, "{cookbook}");
    cookbook["recipes"][0]["url"].as_str().unwrap().to_owned()
}

/// Downloads through `url` and expects exactly `expected`.
async fn assert_serves(h: &Harness, url: &str, expected: &[u8], whose: &str) {
    let (status, bytes) = download(h, url).await;
    assert_eq!(status, StatusCode::OK, "{whose}");
    assert!(bytes == expected, "{whose}'s download served other bytes");
}

/// The attack: evil stores variant B first; acme uploads the benign variant A (same MD5),
/// publishes it, and must be served A, while evil keeps B.
async fn collision_uploaded_by_another_org_first_is_never_served(h: &Harness) {
    let (a, b) = collision_pair();
    let (alice, _) = org_with_users(h).await;
    let mallory = evil_org(h).await;
    let alice = h.actor("alice", &alice);
    let mallory = h.actor("mallory", &mallory);

    let evil_url = publish(h, &mallory, "evil", &b).await;
    // Evil's upload must not make acme's sandbox skip the upload.
    let acme_url = publish(h, &alice, "acme", &a).await;
    assert_serves(h, &acme_url, &a, "acme").await;
    assert_serves(h, &evil_url, &b, "evil").await;

    // A later sandbox of either org knows its own file and needs no upload.
    for (actor, org) in [(&alice, "acme"), (&mallory, "evil")] {
        let again = open_sandbox(actor, org, &[&a]).await;
        assert_eq!(
            again["checksums"][md5_hex(&a)],
            json!({"needs_upload": false})
        );
        let (status, body) = commit(actor, &again).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_serves(h, &acme_url, &a, "acme").await;
    assert_serves(h, &evil_url, &b, "evil").await;
}

/// The other order: acme's file is stored first; evil's colliding upload neither replaces it
/// for acme nor is served acme's bytes.
async fn collision_uploaded_by_another_org_later_changes_nothing(h: &Harness) {
    let (a, b) = collision_pair();
    let (alice, _) = org_with_users(h).await;
    let mallory = evil_org(h).await;
    let alice = h.actor("alice", &alice);
    let mallory = h.actor("mallory", &mallory);

    let acme_url = publish(h, &alice, "acme", &a).await;
    let evil_url = publish(h, &mallory, "evil", &b).await;
    assert_serves(h, &acme_url, &a, "acme").await;
    assert_serves(h, &evil_url, &b, "evil").await;
}

/// A server over the harness's database and data directory with a 1-second `sandbox_ttl`.
fn short_ttl_config(h: &Harness, kind: BlobStoreKind) -> Config {
    Config {
        data_dir: h.dir.path().to_owned(),
        blob_store: kind,
        sandbox_ttl: 1,
        ..Config::default()
    }
}

fn blob_file(dir: &Path, key: &str) -> PathBuf {
    dir.join("blobs").join(&key[..2]).join(key)
}

/// Whether blob `key` is stored: the file, or the `blobs` row.
async fn blob_stored(h: &Harness, kind: BlobStoreKind, key: &str) -> bool {
    match kind {
        BlobStoreKind::Filesystem => blob_file(h.dir.path(), key).exists(),
        BlobStoreKind::Database => h.store.blob(key).await.unwrap().is_some(),
    }
}

async fn uncommitted_uploads_are_swept(h: &Harness) {
    sweep_with(h, BlobStoreKind::Filesystem).await;
}

async fn uncommitted_uploads_are_swept_from_the_database(h: &Harness) {
    sweep_with(h, BlobStoreKind::Database).await;
}

async fn sweep_with(h: &Harness, kind: BlobStoreKind) {
    let (alice, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice);
    let abandoned: &[u8] = b"uploaded, never committed";
    let kept: &[u8] = b"committed";
    let touched: &[u8] = b"stored again just before the sweep";

    // An upload into a sandbox nobody commits.
    let open = open_sandbox(&alice, "acme", &[abandoned]).await;
    upload_into(h, &open, abandoned).await;
    // A committed file, also uploaded through a second sandbox that is never committed (a
    // re-upload of a file the org has must keep working once that sandbox expires).
    let first = open_sandbox(&alice, "acme", &[kept]).await;
    let second = open_sandbox(&alice, "acme", &[kept]).await;
    upload_into(h, &first, kept).await;
    upload_into(h, &second, kept).await;
    let (status, body) = commit(&alice, &first).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let kept_url = publish_existing(&alice, kept).await;
    // A blob nothing references yet, as while an upload is in flight.
    let config = short_ttl_config(h, kind);
    let blobs = BlobStore::from_config(&config, &h.store);
    store_directly(&config, &blobs, touched).await;
    for file in [abandoned, kept, touched] {
        assert!(blob_stored(h, kind, &sha256_hex(file)).await);
    }

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    // The in-flight upload stores the same content again: it is young again.
    store_directly(&config, &blobs, touched).await;
    let swept = blob::sweep(&config, &h.store).await.unwrap();
    assert_eq!(
        swept,
        Swept {
            sandboxes: 2,
            blobs: 1,
            staged: 0
        }
    );
    assert!(!blob_stored(h, kind, &sha256_hex(abandoned)).await);
    assert!(blob_stored(h, kind, &sha256_hex(touched)).await);
    assert!(blob_stored(h, kind, &sha256_hex(kept)).await);
    assert_serves(h, &kept_url, kept, "acme").await;

    // The expired sandboxes are gone for commits and uploads alike.
    let (status, _) = commit(&alice, &open).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = commit(&alice, &second).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let url = open["checksums"][md5_hex(abandoned)]["url"]
        .as_str()
        .unwrap();
    assert_eq!(upload(h, url, abandoned).await, StatusCode::NOT_FOUND);

    // The abandoned file must be uploaded again, and then commits fine.
    let again = open_sandbox(&alice, "acme", &[abandoned, kept]).await;
    assert_eq!(
        again["checksums"][md5_hex(kept)],
        json!({"needs_upload": false})
    );
    upload_into(h, &again, abandoned).await;
    let (status, body) = commit(&alice, &again).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Two processes sweeping at once remove the now old, still unreferenced in-flight blob
    // once between them, and neither fails; committed files stay.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (one, other) = tokio::join!(
        blob::sweep(&config, &h.store),
        blob::sweep(&config, &h.store)
    );
    let (one, other) = (one.unwrap(), other.unwrap());
    assert_eq!(one.sandboxes + other.sandboxes, 0);
    assert_eq!(one.blobs + other.blobs, 1, "{one:?} {other:?}");
    assert!(!blob_stored(h, kind, &sha256_hex(touched)).await);
    for file in [abandoned, kept] {
        assert!(blob_stored(h, kind, &sha256_hex(file)).await);
    }
    assert_serves(h, &kept_url, kept, "acme").await;
    assert_eq!(
        blob::sweep(&config, &h.store).await.unwrap(),
        Swept::default()
    );
}

/// Publishes cookbook `demo` 1.0.0 with a file the org already committed; returns its URL.
async fn publish_existing(actor: &As<'_>, file: &[u8]) -> String {
    let manifest = json!({
        "name": "demo-1.0.0", "cookbook_name": "demo", "version": "1.0.0",
        "json_class": "Chef::CookbookVersion", "chef_type": "cookbook_version", "frozen?": false,
        "metadata": {"name": "demo", "version": "1.0.0"},
        "recipes": [{"name": "default.rb", "path": "recipes/default.rb", "checksum": md5_hex(file), "specificity": "default"}],
    });
    let url = "/organizations/acme/cookbooks/demo/1.0.0";
    let (status, body) = actor.put(url, manifest).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, cookbook) = actor.get(url).await;
    cookbook["recipes"][0]["url"].as_str().unwrap().to_owned()
}

/// Receives and stores `file` the way the upload handler does, without a sandbox row.
async fn store_directly(config: &Config, blobs: &BlobStore, file: &[u8]) {
    let upload = blob::receive(
        Body::from(file.to_vec()),
        BlobStore::staging_dir(config),
        &md5_hex(file),
        1_000_000,
    )
    .await
    .unwrap();
    assert_eq!(upload.sha256, sha256_hex(file));
    blobs.insert(upload).await.unwrap();
}

fn staged_files(h: &Harness) -> Vec<PathBuf> {
    match std::fs::read_dir(h.dir.path().join("tmp")) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

async fn failed_uploads_leave_no_staging_files(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice);
    let good: &[u8] = b"the real content";
    let big = vec![b'x'; 1_000_001];
    let sandbox = open_sandbox(&alice, "acme", &[good, &big]).await;
    let good_url = sandbox["checksums"][md5_hex(good)]["url"].as_str().unwrap();
    let big_url = sandbox["checksums"][md5_hex(&big)]["url"].as_str().unwrap();

    // Bytes whose MD5 is not the URL's (with a Content-MD5 that claims it is).
    let mismatch = upload_body(h, good_url, Body::from(&b"other bytes"[..]), &md5_b64(good)).await;
    assert_eq!(mismatch, StatusCode::BAD_REQUEST);
    assert_eq!(
        staged_files(h),
        Vec::<PathBuf>::new(),
        "after an MD5 mismatch"
    );
    // Over max_file_size.
    assert_eq!(
        upload(h, big_url, &big).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        staged_files(h),
        Vec::<PathBuf>::new(),
        "after a too-large file"
    );
    // The client going away mid-body.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(good[..4].to_vec()),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "gone",
        )),
    ];
    let broken = Body::from_stream(futures_util::stream::iter(chunks));
    let status = upload_body(h, good_url, broken, &md5_b64(good)).await;
    assert!(
        status.is_client_error() || status.is_server_error(),
        "{status}"
    );
    assert_eq!(
        staged_files(h),
        Vec::<PathBuf>::new(),
        "after a broken upload"
    );
    // None of them counts as uploaded.
    let (status, _) = commit(&alice, &sandbox).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // A staging file a crashed process left behind goes with the sweep once old; one being
    // written now stays.
    let staging = h.dir.path().join("tmp");
    std::fs::create_dir_all(&staging).unwrap();
    let dead = staging.join(".tmpDEAD01");
    let live = staging.join(".tmpLIVE01");
    std::fs::write(&dead, b"partial").unwrap();
    std::fs::write(&live, b"partial").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&dead)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(2 * 3600))
        .unwrap();
    let config = short_ttl_config(h, BlobStoreKind::Filesystem);
    let swept = blob::sweep(&config, &h.store).await.unwrap();
    assert_eq!(swept.staged, 1);
    assert!(!dead.exists());
    assert!(live.exists());
}

/// Applies the migrations of the release before SHA-256 keys (versions 1 and 2) to `url`.
async fn migrate_to_previous_release(url: &str, dialect: &str, scratch: &Path) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations")
        .join(format!("server-{dialect}"));
    let old = scratch.join(format!("previous-{dialect}"));
    std::fs::create_dir_all(&old).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.starts_with("0001_") || name.starts_with("0002_") {
            std::fs::copy(&path, old.join(name)).unwrap();
        }
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let migrator = sqlx::migrate::Migrator::new(old.as_path()).await.unwrap();
    assert_eq!(migrator.iter().count(), 2);
    migrator.run(&pool).await.unwrap();
    pool.close().await;
}

/// Rows and blobs as the previous release wrote them: org `acme` committed `committed`
/// (blob under its MD5), and has an open sandbox into which `pending` was uploaded.
async fn write_previous_release_data(
    url: &str,
    data_dir: &Path,
    kind: BlobStoreKind,
    committed: &[u8],
    pending: &[u8],
) {
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let exec = |sql: &'static str| sqlx::query(sql);
    exec("INSERT INTO orgs (name, full_name, guid) VALUES ('acme', 'Acme', '0123456789abcdef0123456789abcdef')")
        .execute(&pool)
        .await
        .unwrap();
    for group in accounts::GROUPS {
        sqlx::query(
            "INSERT INTO groups (org_id, name) SELECT id, $1 FROM orgs WHERE name = 'acme'",
        )
        .bind(group)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO org_checksums (org_id, checksum) SELECT id, $1 FROM orgs WHERE name = 'acme'",
    )
    .bind(md5_hex(committed))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO sandboxes (id, org_id, created_at, completed) SELECT 'aaaabbbbccccddddeeeeffff00001111', id, $1, 0 FROM orgs WHERE name = 'acme'")
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO sandbox_checksums (sandbox_id, checksum, uploaded) VALUES ('aaaabbbbccccddddeeeeffff00001111', $1, 1)")
        .bind(md5_hex(pending))
        .execute(&pool)
        .await
        .unwrap();
    for file in [committed, pending] {
        let md5 = md5_hex(file);
        match kind {
            BlobStoreKind::Filesystem => {
                let path = blob_file(data_dir, &md5);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, file).unwrap();
            }
            BlobStoreKind::Database => {
                sqlx::query("INSERT INTO blobs (checksum, data) VALUES ($1, $2)")
                    .bind(md5)
                    .bind(file.to_vec())
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        }
    }
    pool.close().await;
}

/// A data directory and database of the previous release open with every file intact: the
/// committed file downloads, needs no upload, and the file uploaded into a sandbox before the
/// upgrade commits and downloads too. The sweep leaves the MD5-keyed blobs alone.
async fn legacy_rows_read_their_md5_blob(backend: &str, kind: BlobStoreKind) {
    let dir = tempfile::tempdir().unwrap();
    let Some((url, pg_db)) = fresh_database(backend, dir.path()).await else {
        return;
    };
    let raw_url = match backend {
        "sqlite" => format!("{url}?mode=rwc"),
        _ => url.clone(),
    };
    let committed: &[u8] = b"# written by the previous release\n";
    let pending: &[u8] = b"# uploaded before the upgrade, committed after\n";
    migrate_to_previous_release(&raw_url, backend, dir.path()).await;
    write_previous_release_data(&raw_url, dir.path(), kind, committed, pending).await;

    // The upgrade: the current server opens the same database and data directory.
    let store = Store::connect(&url, 4).await.unwrap();
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
    let config = Config {
        data_dir: dir.path().to_owned(),
        database: Some(url.clone()),
        blob_store: kind,
        sandbox_ttl: 1,
        ..Config::default()
    };
    let state = AppState::new(config.clone(), store.clone()).await.unwrap();
    let urls = state.urls.clone();
    let router = app(state);
    let send = |method: &str, path: &str, body: Option<Value>| {
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let req = signed(
            "pivotal",
            &pivotal,
            method,
            path,
            bytes.as_bytes(),
            SigningVersion::V1_3,
            chrono::Utc::now(),
        );
        let router = router.clone();
        async move {
            let resp = router.oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, bytes.to_vec())
        }
    };
    let fetch = |checksum: String| {
        let path = format!("/file_store/organizations/acme/checksums/{checksum}");
        let signed_path = urls.sign("GET", &path, chrono::Utc::now().timestamp());
        let router = router.clone();
        async move {
            let req = Request::get(signed_path)
                .header("host", "chef.test")
                .body(Body::empty())
                .unwrap();
            let resp = router.oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, bytes.to_vec())
        }
    };

    assert_eq!(
        fetch(md5_hex(committed)).await,
        (StatusCode::OK, committed.to_vec())
    );
    let body = json!({"checksums": {md5_hex(committed): null}});
    let (status, reply) = send("POST", "/organizations/acme/sandboxes", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED);
    let reply: Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(
        reply["checksums"][md5_hex(committed)],
        json!({"needs_upload": false})
    );
    let (status, reply) = send(
        "PUT",
        "/organizations/acme/sandboxes/aaaabbbbccccddddeeeeffff00001111",
        Some(json!({"is_completed": true})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert_eq!(
        fetch(md5_hex(pending)).await,
        (StatusCode::OK, pending.to_vec())
    );

    // Legacy blobs are never swept, however old.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    blob::sweep(&config, &store).await.unwrap();
    for file in [committed, pending] {
        assert_eq!(fetch(md5_hex(file)).await, (StatusCode::OK, file.to_vec()));
    }
    store.close().await;
    if let Some(db) = pg_db {
        drop_database(&db).await;
    }
}
