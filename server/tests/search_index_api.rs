//! The search index kept in step with the store, on SQLite and PostgreSQL: every kind of
//! write and delete moves documents in and out of answers, documents stored before the index
//! existed are indexed at start, and two servers over one database answer alike.

#![allow(clippy::unwrap_used)]

#[path = "support/harness.rs"]
mod harness;

use axum::http::StatusCode;
use chef_sync_server::store::Store;
use chef_sync_server::{AppState, app};
use harness::*;
use serde_json::{Value, json};
use tower::ServiceExt;

on_both_backends!(
    writes_and_deletes_move_documents,
    documents_stored_before_the_index_are_indexed_at_start,
    two_servers_over_one_database_answer_alike
);

fn names(body: &Value) -> Vec<String> {
    body["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|r| {
            r["raw_data"]["id"]
                .as_str()
                .or_else(|| r["name"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect()
}

async fn search(a: &As<'_>, index: &str, q: &str) -> Vec<String> {
    let (status, body) = a
        .get(&format!("/organizations/acme/search/{index}?q={q}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{index} {q}: {body}");
    names(&body)
}

async fn writes_and_deletes_move_documents(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    let a = h.actor("alice", &alice);
    for (path, body) in [
        (
            "/organizations/acme/roles",
            json!({"name": "web", "description": "front"}),
        ),
        (
            "/organizations/acme/environments",
            json!({"name": "prod", "cookbook_versions": {"nginx": "= 1.0.0"}}),
        ),
        ("/organizations/acme/data", json!({"name": "users"})),
        (
            "/organizations/acme/data/users",
            json!({"id": "alice", "shell": "zsh"}),
        ),
    ] {
        let (status, body) = a.post(path, body).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {body}");
    }
    assert_eq!(search(&a, "role", "description:front").await, ["web"]);
    // Keys of nested objects are values of their field, as Chef flattens them.
    assert_eq!(
        search(&a, "environment", "cookbook_versions:nginx").await,
        ["prod"]
    );
    assert_eq!(search(&a, "users", "shell:zsh").await, ["alice"]);

    // An update replaces the old terms.
    let (status, _) = a
        .put(
            "/organizations/acme/roles/web",
            json!({"name": "web", "description": "back"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(search(&a, "role", "description:front").await.is_empty());
    assert_eq!(search(&a, "role", "description:back").await, ["web"]);

    // Clients are searchable as Chef indexes them.
    let (status, body) = a
        .post("/organizations/acme/clients", json!({"name": "web-1"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, body) = a
        .get("/organizations/acme/search/client?q=name:web-1")
        .await;
    assert_eq!(body["total"], 1, "{body}");
    assert_eq!(body["rows"][0]["orgname"], "acme");
    assert_eq!(body["rows"][0]["validator"], false);
    assert_eq!(
        search(&a, "client", "validator:true").await,
        ["acme-validator"]
    );
    let (status, _) = a.delete("/organizations/acme/clients/web-1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(search(&a, "client", "name:web-1").await.is_empty());

    // Deleting a bag takes its items out; a new bag of that name starts empty.
    let (status, _) = a.delete("/organizations/acme/data/users").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = a
        .post("/organizations/acme/data", json!({"name": "users"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(search(&a, "users", "shell:zsh").await.is_empty());
    assert!(search(&a, "users", "id:*").await.is_empty());

    let (status, _) = a.delete("/organizations/acme/roles/web").await;
    assert_eq!(status, StatusCode::OK);
    assert!(search(&a, "role", "name:web").await.is_empty());
}

async fn documents_stored_before_the_index_are_indexed_at_start(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    let a = h.actor("alice", &alice);
    for i in 0..30 {
        let (status, _) = a
            .post(
                "/organizations/acme/roles",
                json!({"name": format!("r{i:02}"), "description": if i % 2 == 0 { "even" } else { "odd" }}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    // As a database written by the release before the index holds them: no index rows.
    let url = h.state.config.database.clone().unwrap();
    let raw = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query("DELETE FROM search_terms")
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("DELETE FROM search_docs")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    assert!(search(&a, "role", "description:even").await.is_empty());

    // The next start indexes them (roles and the org's validator client), once.
    let store = Store::connect(&url, 4).await.unwrap();
    assert_eq!(store.index_unindexed().await.unwrap(), 0);
    store.close().await;
    let found = search(&a, "role", "description:even").await;
    assert_eq!(found.len(), 15, "{found:?}");
    assert_eq!(search(&a, "client", "name:*").await, ["acme-validator"]);
}

async fn two_servers_over_one_database_answer_alike(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    let a = h.actor("alice", &alice);
    let url = h.state.config.database.clone().unwrap();
    let other_store = Store::connect(&url, 4).await.unwrap();
    let other = AppState::new((*h.state.config).clone(), other_store.clone())
        .await
        .unwrap();
    let other_app = app(other);
    for i in 0..10 {
        let (status, _) = a
            .post(
                "/organizations/acme/data",
                json!({"name": format!("bag{i}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    // Written through one server, found through the other, at once.
    let item = json!({"id": "x", "port": 8080});
    let req = signed(
        "alice",
        &alice,
        "POST",
        "/organizations/acme/data/bag3",
        item.to_string().as_bytes(),
        chef_sync_shared::signing::SigningVersion::V1_1,
        chrono::Utc::now(),
    );
    let resp = other_app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(search(&a, "bag3", "port:8080").await, ["x"]);
    let req = signed(
        "alice",
        &alice,
        "GET",
        "/organizations/acme/search/bag3",
        b"",
        chef_sync_shared::signing::SigningVersion::V1_1,
        chrono::Utc::now(),
    );
    let (parts, body) = req.into_parts();
    let mut req = axum::http::Request::from_parts(parts, body);
    *req.uri_mut() = "/organizations/acme/search/bag3?q=port:8080"
        .parse()
        .unwrap();
    let resp = other_app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(names(&body), ["x"]);
    other_store.close().await;
}
