//! HTTP tests of what an environment sees (`/environments/E/cookbooks[/C]`, `/recipes`,
//! `/nodes`, `/roles/R`, and `/roles/R/environments[/E]`) and of `/principals/NAME`, on
//! SQLite and PostgreSQL, with the bodies and error texts Chef Infra Server gives.

#![allow(clippy::unwrap_used)]

#[path = "support/harness.rs"]
mod harness;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use harness::*;
use serde_json::{Value, json};

on_both_backends!(
    cookbook_versions_as_the_environment_allows,
    recipes_of_the_newest_allowed_versions,
    nodes_and_role_run_lists_per_environment,
    principals_need_no_signature
);

const BASE: &str = "http://chef.test/organizations/acme";

/// Uploads `name` at each version with recipe files `recipes` (file names in `recipes/`).
async fn cookbook(h: &Harness, alice: &As<'_>, name: &str, version: &str, recipes: &[&str]) {
    let contents: Vec<Vec<u8>> = recipes
        .iter()
        .map(|r| format!("# {name} {version} {r}\n").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = contents.iter().map(Vec::as_slice).collect();
    if !refs.is_empty() {
        upload_files(h, alice, &refs).await;
    }
    let files: Vec<Value> = recipes
        .iter()
        .zip(&contents)
        .map(|(r, c)| {
            json!({"name": r, "path": format!("recipes/{r}"), "checksum": md5_hex(c), "specificity": "default"})
        })
        .collect();
    let body = json!({
        "name": format!("{name}-{version}"), "cookbook_name": name, "version": version,
        "json_class": "Chef::CookbookVersion", "chef_type": "cookbook_version", "frozen?": false,
        "metadata": {"name": name, "version": version, "dependencies": {}},
        "recipes": files,
    });
    let url = format!("/organizations/acme/cookbooks/{name}/{version}");
    let (status, answer) = alice.put(&url, body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

async fn constrain(alice: &As<'_>, constraints: Value) {
    let (status, body) = alice
        .put(
            "/organizations/acme/environments/test_env",
            json!({"name": "test_env", "cookbook_versions": constraints}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn entry(name: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"url": format!("{BASE}/cookbooks/{name}/{v}"), "version": v}))
        .collect();
    json!({"url": format!("{BASE}/cookbooks/{name}"), "versions": versions})
}

async fn cookbook_versions_as_the_environment_allows(h: &Harness) {
    let (alice_key, bob_key) = org_with_users(h).await;
    let alice = h.actor("alice", &alice_key);
    let bob = h.actor("bob", &bob_key);
    let (status, _) = alice
        .post(
            "/organizations/acme/environments",
            json!({"name": "test_env"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, empty) = bob
        .get("/organizations/acme/environments/test_env/cookbooks")
        .await;
    assert_eq!(empty, json!({}));
    for v in ["1.0.0", "2.0.0", "3.0.0"] {
        cookbook(h, &alice, "one", v, &[]).await;
    }
    for v in ["0.5.1", "0.6.0", "1.0.0"] {
        cookbook(h, &alice, "three", v, &[]).await;
    }

    let list = |env: &'static str, n: &'static str| {
        let bob = &bob;
        async move {
            let url = format!("/organizations/acme/environments/{env}/cookbooks{n}");
            let (status, body) = bob.get(&url).await;
            assert_eq!(status, StatusCode::OK, "{url}: {body}");
            body
        }
    };
    assert_eq!(
        list("_default", "").await,
        json!({"one": entry("one", &["3.0.0"]), "three": entry("three", &["1.0.0"])})
    );
    assert_eq!(
        list("test_env", "?num_versions=2").await,
        json!({"one": entry("one", &["3.0.0", "2.0.0"]), "three": entry("three", &["1.0.0", "0.6.0"])})
    );
    constrain(&alice, json!({"one": "> 1.0.0", "three": "~> 0.5"})).await;
    assert_eq!(
        list("test_env", "?num_versions=all").await,
        json!({"one": entry("one", &["3.0.0", "2.0.0"]), "three": entry("three", &["0.6.0", "0.5.1"])})
    );
    assert_eq!(
        list("test_env", "?num_versions=0").await,
        json!({"one": entry("one", &[]), "three": entry("three", &[])})
    );
    // A cookbook with no allowed version is left out…
    constrain(&alice, json!({"one": "= 6.6.6"})).await;
    assert_eq!(
        list("test_env", "").await,
        json!({"three": entry("three", &["1.0.0"])})
    );
    // …but when the environment allows nothing at all, every cookbook is listed empty.
    constrain(&alice, json!({"one": "= 6.6.6", "three": "= 6.6.6"})).await;
    assert_eq!(
        list("test_env", "").await,
        json!({"one": entry("one", &[]), "three": entry("three", &[])})
    );

    // One cookbook: all versions unless asked for fewer.
    let (status, body) = bob
        .get("/organizations/acme/environments/_default/cookbooks/three")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"three": entry("three", &["1.0.0", "0.6.0", "0.5.1"])})
    );
    let (_, body) = bob
        .get("/organizations/acme/environments/test_env/cookbooks/one")
        .await;
    assert_eq!(body, json!({"one": entry("one", &[])}));

    // Errors, in erchef's order.
    let cases = [
        (
            "/organizations/acme/environments/test_env/cookbooks?num_versions=skittles",
            StatusCode::BAD_REQUEST,
            "You have requested an invalid number of versions (x >= 0 || 'all')",
        ),
        (
            "/organizations/acme/environments/bad_env/cookbooks",
            StatusCode::NOT_FOUND,
            "Cannot load environment bad_env",
        ),
        (
            "/organizations/acme/environments/bad_env/cookbooks/nope",
            StatusCode::NOT_FOUND,
            "Cannot load environment bad_env",
        ),
        (
            "/organizations/acme/environments/_default/cookbooks/nope",
            StatusCode::NOT_FOUND,
            "Cannot find a cookbook named nope",
        ),
        (
            "/organizations/acme/environments/bad_env/recipes",
            StatusCode::NOT_FOUND,
            "Cannot load environment bad_env",
        ),
    ];
    for (url, status, message) in cases {
        let (got, body) = bob.get(url).await;
        assert_eq!((got, body), (status, json!({"error": [message]})), "{url}");
    }
}

async fn recipes_of_the_newest_allowed_versions(h: &Harness) {
    let (alice_key, bob_key) = org_with_users(h).await;
    let alice = h.actor("alice", &alice_key);
    let bob = h.actor("bob", &bob_key);
    let (status, _) = alice
        .post(
            "/organizations/acme/environments",
            json!({"name": "test_env"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    cookbook(h, &alice, "web", "1.0.0", &["default.rb", "old.rb"]).await;
    cookbook(h, &alice, "web", "2.0.0", &["default.rb", "nginx.rb"]).await;
    cookbook(h, &alice, "db", "1.0.0", &["server.rb"]).await;
    let (_, all) = bob
        .get("/organizations/acme/environments/_default/recipes")
        .await;
    assert_eq!(all, json!(["db::server", "web", "web::nginx"]));
    constrain(&alice, json!({"web": "< 2.0"})).await;
    let (_, older) = bob
        .get("/organizations/acme/environments/test_env/recipes")
        .await;
    assert_eq!(older, json!(["db::server", "web", "web::old"]));
    constrain(&alice, json!({"web": "= 6.6.6", "db": "= 6.6.6"})).await;
    let (_, none) = bob
        .get("/organizations/acme/environments/test_env/recipes")
        .await;
    assert_eq!(none, json!([]));
}

async fn nodes_and_role_run_lists_per_environment(h: &Harness) {
    let (alice_key, bob_key) = org_with_users(h).await;
    let alice = h.actor("alice", &alice_key);
    let bob = h.actor("bob", &bob_key);
    for env in ["prod", "dev"] {
        let (status, _) = alice
            .post("/organizations/acme/environments", json!({"name": env}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    for (node, env) in [("a", "prod"), ("b", "dev"), ("c", "prod")] {
        let (status, body) = alice
            .post(
                "/organizations/acme/nodes",
                json!({"name": node, "chef_environment": env}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (_, prod) = bob.get("/organizations/acme/environments/prod/nodes").await;
    assert_eq!(
        prod,
        json!({"a": format!("{BASE}/nodes/a"), "c": format!("{BASE}/nodes/c")})
    );
    let (_, none) = bob
        .get("/organizations/acme/environments/_default/nodes")
        .await;
    assert_eq!(none, json!({}));
    let (status, body) = bob.get("/organizations/acme/environments/gone/nodes").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"error": ["Cannot load environment 'gone'"]})
        )
    );

    let (status, _) = alice
        .post(
            "/organizations/acme/roles",
            json!({"name": "web", "run_list": ["nginx"],
                   "env_run_lists": {"prod": ["recipe[nginx::prod]"], "missing": ["base"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, envs) = bob.get("/organizations/acme/roles/web/environments").await;
    assert_eq!(envs, json!(["_default", "missing", "prod"]));
    let run_list = |path: &'static str| {
        let bob = &bob;
        async move { bob.get(path).await }
    };
    let expect = [
        (
            "/organizations/acme/environments/_default/roles/web",
            StatusCode::OK,
            json!({"run_list": ["recipe[nginx]"]}),
        ),
        (
            "/organizations/acme/environments/prod/roles/web",
            StatusCode::OK,
            json!({"run_list": ["recipe[nginx::prod]"]}),
        ),
        (
            "/organizations/acme/roles/web/environments/prod",
            StatusCode::OK,
            json!({"run_list": ["recipe[nginx::prod]"]}),
        ),
        (
            "/organizations/acme/environments/dev/roles/web",
            StatusCode::OK,
            json!({"run_list": null}),
        ),
        (
            "/organizations/acme/environments/missing/roles/web",
            StatusCode::NOT_FOUND,
            json!({"error": ["Cannot load environment missing"]}),
        ),
        (
            "/organizations/acme/roles/web/environments/missing",
            StatusCode::NOT_FOUND,
            json!({"error": ["Cannot load environment missing"]}),
        ),
        (
            "/organizations/acme/environments/missing/roles/nope",
            StatusCode::NOT_FOUND,
            json!({"error": ["Cannot load role nope"]}),
        ),
    ];
    for (path, status, body) in expect {
        assert_eq!(run_list(path).await, (status, body), "{path}");
    }
}

async fn principals_need_no_signature(h: &Harness) {
    let (alice_key, _) = org_with_users(h).await;
    let org = h.store.org("acme").await.unwrap().unwrap();
    let client_key = other_key();
    let public = client_key.public_key().to_pem().unwrap();
    h.store
        .create_client(org.id, "web-1", false, &public)
        .await
        .unwrap();
    let get = |path: String, api: &'static str| async move {
        let req = Request::get(path)
            .header("host", "chef.test")
            .header("x-ops-server-api-version", api)
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = h.send(req).await;
        (status, body)
    };
    let (status, body) = get("/organizations/acme/principals/web-1".into(), "1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let client = &body["principals"][0];
    assert_eq!(client["name"], "web-1");
    assert_eq!(client["type"], "client");
    assert_eq!(client["org_member"], true);
    assert_eq!(client["public_key"], public);
    assert_eq!(client["authz_id"].as_str().unwrap().len(), 32);
    let (_, v0) = get("/organizations/acme/principals/alice".into(), "0").await;
    assert_eq!(v0["type"], "user");
    assert_eq!(v0["org_member"], true);
    assert_eq!(v0["public_key"], alice_key.public_key().to_pem().unwrap());
    let (status, body) = get("/organizations/acme/principals/nobody".into(), "1").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"error": "Cannot find principal nobody", "not_found": "principal"})
        )
    );
    let (status, body) = get("/organizations/bogus/principals/web-1".into(), "1").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"error": "Cannot find org bogus", "not_found": "org"})
        )
    );
    // Only GET of a principal goes unsigned.
    let req = Request::get("/organizations/acme/clients/web-1")
        .header("host", "chef.test")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        h.send(req).await.0,
        StatusCode::BAD_REQUEST,
        "unsigned: headers missing"
    );
}
