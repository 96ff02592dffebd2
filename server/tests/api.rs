//! HTTP tests through the real router with Chef-signed requests, on SQLite and PostgreSQL:
//! authentication, API versions, orgs and users, roles, authorization, replica orgs, the feed.

#![allow(clippy::unwrap_used)]

#[path = "support/harness.rs"]
mod harness;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chef_sync_shared::signing::SigningVersion;
use harness::*;
use serde_json::{Value, json};

on_both_backends!(
    status_is_unsigned,
    authentication_errors,
    api_version_negotiation,
    organizations_and_users,
    role_lifecycle_feeds_changes,
    readers_cannot_write,
    replica_orgs_refuse_writes,
    feed_parameters_and_long_poll,
    unknown_routes_and_large_bodies,
    every_rejection_has_a_chef_body,
);

async fn status_is_unsigned(h: &Harness) {
    let (status, _, body) = h
        .send(Request::get("/_status").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "pong");
}

async fn authentication_errors(h: &Harness) {
    let (status, _, body) = h
        .send(Request::get("/users").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"][0]
            .as_str()
            .unwrap()
            .starts_with("missing required authentication header(s) X-Ops-UserId")
    );

    let (status, headers, body) = h
        .send(signed(
            "pivotal",
            &other_key(),
            "GET",
            "/users",
            b"",
            SigningVersion::V1_0,
            chrono::Utc::now(),
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["error"][0],
        "Invalid signature for user or client 'pivotal'"
    );
    assert!(headers.get("www-authenticate").is_some());

    let stale = chrono::Utc::now() - chrono::Duration::seconds(901);
    let (status, _, body) = h
        .send(signed(
            "pivotal",
            &h.pivotal,
            "GET",
            "/users",
            b"",
            SigningVersion::V1_1,
            stale,
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"][0]
            .as_str()
            .unwrap()
            .contains("Synchronize the clock")
    );

    let (status, body) = h.call("nobody", &h.pivotal, "GET", "/users", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"][0]
            .as_str()
            .unwrap()
            .starts_with("Failed to authenticate as 'nobody'")
    );

    for version in [
        SigningVersion::V1_0,
        SigningVersion::V1_1,
        SigningVersion::V1_2,
        SigningVersion::V1_3,
    ] {
        let (status, _, _) = h
            .send(signed(
                "pivotal",
                &h.pivotal,
                "GET",
                "/users",
                b"",
                version,
                chrono::Utc::now(),
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{version}");
    }
}

async fn api_version_negotiation(h: &Harness) {
    let mut req = signed(
        "pivotal",
        &h.pivotal,
        "GET",
        "/users",
        b"",
        SigningVersion::V1_0,
        chrono::Utc::now(),
    );
    req.headers_mut()
        .insert("x-ops-server-api-version", "3".parse().unwrap());
    let (status, headers, body) = h.send(req).await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(body["error"], "invalid-x-ops-server-api-version");
    assert_eq!(body["max_version"], 2);
    let info: Value =
        serde_json::from_str(headers["x-ops-server-api-version"].to_str().unwrap()).unwrap();
    assert_eq!(info["response_version"], "-1");
    let (_, headers, _) = h
        .send(signed(
            "pivotal",
            &h.pivotal,
            "GET",
            "/users",
            b"",
            SigningVersion::V1_3,
            chrono::Utc::now(),
        ))
        .await;
    let info: Value =
        serde_json::from_str(headers["x-ops-server-api-version"].to_str().unwrap()).unwrap();
    assert_eq!(info["request_version"], "1");
}

async fn organizations_and_users(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    let (status, body) = h
        .as_pivotal(
            "POST",
            "/organizations",
            Some(json!({"name": "second", "full_name": "Second"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["clientname"], "second-validator");
    assert!(
        body["private_key"]
            .as_str()
            .unwrap()
            .contains("BEGIN RSA PRIVATE KEY")
    );
    let (status, body) = h
        .as_pivotal(
            "POST",
            "/organizations",
            Some(json!({"name": "acme", "full_name": "Again"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = h
        .as_pivotal(
            "POST",
            "/organizations",
            Some(json!({"name": "Bad Name", "full_name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = h
        .call(
            "alice",
            &alice,
            "POST",
            "/organizations",
            Some(json!({"name": "evil", "full_name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = h
        .call("alice", &alice, "GET", "/organizations/acme", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["guid"].as_str().unwrap().len(), 32);
    let (status, body) = h.as_pivotal("GET", "/organizations/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"][0], "organization 'nope' does not exist.");
    let (status, body) = h
        .as_pivotal(
            "POST",
            "/users",
            Some(json!({"username": "carol", "email": "c@x", "password": "secret"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        body["chef_key"]["private_key"]
            .as_str()
            .unwrap()
            .contains("PRIVATE KEY")
    );
    let (_, body) = h.as_pivotal("GET", "/users/carol", None).await;
    assert!(body.get("password").is_none(), "{body}");
    let (status, _) = h
        .call(
            "alice",
            &alice,
            "POST",
            "/organizations/acme/users",
            Some(json!({"username": "carol"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, body) = h
        .call("alice", &alice, "GET", "/organizations/acme/users", None)
        .await;
    assert_eq!(body.as_array().unwrap().len(), 3);
}

async fn role_lifecycle_feeds_changes(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    let role = json!({"name": "web", "run_list": ["nginx", "role[base]", "recipe[nginx]"], "env_run_lists": {"_default": ["x"], "prod": ["nginx::prod"]}});
    let (status, body) = h
        .call(
            "alice",
            &alice,
            "POST",
            "/organizations/acme/roles",
            Some(role.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["uri"], "http://chef.test/organizations/acme/roles/web");
    let (status, _) = h
        .call(
            "alice",
            &alice,
            "POST",
            "/organizations/acme/roles",
            Some(role),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, body) = h
        .call(
            "alice",
            &alice,
            "GET",
            "/organizations/acme/roles/web",
            None,
        )
        .await;
    assert_eq!(body["run_list"], json!(["recipe[nginx]", "role[base]"]));
    assert_eq!(
        body["env_run_lists"],
        json!({"prod": ["recipe[nginx::prod]"]})
    );
    assert_eq!(body["json_class"], "Chef::Role");
    let (_, body) = h
        .call(
            "alice",
            &alice,
            "GET",
            "/organizations/acme/roles/web/environments",
            None,
        )
        .await;
    assert_eq!(body, json!(["_default", "prod"]));
    // The run list is kept, but shown only for an environment that exists (Chef: 404
    // otherwise; environment_views_api shows it for one that does).
    let (status, body) = h
        .call(
            "alice",
            &alice,
            "GET",
            "/organizations/acme/roles/web/environments/prod",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"error": ["Cannot load environment prod"]}));

    let updated = json!({"name": "web", "description": "changed"});
    let (status, _) = h
        .call(
            "alice",
            &alice,
            "PUT",
            "/organizations/acme/roles/web",
            Some(updated.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h
        .call(
            "alice",
            &alice,
            "PUT",
            "/organizations/acme/roles/web",
            Some(updated),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "identical PUT is accepted");
    let (status, _) = h
        .call(
            "alice",
            &alice,
            "PUT",
            "/organizations/acme/roles/web",
            Some(json!({"name": "other"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = h
        .call(
            "alice",
            &alice,
            "PUT",
            "/organizations/acme/roles/ghost",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"][0], "Cannot load role ghost");
    let (status, _) = h
        .call(
            "alice",
            &alice,
            "POST",
            "/organizations/acme/roles",
            Some(json!({"name": "a b"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = h
        .call(
            "alice",
            &alice,
            "POST",
            "/organizations/acme/roles",
            Some(json!({"name": "x", "run_list": ["role[a:b]"]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = h
        .call(
            "alice",
            &alice,
            "DELETE",
            "/organizations/acme/roles/web",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["description"], "changed");
    let (status, _) = h
        .call(
            "alice",
            &alice,
            "DELETE",
            "/organizations/acme/roles/web",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, feed) = h
        .call(
            "alice",
            &alice,
            "GET",
            "/organizations/acme/updated_since?seq=0",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        feed,
        json!([
            {"action": "create", "id": 1, "path": "/roles/web"},
            {"action": "update", "id": 2, "path": "/roles/web"},
            {"action": "delete", "id": 3, "path": "/roles/web"},
        ])
    );
    let (_, feed) = h
        .call(
            "alice",
            &alice,
            "GET",
            "/organizations/acme/objects_since?seq=1&limit=1",
            None,
        )
        .await;
    assert_eq!(
        feed,
        json!([{"action": "update", "id": 2, "path": "/roles/web"}])
    );
}

async fn readers_cannot_write(h: &Harness) {
    let (alice, bob) = org_with_users(h).await;
    reader_only(h, "acme", "bob").await;
    h.call(
        "alice",
        &alice,
        "POST",
        "/organizations/acme/roles",
        Some(json!({"name": "web"})),
    )
    .await;
    let (status, _) = h
        .call("bob", &bob, "GET", "/organizations/acme/roles/web", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h
        .call(
            "bob",
            &bob,
            "PUT",
            "/organizations/acme/roles/web",
            Some(json!({"name": "web"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h
        .call(
            "bob",
            &bob,
            "GET",
            "/organizations/acme/updated_since?seq=0",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    h.as_pivotal(
        "POST",
        "/organizations",
        Some(json!({"name": "other", "full_name": "Other"})),
    )
    .await;
    let (status, body) = h
        .call("bob", &bob, "GET", "/organizations/other/roles", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"][0],
        "'bob' not associated with organization 'other'"
    );
}

async fn replica_orgs_refuse_writes(h: &Harness) {
    let (alice, bob) = org_with_users(h).await;
    let org = h.store.org("acme").await.unwrap().unwrap();
    h.store
        .add_group_member(org.id, "admins", "user", "bob")
        .await
        .unwrap();
    // Only the superuser turns an org into a replica, and it needs a member as sync user.
    let (status, _) = h
        .call(
            "alice",
            &alice,
            "PUT",
            "/organizations/acme",
            Some(json!({"replica": true, "sync_user": "bob"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for bad in [
        json!({"replica": true}),
        json!({"replica": true, "sync_user": "nobody"}),
        json!({"replica": "yes", "sync_user": "bob"}),
        json!({"full_name": ""}),
    ] {
        let (status, _) = h
            .as_pivotal("PUT", "/organizations/acme", Some(bad.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (status, body) = h
        .as_pivotal(
            "PUT",
            "/organizations/acme",
            Some(json!({"replica": true, "sync_user": "bob"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["replica"], true);
    assert_eq!(body["sync_user"], "bob");
    assert_eq!(body["full_name"], "Acme");
    let writes = [
        ("POST", "/organizations/acme/roles", json!({"name": "web"})),
        (
            "POST",
            "/organizations/acme/environments",
            json!({"name": "prod"}),
        ),
        ("POST", "/organizations/acme/data", json!({"name": "bag"})),
        (
            "POST",
            "/organizations/acme/sandboxes",
            json!({"checksums": {"d41d8cd98f00b204e9800998ecf8427e": null}}),
        ),
        ("PUT", "/organizations/acme/cookbooks/cb/1.0.0", json!({})),
        ("DELETE", "/organizations/acme/roles/web", Value::Null),
        (
            "POST",
            "/organizations/acme/_bulk_write",
            json!({"items": [{"action": "delete", "path": "/roles/web"}]}),
        ),
        // Policyfiles are replicated types too.
        (
            "POST",
            "/organizations/acme/policies/p/revisions",
            json!({}),
        ),
        (
            "PUT",
            "/organizations/acme/policy_groups/g/policies/p",
            json!({}),
        ),
        ("DELETE", "/organizations/acme/policy_groups/g", Value::Null),
        ("DELETE", "/organizations/acme/policies/p", Value::Null),
        (
            "PUT",
            "/organizations/acme/cookbook_artifacts/a/1111",
            json!({}),
        ),
    ];
    for (who, key) in [("pivotal", &h.pivotal), ("alice", &alice)] {
        for (method, path, body) in &writes {
            let body = (!body.is_null()).then(|| body.clone());
            let (status, reply) = h.call(who, key, method, path, body).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{who} {method} {path}");
            assert!(
                reply["error"][0].as_str().unwrap().contains("is a replica"),
                "{reply}"
            );
        }
    }
    let (status, _) = h
        .call(
            "bob",
            &bob,
            "POST",
            "/organizations/acme/roles",
            Some(json!({"name": "web"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = h
        .call(
            "alice",
            &alice,
            "GET",
            "/organizations/acme/roles/web",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The sync user's bulk write is accepted like its other writes.
    let (status, reply) = h
        .call(
            "bob",
            &bob,
            "POST",
            "/organizations/acme/_bulk_write",
            Some(json!({"items": [{"action": "write", "path": "/roles/db", "document": {"name": "db"}}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["results"][0]["outcome"], "created", "{reply}");
}

async fn feed_parameters_and_long_poll(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    for bad in ["seq=-1", "seq=x", "limit=0", "limit=10001", "wait=61"] {
        let (status, _) = h
            .call(
                "alice",
                &alice,
                "GET",
                &format!("/organizations/acme/updated_since?{bad}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (_, feed) = h
        .call(
            "alice",
            &alice,
            "GET",
            "/organizations/acme/updated_since?seq=0&wait=0",
            None,
        )
        .await;
    assert_eq!(feed, json!([]));
    let started = std::time::Instant::now();
    let writer = {
        let store = h.store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let org = store.org("acme").await.unwrap().unwrap();
            let path = chef_sync_shared::ObjectPath::role("late").unwrap();
            store
                .write_object(
                    org.id,
                    &path,
                    r#"{"name":"late"}"#,
                    chef_sync_server::store::WriteMode::Create,
                )
                .await
                .unwrap();
        })
    };
    let (status, feed) = h
        .call(
            "alice",
            &alice,
            "GET",
            "/organizations/acme/updated_since?seq=0&wait=20",
            None,
        )
        .await;
    writer.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        feed,
        json!([{"action": "create", "id": 1, "path": "/roles/late"}])
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "long-poll did not wake up"
    );
}

async fn unknown_routes_and_large_bodies(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    let (status, body) = h.as_pivotal("GET", "/nonsense", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_array());
    // A method the resource does not answer: 405 with Chef's `Allow` list.
    let req = signed(
        "alice",
        &alice,
        "PUT",
        "/organizations/acme/data",
        b"{}",
        SigningVersion::V1_3,
        chrono::Utc::now(),
    );
    let (status, headers, body) = h.send(req).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(headers["allow"], "GET, POST");
    assert!(body["error"].is_array());
    // A trailing `/` names the same resource, as in Chef.
    let req = signed(
        "alice",
        &alice,
        "POST",
        "/organizations/acme/roles/",
        br#"{"name": "slashed"}"#,
        SigningVersion::V1_1,
        chrono::Utc::now(),
    );
    let (status, _, body) = h.send(req).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = h
        .call(
            "alice",
            &alice,
            "GET",
            "/organizations/acme/roles/slashed/?x=1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "slashed");
    // An `Accept` that admits no JSON: 406, as Chef's resources answer it.
    let mut req = signed(
        "alice",
        &alice,
        "GET",
        "/organizations/acme/roles",
        b"",
        SigningVersion::V1_3,
        chrono::Utc::now(),
    );
    req.headers_mut()
        .insert("accept", "application/xml".parse().unwrap());
    let (status, _, body) = h.send(req).await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{body}");
    assert!(
        body["error"][0]
            .as_str()
            .unwrap()
            .contains("application/json")
    );
    // What does not answer JSON is not held to it.
    let req = Request::builder()
        .uri("/_status")
        .header("accept", "text/plain")
        .body(Body::empty())
        .unwrap();
    let (status, _, _) = h.send_raw(req).await;
    assert_eq!(status, StatusCode::OK);
    let big = json!({"name": "big", "description": "x".repeat(200_000)});
    let (status, body) = h
        .call(
            "alice",
            &alice,
            "POST",
            "/organizations/acme/roles",
            Some(big),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"][0], "JSON must be no more than 100000 bytes.");
    let req = signed(
        "alice",
        &alice,
        "POST",
        "/organizations/acme/roles",
        b"{not json",
        SigningVersion::V1_3,
        chrono::Utc::now(),
    );
    let (status, _, body) = h.send(req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"][0]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON")
    );
}

async fn every_rejection_has_a_chef_body(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    // A path segment that is not UTF-8 is rejected by axum's extractor, still as a Chef body.
    let (status, headers, body) = h
        .send(signed(
            "alice",
            &alice,
            "GET",
            "/organizations/acme/roles/%FF",
            b"",
            SigningVersion::V1_3,
            chrono::Utc::now(),
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"][0].is_string(), "{body}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    // Wrong method.
    let (status, body) = h
        .call("alice", &alice, "DELETE", "/organizations/acme/roles", None)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["error"][0].is_string(), "{body}");
    // Oversized bodies are refused before authentication, signed or not.
    let req = Request::post("/organizations/acme/roles")
        .header("content-length", "100001")
        .body(Body::from(vec![b' '; 100_001]))
        .unwrap();
    let (status, _, body) = h.send(req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"][0], "JSON must be no more than 100000 bytes.");
    // A body that is not an object where one is expected.
    let (status, body) = h
        .call(
            "alice",
            &alice,
            "POST",
            "/organizations/acme/roles",
            Some(json!(["not", "an", "object"])),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"][0].is_string(), "{body}");
    // Unknown org: 404 for every object route.
    for path in [
        "/organizations/nope/roles",
        "/organizations/nope/environments/_default",
        "/organizations/nope/cookbooks",
        "/organizations/nope/data",
        "/organizations/nope/updated_since?seq=0",
    ] {
        let (status, body) = h.as_pivotal("GET", path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["error"][0], "organization 'nope' does not exist.");
    }
}
