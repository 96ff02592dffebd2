//! HTTP tests of Chef search (`/search`, `/search/INDEX`, partial search), on SQLite and
//! PostgreSQL.

#![allow(clippy::unwrap_used)]

#[path = "support/harness.rs"]
mod harness;

use axum::http::StatusCode;
use harness::*;
use serde_json::{Value, json};

on_both_backends!(
    full_pages_and_queries,
    data_bag_rows_and_partial_search,
    bad_searches_are_refused
);

fn names(body: &Value) -> Vec<String> {
    body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn full_pages_and_queries(h: &Harness) {
    let (alice, bob) = org_with_users(h).await;
    let alice = h.actor("alice", &alice);
    let bob = h.actor("bob", &bob);
    for i in 0..25 {
        let role = json!({
            "name": format!("r{i:02}"),
            "description": if i % 2 == 0 { "even" } else { "odd" },
            "run_list": [format!("recipe[app{}]", i % 3)],
            "default_attributes": {"tier": {"port": 8000 + i}},
        });
        let (status, body) = alice.post("/organizations/acme/roles", role).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    // A member may search; the rows are the objects exactly as a GET returns them.
    let (status, page) = bob
        .get("/organizations/acme/search/role?q=*:*&rows=10&start=5")
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 25);
    assert_eq!(page["start"], 5);
    assert_eq!(
        names(&page),
        (5..15).map(|i| format!("r{i:02}")).collect::<Vec<_>>()
    );
    let (_, r05) = bob.get("/organizations/acme/roles/r05").await;
    assert_eq!(page["rows"][0], r05);

    // Paging to the end, then past it.
    let (_, last) = bob.get("/organizations/acme/search/role?start=20").await;
    assert_eq!(names(&last).len(), 5);
    let (_, past) = bob.get("/organizations/acme/search/role?start=40").await;
    assert_eq!(past["total"], 25);
    assert_eq!(past["rows"], json!([]));

    for (query, expected) in [
        (
            "name:r1*",
            vec![
                "r10", "r11", "r12", "r13", "r14", "r15", "r16", "r17", "r18", "r19",
            ],
        ),
        (
            "description:odd%20AND%20recipe:app0",
            vec!["r03", "r09", "r15", "r21"],
        ),
        (
            "port:8024%20OR%20default_attributes_tier_port:8000",
            vec!["r00", "r24"],
        ),
        (
            "NOT%20name:r0*%20AND%20NOT%20name:r1*",
            vec!["r20", "r21", "r22", "r23", "r24"],
        ),
        ("name:nothing", vec![]),
    ] {
        let (status, body) = bob
            .get(&format!("/organizations/acme/search/role?q={query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(names(&body), expected, "{query}");
        assert_eq!(body["total"], expected.len(), "{query}");
    }
    // A filtered query pages too.
    let (_, body) = bob
        .get("/organizations/acme/search/role?q=description:even&rows=3&start=3")
        .await;
    assert_eq!(body["total"], 13);
    assert_eq!(names(&body), ["r06", "r08", "r10"]);

    // The environment index holds the built-in `_default` first.
    let (status, body) = alice
        .post(
            "/organizations/acme/environments",
            json!({"name": "prod", "description": "live"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, envs) = bob.get("/organizations/acme/search/environment").await;
    assert_eq!(envs["total"], 2);
    assert_eq!(names(&envs), ["_default", "prod"]);
    let (_, envs) = bob
        .get("/organizations/acme/search/environment?rows=1&start=1")
        .await;
    assert_eq!(names(&envs), ["prod"]);
    let (_, prod) = bob
        .get("/organizations/acme/search/environment?q=description:live")
        .await;
    assert_eq!(names(&prod), ["prod"]);

    // A search sees a delete at once.
    let (status, _) = alice.delete("/organizations/acme/roles/r00").await;
    assert_eq!(status, StatusCode::OK);
    let (_, after) = bob.get("/organizations/acme/search/role?rows=1").await;
    assert_eq!(after["total"], 24);
    assert_eq!(names(&after), ["r01"]);
}

async fn data_bag_rows_and_partial_search(h: &Harness) {
    let (alice, bob) = org_with_users(h).await;
    let alice = h.actor("alice", &alice);
    let bob = h.actor("bob", &bob);
    let (status, _) = alice
        .post("/organizations/acme/data", json!({"name": "users"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for (id, group, shell) in [("alice", "ops", "/bin/zsh"), ("bob", "dev", "/bin/bash")] {
        let item = json!({"id": id, "group": group, "login": {"shell": shell}});
        let (status, body) = alice.post("/organizations/acme/data/users", item).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    let (status, list) = bob.get("/organizations/acme/search").await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<&String> = list.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["node", "role", "environment", "client", "users"]);
    assert!(
        list["users"]
            .as_str()
            .unwrap()
            .ends_with("/organizations/acme/search/users")
    );

    let (status, body) = bob
        .get("/organizations/acme/search/users?q=group:ops")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["rows"],
        json!([{
            "name": "data_bag_item_users_alice",
            "json_class": "Chef::DataBagItem",
            "chef_type": "data_bag_item",
            "data_bag": "users",
            "raw_data": {"id": "alice", "group": "ops", "login": {"shell": "/bin/zsh"}},
        }])
    );
    let (_, both) = bob
        .get("/organizations/acme/search/users?q=data_bag:users%20AND%20chef_type:data_bag_item")
        .await;
    assert_eq!(both["total"], 2);

    let (status, partial) = bob
        .post(
            "/organizations/acme/search/users?q=*:*",
            json!({"who": ["id"], "shell": ["login", "shell"], "absent": ["nope"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{partial}");
    assert_eq!(partial["total"], 2);
    let rows = partial["rows"].as_array().unwrap();
    assert!(
        rows[0]["url"]
            .as_str()
            .unwrap()
            .ends_with("/organizations/acme/data/users/alice")
    );
    assert_eq!(
        rows[1]["data"],
        json!({"who": "bob", "shell": "/bin/bash", "absent": null})
    );
}

async fn bad_searches_are_refused(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice);
    for (path, status, message) in [
        (
            "/organizations/acme/search/nobag",
            StatusCode::NOT_FOUND,
            "I don't know how to search for nobag data objects.",
        ),
        (
            "/organizations/acme/search/role?q=name:a~",
            StatusCode::BAD_REQUEST,
            "fuzzy",
        ),
        (
            "/organizations/acme/search/role?q=name:[a%20TO]",
            StatusCode::BAD_REQUEST,
            "[low TO high]",
        ),
        (
            "/organizations/acme/search/role?rows=100000",
            StatusCode::BAD_REQUEST,
            "invalid rows '100000'",
        ),
        (
            "/organizations/acme/search/role?start=-1",
            StatusCode::BAD_REQUEST,
            "invalid start '-1'",
        ),
        (
            "/organizations/acme/search/role?sort=description%20desc",
            StatusCode::BAD_REQUEST,
            "sorting by 'description desc'",
        ),
        (
            "/organizations/nowhere/search/role",
            StatusCode::NOT_FOUND,
            "",
        ),
    ] {
        let (got, body) = alice.get(path).await;
        assert_eq!(got, status, "{path}: {body}");
        let error = body["error"][0].as_str().unwrap_or_default();
        assert!(error.contains(message), "{path}: {body}");
    }
    let (status, body) = alice
        .post(
            "/organizations/acme/search/role",
            json!({"name": "not an array"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": ["invalid partial search request body"]})
    );
    // An empty key path is null, as in Chef.
    let (status, body) = alice
        .post(
            "/organizations/acme/search/environment?q=*:*",
            json!({"empty": [], "name": ["name"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rows"][0]["data"]["empty"], Value::Null, "{body}");
    assert!(body["rows"][0]["data"]["name"].is_string(), "{body}");
    // A key the server does not know.
    let (status, _) = h
        .call(
            "alice",
            &other_key(),
            "GET",
            "/organizations/acme/search/role",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
