//! HTTP tests of environments, data bags and cookbooks (with sandboxes, uploads and the
//! pre-signed file URLs), on SQLite and PostgreSQL and both blob stores.

#![allow(clippy::unwrap_used)]

#[path = "support/harness.rs"]
mod harness;

use axum::http::StatusCode;
use chef_sync_server::config::BlobStoreKind;
use harness::*;
use serde_json::{Value, json};

on_both_backends!(
    environments_lifecycle,
    data_bags_and_items,
    cookbook_validation,
    unreferenced_files_are_released,
);

mod blobs_in_database {
    use super::*;

    #[tokio::test]
    async fn cookbooks_sqlite() {
        if let Some(h) = Harness::with_blobs("sqlite", BlobStoreKind::Database).await {
            cookbooks_sandboxes_and_files(&h).await;
            h.finish().await;
        }
    }

    #[tokio::test]
    async fn cookbooks_postgres() {
        if let Some(h) = Harness::with_blobs("postgres", BlobStoreKind::Database).await {
            cookbooks_sandboxes_and_files(&h).await;
            h.finish().await;
        }
    }
}

mod blobs_on_disk {
    use super::*;

    #[tokio::test]
    async fn cookbooks_sqlite() {
        if let Some(h) = Harness::new("sqlite").await {
            cookbooks_sandboxes_and_files(&h).await;
            h.finish().await;
        }
    }

    #[tokio::test]
    async fn cookbooks_postgres() {
        if let Some(h) = Harness::new("postgres").await {
            cookbooks_sandboxes_and_files(&h).await;
            h.finish().await;
        }
    }
}

async fn feed(h: &Harness) -> Value {
    let (status, body) = h
        .as_pivotal("GET", "/organizations/acme/updated_since?seq=0", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    body
}

async fn environments_lifecycle(h: &Harness) {
    let (alice, bob) = org_with_users(h).await;
    reader_only(h, "acme", "bob").await;
    let alice = h.actor("alice", &alice);
    let bob = h.actor("bob", &bob);
    let base = "/organizations/acme/environments";

    let (status, body) = bob.get(base).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"_default": "http://chef.test/organizations/acme/environments/_default"})
    );
    let (status, body) = bob.get(&format!("{base}/_default")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "_default");
    assert_eq!(body["json_class"], "Chef::Environment");
    for (status, body) in [
        alice
            .put(&format!("{base}/_default"), json!({"name": "_default"}))
            .await,
        alice.delete(&format!("{base}/_default")).await,
    ] {
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            body["error"][0],
            "The '_default' environment cannot be modified."
        );
    }
    let (status, _) = alice.post(base, json!({"name": "_default"})).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let prod = json!({"name": "prod", "description": "production", "cookbook_versions": {"nginx": "~> 1.2"}, "default_attributes": {"a": 1}});
    let (status, body) = alice.post(base, prod.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["uri"],
        "http://chef.test/organizations/acme/environments/prod"
    );
    let (status, body) = alice.post(base, prod).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"][0], "Environment already exists");
    for bad in [
        json!({"name": "x", "cookbook_versions": {"nginx": "latest"}}),
        json!({"name": "x", "surprise": true}),
        json!({"name": "bad:name"}),
        json!({"name": "x", "json_class": "Chef::Role"}),
        json!({"description": "no name"}),
    ] {
        let (status, body) = alice.post(base, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"][0].is_string());
    }
    let (status, _) = bob.post(base, json!({"name": "dev"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = bob.get(&format!("{base}/prod")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["cookbook_versions"], json!({"nginx": "~> 1.2"}));
    assert_eq!(body["chef_type"], "environment");
    let (status, body) = alice
        .put(&format!("{base}/prod"), json!({"description": "changed"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"][0], "Field 'name' missing");
    let (status, body) = alice
        .put(
            &format!("{base}/prod"),
            json!({"name": "prod", "description": "changed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "prod");
    assert_eq!(body["description"], "changed");
    // A PUT naming another environment renames it (Chef's behaviour), unless the name is
    // taken; the feed carries the new name's create before the old name's delete.
    let (status, _) = alice.post(base, json!({"name": "taken"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = alice
        .put(&format!("{base}/prod"), json!({"name": "taken"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"][0], "Environment already exists");
    let (status, body) = alice
        .put(&format!("{base}/prod"), json!({"name": "_default"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = alice
        .put(
            &format!("{base}/prod"),
            json!({"name": "production", "description": "changed"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "production");
    let (status, _) = bob.get(&format!("{base}/prod")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = alice
        .put(&format!("{base}/ghost"), json!({"name": "ghost"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"][0], "Cannot load environment ghost");
    let (status, body) = alice
        .put(&format!("{base}/ghost"), json!({"name": "elsewhere"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"][0], "Cannot load environment ghost");
    let (status, body) = alice.delete(&format!("{base}/production")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["description"], "changed");
    let (status, _) = bob.get(&format!("{base}/production")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        feed(h).await,
        json!([
            {"action": "create", "id": 1, "path": "/environments/prod"},
            {"action": "update", "id": 2, "path": "/environments/prod"},
            {"action": "create", "id": 3, "path": "/environments/taken"},
            {"action": "create", "id": 4, "path": "/environments/production"},
            {"action": "delete", "id": 5, "path": "/environments/prod"},
            {"action": "delete", "id": 6, "path": "/environments/production"},
        ])
    );
}

async fn data_bags_and_items(h: &Harness) {
    let (alice, bob) = org_with_users(h).await;
    reader_only(h, "acme", "bob").await;
    let alice = h.actor("alice", &alice);
    let bob = h.actor("bob", &bob);
    let (status, body) = alice
        .post("/organizations/acme/data/secrets", json!({"id": "x"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["error"][0],
        "No data bag 'secrets' could be found. Please create this data bag before adding items to it."
    );
    let (status, body) = alice
        .post("/organizations/acme/data", json!({"name": "secrets"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["uri"],
        "http://chef.test/organizations/acme/data/secrets"
    );
    let (status, _) = alice
        .post("/organizations/acme/data", json!({"name": "secrets"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = alice
        .post("/organizations/acme/data", json!({"name": "bad name"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Encrypted items are ordinary JSON to the server; the wrapped form is unwrapped.
    let db = json!({"id": "db", "password": {"encrypted_data": "abc", "iv": "def", "version": 3, "cipher": "aes-256-gcm", "auth_tag": "x"}});
    let (status, body) = alice
        .post(
            "/organizations/acme/data/secrets",
            json!({"json_class": "Chef::DataBagItem", "raw_data": db}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["chef_type"], "data_bag_item");
    assert_eq!(body["data_bag"], "secrets");
    assert_eq!(body["password"]["cipher"], "aes-256-gcm");
    let (status, body) = alice
        .post("/organizations/acme/data/secrets", db.clone())
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body["error"][0],
        "Data Bag Item 'db' already exists in Data Bag 'secrets'."
    );
    for bad in [json!({"no": "id"}), json!({"id": 5}), json!(["x"])] {
        let (status, _) = alice.post("/organizations/acme/data/secrets", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let (status, body) = bob.get("/organizations/acme/data/secrets/db").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, db, "items are returned exactly as stored");
    let (status, body) = alice
        .put(
            "/organizations/acme/data/secrets/db",
            json!({"password": "plain"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], "db");
    assert_eq!(body["data_bag"], "secrets");
    let (status, _) = alice
        .put(
            "/organizations/acme/data/secrets/db",
            json!({"id": "other"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = alice
        .put("/organizations/acme/data/secrets/ghost", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "PUT does not create items");
    let (status, _) = bob
        .put("/organizations/acme/data/secrets/db", json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    alice
        .post("/organizations/acme/data/secrets", json!({"id": "web"}))
        .await;
    let (_, body) = bob.get("/organizations/acme/data/secrets").await;
    assert_eq!(
        body,
        json!({
            "db": "http://chef.test/organizations/acme/data/secrets/db",
            "web": "http://chef.test/organizations/acme/data/secrets/web",
        })
    );
    let (_, body) = bob.get("/organizations/acme/data").await;
    assert_eq!(
        body,
        json!({"secrets": "http://chef.test/organizations/acme/data/secrets"})
    );
    let (status, body) = alice.delete("/organizations/acme/data/secrets/web").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "data_bag_item_secrets_web");
    assert_eq!(body["raw_data"], json!({"id": "web"}));
    alice
        .post("/organizations/acme/data/secrets", json!({"id": "web2"}))
        .await;
    let (status, body) = alice.delete("/organizations/acme/data/secrets").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"name": "secrets", "json_class": "Chef::DataBag", "chef_type": "data_bag"})
    );
    let (status, _) = bob.get("/organizations/acme/data/secrets/db").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = bob.get("/organizations/acme/data/secrets").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        feed(h).await,
        json!([
            {"action": "create", "id": 1, "path": "/data/secrets"},
            {"action": "create", "id": 2, "path": "/data/secrets/db"},
            {"action": "update", "id": 3, "path": "/data/secrets/db"},
            {"action": "create", "id": 4, "path": "/data/secrets/web"},
            {"action": "delete", "id": 5, "path": "/data/secrets/web"},
            {"action": "create", "id": 6, "path": "/data/secrets/web2"},
            {"action": "delete", "id": 7, "path": "/data/secrets/db"},
            {"action": "delete", "id": 8, "path": "/data/secrets/web2"},
            {"action": "delete", "id": 9, "path": "/data/secrets"},
        ])
    );
}

fn manifest(version: &str, recipe: &[u8], readme: &[u8], frozen: bool) -> Value {
    json!({
        "name": format!("demo-{version}"), "cookbook_name": "demo", "version": version,
        "json_class": "Chef::CookbookVersion", "chef_type": "cookbook_version", "frozen?": frozen,
        "metadata": {"name": "demo", "version": version, "dependencies": {"base": ">= 1.0"}},
        "recipes": [{"name": "default.rb", "path": "recipes/default.rb", "checksum": md5_hex(recipe), "specificity": "default"}],
        "root_files": [{"name": "README.md", "path": "README.md", "checksum": md5_hex(readme), "specificity": "default"}],
    })
}

async fn cookbooks_sandboxes_and_files(h: &Harness) {
    let (alice, bob) = org_with_users(h).await;
    reader_only(h, "acme", "bob").await;
    let alice = h.actor("alice", &alice);
    let bob = h.actor("bob", &bob);
    let recipe: &[u8] = b"package 'nginx'\n";
    let readme: &[u8] = b"# demo\n";

    // A sandbox: nothing is known yet, so everything needs an upload.
    let checksums = json!({ md5_hex(recipe): null, md5_hex(readme): null });
    let (status, sandbox) = alice
        .post(
            "/organizations/acme/sandboxes",
            json!({ "checksums": checksums }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sandbox}");
    let recipe_url = sandbox["checksums"][md5_hex(recipe)]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let readme_url = sandbox["checksums"][md5_hex(readme)]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(sandbox["checksums"][md5_hex(recipe)]["needs_upload"], true);
    let sandbox_uri = local(sandbox["uri"].as_str().unwrap());
    let (status, body) = alice.put(&sandbox_uri, json!({"is_completed": true})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["error"][0]
            .as_str()
            .unwrap()
            .contains("have not been uploaded")
    );
    let (status, _) = alice.put(&sandbox_uri, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for bad in [
        json!({"checksums": {}}),
        json!({"checksums": {"xyz": null}}),
    ] {
        let (status, _) = alice.post("/organizations/acme/sandboxes", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let (status, _) = bob
        .post(
            "/organizations/acme/sandboxes",
            json!({ "checksums": checksums }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Uploads: the Content-MD5 and the bytes must both match the URL's checksum; the URL's
    // signature is checked.
    assert_eq!(
        upload(h, &recipe_url, recipe, &md5_b64(readme)).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        upload(h, &recipe_url, b"tampered", &md5_b64(recipe)).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        upload(h, &recipe_url, recipe, "not base64").await,
        StatusCode::BAD_REQUEST
    );
    let forged = recipe_url.replace("signature=", "signature=00");
    assert_eq!(
        upload(h, &forged, recipe, &md5_b64(recipe)).await,
        StatusCode::FORBIDDEN
    );
    let other_sandbox = recipe_url.replace(sandbox["sandbox_id"].as_str().unwrap(), "0123");
    assert_eq!(
        upload(h, &other_sandbox, recipe, &md5_b64(recipe)).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        upload(h, &recipe_url, recipe, &md5_b64(recipe)).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        upload(h, &readme_url, readme, &md5_b64(readme)).await,
        StatusCode::NO_CONTENT
    );
    let (status, body) = alice.put(&sandbox_uri, json!({"is_completed": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["is_completed"], true);
    let (status, _) = alice.put(&sandbox_uri, json!({"is_completed": true})).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a committed sandbox is closed"
    );

    // Known checksums need no upload the second time.
    let (_, again) = alice
        .post(
            "/organizations/acme/sandboxes",
            json!({ "checksums": checksums }),
        )
        .await;
    assert_eq!(
        again["checksums"][md5_hex(recipe)],
        json!({"needs_upload": false})
    );

    // PUT the version (v1 segment form): 201, then an identical PUT is 200 with no feed entry.
    let url = "/organizations/acme/cookbooks/demo/1.0.0";
    let (status, body) = alice
        .put(url, manifest("1.0.0", recipe, readme, false))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["recipes"][0]["name"], "default.rb");
    let (status, _) = alice
        .put(url, manifest("1.0.0", recipe, readme, false))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = bob.put(url, manifest("1.0.0", recipe, readme, false)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A manifest naming a checksum the org never committed is refused.
    let unknown = manifest("1.0.1", b"never uploaded", readme, false);
    let (status, body) = alice
        .put("/organizations/acme/cookbooks/demo/1.0.1", unknown)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"][0]
            .as_str()
            .unwrap()
            .contains("hasn't been uploaded")
    );

    // Reading: v1 segments with URLs, as uploaded (Chef keeps the client's form: no segment
    // that was not sent), the metadata Chef always answers filled in; v2 all_files; every URL
    // downloads the exact bytes.
    let (status, v1) = bob.get(url).await;
    assert_eq!(status, StatusCode::OK);
    assert!(v1.get("templates").is_none(), "{v1}");
    assert_eq!(v1["recipes"][0]["name"], "default.rb");
    assert_eq!(v1["metadata"]["long_description"], "");
    assert_eq!(v1["metadata"]["attributes"], json!({}));
    let (status, v2) = bob.with_api("2", "GET", url, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(v2.get("recipes").is_none());
    let files = v2["all_files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    for file in files {
        let expected = if file["name"] == "recipes/default.rb" {
            recipe
        } else {
            assert_eq!(file["name"], "root_files/README.md");
            readme
        };
        let (status, bytes) = download(h, file["url"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(bytes, expected);
        let forged = file["url"]
            .as_str()
            .unwrap()
            .replace("expires=", "expires=1");
        assert_eq!(download(h, &forged).await.0, StatusCode::FORBIDDEN);
    }
    let (status, body) = bob
        .get(&local(
            files[0]["url"].as_str().unwrap().split('?').next().unwrap(),
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // An all_files upload read in the segment form has all nine segments, as in Chef.
    let mut v2_manifest = v2.clone();
    v2_manifest["name"] = json!("demo-1.0.2");
    v2_manifest["version"] = json!("1.0.2");
    v2_manifest["metadata"]["version"] = json!("1.0.2");
    let v2_url = "/organizations/acme/cookbooks/demo/1.0.2";
    let (status, body) = alice.with_api("2", "PUT", v2_url, Some(v2_manifest)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["all_files"][0].get("url").is_none(), "{body}");
    let (status, as_v1) = bob.get(v2_url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(as_v1["templates"], json!([]));
    assert_eq!(as_v1["root_files"][0]["name"], "README.md");
    let (status, _) = alice.delete(v2_url).await;
    assert_eq!(status, StatusCode::OK);

    // Frozen versions: 409 without force, and a forced PUT keeps them frozen.
    alice
        .put(url, manifest("1.0.0", recipe, readme, true))
        .await;
    let (status, body) = alice
        .put(url, manifest("1.0.0", readme, readme, false))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body["error"][0],
        "The cookbook demo at version 1.0.0 is frozen. Use the 'force' option to override."
    );
    let (status, body) = alice
        .put(
            &format!("{url}?force=true"),
            manifest("1.0.0", readme, readme, false),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["frozen?"], true);
    let (status, _) = alice
        .put(
            &format!("{url}?force=false"),
            manifest("1.0.0", recipe, readme, true),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // A second version and the listings. (The forced update above dropped the recipe file
    // from the only version that had it, so the org no longer has it.)
    let (status, _) = alice
        .put(
            "/organizations/acme/cookbooks/demo/1.10.0",
            manifest("1.10.0", readme, readme, false),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let base = "http://chef.test/organizations/acme/cookbooks";
    let (_, body) = bob.get("/organizations/acme/cookbooks").await;
    assert_eq!(
        body,
        json!({"demo": {"url": format!("{base}/demo"), "versions": [{"url": format!("{base}/demo/1.10.0"), "version": "1.10.0"}]}})
    );
    let (_, body) = bob
        .get("/organizations/acme/cookbooks?num_versions=all")
        .await;
    assert_eq!(body["demo"]["versions"].as_array().unwrap().len(), 2);
    let (status, _) = bob
        .get("/organizations/acme/cookbooks?num_versions=x")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, body) = bob.get("/organizations/acme/cookbooks/demo").await;
    assert_eq!(body["demo"]["versions"][1]["version"], "1.0.0");
    let (status, _) = bob.get("/organizations/acme/cookbooks/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = bob.get("/organizations/acme/cookbooks/_latest").await;
    assert_eq!(body, json!({"demo": format!("{base}/demo/1.10.0")}));
    let (_, body) = bob.get("/organizations/acme/cookbooks/_recipes").await;
    assert_eq!(body, json!(["demo"]));
    let (_, body) = bob.get("/organizations/acme/cookbooks/demo/_latest").await;
    assert_eq!(body["version"], "1.10.0");
    let (_, body) = bob.get("/organizations/acme/universe").await;
    assert_eq!(
        body["demo"]["1.0.0"],
        json!({"location_path": format!("{base}/demo/1.0.0"), "location_type": "chef_server", "dependencies": {"base": ">= 1.0"}})
    );

    // Another org sees nothing of acme's files, though the bytes are stored once.
    h.as_pivotal(
        "POST",
        "/organizations",
        Some(json!({"name": "other", "full_name": "Other"})),
    )
    .await;
    let (_, body) = h
        .as_pivotal(
            "POST",
            "/organizations/other/sandboxes",
            Some(json!({ "checksums": checksums })),
        )
        .await;
    assert_eq!(body["checksums"][md5_hex(recipe)]["needs_upload"], true);

    // Delete.
    let (status, body) = alice
        .delete("/organizations/acme/cookbooks/demo/1.10.0")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "demo-1.10.0");
    let (status, body) = bob.get("/organizations/acme/cookbooks/demo/1.10.0").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["error"][0],
        "Cannot find a cookbook named demo with version 1.10.0"
    );
    assert_eq!(
        feed(h).await,
        json!([
            {"action": "create", "id": 1, "path": "/cookbooks/demo/1.0.0"},
            {"action": "create", "id": 2, "path": "/cookbooks/demo/1.0.2"},
            {"action": "delete", "id": 3, "path": "/cookbooks/demo/1.0.2"},
            {"action": "update", "id": 4, "path": "/cookbooks/demo/1.0.0"},
            {"action": "update", "id": 5, "path": "/cookbooks/demo/1.0.0"},
            {"action": "create", "id": 6, "path": "/cookbooks/demo/1.10.0"},
            {"action": "delete", "id": 7, "path": "/cookbooks/demo/1.10.0"},
        ])
    );
    // The sandbox upload helper is exercised once here so both paths stay covered.
    upload_files(h, &alice, &[b"extra file"]).await;
}

async fn cookbook_validation(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice);
    let recipe: &[u8] = b"r";
    let readme: &[u8] = b"m";
    upload_files(h, &alice, &[recipe, readme]).await;
    let url = "/organizations/acme/cookbooks/demo/1.0.0";
    let good = manifest("1.0.0", recipe, readme, false);
    let mut wrong_name = good.clone();
    wrong_name["name"] = json!("demo-2.0.0");
    let mut wrong_cookbook = good.clone();
    wrong_cookbook["cookbook_name"] = json!("other");
    let mut wrong_metadata = good.clone();
    wrong_metadata["metadata"]["version"] = json!("1.0.1");
    let mut extra_key = good.clone();
    extra_key["surprise"] = json!(1);
    let mut bad_checksum = good.clone();
    bad_checksum["recipes"][0]["checksum"] = json!("nothex");
    let mut missing_path = good.clone();
    missing_path["recipes"][0]
        .as_object_mut()
        .unwrap()
        .remove("path");
    for (what, body) in [
        ("name", wrong_name),
        ("cookbook_name", wrong_cookbook),
        ("metadata.version", wrong_metadata),
        ("unknown key", extra_key),
        ("checksum", bad_checksum),
        ("file without path", missing_path),
    ] {
        let (status, reply) = alice.put(url, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {reply}");
        assert!(reply["error"][0].is_string(), "{what}");
    }
    let (status, _) = alice
        .put("/organizations/acme/cookbooks/demo/1.x", good.clone())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = alice
        .put("/organizations/acme/cookbooks/bad:name/1.0.0", good.clone())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The request's API version decides the accepted form.
    let (status, _) = alice.with_api("2", "PUT", url, Some(good.clone())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "segments under API v2");
    let mut v2 = good.clone();
    let object = v2.as_object_mut().unwrap();
    let recipes = object.remove("recipes").unwrap();
    object.remove("root_files");
    let mut all = recipes[0].clone();
    all["name"] = json!("recipes/default.rb");
    object.insert("all_files".into(), json!([all]));
    let (status, _) = alice.put(url, v2.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "all_files under API v1");
    let (status, body) = alice.with_api("2", "PUT", url, Some(v2)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["all_files"][0]["name"], "recipes/default.rb");
    let (_, body) = alice.with_api("0", "GET", url, None).await;
    assert_eq!(body["recipes"][0]["name"], "default.rb");
    assert_eq!(body["recipes"][0]["path"], "recipes/default.rb");

    // A file over max_file_size is refused while it streams in, and nothing is kept.
    let big = vec![b'x'; 1_000_001];
    let (_, sandbox) = alice
        .post(
            "/organizations/acme/sandboxes",
            json!({"checksums": { md5_hex(&big): null }}),
        )
        .await;
    let url = sandbox["checksums"][md5_hex(&big)]["url"].as_str().unwrap();
    assert_eq!(
        upload(h, url, &big, &md5_b64(&big)).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let staged = std::fs::read_dir(h.dir.path().join("tmp")).unwrap().count();
    assert_eq!(staged, 0, "staging files are removed");
    let (status, _) = alice
        .put(
            &local(sandbox["uri"].as_str().unwrap()),
            json!({"is_completed": true}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

/// Whether the org's sandbox asks for `file` again (it no longer has it).
async fn needs_upload(alice: &As<'_>, file: &[u8]) -> bool {
    let (status, sandbox) = alice
        .post(
            "/organizations/acme/sandboxes",
            json!({ "checksums": { md5_hex(file): null } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sandbox}");
    sandbox["checksums"][md5_hex(file)]["needs_upload"] == true
}

/// The download URL of the file with `name` in a v2 manifest.
async fn file_url(alice: &As<'_>, version: &str, name: &str) -> String {
    let url = format!("/organizations/acme/cookbooks/demo/{version}");
    let (status, v2) = alice.with_api("2", "GET", &url, None).await;
    assert_eq!(status, StatusCode::OK, "{v2}");
    v2["all_files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .and_then(|f| f["url"].as_str())
        .unwrap()
        .to_owned()
}

/// Chef serves a cookbook's files only while a version references them: deleting or replacing
/// the last version that had a file releases it (its URL answers 404, a sandbox asks for it
/// again, a manifest naming it is refused), while files other versions share stay; versions
/// stored by the release before the file table are read at the next start.
async fn unreferenced_files_are_released(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice);
    let (shared, only_one, only_two): (&[u8], &[u8], &[u8]) = (b"shared", b"one", b"two");
    upload_files(h, &alice, &[shared, only_one, only_two]).await;
    for (version, readme) in [("1.0.0", only_one), ("2.0.0", only_two)] {
        let url = format!("/organizations/acme/cookbooks/demo/{version}");
        let (status, body) = alice
            .put(&url, manifest(version, shared, readme, false))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    // As a database of the release before the file table: no rows, every version pending.
    let url = h.state.config.database.clone().unwrap();
    let raw = sqlx::AnyPool::connect(&url).await.unwrap();
    for sql in [
        "DELETE FROM cookbook_files",
        "INSERT INTO cookbook_files_pending (org_id, path) \
         SELECT org_id, path FROM objects WHERE kind = 'cookbook_version'",
    ] {
        sqlx::query(sql).execute(&raw).await.unwrap();
    }
    raw.close().await;
    let store = chef_sync_server::Store::connect(&url, 4).await.unwrap();
    assert_eq!(store.record_pending_cookbook_files().await.unwrap(), 0);
    store.close().await;

    let one_url = file_url(&alice, "1.0.0", "root_files/README.md").await;
    let shared_url = file_url(&alice, "2.0.0", "recipes/default.rb").await;
    let (status, _) = alice
        .delete("/organizations/acme/cookbooks/demo/1.0.0")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(download(h, &one_url).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        download(h, &shared_url).await,
        (StatusCode::OK, shared.to_vec())
    );
    assert!(needs_upload(&alice, only_one).await);
    assert!(!needs_upload(&alice, shared).await);
    let (status, body) = alice
        .put(
            "/organizations/acme/cookbooks/demo/3.0.0",
            manifest("3.0.0", shared, only_one, false),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"][0],
        "Manifest has a checksum that hasn't been uploaded."
    );

    // Replacing 2.0.0's README releases the old one; an update naming a released file is
    // refused in Chef's update wording.
    let two_url = file_url(&alice, "2.0.0", "root_files/README.md").await;
    let (status, body) = alice
        .put(
            "/organizations/acme/cookbooks/demo/2.0.0",
            manifest("2.0.0", shared, shared, false),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(download(h, &two_url).await.0, StatusCode::NOT_FOUND);
    assert!(needs_upload(&alice, only_two).await);
    let (status, body) = alice
        .put(
            "/organizations/acme/cookbooks/demo/2.0.0",
            manifest("2.0.0", shared, only_two, false),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"][0],
        format!(
            "Manifest has checksum {} but it hasn't yet been uploaded",
            md5_hex(only_two)
        )
    );
    assert_eq!(
        download(h, &shared_url).await,
        (StatusCode::OK, shared.to_vec())
    );
}
