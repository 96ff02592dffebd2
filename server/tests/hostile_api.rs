//! Hostile input to the server (issue #7, item 5): broken signatures and headers, bodies that
//! are not JSON or are built to hurt, names and paths that try to escape, an actor from another
//! org. Each gets a 4xx with a Chef error body, and the org reads exactly as before.

#![allow(clippy::unwrap_used)]

#[path = "support/harness.rs"]
mod harness;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chef_sync_shared::signing::SigningVersion;
use harness::*;
use serde_json::{Value, json};

on_both_backends!(hostile_requests_change_nothing);

/// Everything an admin can read in the org, for before/after comparisons.
async fn state(h: &Harness, alice: &chef_sync_shared::PrivateKey) -> Value {
    let a = h.actor("alice", alice);
    let mut out = serde_json::Map::new();
    for rel in ["roles", "environments", "data", "cookbooks", "clients"] {
        let (status, list) = a.get(&format!("/organizations/acme/{rel}")).await;
        assert_eq!(status, StatusCode::OK);
        out.insert(rel.into(), list);
    }
    let (_, web) = a.get("/organizations/acme/roles/web").await;
    out.insert("web".into(), web);
    let (_, feed) = a.get("/organizations/acme/updated_since?seq=0").await;
    out.insert("feed".into(), feed);
    Value::Object(out)
}

/// A 4xx whose body is Chef's `{"error": ["…"]}`.
#[track_caller]
fn refused(what: &str, status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{what}: {body}");
    let messages = body["error"].as_array();
    assert!(
        messages.is_some_and(|m| !m.is_empty() && m.iter().all(Value::is_string)),
        "{what}: not a Chef error body: {body}"
    );
}

async fn hostile_requests_change_nothing(h: &Harness) {
    let (alice, bob) = org_with_users(h).await;
    reader_only(h, "acme", "bob").await;
    let a = h.actor("alice", &alice);
    let (status, _) = a
        .post(
            "/organizations/acme/roles",
            json!({"name": "web", "run_list": ["recipe[nginx]"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let before = state(h, &alice).await;
    let now = chrono::Utc::now;

    // Signatures and headers: a good signed GET, then spoiled.
    let get_web = || {
        signed(
            "alice",
            &alice,
            "GET",
            "/organizations/acme/roles/web",
            b"",
            SigningVersion::V1_3,
            now(),
        )
    };
    let mut req = get_web();
    let last = (1..20)
        .rev()
        .find(|i| {
            req.headers()
                .contains_key(format!("x-ops-authorization-{i}").as_str())
        })
        .unwrap();
    req.headers_mut()
        .remove(format!("x-ops-authorization-{last}").as_str());
    let (status, _, body) = h.send(req).await;
    refused(
        "truncated signature",
        status,
        &body,
        StatusCode::UNAUTHORIZED,
    );

    let mut req = get_web();
    req.headers_mut().insert(
        "x-ops-authorization-1",
        "A".repeat(64 * 1024).parse().unwrap(),
    );
    let (status, _, body) = h.send(req).await;
    refused(
        "oversized signature header",
        status,
        &body,
        StatusCode::UNAUTHORIZED,
    );

    let mut req = get_web();
    req.headers_mut()
        .insert("x-ops-userid", "a".repeat(10_000).parse().unwrap());
    let (status, _, body) = h.send(req).await;
    refused("oversized user id", status, &body, StatusCode::UNAUTHORIZED);

    // The body changed after signing: the content hash no longer matches.
    let role = json!({"name": "web", "run_list": ["recipe[evil]"]}).to_string();
    let req = signed(
        "alice",
        &alice,
        "PUT",
        "/organizations/acme/roles/web",
        role.as_bytes(),
        SigningVersion::V1_3,
        now(),
    );
    let (parts, _) = req.into_parts();
    let tampered = Request::from_parts(
        parts,
        Body::from(json!({"name": "web", "run_list": ["recipe[worse]"]}).to_string()),
    );
    let (status, _, body) = h.send(tampered).await;
    refused("tampered body", status, &body, StatusCode::UNAUTHORIZED);

    // Bodies.
    let send_body = |raw: Vec<u8>| {
        signed(
            "alice",
            &alice,
            "PUT",
            "/organizations/acme/roles/web",
            &raw,
            SigningVersion::V1_3,
            now(),
        )
    };
    let (status, _, body) = h.send(send_body(b"{\"name\": \"web\",".to_vec())).await;
    refused("truncated JSON", status, &body, StatusCode::BAD_REQUEST);
    let (status, _, body) = h.send(send_body(b"<role>web</role>".to_vec())).await;
    refused("not JSON", status, &body, StatusCode::BAD_REQUEST);
    let nested = format!(
        "{{\"name\": \"web\", \"default_attributes\": {}1{}}}",
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    let (status, _, body) = h.send(send_body(nested.into_bytes())).await;
    refused("deeply nested JSON", status, &body, StatusCode::BAD_REQUEST);
    let huge = json!({"name": "web", "description": "x".repeat(20 * 1024 * 1024)}).to_string();
    let (status, _, body) = h.send(send_body(huge.into_bytes())).await;
    refused(
        "body over the limit",
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
    );
    let (status, body) = a
        .put(
            "/organizations/acme/roles/web",
            json!({"name": "web", "run_list": "recipe[nginx]"}),
        )
        .await;
    refused(
        "run_list of the wrong type",
        status,
        &body,
        StatusCode::BAD_REQUEST,
    );

    // Names and paths.
    for name in [
        "../users",
        "web/../../users",
        "w\u{0435}b", // Cyrillic е: looks like "web", is not a Chef name
        "web\u{0000}",
        "",
        &"a".repeat(1000),
    ] {
        let (status, body) = a
            .post("/organizations/acme/roles", json!({ "name": name }))
            .await;
        refused(
            &format!("role named {name:?}"),
            status,
            &body,
            StatusCode::BAD_REQUEST,
        );
    }
    for path in [
        "/organizations/acme/roles/..%2F..%2Fusers",
        "/organizations/acme/roles/web%2F..",
        "/organizations/acme/data/..%2Froles/web",
        "/organizations/acme/roles/w%D0%B5b",
        "/organizations/acme/cookbooks/nginx/..%2F..",
        "/organizations/acme/roles/%00",
    ] {
        let (status, body) = a.get(path).await;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST,
            "{path}: {status} {body}"
        );
        refused(path, status, &body, status);
        let (status, body) = a.delete(path).await;
        assert!(status.is_client_error(), "DELETE {path}: {status} {body}");
    }
    let (status, body) = a
        .put(
            "/organizations/acme/roles/web",
            json!({"name": "other", "run_list": []}),
        )
        .await;
    refused(
        "name differing from the URL",
        status,
        &body,
        StatusCode::BAD_REQUEST,
    );

    // An actor of another org: bob is only a member of acme; a user of org "other" is nobody
    // in acme.
    let (status, body) = h
        .as_pivotal(
            "POST",
            "/organizations",
            Some(json!({"name": "other", "full_name": "Other"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let other_org = h.store.org("other").await.unwrap().unwrap();
    let (bob_row, _) = chef_sync_server::accounts::create_user(
        &h.store,
        "mallory",
        &json!({"username": "mallory"}),
        false,
        Some(&bob.public_key().to_pem().unwrap()),
        2048,
    )
    .await
    .unwrap();
    chef_sync_server::accounts::associate(&h.store, &other_org, &bob_row, true)
        .await
        .unwrap();
    let m = h.actor("mallory", &bob);
    let (status, body) = m.get("/organizations/acme/roles/web").await;
    refused("reading another org", status, &body, StatusCode::FORBIDDEN);
    let (status, body) = m
        .put(
            "/organizations/acme/roles/web",
            json!({"name": "web", "run_list": ["recipe[evil]"]}),
        )
        .await;
    refused("writing another org", status, &body, StatusCode::FORBIDDEN);
    let (status, body) = m.delete("/organizations/acme/roles/web").await;
    refused(
        "deleting in another org",
        status,
        &body,
        StatusCode::FORBIDDEN,
    );
    let (status, body) = h
        .actor("bob", &bob)
        .delete("/organizations/acme/roles/web")
        .await;
    refused("a member deleting", status, &body, StatusCode::FORBIDDEN);

    assert_eq!(state(h, &alice).await, before, "nothing stored changed");
}
