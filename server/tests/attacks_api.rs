//! Attacks on the server's resources and secrets (issue #17), each of which worked before:
//! invented methods growing `/metrics` without bound, `/metrics` naming every org to anyone,
//! an actor piling up keys so that every junk signature costs thousands of RSA checks, and a
//! private key stored (and handed out) as a public one. Resource attacks run against a real
//! listener while `/_status` is probed: it must keep answering within 100 ms.

#![allow(clippy::unwrap_used)]

#[path = "support/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chef_sync_server::store::{KeyOwner, KeyRow};
use chef_sync_shared::signing::SigningVersion;
use harness::*;
use serde_json::{Value, json};

on_both_backends!(
    invented_methods_do_not_grow_the_metrics,
    keys_per_actor_are_capped,
    junk_signatures_against_many_keys_leave_status_answering,
    private_and_weak_keys_are_refused,
);

/// A 1024-bit public key (generated for this test; never used to sign).
const WEAK_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDdBITDk/vb05L3A5R2Hmgapgaj
valk8xiMKrGQZgXRWtyV0NQLX7KfYe12CNFwf3ltHApVxMhXGsI4S/0O9EPtljfu
hgabWvemfUixV7iS+JkPHimRVPKvhFVouPyq1YFCZsLun+N/y3+YyOi1ycvZgETt
cY57QYd9LZ7DNcZBSwIDAQAB
-----END PUBLIC KEY-----
";

#[track_caller]
fn refused(what: &str, status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{what}: {body}");
    assert!(
        body["error"]
            .as_array()
            .is_some_and(|m| !m.is_empty() && m.iter().all(Value::is_string)),
        "{what}: not a Chef error body: {body}"
    );
}

fn random_method(len: usize) -> String {
    (0..len)
        .map(|_| char::from(b'A' + rand::random::<u8>() % 26))
        .collect()
}

async fn scrape(app: &axum::Router, auth: Option<&str>) -> (StatusCode, String) {
    use tower::ServiceExt;
    let mut req = Request::get("/metrics");
    if let Some(token) = auth {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn invented_methods_do_not_grow_the_metrics(h: &Harness) {
    org_with_users(h).await;
    let (_, before) = scrape(&h.app, None).await;
    let url = listen(h).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let probe = tokio::spawn(probe_status(format!("{url}/_status"), stop_rx));
    // 8 attackers × 100 requests with invented methods of 50 to 4,000 characters, then 14
    // scrapes at once (what aborted the server when every method was a label).
    let mut attackers = Vec::new();
    for a in 0..8 {
        let url = url.clone();
        attackers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..100 {
                let method = random_method(50 + (a * 100 + i) * 5);
                let path = if i % 2 == 0 { "/_status" } else { "/x/y" };
                let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                let resp = client
                    .request(method, format!("{url}{path}"))
                    .send()
                    .await
                    .unwrap();
                assert!(resp.status().is_client_error(), "{}", resp.status());
            }
        }));
    }
    for a in attackers {
        a.await.unwrap();
    }
    let scrapes: Vec<_> = (0..14)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let resp = reqwest::get(format!("{url}/metrics")).await.unwrap();
                assert_eq!(resp.status(), 200);
                resp.text().await.unwrap()
            })
        })
        .collect();
    let mut text = String::new();
    for s in scrapes {
        text = s.await.unwrap();
    }
    stop_tx.send(true).unwrap();
    status_kept_answering("invented methods", probe.await.unwrap(), 20, 5);
    assert!(text.contains(r#"method="other""#), "{text}");
    // A few new label sets at most (the two routes with `other`), whatever the methods were.
    assert!(
        text.len() < before.len() + 20_000,
        "/metrics grew from {} to {} bytes",
        before.len(),
        text.len()
    );
    // Org names are not for anyone who can reach the API listener.
    assert!(
        !text.contains("acme") && !text.contains("feed_entries"),
        "{text}"
    );
}

/// With `metrics_token`, the API listener wants the token and then shows the org series; with
/// `metrics_listen`, only that listener serves them.
#[tokio::test]
async fn metrics_behind_a_token_or_their_own_listener() {
    let token = "s3cret-scrape-token";
    let h = Harness::with_config("sqlite", |c| c.metrics_token = Some(token.into()))
        .await
        .unwrap();
    org_with_users(&h).await;
    for wrong in [None, Some("nope"), Some("s3cret-scrape-tokeN")] {
        let (status, body) = scrape(&h.app, wrong).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong:?}: {body}");
        assert!(!body.contains("acme"), "{body}");
    }
    let (status, text) = scrape(&h.app, Some(token)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains(r#"chef_sync_server_feed_entries{org="acme"}"#),
        "{text}"
    );
    h.finish().await;

    // An empty token is no token: the org series stay private.
    let h = Harness::with_config("sqlite", |c| c.metrics_token = Some(String::new()))
        .await
        .unwrap();
    org_with_users(&h).await;
    let (status, text) = scrape(&h.app, Some("")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!text.contains("acme"), "{text}");
    h.finish().await;

    let h = Harness::with_config("sqlite", |c| {
        c.metrics_listen = Some("127.0.0.1:0".into());
        c.metrics_token = Some(token.into());
    })
    .await
    .unwrap();
    org_with_users(&h).await;
    let (status, _) = scrape(&h.app, Some(token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let private = chef_sync_server::metrics_app(h.state.clone());
    let (status, text) = scrape(&private, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains(r#"chef_sync_server_feed_entries{org="acme"}"#),
        "{text}"
    );
    h.finish().await;
}

async fn keys_per_actor_are_capped(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    let a = h.actor("alice", &alice);
    let (status, body) = a
        .post(
            "/organizations/acme/clients",
            json!({"name": "node1", "create_key": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let node_key =
        chef_sync_shared::PrivateKey::from_pem(body["chef_key"]["private_key"].as_str().unwrap())
            .unwrap();
    let node = h.actor("node1", &node_key);
    let public = other_key().public_key().to_pem().unwrap();
    let most = h.state.config.max_keys_per_actor;
    // The client's own key is one; it adds itself keys up to the limit.
    for i in 1..most {
        let (status, body) = node
            .post(
                "/organizations/acme/clients/node1/keys",
                json!({"name": format!("k{i}"), "public_key": public, "expiration_date": "infinity"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "key {i}: {body}");
    }
    let (status, body) = node
        .post(
            "/organizations/acme/clients/node1/keys",
            json!({"name": "one-too-many", "public_key": public, "expiration_date": "infinity"}),
        )
        .await;
    refused("key over the limit", status, &body, StatusCode::CONFLICT);
    assert!(
        body.to_string().contains("max_keys_per_actor"),
        "names the setting: {body}"
    );
    let (_, list) = node.get("/organizations/acme/clients/node1/keys").await;
    assert_eq!(list.as_array().map(Vec::len), Some(most));
    // Room again after a delete; the client still authenticates with its first key.
    let (status, _) = node
        .delete("/organizations/acme/clients/node1/keys/k1")
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = node
        .post(
            "/organizations/acme/clients/node1/keys",
            json!({"name": "replacement", "public_key": public, "expiration_date": "infinity"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn junk_signatures_against_many_keys_leave_status_answering(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    let victim = h.store.user("bob").await.unwrap().unwrap();
    // bob holds as many keys as anyone may (written straight to the store: the attacker's
    // setup is not what is measured), every one of the size a junk signature is made for.
    let public = other_key().public_key().to_pem().unwrap();
    let most = h.state.config.max_keys_per_actor;
    for i in 1..most {
        let key = KeyRow {
            name: format!("k{i}"),
            public_key: public.clone(),
            expires_at: None,
        };
        h.store
            .add_key(KeyOwner::User(victim.id), &key, most)
            .await
            .unwrap();
    }
    let url = listen(h).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let probe = tokio::spawn(probe_status(format!("{url}/_status"), stop_rx));
    // Requests signed by alice's key under bob's name: the content hash and clock are right,
    // so every one of bob's keys is tried before the 401. Signed once and replayed (within
    // the clock skew), so the attackers spend no CPU of their own on RSA.
    let junk: Vec<(String, String)> = signed(
        "bob",
        &alice,
        "GET",
        "/organizations/acme/roles",
        b"",
        SigningVersion::V1_1,
        chrono::Utc::now(),
    )
    .headers()
    .iter()
    .filter(|(k, _)| k.as_str().starts_with("x-ops"))
    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
    .collect();
    // 16 attackers for 3 s.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut attackers = Vec::new();
    for _ in 0..16 {
        let url = url.clone();
        let junk = junk.clone();
        attackers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut sent = 0u32;
            while Instant::now() < deadline {
                let mut out = client.get(format!("{url}/organizations/acme/roles"));
                for (k, v) in &junk {
                    out = out.header(k, v);
                }
                let resp = out.send().await.unwrap();
                assert_eq!(resp.status(), 401);
                sent += 1;
            }
            sent
        }));
    }
    let mut sent = 0;
    for a in attackers {
        sent += a.await.unwrap();
    }
    stop_tx.send(true).unwrap();
    eprintln!("{sent} junk-signed requests against {most} keys");
    status_kept_answering("junk signatures", probe.await.unwrap(), 20, 5);
}

async fn private_and_weak_keys_are_refused(h: &Harness) {
    let (alice, bob) = org_with_users(h).await;
    let a = h.actor("alice", &alice);
    let private = other_key().to_pkcs1_pem().unwrap();
    let public = other_key().public_key().to_pem().unwrap();
    let smuggled = format!("{public}{private}");
    for (what, pem) in [
        ("a private key", private.as_str()),
        (
            "a public key with a private one after it",
            smuggled.as_str(),
        ),
        ("a 1024-bit key", WEAK_PUBLIC),
    ] {
        let (status, body) = a
            .post(
                "/organizations/acme/clients",
                json!({"name": "node1", "public_key": pem}),
            )
            .await;
        refused(what, status, &body, StatusCode::BAD_REQUEST);
        let (status, body) = a
            .post(
                "/users/alice/keys",
                json!({"name": "extra", "public_key": pem}),
            )
            .await;
        refused(what, status, &body, StatusCode::BAD_REQUEST);
        let (status, body) = a
            .put("/users/alice/keys/default", json!({"public_key": pem}))
            .await;
        refused(what, status, &body, StatusCode::BAD_REQUEST);
    }
    let (status, body) = a
        .post(
            "/organizations/acme/clients",
            json!({"name": "node1", "public_key": private}),
        )
        .await;
    assert!(
        body.to_string().contains("private key"),
        "says why: {status} {body}"
    );
    // Nothing was stored: no client, and alice's keys read as before (public only).
    let (status, _) = a.get("/organizations/acme/clients/node1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, keys) = a.get("/users/alice/keys").await;
    assert_eq!(keys.as_array().map(Vec::len), Some(1), "{keys}");
    let (_, key) = a.get("/users/alice/keys/default").await;
    assert!(
        !key.to_string().contains("PRIVATE"),
        "no private key handed out: {key}"
    );
    // bob, an ordinary member, still signs with his key.
    let (status, _) = h.actor("bob", &bob).get("/organizations/acme/roles").await;
    assert_eq!(status, StatusCode::OK);
}

/// A fleet with legacy keys lowers `min_key_bits`; then a 1024-bit key is taken.
#[tokio::test]
async fn min_key_bits_lets_legacy_fleets_keep_small_keys() {
    let h = Harness::with_config("sqlite", |c| c.min_key_bits = 1024)
        .await
        .unwrap();
    let (alice, _) = org_with_users(&h).await;
    let (status, body) = h
        .actor("alice", &alice)
        .post(
            "/organizations/acme/clients",
            json!({"name": "legacy", "public_key": WEAK_PUBLIC}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    h.finish().await;
}
