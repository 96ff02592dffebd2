//! HTTP tests of `/nodes` and node search, on SQLite and PostgreSQL: a node's own client
//! registers and saves it, other clients cannot touch it, replica orgs accept nodes while the
//! replicated types stay read-only, nodes never enter the change feed, and the node index
//! answers Chef's queries over merged attributes.

#![allow(clippy::unwrap_used)]

#[path = "support/harness.rs"]
mod harness;

use axum::http::StatusCode;
use chef_sync_shared::PrivateKey;
use harness::*;
use serde_json::{Value, json};

on_both_backends!(
    racing_saves_leave_one_node_and_its_own_terms,
    a_client_registers_and_saves_its_node,
    replica_orgs_take_nodes_but_stay_read_only,
    nodes_are_searchable_by_merged_attributes,
    bad_node_fields_get_chefs_messages
);

/// With the server's default request size limit (the harness sets a small one).
async fn big_nodes(backend: &str) {
    let Some(h) = Harness::with_config(backend, |c| c.max_request_size = 2_000_000).await else {
        return;
    };
    let (alice, _) = org_with_users(&h).await;
    let (one, _) = two_clients(&h).await;
    let web1 = h.actor("web-1", &one);
    let bob = h.actor("alice", &alice);
    let (status, body) = web1
        .post("/organizations/acme/nodes", json!({"name": "web-1"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, stored) = web1.get("/organizations/acme/nodes/web-1").await;
    // A node document of 300 KB of ohai data is saved whole.
    let big: serde_json::Map<String, Value> = (0..3000)
        .map(|i| (format!("attr_{i:04}"), json!("x".repeat(90))))
        .collect();
    let mut saved = stored.clone();
    saved["automatic"]["big"] = Value::Object(big);
    assert!(saved.to_string().len() > 300_000);
    let (status, body) = web1
        .put("/organizations/acme/nodes/web-1", saved.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, again) = bob.get("/organizations/acme/nodes/web-1").await;
    assert_eq!(again, saved);

    let (_, found) = bob
        .get("/organizations/acme/search/node?q=attr_2999:x*")
        .await;
    assert_eq!(found["total"], 1);
    h.finish().await;
}

#[tokio::test]
async fn a_300_kb_node_is_saved_whole_sqlite() {
    big_nodes("sqlite").await;
}

#[tokio::test]
async fn a_300_kb_node_is_saved_whole_postgres() {
    big_nodes("postgres").await;
}

fn names(body: &Value) -> Vec<String> {
    let mut names: Vec<String> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// Clients `web-1` and `web-2` of org acme, with alice's and bob's key material.
async fn two_clients(h: &Harness) -> (PrivateKey, PrivateKey) {
    let org = h.store.org("acme").await.unwrap().unwrap();
    let (one, two) = (fixture_key(), other_key());
    for (name, key) in [("web-1", &one), ("web-2", &two)] {
        let public = key.public_key().to_pem().unwrap();
        h.store
            .create_client(org.id, name, false, &public)
            .await
            .unwrap();
    }
    (one, two)
}

fn ohai(i: usize, platform: &str) -> Value {
    json!({
        "platform": platform,
        "ipaddress": format!("10.0.0.{i}"),
        "kernel": {"release": "6.1.0", "modules": {"ext4": {"size": "1000"}}},
    })
}

async fn a_client_registers_and_saves_its_node(h: &Harness) {
    let (alice, bob) = org_with_users(h).await;
    let (one, two) = two_clients(h).await;
    let web1 = h.actor("web-1", &one);
    let web2 = h.actor("web-2", &two);
    let alice = h.actor("alice", &alice);
    let bob = h.actor("bob", &bob);

    // chef-client's first run: GET (404), then POST.
    let (status, body) = web1.get("/organizations/acme/nodes/web-1").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"][0], "node 'web-1' not found");
    let node = json!({"name": "web-1", "run_list": ["nginx", "role[web]"], "automatic": ohai(1, "ubuntu")});
    let (status, body) = web1.post("/organizations/acme/nodes", node.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        body["uri"]
            .as_str()
            .unwrap()
            .ends_with("/organizations/acme/nodes/web-1")
    );
    let (status, body) = web1.post("/organizations/acme/nodes", node).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (status, stored) = web1.get("/organizations/acme/nodes/web-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stored["run_list"], json!(["recipe[nginx]", "role[web]"]));
    assert_eq!(stored["chef_environment"], "_default");
    assert_eq!(stored["json_class"], "Chef::Node");
    assert_eq!(stored["automatic"]["ipaddress"], "10.0.0.1");

    // Another client may read it, not change or delete it; users manage every node.
    let (status, _) = web2.get("/organizations/acme/nodes/web-1").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = web2
        .put("/organizations/acme/nodes/web-1", json!({"name": "web-1"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = web2.delete("/organizations/acme/nodes/web-1").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = bob
        .put("/organizations/acme/nodes/web-1", json!({"name": "web-2"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"][0], "Node name mismatch.");
    let (status, body) = bob
        .put(
            "/organizations/acme/nodes/nowhere",
            json!({"name": "nowhere"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, list) = alice.get("/organizations/acme/nodes").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_object().unwrap().len(), 1);
    assert!(
        list["web-1"]
            .as_str()
            .unwrap()
            .ends_with("/organizations/acme/nodes/web-1")
    );

    // Nodes never enter the change feed.
    let (status, feed) = alice.get("/organizations/acme/updated_since?seq=0").await;
    assert_eq!(status, StatusCode::OK, "{feed}");
    assert!(!feed.to_string().contains("/nodes/"), "{feed}");

    let (status, gone) = web1.delete("/organizations/acme/nodes/web-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(gone["name"], "web-1");
    let (status, _) = web1.get("/organizations/acme/nodes/web-1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, found) = alice
        .get("/organizations/acme/search/node?q=name:web-1")
        .await;
    assert_eq!(found["total"], 0);
}

async fn replica_orgs_take_nodes_but_stay_read_only(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    let (one, _) = two_clients(h).await;
    let org = h.store.org("acme").await.unwrap().unwrap();
    h.store
        .set_replica(org.id, true, Some("pivotal"))
        .await
        .unwrap();
    let web1 = h.actor("web-1", &one);
    let alice = h.actor("alice", &alice);
    let (status, body) = web1
        .post("/organizations/acme/nodes", json!({"name": "web-1"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = web1
        .put(
            "/organizations/acme/nodes/web-1",
            json!({"name": "web-1", "normal": {"a": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = alice
        .post("/organizations/acme/roles", json!({"name": "web"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

async fn nodes_are_searchable_by_merged_attributes(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice);
    for i in 0..12 {
        let role = if i % 3 == 0 { "web" } else { "db" };
        let platform = if i % 2 == 0 { "ubuntu" } else { "debian" };
        let node = json!({
            "name": format!("node-{i:02}"),
            "chef_environment": if i < 6 { "prod" } else { "dev" },
            "run_list": [format!("role[{role}]"), "recipe[base::default]"],
            "default": {"app": {"port": 80}},
            "override": {"app": {"port": 8000 + i}},
            "automatic": ohai(i, platform),
        });
        let (status, body) = alice.post("/organizations/acme/nodes", node).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for (query, expected) in [
        (
            "role:web%20AND%20platform:ubuntu",
            vec!["node-00", "node-06"],
        ),
        (
            "role:web%20AND%20chef_environment:prod",
            vec!["node-00", "node-03"],
        ),
        ("app_port:8011", vec!["node-11"]),
        (
            "port:[8009%20TO%208011]",
            vec!["node-09", "node-10", "node-11"],
        ),
        ("ipaddress:10.0.0.1*", vec!["node-01", "node-10", "node-11"]),
        (
            "recipe:base%5C:%5C:default%20AND%20name:node-0?",
            vec![
                "node-00", "node-01", "node-02", "node-03", "node-04", "node-05", "node-06",
                "node-07", "node-08", "node-09",
            ],
        ),
        (
            "kernel_modules:ext4%20AND%20-platform:ubuntu%20AND%20name:node-0*",
            vec!["node-01", "node-03", "node-05", "node-07", "node-09"],
        ),
        ("*:debian%20AND%20role:web", vec!["node-03", "node-09"]),
    ] {
        let (status, body) = alice
            .get(&format!("/organizations/acme/search/node?q={query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(names(&body), expected, "{query}");
        assert_eq!(body["total"], expected.len(), "{query}");
    }
    // Full rows are the stored nodes.
    let (_, body) = alice
        .get("/organizations/acme/search/node?q=name:node-04")
        .await;
    assert_eq!(body["rows"][0]["automatic"]["platform"], "ubuntu");
    assert_eq!(body["rows"][0]["json_class"], "Chef::Node");
    // Partial search reads the merged attributes, as Chef does.
    let (status, body) = alice
        .post(
            "/organizations/acme/search/node?q=name:node-04",
            json!({"port": ["app", "port"], "ip": ["ipaddress"], "env": ["chef_environment"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["rows"][0]["data"],
        json!({"port": 8004, "ip": "10.0.0.4", "env": "prod"})
    );
    assert!(
        body["rows"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with("/organizations/acme/nodes/node-04")
    );
    // A save moves the node between answers at once.
    let (status, _) = alice
        .put(
            "/organizations/acme/nodes/node-00",
            json!({"name": "node-00", "run_list": ["role[db]"], "automatic": ohai(0, "ubuntu")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = alice
        .get("/organizations/acme/search/node?q=role:web%20AND%20platform:ubuntu")
        .await;
    assert_eq!(names(&body), ["node-06"]);
    // Paging over a filtered query.
    let (_, body) = alice
        .get("/organizations/acme/search/node?q=platform:ubuntu&rows=2&start=1")
        .await;
    assert_eq!(body["total"], 6);
    assert_eq!(names(&body), ["node-02", "node-04"]);
}

/// Concurrent first saves of one node: one is created, the others are told it exists; then
/// concurrent updates: the index holds the terms of whichever was stored last, and no other.
async fn racing_saves_leave_one_node_and_its_own_terms(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    let a = h.actor("alice", &alice);
    let creates = (0..8).map(|i| {
        let a = &a;
        async move {
            a.post(
                "/organizations/acme/nodes",
                json!({"name": "race", "normal": {"writer": format!("w{i}")}}),
            )
            .await
            .0
        }
    });
    let statuses = futures_util::future::join_all(creates).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 7), "{statuses:?}");
    let updates = (0..8).map(|i| {
        let a = &a;
        async move {
            a.put(
                "/organizations/acme/nodes/race",
                json!({"name": "race", "normal": {"writer": format!("u{i}")}}),
            )
            .await
            .0
        }
    });
    for status in futures_util::future::join_all(updates).await {
        assert_eq!(status, StatusCode::OK);
    }
    let (_, stored) = a.get("/organizations/acme/nodes/race").await;
    let last = stored["normal"]["writer"].as_str().unwrap().to_owned();
    for i in 0..8 {
        for prefix in ["w", "u"] {
            let value = format!("{prefix}{i}");
            let (_, found) = a
                .get(&format!("/organizations/acme/search/node?q=writer:{value}"))
                .await;
            let expected = usize::from(value == last);
            assert_eq!(found["total"], expected, "writer:{value} (stored: {last})");
        }
    }
}

async fn bad_node_fields_get_chefs_messages(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice);
    let cases = [
        (
            json!({"name": "n", "normal": []}),
            "Field 'normal' is not a hash",
        ),
        (
            json!({"name": "n", "automatic": ""}),
            "Field 'automatic' is not a hash",
        ),
        (
            json!({"name": "n", "override": 1}),
            "Field 'override' is not a hash",
        ),
        (
            json!({"name": "n", "run_list": [1, 2]}),
            "Field 'run_list' is not a valid run list",
        ),
        (
            json!({"name": "n", "run_list": "recipe[a]"}),
            "Field 'run_list' is not a valid run list",
        ),
        (
            json!({"name": "n", "policy_name": 42}),
            "Field 'policy_name' invalid",
        ),
        (
            json!({"name": "n", "json_class": "Chef::Role"}),
            "Field 'json_class' invalid",
        ),
        (
            json!({"name": "n", "chef_type": "role"}),
            "Field 'chef_type' invalid",
        ),
        (
            json!({"name": "n", "surprise": 1}),
            "Invalid key surprise in request body",
        ),
    ];
    for (body, message) in cases {
        let (status, answer) = alice.post("/organizations/acme/nodes", body.clone()).await;
        assert_eq!(
            (status, answer),
            (StatusCode::BAD_REQUEST, json!({"error": [message]})),
            "{body}"
        );
    }
    let (status, body) = alice
        .post(
            "/organizations/acme/nodes",
            json!({"name": "n", "policy_name": "ABCxyz019-_:.", "policy_group": "prod:eu"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
