//! Attacks a security review tried against the server that were refused ("held"), kept as
//! regression tests where no other test had them, or had them only in part: clock skew just past the limit, headers and
//! paths changed after signing, actors of another org, readers, nodes and every non-sync
//! writer of a replica org trying to write, spoiled pre-signed file URLs, SQL metacharacters,
//! 5,000-deep JSON, 3 MB bodies with and without a Content-Length, hundreds of open long-polls,
//! and the modes of the server's own files. Each refusal is checked for its status and Chef's
//! `{"error": ["…"]}` body, and the org must read exactly as before.

#![allow(clippy::unwrap_used)]

#[path = "support/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chef_sync_server::store::{KeyOwner, KeyRow};
use chef_sync_shared::PrivateKey;
use chef_sync_shared::signing::{SigningVersion, content_hash};
use harness::*;

use serde_json::{Value, json};

on_both_backends!(
    clock_skew_past_900_seconds_is_refused,
    headers_changed_after_signing_are_refused,
    paths_reencoded_after_signing_are_refused,
    another_orgs_admin_and_clients_reach_nothing,
    readers_nodes_and_the_validator_cannot_write,
    replica_orgs_take_writes_from_the_sync_user_only,
    spoiled_file_urls_are_refused,
    sql_metacharacters_are_only_ever_data,
    json_nested_5000_deep_is_refused,
    three_megabyte_bodies_are_413_with_or_without_a_length,
);

/// The long-poll test on a two-worker runtime, as the server runs in production: on the
/// harness's one-thread runtime the test's own 350 clients would share the server's only
/// thread, and `/_status` would measure them rather than the server.
mod long_polls {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        if let Some(h) = Harness::new("sqlite").await {
            hundreds_of_long_polls_leave_the_server_answering(&h).await;
            h.finish().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(h) = Harness::new("postgres").await {
            hundreds_of_long_polls_leave_the_server_answering(&h).await;
            h.finish().await;
        }
    }
}

/// The recipe of cookbook `demo` 1.0.0 in the seeded org.
const RECIPE: &[u8] = b"package 'nginx'\n";
/// What the seeded org's role `sql` describes itself as: SQL text stored as plain data.
const SQL_DESCRIPTION: &str = "'; DROP TABLE roles; --";

/// Org `acme` with one object of each type, its actors and the recipe's download URL.
struct Acme {
    /// Admin.
    alice: PrivateKey,
    /// Member, not an admin: a reader.
    bob: PrivateKey,
    /// Client `node1` (a node): a reader.
    node: PrivateKey,
    /// `acme-validator`'s key.
    validator: PrivateKey,
    /// Absolute pre-signed download URL of [`RECIPE`].
    recipe_url: String,
}

fn manifest(version: &str, checksum: &str) -> Value {
    json!({
        "name": format!("demo-{version}"), "cookbook_name": "demo", "version": version,
        "json_class": "Chef::CookbookVersion", "chef_type": "cookbook_version", "frozen?": false,
        "metadata": {"name": "demo", "version": version},
        "recipes": [{"name": "default.rb", "path": "recipes/default.rb", "checksum": checksum, "specificity": "default"}],
    })
}

#[track_caller]
fn succeeded((status, body): (StatusCode, Value)) -> Value {
    assert!(
        status == StatusCode::CREATED || status == StatusCode::OK,
        "setup step failed: {status} {body}"
    );
    body
}

/// A file upload through a pre-signed URL (no Chef signature: the URL is the credential).
async fn upload(h: &Harness, url: &str, bytes: &[u8]) -> (StatusCode, Value) {
    let req = Request::put(local(url))
        .header("host", "chef.test")
        .header("content-type", "application/x-binary")
        .header("content-md5", md5_b64(bytes))
        .body(Body::from(bytes.to_vec()))
        .unwrap();
    let (status, _, body) = h.send(req).await;
    (status, body)
}

async fn download(h: &Harness, path_and_query: &str) -> (StatusCode, Vec<u8>) {
    let req = Request::get(path_and_query)
        .header("host", "chef.test")
        .body(Body::empty())
        .unwrap();
    let (status, _, bytes) = h.send_raw(req).await;
    (status, bytes)
}

/// Creates `acme` with a role, an environment, a data bag with an item, cookbook `demo`
/// 1.0.0 with its recipe uploaded, client `node1`, and a known key for the validator.
async fn seed(h: &Harness) -> Acme {
    let (alice, bob) = org_with_users(h).await;
    let a = h.actor("alice", &alice);
    let o = "/organizations/acme";
    succeeded(
        a.post(
            &format!("{o}/roles"),
            json!({"name": "web", "run_list": ["recipe[nginx]"]}),
        )
        .await,
    );
    succeeded(
        a.post(
            &format!("{o}/roles"),
            json!({"name": "sql", "description": SQL_DESCRIPTION}),
        )
        .await,
    );
    succeeded(
        a.post(
            &format!("{o}/environments"),
            json!({"name": "prod", "description": "production"}),
        )
        .await,
    );
    succeeded(
        a.post(&format!("{o}/data"), json!({"name": "secrets"}))
            .await,
    );
    succeeded(
        a.post(
            &format!("{o}/data/secrets"),
            json!({"id": "db", "password": "hunter2"}),
        )
        .await,
    );
    let md5 = md5_hex(RECIPE);
    let sandbox = succeeded(
        a.post(
            &format!("{o}/sandboxes"),
            json!({"checksums": { md5.clone(): null }}),
        )
        .await,
    );
    let (status, body) = upload(
        h,
        sandbox["checksums"][&md5]["url"].as_str().unwrap(),
        RECIPE,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    succeeded(
        a.put(
            &local(sandbox["uri"].as_str().unwrap()),
            json!({"is_completed": true}),
        )
        .await,
    );
    succeeded(
        a.put(
            &format!("{o}/cookbooks/demo/1.0.0"),
            manifest("1.0.0", &md5),
        )
        .await,
    );
    let (_, cookbook) = a.get(&format!("{o}/cookbooks/demo/1.0.0")).await;
    let recipe_url = cookbook["recipes"][0]["url"].as_str().unwrap().to_owned();
    // Keys the test holds (made once: generating RSA keys is slow). Who signs is told by the
    // name in X-Ops-UserId; sharing a public key between actors does not make one the other.
    let node = other_key();
    succeeded(
        a.post(
            &format!("{o}/clients"),
            json!({"name": "node1", "public_key": node.public_key().to_pem().unwrap()}),
        )
        .await,
    );
    let validator = other_key();
    let org = h.store.org("acme").await.unwrap().unwrap();
    let row = h
        .store
        .client(org.id, "acme-validator")
        .await
        .unwrap()
        .unwrap();
    h.store
        .replace_key(
            KeyOwner::Client(row.id),
            "default",
            &KeyRow {
                name: "default".into(),
                public_key: validator.public_key().to_pem().unwrap(),
                expires_at: None,
            },
        )
        .await
        .unwrap();
    Acme {
        alice,
        bob,
        node,
        validator,
        recipe_url,
    }
}

/// Org `other` with its admin `mallory` and client `spy` (both with the returned key), and a
/// role mallory made there: she is a real admin, just not of `acme`.
async fn other_org(h: &Harness) -> PrivateKey {
    succeeded(
        h.as_pivotal(
            "POST",
            "/organizations",
            Some(json!({"name": "other", "full_name": "Other"})),
        )
        .await,
    );
    let org = h.store.org("other").await.unwrap().unwrap();
    let key = other_key();
    let public = key.public_key().to_pem().unwrap();
    let (user, _) = chef_sync_server::accounts::create_user(
        &h.store,
        "mallory",
        &json!({"username": "mallory"}),
        false,
        Some(&public),
        2048,
    )
    .await
    .unwrap();
    chef_sync_server::accounts::associate(&h.store, &org, &user, true)
        .await
        .unwrap();
    let m = h.actor("mallory", &key);
    succeeded(
        m.post("/organizations/other/roles", json!({"name": "theirs"}))
            .await,
    );
    succeeded(
        m.post(
            "/organizations/other/clients",
            json!({"name": "spy", "public_key": public}),
        )
        .await,
    );
    key
}

/// Reads `path` as pivotal (who can read every org, replicas included).
async fn read(h: &Harness, path: &str) -> Value {
    let (status, body) = h.as_pivotal("GET", path, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

fn names(listing: &Value) -> Vec<String> {
    listing.as_object().unwrap().keys().cloned().collect()
}

/// Replaces pre-signed URLs (whose expiry moves with the clock) by a marker.
fn without_signed_urls(v: &mut Value) {
    match v {
        Value::String(s) if s.contains("signature=") => *s = "<signed url>".into(),
        Value::Array(items) => items.iter_mut().for_each(without_signed_urls),
        Value::Object(map) => map.values_mut().for_each(without_signed_urls),
        _ => {}
    }
}

/// Everything stored in `org` that the API shows: every object, client, group and member,
/// the org itself and its change feed. Any write an attack got through shows up here.
async fn snapshot(h: &Harness, org: &str) -> Value {
    let base = format!("/organizations/{org}");
    let mut out = serde_json::Map::new();
    for rel in ["roles", "environments", "clients", "groups"] {
        let list = read(h, &format!("{base}/{rel}")).await;
        for name in names(&list) {
            let one = read(h, &format!("{base}/{rel}/{name}")).await;
            out.insert(format!("{rel}/{name}"), one);
        }
        out.insert(rel.into(), list);
    }
    let bags = read(h, &format!("{base}/data")).await;
    for bag in names(&bags) {
        let items = read(h, &format!("{base}/data/{bag}")).await;
        for item in names(&items) {
            let one = read(h, &format!("{base}/data/{bag}/{item}")).await;
            out.insert(format!("data/{bag}/{item}"), one);
        }
        out.insert(format!("data/{bag}"), items);
    }
    out.insert("data".into(), bags);
    let cookbooks = read(h, &format!("{base}/cookbooks?num_versions=all")).await;
    for (name, entry) in cookbooks.as_object().unwrap() {
        for version in entry["versions"].as_array().unwrap() {
            let version = version["version"].as_str().unwrap();
            let mut one = read(h, &format!("{base}/cookbooks/{name}/{version}")).await;
            without_signed_urls(&mut one);
            out.insert(format!("cookbooks/{name}/{version}"), one);
        }
    }
    out.insert("cookbooks".into(), cookbooks);
    out.insert("users".into(), read(h, &format!("{base}/users")).await);
    out.insert("org".into(), read(h, &base).await);
    out.insert(
        "feed".into(),
        read(h, &format!("{base}/updated_since?seq=0")).await,
    );
    Value::Object(out)
}

/// Collects every refusal that was not as expected, so that one run reports them all.
#[derive(Default)]
struct Refusals(Vec<String>);

impl Refusals {
    /// Expects `expected` and a Chef error body whose first message contains `message`.
    fn check(
        &mut self,
        what: &str,
        (status, body): (StatusCode, Value),
        expected: StatusCode,
        message: &str,
    ) {
        let chef_body = body["error"]
            .as_array()
            .is_some_and(|m| !m.is_empty() && m.iter().all(Value::is_string));
        let says = body["error"][0]
            .as_str()
            .is_some_and(|m| m.contains(message));
        if status != expected || !chef_body || !says {
            self.0.push(format!(
                "{what}: expected {expected} saying {message:?}, got {status} {body}"
            ));
        }
    }

    #[track_caller]
    fn assert_all_held(self) {
        assert!(
            self.0.is_empty(),
            "{} refusals not as expected:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// Sends `req` and returns its status and (JSON) body.
async fn send(h: &Harness, req: Request<Body>) -> (StatusCode, Value) {
    let (status, _, body) = h.send(req).await;
    (status, body)
}

/// Writes of replicated objects (roles, environments, data bags and items, sandboxes,
/// cookbooks) in `org`, each with a body that would be accepted from an admin.
fn object_writes(org: &str) -> Vec<(&'static str, String, Option<Value>)> {
    let o = format!("/organizations/{org}");
    let evil_file = md5_hex(b"evil");
    vec![
        ("POST", format!("{o}/roles"), Some(json!({"name": "evil"}))),
        (
            "PUT",
            format!("{o}/roles/web"),
            Some(json!({"name": "web", "run_list": ["recipe[evil]"]})),
        ),
        ("DELETE", format!("{o}/roles/web"), None),
        (
            "POST",
            format!("{o}/environments"),
            Some(json!({"name": "evil"})),
        ),
        (
            "PUT",
            format!("{o}/environments/prod"),
            Some(json!({"name": "prod", "description": "evil"})),
        ),
        ("DELETE", format!("{o}/environments/prod"), None),
        ("POST", format!("{o}/data"), Some(json!({"name": "evil"}))),
        ("DELETE", format!("{o}/data/secrets"), None),
        (
            "POST",
            format!("{o}/data/secrets"),
            Some(json!({"id": "evil"})),
        ),
        (
            "PUT",
            format!("{o}/data/secrets/db"),
            Some(json!({"id": "db", "password": "evil"})),
        ),
        ("DELETE", format!("{o}/data/secrets/db"), None),
        (
            "POST",
            format!("{o}/sandboxes"),
            Some(json!({"checksums": { evil_file: null }})),
        ),
        (
            "PUT",
            format!("{o}/cookbooks/demo/1.0.0"),
            Some({
                let mut m = manifest("1.0.0", &md5_hex(RECIPE));
                m["metadata"]["description"] = json!("evil");
                m
            }),
        ),
        (
            "PUT",
            format!("{o}/cookbooks/demo/2.0.0"),
            Some(manifest("2.0.0", &md5_hex(RECIPE))),
        ),
        ("DELETE", format!("{o}/cookbooks/demo/1.0.0"), None),
    ]
}

/// Administrative writes in `org` (clients, groups, members, the org itself), among them
/// the ways to make oneself an admin.
fn admin_writes(org: &str) -> Vec<(&'static str, String, Option<Value>)> {
    let o = format!("/organizations/{org}");
    vec![
        (
            "POST",
            format!("{o}/clients"),
            Some(json!({"name": "evil"})),
        ),
        (
            "PUT",
            format!("{o}/clients/node1"),
            Some(json!({"name": "node1", "validator": true})),
        ),
        (
            "PUT",
            format!("{o}/groups/admins"),
            Some(
                json!({"actors": {"users": ["alice", "bob", "mallory"], "clients": ["node1", "spy"]}}),
            ),
        ),
        (
            "POST",
            format!("{o}/groups"),
            Some(json!({"groupname": "evil"})),
        ),
        (
            "POST",
            format!("{o}/users"),
            Some(json!({"username": "mallory"})),
        ),
        ("DELETE", format!("{o}/users/alice"), None),
        ("PUT", o.clone(), Some(json!({"full_name": "Evil"}))),
    ]
}

/// A time `offset` seconds from now, rounded away from now to a whole second: X-Ops-Timestamp
/// carries whole seconds, and a signer's truncation must not bring "901 s ahead" down to
/// 900.x by the time the server looks.
fn seconds_off(offset: i64) -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    let whole = now.timestamp() + i64::from(offset > 0 && now.timestamp_subsec_nanos() > 0);
    chrono::DateTime::from_timestamp(whole + offset, 0).unwrap()
}

async fn clock_skew_past_900_seconds_is_refused(h: &Harness) {
    let acme = seed(h).await;
    let before = snapshot(h, "acme").await;
    let mut held = Refusals::default();
    let path = "/organizations/acme/roles/web";
    let body = json!({"name": "web", "run_list": ["recipe[evil]"]}).to_string();
    // 901 s is one second past the allowed 900, either way; a day is far past it. Every
    // protocol version signs the timestamp.
    for offset in [901, -901, 86_400, -86_400] {
        for version in [SigningVersion::V1_0, SigningVersion::V1_3] {
            for (method, bytes) in [("GET", ""), ("PUT", body.as_str()), ("DELETE", "")] {
                let req = signed(
                    "alice",
                    &acme.alice,
                    method,
                    path,
                    bytes.as_bytes(),
                    version,
                    seconds_off(offset),
                );
                held.check(
                    &format!("{method} {offset:+} s ({version})"),
                    send(h, req).await,
                    StatusCode::UNAUTHORIZED,
                    "Failed to authenticate as alice. Synchronize the clock on your host.",
                );
            }
        }
    }
    held.assert_all_held();
    // The limit is where it says: well inside it, the same request is taken.
    for offset in [880, -880] {
        let req = signed(
            "alice",
            &acme.alice,
            "GET",
            path,
            b"",
            SigningVersion::V1_3,
            seconds_off(offset),
        );
        let (status, reply) = send(h, req).await;
        assert_eq!(status, StatusCode::OK, "{offset:+} s: {reply}");
    }
    assert_eq!(snapshot(h, "acme").await, before, "nothing stored changed");
}

async fn headers_changed_after_signing_are_refused(h: &Harness) {
    let acme = seed(h).await;
    let before = snapshot(h, "acme").await;
    let mut held = Refusals::default();
    let now = chrono::Utc::now;
    let path = "/organizations/acme/roles/web";
    // Every request below would change the role were it accepted, so the snapshot would show it.
    let evil = json!({"name": "web", "run_list": ["recipe[evil]"]}).to_string();
    let worse = json!({"name": "web", "run_list": ["recipe[worse]"]}).to_string();
    let bad_signature = "Invalid signature for user or client 'alice'";
    let put = |version: SigningVersion| {
        signed(
            "alice",
            &acme.alice,
            "PUT",
            path,
            evil.as_bytes(),
            version,
            now(),
        )
    };

    // The content hash: the body swapped and its hash header recomputed to match; and the
    // hash header alone changed.
    for version in [
        SigningVersion::V1_0,
        SigningVersion::V1_1,
        SigningVersion::V1_3,
    ] {
        let (mut parts, _) = put(version).into_parts();
        parts.headers.insert(
            "x-ops-content-hash",
            content_hash(version, worse.as_bytes()).parse().unwrap(),
        );
        let req = Request::from_parts(parts, Body::from(worse.clone()));
        held.check(
            &format!("body and content hash swapped ({version})"),
            send(h, req).await,
            StatusCode::UNAUTHORIZED,
            bad_signature,
        );
        let mut req = put(version);
        req.headers_mut().insert(
            "x-ops-content-hash",
            content_hash(version, worse.as_bytes()).parse().unwrap(),
        );
        held.check(
            &format!("content hash header changed ({version})"),
            send(h, req).await,
            StatusCode::UNAUTHORIZED,
            bad_signature,
        );
    }

    // The method: a signed read (or update) replayed as a delete or another write.
    for (signed_as, sent_as, body) in [
        ("GET", Method::DELETE, ""),
        ("GET", Method::PUT, ""),
        ("PUT", Method::DELETE, evil.as_str()),
        ("PUT", Method::POST, evil.as_str()),
    ] {
        for version in [SigningVersion::V1_0, SigningVersion::V1_3] {
            let mut req = signed(
                "alice",
                &acme.alice,
                signed_as,
                path,
                body.as_bytes(),
                version,
                now(),
            );
            *req.method_mut() = sent_as.clone();
            held.check(
                &format!("signed {signed_as}, sent {sent_as} ({version})"),
                send(h, req).await,
                StatusCode::UNAUTHORIZED,
                bad_signature,
            );
        }
    }

    // The signing version: X-Ops-Sign rewritten to another protocol after signing.
    for (version, claimed) in [
        (SigningVersion::V1_3, "algorithm=sha1;version=1.0;"),
        (SigningVersion::V1_3, "algorithm=sha1;version=1.1;"),
        (SigningVersion::V1_3, "version=1.2"),
        (SigningVersion::V1_0, "algorithm=sha1;version=1.1;"),
        (SigningVersion::V1_0, "version=1.2"),
        (SigningVersion::V1_0, "algorithm=sha256;version=1.3;"),
        (SigningVersion::V1_1, "algorithm=sha1;version=1.0;"),
        (SigningVersion::V1_2, "algorithm=sha1;version=1.1;"),
    ] {
        let mut req = put(version);
        req.headers_mut()
            .insert("x-ops-sign", claimed.parse().unwrap());
        held.check(
            &format!("signed {version}, X-Ops-Sign {claimed:?}"),
            send(h, req).await,
            StatusCode::UNAUTHORIZED,
            bad_signature,
        );
    }

    // X-Ops-Server-API-Version, which 1.3 signs: signed as 1, sent as another supported one.
    for sent in ["0", "2"] {
        let mut req = put(SigningVersion::V1_3);
        req.headers_mut()
            .insert("x-ops-server-api-version", sent.parse().unwrap());
        held.check(
            &format!("API version 1 signed, {sent} sent"),
            send(h, req).await,
            StatusCode::UNAUTHORIZED,
            bad_signature,
        );
    }

    // The timestamp moved by a second (still within the skew).
    let mut req = put(SigningVersion::V1_3);
    let stamped = chef_sync_shared::signing::parse_timestamp(
        req.headers()["x-ops-timestamp"].to_str().unwrap(),
    )
    .unwrap();
    let moved = chef_sync_shared::signing::format_timestamp(stamped - chrono::Duration::seconds(1));
    req.headers_mut()
        .insert("x-ops-timestamp", moved.parse().unwrap());
    held.check(
        "timestamp changed",
        send(h, req).await,
        StatusCode::UNAUTHORIZED,
        bad_signature,
    );

    // Another user's key: alice's name with bob's key, and the other way round; and alice's
    // own signature under bob's name.
    for (user, key) in [("alice", &acme.bob), ("bob", &acme.alice)] {
        for version in [SigningVersion::V1_0, SigningVersion::V1_3] {
            let req = signed(user, key, "PUT", path, evil.as_bytes(), version, now());
            held.check(
                &format!("{user} signing with another's key ({version})"),
                send(h, req).await,
                StatusCode::UNAUTHORIZED,
                &format!("Invalid signature for user or client '{user}'"),
            );
        }
    }
    let mut req = put(SigningVersion::V1_3);
    req.headers_mut()
        .insert("x-ops-userid", "bob".parse().unwrap());
    held.check(
        "alice's signature under bob's name",
        send(h, req).await,
        StatusCode::UNAUTHORIZED,
        "Invalid signature for user or client 'bob'",
    );
    // The superuser's name with an org member's key, creating an org. (alice's key is the
    // fixture key the harness gives pivotal as well; bob's is not.)
    let req = signed(
        "pivotal",
        &acme.bob,
        "POST",
        "/organizations",
        json!({"name": "evil", "full_name": "Evil"})
            .to_string()
            .as_bytes(),
        SigningVersion::V1_3,
        now(),
    );
    held.check(
        "pivotal's name with a user's key",
        send(h, req).await,
        StatusCode::UNAUTHORIZED,
        "Invalid signature for user or client 'pivotal'",
    );
    held.assert_all_held();
    let (status, _) = h.as_pivotal("GET", "/organizations/evil", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(snapshot(h, "acme").await, before, "nothing stored changed");
}

async fn paths_reencoded_after_signing_are_refused(h: &Harness) {
    let acme = seed(h).await;
    let before = snapshot(h, "acme").await;
    let mut held = Refusals::default();
    let evil = json!({"name": "web", "run_list": ["recipe[evil]"]}).to_string();
    let item = json!({"id": "db", "password": "evil"}).to_string();
    // The path the signature covers, and the same resource spelled otherwise on the wire
    // (axum decodes escapes in path parameters, so most of these name the very same object).
    for (method, signed_path, sent_path, body) in [
        (
            "GET",
            "/organizations/acme/roles/web",
            "/organizations/acme/roles/%77eb",
            "",
        ),
        (
            "PUT",
            "/organizations/acme/roles/web",
            "/organizations/acme/roles/%77eb",
            evil.as_str(),
        ),
        (
            "PUT",
            "/organizations/acme/roles/web",
            "/organizations/acme/roles/%77%65%62",
            evil.as_str(),
        ),
        (
            "DELETE",
            "/organizations/acme/roles/web",
            "/organizations/acme/roles/%77eb",
            "",
        ),
        (
            "DELETE",
            "/organizations/acme/roles/web",
            "/organizations/%61cme/roles/web",
            "",
        ),
        (
            "DELETE",
            "/organizations/acme/roles/web",
            "/organizations/acme/%72oles/web",
            "",
        ),
        (
            "PUT",
            "/organizations/acme/data/secrets/db",
            "/organizations/acme/data/secrets/%64b",
            item.as_str(),
        ),
        (
            "DELETE",
            "/organizations/acme/cookbooks/demo/1.0.0",
            "/organizations/acme/cookbooks/demo/1%2E0%2E0",
            "",
        ),
        // The other way round: signed encoded, sent plain.
        (
            "DELETE",
            "/organizations/acme/roles/%77eb",
            "/organizations/acme/roles/web",
            "",
        ),
    ] {
        for version in [SigningVersion::V1_0, SigningVersion::V1_3] {
            let mut req = signed(
                "alice",
                &acme.alice,
                method,
                signed_path,
                body.as_bytes(),
                version,
                chrono::Utc::now(),
            );
            *req.uri_mut() = sent_path.parse().unwrap();
            held.check(
                &format!("{method} signed {signed_path}, sent {sent_path} ({version})"),
                send(h, req).await,
                StatusCode::UNAUTHORIZED,
                "Invalid signature for user or client 'alice'",
            );
        }
    }
    held.assert_all_held();
    assert_eq!(snapshot(h, "acme").await, before, "nothing stored changed");
    // Why it matters: signed as it is sent, the encoded spelling does reach role `web`.
    let (status, role) = h
        .actor("alice", &acme.alice)
        .get("/organizations/acme/roles/%77eb")
        .await;
    assert_eq!((status, &role["name"]), (StatusCode::OK, &json!("web")));
}

async fn another_orgs_admin_and_clients_reach_nothing(h: &Harness) {
    let _acme = seed(h).await;
    let mallory = other_org(h).await;
    let before = snapshot(h, "acme").await;
    let theirs = snapshot(h, "other").await;
    let mut held = Refusals::default();
    let o = "/organizations/acme";
    let reads = [
        format!("{o}/roles/web"),
        format!("{o}/roles"),
        format!("{o}/environments/prod"),
        format!("{o}/data/secrets/db"),
        format!("{o}/data"),
        format!("{o}/cookbooks/demo/1.0.0"),
        format!("{o}/cookbooks"),
        format!("{o}/search/role?q=*:*"),
        format!("{o}/search/secrets?q=*:*"),
        format!("{o}/updated_since?seq=0"),
        format!("{o}/clients"),
        format!("{o}/groups/admins"),
        o.to_owned(),
    ];
    let writes: Vec<_> = object_writes("acme")
        .into_iter()
        .chain(admin_writes("acme"))
        .collect();
    // mallory is a user: known to the server, and nobody in acme.
    let not_member = "'mallory' not associated with organization 'acme'";
    for path in &reads {
        held.check(
            &format!("mallory GET {path}"),
            h.call("mallory", &mallory, "GET", path, None).await,
            StatusCode::FORBIDDEN,
            not_member,
        );
    }
    for (method, path, body) in &writes {
        let expected = if path == o {
            // Changing an org is the superuser's alone, whoever asks.
            "not authorized"
        } else {
            not_member
        };
        held.check(
            &format!("mallory {method} {path}"),
            h.call("mallory", &mallory, method, path, body.clone())
                .await,
            StatusCode::FORBIDDEN,
            expected,
        );
    }
    // A client belongs to its org: under acme's URLs, other's client `spy` does not exist.
    let unknown = "Failed to authenticate as 'spy'";
    for path in &reads {
        held.check(
            &format!("spy GET {path}"),
            h.call("spy", &mallory, "GET", path, None).await,
            StatusCode::UNAUTHORIZED,
            unknown,
        );
    }
    for (method, path, body) in &writes {
        held.check(
            &format!("spy {method} {path}"),
            h.call("spy", &mallory, method, path, body.clone()).await,
            StatusCode::UNAUTHORIZED,
            unknown,
        );
    }
    held.assert_all_held();
    assert_eq!(snapshot(h, "acme").await, before, "nothing stored changed");
    assert_eq!(snapshot(h, "other").await, theirs, "nor in mallory's org");
}

async fn readers_nodes_and_the_validator_cannot_write(h: &Harness) {
    let acme = seed(h).await;
    reader_only(h, "acme", "bob").await;
    let before = snapshot(h, "acme").await;
    let mut held = Refusals::default();
    for (who, key) in [
        ("bob", &acme.bob),
        ("node1", &acme.node),
        ("acme-validator", &acme.validator),
    ] {
        for (method, path, body) in object_writes("acme") {
            held.check(
                &format!("{who} {method} {path}"),
                h.call(who, key, method, &path, body).await,
                StatusCode::FORBIDDEN,
                &format!("'{who}' is not authorized to write objects in organization 'acme'"),
            );
        }
        for (method, path, body) in admin_writes("acme") {
            // The validator may register (non-validator) clients: that is its job.
            if who == "acme-validator" && method == "POST" && path.ends_with("/clients") {
                continue;
            }
            let message = if path == "/organizations/acme" {
                "not authorized"
            } else if method == "PUT" && path.contains("/clients/") && !path.ends_with(who) {
                // A client's own ACL (Chef's default): only admins and the client itself;
                // the client itself may not make itself a validator or rename itself.
                "missing update permission"
            } else {
                &format!("'{who}' is not authorized to administer in organization 'acme'")
            };
            held.check(
                &format!("{who} {method} {path}"),
                h.call(who, key, method, &path, body).await,
                StatusCode::FORBIDDEN,
                message,
            );
        }
    }
    // The validator registers ordinary clients only, never another validator.
    held.check(
        "validator registering a validator",
        h.call(
            "acme-validator",
            &acme.validator,
            "POST",
            "/organizations/acme/clients",
            Some(json!({"name": "evil", "validator": true})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "not authorized to administer",
    );
    held.assert_all_held();
    assert_eq!(snapshot(h, "acme").await, before, "nothing stored changed");
}

async fn replica_orgs_take_writes_from_the_sync_user_only(h: &Harness) {
    let acme = seed(h).await;
    let mallory = other_org(h).await;
    // The sync user: an admin of acme, like every other admin here.
    let org = h.store.org("acme").await.unwrap().unwrap();
    let sync_key = fixture_key();
    let (sync, _) = chef_sync_server::accounts::create_user(
        &h.store,
        "sync",
        &json!({"username": "sync"}),
        false,
        Some(&sync_key.public_key().to_pem().unwrap()),
        2048,
    )
    .await
    .unwrap();
    chef_sync_server::accounts::associate(&h.store, &org, &sync, true)
        .await
        .unwrap();
    // node1 made an admin through the admins group: an admin client.
    let a = h.actor("alice", &acme.alice);
    succeeded(
        a.put(
            "/organizations/acme/groups/admins",
            json!({"actors": {"users": ["alice", "sync"], "clients": ["node1"]}}),
        )
        .await,
    );
    succeeded(
        h.as_pivotal(
            "PUT",
            "/organizations/acme",
            Some(json!({"replica": true, "sync_user": "sync"})),
        )
        .await,
    );
    // A client named like the sync user, made by an admin and put into admins: it must not
    // pass for the sync user (the user of that name is found first, and its key differs).
    let impostor = other_key();
    succeeded(
        a.post(
            "/organizations/acme/clients",
            json!({"name": "sync", "public_key": impostor.public_key().to_pem().unwrap()}),
        )
        .await,
    );
    succeeded(
        a.put(
            "/organizations/acme/groups/admins",
            json!({"actors": {"users": ["alice", "sync"], "clients": ["node1", "sync"]}}),
        )
        .await,
    );
    let before = snapshot(h, "acme").await;
    let mut held = Refusals::default();
    let replica = "organization 'acme' is a replica: its objects are written only by its sync user";
    let writers: [(&str, &PrivateKey, StatusCode, &str); 7] = [
        ("pivotal", &h.pivotal, StatusCode::FORBIDDEN, replica),
        ("alice", &acme.alice, StatusCode::FORBIDDEN, replica),
        ("bob", &acme.bob, StatusCode::FORBIDDEN, replica),
        ("node1", &acme.node, StatusCode::FORBIDDEN, replica),
        (
            "acme-validator",
            &acme.validator,
            StatusCode::FORBIDDEN,
            replica,
        ),
        (
            "mallory",
            &mallory,
            StatusCode::FORBIDDEN,
            "'mallory' not associated with organization 'acme'",
        ),
        (
            "sync",
            &impostor,
            StatusCode::UNAUTHORIZED,
            "Invalid signature for user or client 'sync'",
        ),
    ];
    for (who, key, status, message) in writers {
        for (method, path, body) in object_writes("acme") {
            held.check(
                &format!("{who} {method} {path}"),
                h.call(who, key, method, &path, body).await,
                status,
                message,
            );
        }
    }
    held.assert_all_held();
    assert_eq!(snapshot(h, "acme").await, before, "nothing stored changed");
    // The sync user is refused nothing of this.
    let s = h.actor("sync", &sync_key);
    succeeded(
        s.put(
            "/organizations/acme/roles/web",
            json!({"name": "web", "description": "replicated"}),
        )
        .await,
    );
    succeeded(
        s.post("/organizations/acme/roles", json!({"name": "replicated"}))
            .await,
    );
}

async fn spoiled_file_urls_are_refused(h: &Harness) {
    let acme = seed(h).await;
    other_org(h).await;
    let a = h.actor("alice", &acme.alice);
    // An open sandbox, for the upload URL.
    let pending: &[u8] = b"not uploaded yet";
    let sandbox = succeeded(
        a.post(
            "/organizations/acme/sandboxes",
            json!({"checksums": { md5_hex(pending): null }}),
        )
        .await,
    );
    let upload_url = sandbox["checksums"][md5_hex(pending)]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = snapshot(h, "acme").await;
    let mut held = Refusals::default();

    let spoil = |url: &str| -> Vec<(&'static str, String)> {
        let url = local(url);
        let (path, query) = url.split_once('?').unwrap();
        let expires: i64 = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("expires="))
            .unwrap()
            .parse()
            .unwrap();
        let signature = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("signature="))
            .unwrap()
            .to_owned();
        let flip = |i: usize| {
            let mut bytes = hex::decode(&signature).unwrap();
            bytes[i] ^= 0x01;
            hex::encode(bytes)
        };
        let last = hex::decode(&signature).unwrap().len() - 1;
        let with = |path: &str, expires: i64, signature: &str| {
            format!("{path}?expires={expires}&signature={signature}")
        };
        let (head, tail) = path.rsplit_once('/').unwrap();
        vec![
            (
                "first signature byte flipped",
                with(path, expires, &flip(0)),
            ),
            (
                "last signature byte flipped",
                with(path, expires, &flip(last)),
            ),
            ("signature cut short", with(path, expires, &signature[2..])),
            ("expiry a second later", with(path, expires + 1, &signature)),
            (
                "expiry a second earlier",
                with(path, expires - 1, &signature),
            ),
            (
                "expiry a year later",
                with(path, expires + 31_536_000, &signature),
            ),
            (
                "another org's path",
                with(
                    &path.replace("/organizations/acme/", "/organizations/other/"),
                    expires,
                    &signature,
                ),
            ),
            (
                "another checksum",
                with(
                    &format!("{head}/{}", md5_hex(b"something else")),
                    expires,
                    &signature,
                ),
            ),
            (
                "encoded traversal to another org",
                with(
                    &format!("{head}/..%2F..%2F..%2Fother%2Fchecksums%2F{tail}"),
                    expires,
                    &signature,
                ),
            ),
            (
                "encoded traversal to the server's key",
                with(
                    &format!("{head}/..%2F..%2F..%2F..%2F..%2Fpivotal.pem"),
                    expires,
                    &signature,
                ),
            ),
            (
                "encoded dot-dot as the org",
                with(
                    &path.replace("/organizations/acme/", "/organizations/%2E%2E/"),
                    expires,
                    &signature,
                ),
            ),
            ("no signature", format!("{path}?expires={expires}")),
            ("no expiry", format!("{path}?signature={signature}")),
            ("nothing", path.to_owned()),
        ]
    };

    // An encoded `..` that adds a segment matches no file route at all.
    let extra_segment =
        |url: &str| local(url).replace("/organizations/acme/", "/organizations/other/%2E%2E/acme/");
    let (status, bytes) = download(h, &extra_segment(&acme.recipe_url)).await;
    held.check(
        "download, encoded dot-dot segment added",
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ),
        StatusCode::NOT_FOUND,
        "No such endpoint",
    );
    let req = Request::put(extra_segment(&upload_url))
        .header("host", "chef.test")
        .header("content-md5", md5_b64(pending))
        .body(Body::from(pending.to_vec()))
        .unwrap();
    held.check(
        "upload, encoded dot-dot segment added",
        send(h, req).await,
        StatusCode::NOT_FOUND,
        "No such endpoint",
    );
    for (what, url) in spoil(&acme.recipe_url) {
        let (status, bytes) = download(h, &url).await;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        held.check(
            &format!("download, {what}: {url}"),
            (status, body),
            StatusCode::FORBIDDEN,
            "file URL refused",
        );
    }
    for (what, url) in spoil(&upload_url) {
        let req = Request::put(&url)
            .header("host", "chef.test")
            .header("content-type", "application/x-binary")
            .header("content-md5", md5_b64(pending))
            .body(Body::from(pending.to_vec()))
            .unwrap();
        held.check(
            &format!("upload, {what}: {url}"),
            send(h, req).await,
            StatusCode::FORBIDDEN,
            "file URL refused",
        );
    }
    // The file URLs' freedom from Chef signatures does not stretch past `/file_store/`: a
    // traversal out of it reaches no other route, decoded or not.
    for path in [
        "/file_store/../organizations/acme/roles/web",
        "/file_store/..%2Forganizations/acme/roles/web",
        "/file_store/%2E%2E/organizations/acme/roles/web",
        "/file_store/organizations/acme/../../organizations/acme/data/secrets/db",
    ] {
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            let req = Request::builder()
                .method(method.clone())
                .uri(path)
                .header("host", "chef.test")
                .header("content-type", "application/json")
                .body(Body::from(
                    json!({"name": "web", "run_list": ["recipe[evil]"]}).to_string(),
                ))
                .unwrap();
            held.check(
                &format!("unsigned {method} {path}"),
                send(h, req).await,
                StatusCode::NOT_FOUND,
                "",
            );
        }
    }
    held.assert_all_held();
    // The file is still what was uploaded; the pending one is still not uploaded.
    let (status, bytes) = download(h, &local(&acme.recipe_url)).await;
    assert_eq!((status, bytes.as_slice()), (StatusCode::OK, RECIPE));
    let (status, body) = a
        .put(
            &local(sandbox["uri"].as_str().unwrap()),
            json!({"is_completed": true}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(snapshot(h, "acme").await, before, "nothing stored changed");
}

async fn sql_metacharacters_are_only_ever_data(h: &Harness) {
    let acme = seed(h).await;
    let a = h.actor("alice", &acme.alice);
    // SQL in a value is stored and read back as it is.
    let (_, sql) = a.get("/organizations/acme/roles/sql").await;
    assert_eq!(sql["description"], SQL_DESCRIPTION);
    let before = snapshot(h, "acme").await;
    let mut held = Refusals::default();
    let o = "/organizations/acme";
    let hostile = [
        "'; DROP TABLE roles; --",
        "%' OR '1'='1",
        "web' OR '1'='1",
        "web\"; DROP TABLE objects; --",
        "web') --",
        "x'||(SELECT 1)||'",
    ];
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    for name in hostile {
        // In bodies: not a Chef name, whatever the type.
        for (path, body) in [
            (format!("{o}/roles"), json!({ "name": name })),
            (format!("{o}/environments"), json!({ "name": name })),
            (format!("{o}/data"), json!({ "name": name })),
            (format!("{o}/data/secrets"), json!({ "id": name })),
            (format!("{o}/clients"), json!({ "name": name })),
            (format!("{o}/groups"), json!({ "groupname": name })),
        ] {
            held.check(
                &format!("POST {path} named {name:?}"),
                a.post(&path, body).await,
                StatusCode::BAD_REQUEST,
                "",
            );
        }
        held.check(
            &format!("user named {name:?}"),
            h.as_pivotal("POST", "/users", Some(json!({ "username": name })))
                .await,
            StatusCode::BAD_REQUEST,
            "",
        );
        held.check(
            &format!("sandbox checksum {name:?}"),
            a.post(
                &format!("{o}/sandboxes"),
                json!({"checksums": { name: null }}),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "",
        );
        held.check(
            &format!("cookbook version {name:?}"),
            a.get(&format!("{o}/cookbooks/demo/{}", encode(name))).await,
            StatusCode::BAD_REQUEST,
            "Invalid cookbook version",
        );
        held.check(
            &format!("org named {name:?}"),
            h.as_pivotal(
                "POST",
                "/organizations",
                Some(json!({"name": name, "full_name": "x"})),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "",
        );
        // In paths: no object of that name, for reads, updates and deletes alike.
        let e = encode(name);
        for path in [
            format!("{o}/roles/{e}"),
            format!("{o}/environments/{e}"),
            format!("{o}/data/{e}"),
            format!("{o}/data/secrets/{e}"),
            format!("{o}/cookbooks/{e}"),
            format!("{o}/clients/{e}"),
        ] {
            let (status, body) = a.get(&path).await;
            held.check(
                &format!("GET {path}"),
                (status, body),
                StatusCode::NOT_FOUND,
                "",
            );
            // There is no DELETE of a whole cookbook (only of a version): 405 there.
            let expected = if path.contains("/cookbooks/") {
                StatusCode::METHOD_NOT_ALLOWED
            } else {
                StatusCode::NOT_FOUND
            };
            held.check(
                &format!("DELETE {path}"),
                a.delete(&path).await,
                expected,
                "",
            );
        }
        held.check(
            &format!("PUT role {name:?}"),
            a.put(&format!("{o}/roles/{e}"), json!({ "name": name }))
                .await,
            StatusCode::NOT_FOUND,
            "",
        );
        held.check(
            &format!("org {name:?} in the path"),
            h.as_pivotal("GET", &format!("/organizations/{e}/roles"), None)
                .await,
            StatusCode::NOT_FOUND,
            "does not exist",
        );
        // In query parameters: numbers must be numbers.
        for param in ["seq", "limit", "wait"] {
            let path = format!("{o}/updated_since?{param}={}", encode(&format!("1{name}")));
            held.check(
                &format!("updated_since {param}"),
                a.get(&path).await,
                StatusCode::BAD_REQUEST,
                &format!("invalid {param} '1{name}'"),
            );
        }
        for param in ["rows", "start"] {
            let path = format!("{o}/search/role?{param}={}", encode(&format!("1{name}")));
            held.check(
                &format!("search {param}"),
                a.get(&path).await,
                StatusCode::BAD_REQUEST,
                &format!("invalid {param}"),
            );
        }
        held.check(
            "num_versions",
            a.get(&format!(
                "{o}/cookbooks?num_versions={}",
                encode(&format!("1{name}"))
            ))
            .await,
            StatusCode::BAD_REQUEST,
            "",
        );
        // As a search term, quoted, it is a value matched literally: nothing has it.
        let quoted = name.replace('"', "\\\"");
        let (status, page) = a
            .get(&format!(
                "{o}/search/role?q={}",
                encode(&format!("name:\"{quoted}\""))
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "quoted {name:?}: {page}");
        assert_eq!(page["total"], 0, "quoted {name:?}: {page}");
        // As an index name: no such index.
        held.check(
            &format!("search index {name:?}"),
            a.get(&format!("{o}/search/{e}")).await,
            StatusCode::NOT_FOUND,
            "I don't know how to search for",
        );
        // As the actor's name.
        let user = format!("alice{name}");
        held.check(
            &format!("X-Ops-UserId {user:?}"),
            h.call(&user, &acme.alice, "GET", &format!("{o}/roles"), None)
                .await,
            StatusCode::UNAUTHORIZED,
            &format!("Failed to authenticate as '{user}'"),
        );
    }
    // Unquoted, a query made of SQL is not a query.
    for q in [
        "name:';%20DROP%20TABLE%20roles;%20--",
        "name:web'%20OR%20'1'='1",
        "name:x%20OR%201=1",
    ] {
        held.check(
            &format!("search q={q}"),
            a.get(&format!("{o}/search/role?q={q}")).await,
            StatusCode::BAD_REQUEST,
            "",
        );
    }
    held.assert_all_held();
    // LIKE wildcards are no wildcards: `%` and `_` match only themselves.
    for q in ["name:%25", "name:we_", "description:%25", "name:%25eb"] {
        let (status, page) = a.get(&format!("{o}/search/role?q={q}")).await;
        assert_eq!(status, StatusCode::OK, "{q}: {page}");
        assert_eq!(page["total"], 0, "{q}: {page}");
    }
    for path in [
        "roles/we_",
        "roles/w%25",
        "data/secret_",
        "data/secrets/d_",
        "cookbooks/dem_",
        "clients/node_",
        "environments/pro_",
    ] {
        let (status, body) = a.get(&format!("{o}/{path}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    // Every table is still there and holds what it held.
    assert_eq!(snapshot(h, "acme").await, before, "nothing stored changed");
}

async fn json_nested_5000_deep_is_refused(h: &Harness) {
    let acme = seed(h).await;
    let before = snapshot(h, "acme").await;
    let mut held = Refusals::default();
    const DEPTH: usize = 5_000;
    let arrays = format!("{}1{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let objects = format!("{}1{}", "{\"a\":".repeat(DEPTH), "}".repeat(DEPTH));
    let mixed = format!(
        "{}1{}",
        "{\"a\":[".repeat(DEPTH / 2),
        "]}".repeat(DEPTH / 2)
    );
    let o = "/organizations/acme";
    let md5 = md5_hex(RECIPE);
    for (shape, deep) in [
        ("arrays", &arrays),
        ("objects", &objects),
        ("mixed", &mixed),
    ] {
        let bodies = [
            (
                "POST",
                format!("{o}/roles"),
                format!(r#"{{"name": "deep", "default_attributes": {deep}}}"#),
            ),
            (
                "PUT",
                format!("{o}/roles/web"),
                format!(r#"{{"name": "web", "override_attributes": {deep}}}"#),
            ),
            (
                "POST",
                format!("{o}/environments"),
                format!(r#"{{"name": "deep", "default_attributes": {deep}}}"#),
            ),
            (
                "PUT",
                format!("{o}/environments/prod"),
                format!(r#"{{"name": "prod", "default_attributes": {deep}}}"#),
            ),
            (
                "POST",
                format!("{o}/data"),
                format!(r#"{{"name": {deep}}}"#),
            ),
            (
                "POST",
                format!("{o}/data/secrets"),
                format!(r#"{{"id": "deep", "value": {deep}}}"#),
            ),
            (
                "PUT",
                format!("{o}/data/secrets/db"),
                format!(r#"{{"id": "db", "value": {deep}}}"#),
            ),
            (
                "POST",
                format!("{o}/sandboxes"),
                format!(r#"{{"checksums": {{"{md5}": {deep}}}}}"#),
            ),
            (
                "PUT",
                format!("{o}/cookbooks/demo/1.0.0"),
                manifest("1.0.0", &md5).to_string().replacen(
                    r#""metadata":{"#,
                    &format!(r#""metadata":{{"deep":{deep},"#),
                    1,
                ),
            ),
            (
                "POST",
                format!("{o}/search/role?q=*:*"),
                format!(r#"{{"x": {deep}}}"#),
            ),
            (
                "POST",
                format!("{o}/clients"),
                format!(r#"{{"name": "deep", "x": {deep}}}"#),
            ),
            (
                "PUT",
                format!("{o}/groups/admins"),
                format!(r#"{{"actors": {deep}}}"#),
            ),
            (
                "POST",
                "/users/alice/keys".to_owned(),
                format!(r#"{{"name": "deep", "x": {deep}}}"#),
            ),
            ("PUT", format!("{o}/roles/web"), deep.clone()),
        ];
        for (method, path, body) in bodies {
            assert!(body.len() < 100_000, "stays under max_request_size");
            assert!(body.contains(deep.as_str()), "{method} {path}: not deep");
            let req = signed(
                "alice",
                &acme.alice,
                method,
                &path,
                body.as_bytes(),
                SigningVersion::V1_3,
                chrono::Utc::now(),
            );
            held.check(
                &format!("{method} {path} with {DEPTH}-deep {shape}"),
                send(h, req).await,
                StatusCode::BAD_REQUEST,
                "invalid JSON",
            );
        }
        let req = signed(
            "pivotal",
            &h.pivotal,
            "PUT",
            o,
            format!(r#"{{"full_name": {deep}}}"#).as_bytes(),
            SigningVersion::V1_3,
            chrono::Utc::now(),
        );
        held.check(
            &format!("PUT {o} with {DEPTH}-deep {shape}"),
            send(h, req).await,
            StatusCode::BAD_REQUEST,
            "invalid JSON",
        );
    }
    held.assert_all_held();
    // The server is still there (a stack overflow would have taken the whole test process).
    let (status, _, _) = h
        .send(Request::get("/_status").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(snapshot(h, "acme").await, before, "nothing stored changed");
}

/// Chef's words for a body over `max_request_size` (100,000 in the harness).
const TOO_LARGE: &str = "JSON must be no more than 100000 bytes.";

/// A 3 MB role: valid JSON, signed as it is.
fn three_megabyte_role() -> Vec<u8> {
    json!({"name": "huge", "description": "x".repeat(3 * 1024 * 1024)})
        .to_string()
        .into_bytes()
}

/// `bytes` as a stream of 64 KB chunks: a body without a Content-Length.
fn chunked(bytes: Vec<u8>) -> Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    Body::from_stream(futures_util::stream::iter(chunks))
}

async fn three_megabyte_bodies_are_413_with_or_without_a_length(h: &Harness) {
    let acme = seed(h).await;
    let before = snapshot(h, "acme").await;
    let mut held = Refusals::default();
    let huge = three_megabyte_role();
    let item = json!({"id": "huge", "blob": "x".repeat(3 * 1024 * 1024)})
        .to_string()
        .into_bytes();
    for (path, bytes) in [
        ("/organizations/acme/roles", &huge),
        ("/organizations/acme/data/secrets", &item),
    ] {
        let sign = || {
            signed(
                "alice",
                &acme.alice,
                "POST",
                path,
                bytes,
                SigningVersion::V1_3,
                chrono::Utc::now(),
            )
        };
        // Signed, with its true Content-Length.
        let (mut parts, body) = sign().into_parts();
        parts
            .headers
            .insert("content-length", bytes.len().to_string().parse().unwrap());
        held.check(
            &format!("{path}: signed, with Content-Length"),
            send(h, Request::from_parts(parts, body)).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            TOO_LARGE,
        );
        // Unsigned, with its Content-Length: refused before authentication, as Chef does.
        let req = Request::post(path)
            .header("host", "chef.test")
            .header("content-type", "application/json")
            .header("content-length", bytes.len().to_string())
            .body(Body::from(bytes.clone()))
            .unwrap();
        held.check(
            &format!("{path}: unsigned, with Content-Length"),
            send(h, req).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            TOO_LARGE,
        );
        // Signed and streamed with no Content-Length: the limit holds while reading.
        let (parts, _) = sign().into_parts();
        assert!(!parts.headers.contains_key("content-length"));
        held.check(
            &format!("{path}: signed, chunked"),
            send(h, Request::from_parts(parts, chunked(bytes.clone()))).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            TOO_LARGE,
        );
        // A Content-Length that claims a small body.
        let (mut parts, _) = sign().into_parts();
        parts
            .headers
            .insert("content-length", "100".parse().unwrap());
        held.check(
            &format!("{path}: signed, Content-Length understated"),
            send(h, Request::from_parts(parts, chunked(bytes.clone()))).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            TOO_LARGE,
        );
    }
    // An unsigned chunked body is refused for its missing signature before any of it is read.
    let req = Request::post("/organizations/acme/roles")
        .header("host", "chef.test")
        .header("content-type", "application/json")
        .body(chunked(huge.clone()))
        .unwrap();
    held.check(
        "unsigned, chunked",
        send(h, req).await,
        StatusCode::BAD_REQUEST,
        "missing required authentication header(s)",
    );
    held.assert_all_held();

    // The same on the wire: `Transfer-Encoding: chunked` over a real socket.
    let url = listen(h).await;
    let (status, body) = chunked_over_tcp(&url, "alice", &acme.alice, &huge).await;
    assert_eq!(status, 413, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body, json!({"error": [TOO_LARGE]}));
    assert_eq!(snapshot(h, "acme").await, before, "nothing stored changed");
}

/// POSTs `bytes` as a role, signed, with `Transfer-Encoding: chunked` written by hand; reads
/// the answer while still writing (the server may answer, and close, before the end).
async fn chunked_over_tcp(url: &str, user: &str, key: &PrivateKey, bytes: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let path = "/organizations/acme/roles";
    let req = signed(
        user,
        key,
        "POST",
        path,
        bytes,
        SigningVersion::V1_3,
        chrono::Utc::now(),
    );
    let mut head =
        format!("POST {path} HTTP/1.1\r\nhost: chef.test\r\ntransfer-encoding: chunked\r\n");
    for (k, v) in req.headers() {
        if k != "host" {
            head.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap()));
        }
    }
    head.push_str("\r\n");
    let addr = url.strip_prefix("http://").unwrap();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let body = bytes.to_vec();
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        for chunk in body.chunks(64 * 1024) {
            wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            wr.write_all(chunk).await?;
            wr.write_all(b"\r\n").await?;
        }
        wr.write_all(b"0\r\n\r\n").await?;
        Ok::<_, std::io::Error>(())
    });
    let mut answer = Vec::new();
    let read = async {
        let mut buf = [0u8; 8192];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            // Stop once the whole answer (headers and its Content-Length of body) is in.
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap();
                if body.len() >= len {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("no answer to a chunked 3 MB body");
    // The writer either finished or was cut off by the server; both are fine.
    let _ = writer.await.unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap();
    (status, body)
}

/// Counts the feed requests inside the server at each moment (the guard also counts one out
/// when its client goes away mid-wait).
struct Inside(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Inside {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// As [`listen`], counting the feed requests being served.
async fn listen_counting_feeds(
    h: &Harness,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let inside = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = inside.clone();
    let app = h.app.clone().layer(axum::middleware::from_fn(
        move |req: Request<Body>, next: axum::middleware::Next| {
            let counter = counter.clone();
            async move {
                let _guard = req.uri().path().ends_with("/updated_since").then(|| {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Inside(counter.clone())
                });
                next.run(req).await
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, inside)
}

/// Chef headers for one signed request, to be replayed (within the clock skew) by many.
fn signed_headers(user: &str, key: &PrivateKey, method: &str, path: &str) -> Vec<(String, String)> {
    signed(
        user,
        key,
        method,
        path,
        b"",
        SigningVersion::V1_3,
        chrono::Utc::now(),
    )
    .headers()
    .iter()
    .filter(|(k, _)| k.as_str().starts_with("x-ops"))
    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
    .collect()
}

/// Open long-polls held at once.
const LONG_POLLS: usize = 350;

async fn hundreds_of_long_polls_leave_the_server_answering(h: &Harness) {
    let (alice, bob) = org_with_users(h).await;
    let a = h.actor("alice", &alice);
    succeeded(
        a.post("/organizations/acme/roles", json!({"name": "web"}))
            .await,
    );
    let (url, inside) = listen_counting_feeds(h).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let probe = tokio::spawn(probe_status(format!("{url}/_status"), stop_rx));

    // LONG_POLLS replicas waiting up to 30 s for the entry after 1, each on its connection.
    let path = "/organizations/acme/updated_since?seq=1&wait=30";
    let headers = signed_headers("alice", &alice, "GET", path);
    let client = reqwest::Client::new();
    let started = Instant::now();
    let polls: Vec<_> = (0..LONG_POLLS)
        .map(|_| {
            let mut req = client.get(format!("{url}{path}"));
            for (k, v) in &headers {
                req = req.header(k, v);
            }
            tokio::spawn(async move {
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<Value>().await.unwrap(), Instant::now())
            })
        })
        .collect();
    // Every one of them is inside the server, waiting, at the same time.
    let deadline = Instant::now() + Duration::from_secs(15);
    while inside.load(std::sync::atomic::Ordering::SeqCst) < LONG_POLLS {
        assert!(
            Instant::now() < deadline,
            "only {} of {LONG_POLLS} long-polls got in",
            inside.load(std::sync::atomic::Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("{LONG_POLLS} long-polls held after {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        polls.iter().all(|p| !p.is_finished()),
        "a long-poll answered before anything changed"
    );

    // Meanwhile, everyone else is served: reads by another user, a page of the feed without
    // waiting, and a write, each within a second.
    let other = reqwest::Client::new();
    for (user, key, path) in [
        ("bob", &bob, "/organizations/acme/roles/web"),
        ("alice", &alice, "/organizations/acme/roles"),
        ("alice", &alice, "/organizations/acme/updated_since?seq=0"),
    ] {
        let took = Instant::now();
        let mut req = other.get(format!("{url}{path}"));
        for (k, v) in signed_headers(user, key, "GET", path) {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{user} GET {path}");
        assert!(
            took.elapsed() < Duration::from_secs(1),
            "{user} GET {path} took {:?} under {LONG_POLLS} long-polls",
            took.elapsed()
        );
    }
    let role = json!({"name": "late"}).to_string();
    let write = signed(
        "alice",
        &alice,
        "POST",
        "/organizations/acme/roles",
        role.as_bytes(),
        SigningVersion::V1_3,
        chrono::Utc::now(),
    );
    let mut req = other
        .post(format!("{url}/organizations/acme/roles"))
        .body(role);
    for (k, v) in write.headers() {
        req = req.header(k.as_str(), v.to_str().unwrap());
    }
    let took = Instant::now();
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 201);
    assert!(
        took.elapsed() < Duration::from_secs(1),
        "{:?}",
        took.elapsed()
    );
    let written = Instant::now();

    // The write wakes every one of them with exactly that entry, well before their 30 s.
    let mut slowest = Duration::ZERO;
    for poll in polls {
        let (status, body, at) = poll.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!([{"action": "create", "id": 2, "path": "/roles/late"}])
        );
        slowest = slowest.max(at.saturating_duration_since(written));
    }
    stop_tx.send(true).unwrap();
    eprintln!(
        "{LONG_POLLS} long-polls: all answered {slowest:?} after the write ({:?} in all)",
        started.elapsed()
    );
    assert!(slowest < Duration::from_secs(5), "{slowest:?}");
    // Nine probes in ten: the slack is for the two cores shared with the 350 clients and the
    // file's other tests; a server starved by its long-polls answers in seconds or not at all.
    status_kept_answering("long-polls", probe.await.unwrap(), 10, 20);
}

/// The server's own secrets on disk: with no `--database`, the SQLite file (which holds the
/// file-URL signing key) and `pivotal.pem` are owner-only even under `umask 000`.
/// (`binary.rs` checks pivotal.pem with an explicit `--database`; the SQLite file there is the
/// test's own.)
#[test]
fn the_default_database_and_pivotal_key_are_owner_only() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"umask 000; exec "$0" serve --listen 127.0.0.1:0 --data-dir "$1""#)
        .arg(env!("CARGO_BIN_EXE_chef-sync-server"))
        .arg(&data)
        .env("RUST_LOG", "chef_sync_server=info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Listening means the database is open and pivotal is made.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let listening = (0..)
        .map_while(|_| rx.recv_timeout(Duration::from_secs(60)).ok())
        .any(|line| line.contains("addr="));
    let modes: Vec<(String, u32)> = [
        "pivotal.pem",
        "chef-sync.db",
        "chef-sync.db-wal",
        "chef-sync.db-shm",
    ]
    .iter()
    .filter_map(|name| {
        let meta = std::fs::metadata(data.join(name)).ok()?;
        Some((name.to_string(), meta.permissions().mode() & 0o777))
    })
    .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening, "the server did not start");
    let names: Vec<&str> = modes.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"pivotal.pem") && names.contains(&"chef-sync.db"),
        "{names:?}"
    );
    for (name, mode) in modes {
        assert_eq!(format!("{mode:o}"), "600", "{name}");
    }
}
