//! HTTP tests of clients, keys (and rotation through them), groups and org membership, on
//! SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)]

#[path = "support/harness.rs"]
mod harness;

use axum::http::StatusCode;
use chef_sync_shared::PrivateKey;
use harness::*;
use serde_json::json;

on_both_backends!(
    clients_and_the_validator,
    key_rotation,
    groups_grant_admin,
    org_membership,
    users_and_orgs_are_deleted_as_chef_deletes_them,
    server_facts_and_v0_client_keys,
    public_keys_are_read_by_the_orgs_key_readers,
    clients_as_chefs_default_acl_has_them,
    users_change_and_rename_themselves,
);

async fn clients_and_the_validator(h: &Harness) {
    let (alice, bob) = org_with_users(h).await;
    let alice = h.actor("alice", &alice);
    let bob = h.actor("bob", &bob);
    let (status, body) = alice.get("/organizations/acme/clients").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"acme-validator": "http://chef.test/organizations/acme/clients/acme-validator"})
    );

    // An admin creates a client; the key comes back once.
    let (status, body) = alice
        .post(
            "/organizations/acme/clients",
            json!({"name": "node1", "create_key": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["uri"],
        "http://chef.test/organizations/acme/clients/node1"
    );
    let node_key = PrivateKey::from_pem(body["chef_key"]["private_key"].as_str().unwrap()).unwrap();
    let node = h.actor("node1", &node_key);
    let (status, _) = alice
        .post("/organizations/acme/clients", json!({"name": "node1"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = alice
        .post("/organizations/acme/clients", json!({"name": "bad:name"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = bob
        .post("/organizations/acme/clients", json!({"name": "x"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The client reads objects but cannot write them, and sees itself.
    alice
        .post("/organizations/acme/roles", json!({"name": "web"}))
        .await;
    let (status, _) = node.get("/organizations/acme/roles/web").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = node
        .post("/organizations/acme/roles", json!({"name": "evil"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = node.get("/organizations/acme/clients/node1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["validator"], false);
    assert_eq!(body["orgname"], "acme");
    // A client of one org is nobody in another.
    h.as_pivotal(
        "POST",
        "/organizations",
        Some(json!({"name": "other", "full_name": "Other"})),
    )
    .await;
    let (status, _) = node.get("/organizations/other/roles").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The validator registers clients (like a first chef-client run) and reads nothing else.
    let validator_key = PrivateKey::generate(2048).unwrap();
    let org = h.store.org("acme").await.unwrap().unwrap();
    let validator = h
        .store
        .client(org.id, "acme-validator")
        .await
        .unwrap()
        .unwrap();
    h.store
        .replace_key(
            chef_sync_server::store::KeyOwner::Client(validator.id),
            "default",
            &chef_sync_server::store::KeyRow {
                name: "default".into(),
                public_key: validator_key.public_key().to_pem().unwrap(),
                expires_at: None,
            },
        )
        .await
        .unwrap();
    let v = h.actor("acme-validator", &validator_key);
    let (status, body) = v
        .post("/organizations/acme/clients", json!({"name": "node2"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = v
        .post(
            "/organizations/acme/clients",
            json!({"name": "node3", "validator": true}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = v.get("/organizations/acme/roles/web").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = v
        .post("/organizations/acme/roles", json!({"name": "x"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Admin updates and deletes; a deleted client can no longer authenticate.
    let (status, body) = alice
        .put(
            "/organizations/acme/clients/node2",
            json!({"name": "node2", "validator": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["validator"], true);
    // Renamed (as Chef allows) and back.
    for (from, to) in [("node2", "renamed"), ("renamed", "node2")] {
        let (status, _) = alice
            .put(
                &format!("/organizations/acme/clients/{from}"),
                json!({ "name": to }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, body) = alice.delete("/organizations/acme/clients/node1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "node1");
    let (status, _) = node.get("/organizations/acme/roles/web").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = alice.get("/organizations/acme/clients/node1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = alice.get("/organizations/acme/groups/clients").await;
    assert_eq!(body["clients"], json!(["acme-validator", "node2"]));
}

async fn key_rotation(h: &Harness) {
    let (alice_key, bob_key) = org_with_users(h).await;
    let alice = h.actor("alice", &alice_key);
    let (status, body) = alice.get("/users/alice/keys").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!([{"name": "default", "uri": "http://chef.test/users/alice/keys/default", "expired": false}])
    );
    let (status, _) = h.actor("bob", &bob_key).get("/users/alice/keys").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Add a second key; both authenticate.
    let (status, body) = alice
        .post(
            "/users/alice/keys",
            json!({"name": "rotated", "create_key": true, "expiration_date": "infinity"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let new_key = PrivateKey::from_pem(body["private_key"].as_str().unwrap()).unwrap();
    let rotated = h.actor("alice", &new_key);
    assert_eq!(rotated.get("/organizations/acme").await.0, StatusCode::OK);
    assert_eq!(alice.get("/organizations/acme").await.0, StatusCode::OK);
    let (status, _) = alice
        .post(
            "/users/alice/keys",
            json!({"name": "rotated", "create_key": true, "expiration_date": "infinity"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    for bad in [
        json!({"name": "x"}),
        json!({"name": "x", "create_key": true}),
        json!({"name": "x", "create_key": true, "expiration_date": "tomorrow"}),
        json!({"name": "x", "public_key": "not a key"}),
        json!({"name": "x", "create_key": true, "public_key": "both"}),
        json!({"create_key": true}),
    ] {
        let (status, _) = alice.post("/users/alice/keys", bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }

    // Expire the old key: it stops working at once, the new one goes on.
    let (status, body) = rotated
        .put(
            "/users/alice/keys/default",
            json!({"expiration_date": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expiration_date"], "2000-01-01T00:00:00Z");
    assert_eq!(
        alice.get("/organizations/acme").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, body) = rotated.get("/users/alice/keys").await;
    assert_eq!(body[0]["expired"], true);
    assert_eq!(body[1]["expired"], false);
    let (status, body) = rotated.get("/users/alice/keys/rotated").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["public_key"].as_str().unwrap().contains("PUBLIC KEY"));
    let (status, body) = rotated.delete("/users/alice/keys/default").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "default");
    let (status, body) = rotated.get("/users/alice/keys/default").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["error"][0],
        "There is no key named default associated with alice."
    );
    // Renaming answers 201 with the new location.
    let (status, _) = rotated
        .put("/users/alice/keys/rotated", json!({"name": "main"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(rotated.get("/organizations/acme").await.0, StatusCode::OK);

    // Client keys: admins manage them.
    let (status, body) = rotated
        .post(
            "/organizations/acme/clients/acme-validator/keys",
            json!({"name": "second", "create_key": true, "expiration_date": "infinity"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let validator_key = PrivateKey::from_pem(body["private_key"].as_str().unwrap()).unwrap();
    let validator = h.actor("acme-validator", &validator_key);
    let (status, body) = validator
        .get("/organizations/acme/clients/acme-validator/keys")
        .await;
    assert_eq!(status, StatusCode::OK, "a client reads its own keys");
    assert_eq!(body.as_array().unwrap().len(), 2);
    // Another member reads them (Chef's public_key_read_access group) but cannot change them.
    let bob = h.actor("bob", &bob_key);
    let (status, _) = bob
        .get("/organizations/acme/clients/acme-validator/keys")
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = bob
        .delete("/organizations/acme/clients/acme-validator/keys/default")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn groups_grant_admin(h: &Harness) {
    let (alice, bob_key) = org_with_users(h).await;
    let alice = h.actor("alice", &alice);
    let bob = h.actor("bob", &bob_key);
    let (status, body) = bob.get("/organizations/acme/groups").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        [
            "admins",
            "billing-admins",
            "clients",
            "public_key_read_access",
            "users"
        ]
    );
    let (_, body) = bob.get("/organizations/acme/groups/admins").await;
    assert_eq!(body["users"], json!(["alice"]));
    assert_eq!(body["groupname"], "admins");
    assert_eq!(body["orgname"], "acme");
    let (_, body) = bob.get("/organizations/acme/groups/users").await;
    assert_eq!(body["users"], json!(["alice", "bob"]));

    // As a member of `users`, bob writes roles (Chef's default container ACLs); taken out of
    // `users`, he only reads them.
    assert_eq!(
        bob.post("/organizations/acme/roles", json!({"name": "r0"}))
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, _) = alice
        .put(
            "/organizations/acme/groups/users",
            json!({"actors": {"users": ["alice"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        bob.post("/organizations/acme/roles", json!({"name": "r1"}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        bob.get("/organizations/acme/roles/r0").await.0,
        StatusCode::OK
    );

    // bob cannot administer (create groups) until a group that contains him is nested into
    // admins.
    assert_eq!(
        bob.post("/organizations/acme/groups", json!({"groupname": "bobs"}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, _) = alice
        .post("/organizations/acme/groups", json!({"groupname": "ops"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = alice
        .post("/organizations/acme/groups", json!({"groupname": "ops"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = alice
        .put(
            "/organizations/acme/groups/ops",
            json!({"groupname": "ops", "actors": {"users": ["bob"], "clients": [], "groups": []}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["actors"], json!(["bob"]));
    let (status, _) = alice
        .put(
            "/organizations/acme/groups/admins",
            json!({"actors": {"users": ["alice"], "groups": ["ops"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        bob.post("/organizations/acme/groups", json!({"groupname": "bobs"}))
            .await
            .0,
        StatusCode::CREATED
    );
    // Names that cannot be members are left out, as Chef leaves them out.
    for dropped in [
        json!({"actors": {"users": ["nobody"]}}),
        json!({"actors": {"clients": ["ghost"]}}),
        json!({"actors": {"groups": ["ops"]}}),
    ] {
        let (status, body) = alice
            .put("/organizations/acme/groups/ops", dropped.clone())
            .await;
        assert_eq!(status, StatusCode::OK, "{dropped}");
        assert_eq!(
            (&body["users"], &body["clients"], &body["groups"]),
            (&json!([]), &json!([]), &json!([])),
            "{dropped}: {body}"
        );
    }
    for bad in [json!({"actors": {"users": "bob"}}), json!({})] {
        let (status, _) = alice
            .put("/organizations/acme/groups/ops", bad.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (status, _) = alice.delete("/organizations/acme/groups/admins").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = alice.delete("/organizations/acme/groups/ops").await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = alice.get("/organizations/acme/groups/admins").await;
    assert_eq!(body["groups"], json!([]));
    assert_eq!(
        bob.post("/organizations/acme/groups", json!({"groupname": "bobs2"}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, _) = alice.get("/organizations/acme/groups/ops").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn org_membership(h: &Harness) {
    let (alice, bob_key) = org_with_users(h).await;
    let alice = h.actor("alice", &alice);
    let bob = h.actor("bob", &bob_key);
    let (status, body) = bob.get("/organizations/acme/users/alice").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["username"], "alice");
    assert_eq!(
        bob.delete("/organizations/acme/users/alice").await.0,
        StatusCode::FORBIDDEN
    );
    let (status, _) = alice.delete("/organizations/acme/users/bob").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = bob.get("/organizations/acme/roles").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"][0],
        "'bob' not associated with organization 'acme'"
    );
    let (status, _) = alice.get("/organizations/acme/users/bob").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = alice.get("/organizations/acme/groups/users").await;
    assert_eq!(body["users"], json!(["alice"]));
}

async fn users_and_orgs_are_deleted_as_chef_deletes_them(h: &Harness) {
    let (alice_key, bob_key) = org_with_users(h).await;
    let pivotal = fixture_key();
    let su = h.actor("pivotal", &pivotal);
    let bob = h.actor("bob", &bob_key);
    let alice = h.actor("alice", &alice_key);

    // API v0 hands a new user's key over at the top level, v1 inside chef_key.
    let (status, v0) = su
        .with_api(
            "0",
            "POST",
            "/users",
            Some(json!({"username": "carol", "display_name": "Carol"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v0}");
    assert!(
        v0["private_key"].as_str().unwrap().contains("PRIVATE KEY"),
        "{v0}"
    );
    assert!(v0.get("chef_key").is_none());
    let (_, v1) = su
        .with_api(
            "1",
            "POST",
            "/users",
            Some(json!({"username": "dave", "display_name": "Dave"})),
        )
        .await;
    assert!(
        v1["chef_key"]["private_key"].is_string() && v1.get("private_key").is_none(),
        "{v1}"
    );
    // GET under v0 shows the default public key.
    let (_, carol) = su.with_api("0", "GET", "/users/carol", None).await;
    assert!(
        carol["public_key"].as_str().unwrap().contains("PUBLIC KEY"),
        "{carol}"
    );
    let (_, carol1) = su.get("/users/carol").await;
    assert!(carol1.get("public_key").is_none());

    // Only the user itself or the superuser deletes a user; an unknown one is 404 first.
    let (status, body) = bob.delete("/users/nobody").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"error": "Could not find user nobody"})
        )
    );
    let (status, body) = alice.delete("/users/bob").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::FORBIDDEN,
            json!({"error": ["missing delete permission"]})
        )
    );
    let (status, body) = bob.delete("/users/bob").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["username"], "bob");
    let (status, _) = su.get("/users/bob").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, members) = alice.get("/organizations/acme/users").await;
    assert!(!members.to_string().contains("\"bob\""), "{members}");
    let (status, _) = su.delete("/users/carol").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = su.delete("/users/pivotal").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the superuser stays");

    // Deleting an org: the superuser only; everything in it goes.
    let (status, _) = alice
        .post("/organizations/acme/roles", json!({"name": "web"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = alice.delete("/organizations/acme").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = su.delete("/organizations/acme").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "acme");
    let (status, _) = su.get("/organizations/acme").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = su
        .post(
            "/organizations",
            json!({"name": "acme", "full_name": "Acme again"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "the name is free again");
    let (_, roles) = su.get("/organizations/acme/roles").await;
    assert_eq!(roles, json!({}));
}

async fn server_facts_and_v0_client_keys(h: &Harness) {
    let (alice_key, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice_key);
    let (status, body) = alice.get("/server_api_version").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"min_api_version": 0, "max_api_version": 2})
        )
    );
    let (status, body) = alice.get("/license").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["limit_exceeded"], false);
    assert_eq!(body["node_count"], 0);

    // API v0 shows a client's public key on creation and on GET; v1 does not.
    let (status, made) = alice
        .with_api(
            "0",
            "POST",
            "/organizations/acme/clients",
            Some(json!({"name": "n1"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let public = made["public_key"].as_str().unwrap().to_owned();
    assert!(
        public.contains("PUBLIC KEY") && made["private_key"].is_string(),
        "{made}"
    );
    let (_, shown) = alice
        .with_api("0", "GET", "/organizations/acme/clients/n1", None)
        .await;
    assert_eq!(shown["public_key"], public.as_str());
    let (_, shown) = alice.get("/organizations/acme/clients/n1").await;
    assert!(shown.get("public_key").is_none(), "{shown}");
}

async fn public_keys_are_read_by_the_orgs_key_readers(h: &Harness) {
    let (alice_key, bob_key) = org_with_users(h).await;
    let alice = h.actor("alice", &alice_key);
    let bob = h.actor("bob", &bob_key);
    let (_, groups) = alice.get("/organizations/acme/groups").await;
    for group in [
        "admins",
        "billing-admins",
        "users",
        "clients",
        "public_key_read_access",
    ] {
        assert!(groups.get(group).is_some(), "{group}: {groups}");
    }
    let (_, readers) = alice
        .get("/organizations/acme/groups/public_key_read_access")
        .await;
    assert_eq!(readers["groups"], json!(["clients", "users"]), "{readers}");
    let (status, _) = alice
        .post(
            "/organizations/acme/clients",
            json!({"name": "n1", "create_key": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // A member who is no admin reads a client's keys and a fellow user's, through the org.
    let (status, keys) = bob.get("/organizations/acme/clients/n1/keys").await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    let (status, keys) = bob.get("/organizations/acme/users/alice/keys").await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    assert_eq!(
        keys,
        json!([{"name": "default", "uri": "http://chef.test/organizations/acme/users/alice/keys/default", "expired": false}])
    );
    let (status, key) = bob
        .get("/organizations/acme/users/alice/keys/default")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(key["public_key"].as_str().unwrap().contains("PUBLIC KEY"));
    let (status, _) = bob.get("/organizations/acme/users/nobody/keys").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Only reading goes through the org; writing stays the user's own.
    let (status, _) = alice
        .post(
            "/organizations/acme/users/alice/keys",
            json!({"name": "k2", "create_key": true, "expiration_date": "infinity"}),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    // Changing the clients' keys stays with admins.
    let (status, _) = bob
        .delete("/organizations/acme/clients/n1/keys/default")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Taken out of the key readers (pedant and knife send a group's actors back as users,
    // clients included: names that cannot be members are left out, not refused).
    let (status, body) = alice
        .put(
            "/organizations/acme/groups/public_key_read_access",
            json!({"groupname": "public_key_read_access",
                   "actors": {"users": ["alice", "n1", "nobody"], "clients": [], "groups": ["clients"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, readers) = alice
        .get("/organizations/acme/groups/public_key_read_access")
        .await;
    assert_eq!(readers["users"], json!(["alice"]), "{readers}");
    let (status, _) = bob.get("/organizations/acme/users/alice/keys").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn clients_as_chefs_default_acl_has_them(h: &Harness) {
    let (alice_key, bob_key) = org_with_users(h).await;
    let alice = h.actor("alice", &alice_key);
    let bob = h.actor("bob", &bob_key);
    let mut keys = Vec::new();
    for name in ["n1", "n2"] {
        let (status, made) = alice
            .with_api(
                "0",
                "POST",
                "/organizations/acme/clients",
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        keys.push(PrivateKey::from_pem(made["private_key"].as_str().unwrap()).unwrap());
    }
    let n1 = h.actor("n1", &keys[0]);
    // A client reads and changes itself, not another client.
    assert_eq!(
        n1.get("/organizations/acme/clients/n1").await.0,
        StatusCode::OK
    );
    let (status, body) = n1.get("/organizations/acme/clients/n2").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::FORBIDDEN,
            json!({"error": ["missing read permission"]})
        )
    );
    let (status, _) = n1.delete("/organizations/acme/clients/n2").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // …nor makes itself a validator.
    let (status, _) = n1
        .put(
            "/organizations/acme/clients/n1",
            json!({"name": "n1", "validator": true}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // API v0: a client asks for a new key pair for itself; v1 sends keys to the keys endpoint.
    let (status, body) = n1
        .with_api(
            "0",
            "PUT",
            "/organizations/acme/clients/n1",
            Some(json!({"name": "n1", "private_key": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fresh = PrivateKey::from_pem(body["private_key"].as_str().unwrap()).unwrap();
    assert_eq!(
        body["public_key"],
        fresh.public_key().to_pem().unwrap().as_str()
    );
    let n1 = h.actor("n1", &fresh);
    assert_eq!(
        n1.get("/organizations/acme/clients/n1").await.0,
        StatusCode::OK,
        "the new key signs"
    );
    for (body, message) in [
        (
            json!({"name": "n1", "public_key": 1}),
            "Field 'public_key' invalid",
        ),
        (
            json!({"name": "n1", "private_key": true}),
            "Please use create_key: true instead of private_key: true",
        ),
        (
            json!({"name": "n1", "create_key": true}),
            "Since Server API v1, all keys must be updated via the keys endpoint. ",
        ),
    ] {
        let (status, answer) = n1.put("/organizations/acme/clients/n1", body.clone()).await;
        assert_eq!(
            (status, answer),
            (StatusCode::BAD_REQUEST, json!({"error": [message]})),
            "{body}"
        );
    }
    let (status, body) = alice
        .with_api(
            "0",
            "PUT",
            "/organizations/acme/clients/n1",
            Some(json!({"name": "n1", "private_key": "yes"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": ["Field 'private_key' invalid"]})
        )
    );
    // The validator registers clients but cannot read or delete even itself.
    let (_, validator) = alice
        .with_api(
            "0",
            "PUT",
            "/organizations/acme/clients/acme-validator",
            Some(json!({"name": "acme-validator", "private_key": true})),
        )
        .await;
    let validator_key = PrivateKey::from_pem(validator["private_key"].as_str().unwrap()).unwrap();
    let validator = h.actor("acme-validator", &validator_key);
    assert_eq!(
        validator
            .get("/organizations/acme/clients/acme-validator")
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        validator
            .delete("/organizations/acme/clients/acme-validator")
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = alice
        .post("/organizations/acme/clients", json!({"name": "bad$name"}))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": ["Invalid client name 'bad$name' using regex: 'Malformed client name.  Must be A-Z, a-z, 0-9, _, -, or .'."]})
        )
    );
    let (status, body) = alice
        .post(
            "/organizations/acme/clients",
            json!({"name": "n3", "public_key": 1}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": ["Field 'public_key' invalid"]})
        )
    );
    // A client does not rename itself (it could then change another node of that name).
    let (status, _) = n1
        .put("/organizations/acme/clients/n1", json!({"name": "db-1"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A rename: 201 at the new place, the keys and memberships follow; a taken name is 409.
    let (status, body) = alice
        .put("/organizations/acme/clients/n1", json!({"name": "n2"}))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::CONFLICT,
            json!({"error": ["Client already exists"]})
        )
    );
    let (status, body) = alice
        .put("/organizations/acme/clients/n1", json!({"name": "web-1"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "web-1");
    assert_eq!(
        alice.get("/organizations/acme/clients/n1").await.0,
        StatusCode::NOT_FOUND
    );
    let web1 = h.actor("web-1", &fresh);
    assert_eq!(
        web1.get("/organizations/acme/clients/web-1").await.0,
        StatusCode::OK,
        "its key follows"
    );
    let (_, clients_group) = alice.get("/organizations/acme/groups/clients").await;
    assert!(
        clients_group["clients"]
            .as_array()
            .unwrap()
            .contains(&json!("web-1")),
        "{clients_group}"
    );
    let (_, found) = alice
        .get("/organizations/acme/search/client?q=name:web-1")
        .await;
    assert_eq!(found["total"], 1, "{found}");
    let (_, gone) = alice
        .get("/organizations/acme/search/client?q=name:n1")
        .await;
    assert_eq!(gone["total"], 0, "{gone}");
    // Org users read and delete clients.
    assert_eq!(
        bob.get("/organizations/acme/clients/n2").await.0,
        StatusCode::OK
    );
    assert_eq!(
        bob.delete("/organizations/acme/clients/n2").await.0,
        StatusCode::OK
    );
}

async fn users_change_and_rename_themselves(h: &Harness) {
    let (alice_key, bob_key) = org_with_users(h).await;
    let alice = h.actor("alice", &alice_key);
    let bob = h.actor("bob", &bob_key);
    let pivotal = fixture_key();
    let su = h.actor("pivotal", &pivotal);
    let body = |name: &str| json!({"username": name, "display_name": "Bob B", "email": "BOB@Example.com", "city": "Oslo"});
    let (status, answer) = alice.put("/users/bob", body("bob")).await;
    assert_eq!(
        (status, answer),
        (
            StatusCode::FORBIDDEN,
            json!({"error": ["missing update permission"]})
        )
    );
    let (status, answer) = bob.put("/users/nobody", body("nobody")).await;
    assert_eq!(
        (status, answer),
        (
            StatusCode::NOT_FOUND,
            json!({"error": "Could not find user nobody"})
        )
    );
    for (bad, message) in [
        (
            json!({"username": "bob", "email": "b@x.org"}),
            "Field 'display_name' missing",
        ),
        (
            json!({"username": "bob", "display_name": "B", "email": "not an email"}),
            "email must be valid",
        ),
        (
            json!({"username": "bob", "display_name": "B", "email": "b@x.org", "password": "short"}),
            "Password must have at least 6 characters",
        ),
        (
            json!({"username": "Bad Name", "display_name": "B", "email": "b@x.org"}),
            "Field 'username' invalid",
        ),
    ] {
        let (status, answer) = bob.put("/users/bob", bad.clone()).await;
        assert_eq!(
            (status, answer),
            (StatusCode::BAD_REQUEST, json!({"error": [message]})),
            "{bad}"
        );
    }
    let (status, answer) = bob.put("/users/bob", body("bob")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"uri": "http://chef.test/users/bob"}));
    let (_, shown) = bob.get("/users/bob").await;
    assert_eq!(
        (shown["email"].as_str(), shown["city"].as_str()),
        (Some("bob@example.com"), Some("Oslo"))
    );
    // API v1 keeps keys out of this endpoint; v0 makes a new default key on request.
    let mut with_key = body("bob");
    with_key["private_key"] = json!(true);
    let (status, answer) = bob.put("/users/bob", with_key.clone()).await;
    assert_eq!(
        (status, answer),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": ["Please use create_key: true instead of private_key: true"]})
        )
    );
    let (status, answer) = bob.with_api("0", "PUT", "/users/bob", Some(with_key)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let fresh = PrivateKey::from_pem(answer["private_key"].as_str().unwrap()).unwrap();
    let bob = h.actor("bob", &fresh);
    assert_eq!(
        bob.get("/users/bob").await.0,
        StatusCode::OK,
        "the new key signs"
    );
    // A rename: 201 at the new place; memberships follow, the old name is gone; taken names 409.
    let (status, answer) = su.put("/users/bob", body("alice")).await;
    assert_eq!(
        (status, answer),
        (
            StatusCode::CONFLICT,
            json!({"error": ["User 'alice' already exists"]})
        )
    );
    let (status, answer) = su.put("/users/bob", body("robert")).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["uri"], "http://chef.test/users/robert");
    assert_eq!(su.get("/users/bob").await.0, StatusCode::NOT_FOUND);
    let (_, users) = alice.get("/organizations/acme/groups/users").await;
    assert!(
        users["users"]
            .as_array()
            .unwrap()
            .contains(&json!("robert")),
        "{users}"
    );
    let robert = h.actor("robert", &fresh);
    assert_eq!(
        robert.get("/organizations/acme/roles").await.0,
        StatusCode::OK
    );
    // Not onto a client's name (users are looked up first: it would lock the client out),
    // and the superuser keeps its name.
    let (status, _) = su.put("/users/robert", body("acme-validator")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = su
        .put(
            "/users/pivotal",
            json!({"username": "boss", "display_name": "P", "email": "p@x.org"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A replica org's sync user is not deleted while the org names it; a user outside the
    // org is not seen through it.
    let (status, body) = su
        .put(
            "/organizations/acme",
            json!({"replica": true, "sync_user": "robert"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = su.delete("/users/robert").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = su
        .with_api(
            "0",
            "POST",
            "/users",
            Some(json!({"username": "outsider", "display_name": "O"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = alice.get("/organizations/acme/users/outsider/keys").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
