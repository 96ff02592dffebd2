//! HTTP tests of the cookbook dependency solver (`POST /environments/ENV/cookbook_versions`)
//! on SQLite and PostgreSQL: the versions chosen, the environment's constraints, the answer's
//! shape per API version, Chef's error bodies word for word, a broken cookbook failing only
//! the runs that need it, and a pathological universe ending in Chef's timeout answer.

#![allow(clippy::unwrap_used)]

#[path = "support/harness.rs"]
mod harness;

use std::time::Duration;

use axum::http::StatusCode;
use chef_sync_shared::SigningVersion;
use harness::*;
use serde_json::{Value, json};

on_both_backends!(
    run_lists_get_the_newest_versions_that_fit,
    errors_are_worded_as_chef_words_them,
    a_broken_cookbook_fails_only_the_runs_that_need_it,
    a_pathological_universe_times_out_and_the_server_keeps_answering
);

const SOLVE: &str = "/organizations/acme/environments/_default/cookbook_versions";

fn manifest(name: &str, version: &str, dependencies: Value) -> Value {
    json!({
        "name": format!("{name}-{version}"),
        "cookbook_name": name,
        "version": version,
        "json_class": "Chef::CookbookVersion",
        "chef_type": "cookbook_version",
        "frozen?": false,
        "metadata": {
            "name": name,
            "version": version,
            "dependencies": dependencies,
            "attributes": {"port": {"default": "80"}},
            "long_description": "A long read.",
            "recipes": {},
        },
        "recipes": [],
    })
}

async fn upload(alice: &As<'_>, name: &str, version: &str, dependencies: Value) {
    let url = format!("/organizations/acme/cookbooks/{name}/{version}");
    let (status, body) = alice.put(&url, manifest(name, version, dependencies)).await;
    assert_eq!(status, StatusCode::CREATED, "{name} {version}: {body}");
}

/// A client of the org (what a chef-client run signs as).
async fn node_client(h: &Harness) -> chef_sync_shared::PrivateKey {
    let org = h.store.org("acme").await.unwrap().unwrap();
    let key = other_key();
    let public = key.public_key().to_pem().unwrap();
    h.store
        .create_client(org.id, "web-1", false, &public)
        .await
        .unwrap();
    key
}

fn versions(answer: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = answer
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v["version"].as_str().unwrap_or("?").to_owned()))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

async fn run_lists_get_the_newest_versions_that_fit(h: &Harness) {
    let (alice_key, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice_key);
    upload(&alice, "app", "1.0.0", json!({"db": "= 1.0.0"})).await;
    upload(
        &alice,
        "app",
        "2.0.0",
        json!({"db": "~> 2.0", "base": ">= 0.1"}),
    )
    .await;
    for version in ["1.0.0", "2.0.0", "2.5.0", "3.0.0"] {
        upload(&alice, "db", version, json!({})).await;
    }
    upload(&alice, "base", "0.1.0", json!({})).await;
    upload(&alice, "unused", "9.0.0", json!({})).await;
    let (status, body) = alice
        .post(
            "/organizations/acme/environments",
            json!({"name": "prod", "cookbook_versions": {"db": "< 2.0"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let client_key = node_client(h).await;
    let node = h.actor("web-1", &client_key);

    let (status, answer) = node.post(SOLVE, json!({"run_list": ["app::server"]})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        versions(&answer),
        pairs(&[("app", "2.0.0"), ("base", "0.1.0"), ("db", "2.5.0")])
    );
    // What chef-client reads of each: the manifest for its API version, with download URLs,
    // without the metadata a run does not use.
    let app = &answer["app"];
    assert_eq!(
        app["metadata"]["dependencies"],
        json!({"db": "~> 2.0", "base": ">= 0.1"})
    );
    assert!(app["metadata"].get("attributes").is_none(), "{app}");
    assert!(app["metadata"].get("long_description").is_none(), "{app}");
    assert_eq!(app["chef_type"], "cookbook_version");
    assert!(
        app.get("recipes").is_some() && app.get("all_files").is_none(),
        "{app}"
    );
    let (status, v2) = node
        .with_api("2", "POST", SOLVE, Some(json!({"run_list": ["app"]})))
        .await;
    assert_eq!(status, StatusCode::OK, "{v2}");
    assert!(v2["app"].get("all_files").is_some() && v2["app"].get("recipes").is_none());

    // The environment's constraint on db forces the older app; a pin in the run list too.
    let prod = "/organizations/acme/environments/prod/cookbook_versions";
    let (_, answer) = node.post(prod, json!({"run_list": ["app"]})).await;
    assert_eq!(
        versions(&answer),
        pairs(&[("app", "1.0.0"), ("db", "1.0.0")])
    );
    let (_, answer) = node
        .post(SOLVE, json!({"run_list": ["app", "db@1.0.0"]}))
        .await;
    assert_eq!(
        versions(&answer),
        pairs(&[("app", "1.0.0"), ("db", "1.0.0")])
    );

    // A new upload is seen by the next solve.
    upload(&alice, "db", "2.6.0", json!({})).await;
    let (_, answer) = node.post(SOLVE, json!({"run_list": ["app"]})).await;
    assert_eq!(answer["db"]["version"], "2.6.0");
    let (status, db) = node.get("/organizations/acme/cookbooks/db/2.6.0").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["db"]["name"], db["name"]);

    // And an empty run list needs nothing.
    let (status, answer) = node.post(SOLVE, json!({"run_list": []})).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({})));
}

async fn errors_are_worded_as_chef_words_them(h: &Harness) {
    let (alice_key, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice_key);
    upload(&alice, "foo", "1.2.3", json!({"bar": "> 2.0.0"})).await;
    upload(&alice, "bar", "2.0.0", json!({})).await;
    upload(
        &alice,
        "lonely",
        "1.2.3",
        json!({"this_does_not_exist": ">= 0.0.0"}),
    )
    .await;

    for raw in ["", "{\"run_list\": [", "not json"] {
        let req = signed(
            "alice",
            &alice_key,
            "POST",
            SOLVE,
            raw.as_bytes(),
            SigningVersion::V1_3,
            chrono::Utc::now(),
        );
        let (status, _, body) = h.send(req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{raw:?}");
        assert_eq!(body, json!({"error": ["invalid JSON"]}));
    }
    let (status, body) = alice.post(SOLVE, json!({"run_list": ["foo@1"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": ["Field 'run_list' is not a valid run list"]})
    );
    let (status, body) = alice
        .post(
            "/organizations/acme/environments/not@environment/cookbook_versions",
            json!({"run_list": []}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error": ["environment 'not@environment' not found"]})
    );
    let (status, _) = alice.get(SOLVE).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    let cases = [
        (
            json!(["this_does_not_exist"]),
            json!({"message": "Run list contains invalid items: no such cookbook this_does_not_exist.",
                   "non_existent_cookbooks": ["this_does_not_exist"], "cookbooks_with_no_versions": []}),
        ),
        (
            json!(["foo@2.0.0"]),
            json!({"message": "Run list contains invalid items: no versions match the constraints on cookbook (foo = 2.0.0).",
                   "non_existent_cookbooks": [], "cookbooks_with_no_versions": ["(foo = 2.0.0)"]}),
        ),
        (
            json!(["foo"]),
            json!({"message": "Unable to satisfy constraints on package bar due to solution constraint (foo >= 0.0.0). Solution constraints that may result in a constraint on bar: [(foo = 1.2.3) -> (bar > 2.0.0)]",
                   "unsatisfiable_run_list_item": "(foo >= 0.0.0)",
                   "non_existent_cookbooks": [], "most_constrained_cookbooks": ["bar = 2.0.0 -> []"]}),
        ),
        (
            json!(["lonely"]),
            json!({"message": "Unable to satisfy constraints on package this_does_not_exist, which does not exist, due to solution constraint (lonely >= 0.0.0). Solution constraints that may result in a constraint on this_does_not_exist: [(lonely = 1.2.3) -> (this_does_not_exist >= 0.0.0)]",
                   "unsatisfiable_run_list_item": "(lonely >= 0.0.0)",
                   "non_existent_cookbooks": ["this_does_not_exist"], "most_constrained_cookbooks": []}),
        ),
    ];
    for (run_list, expected) in cases {
        let (status, body) = alice.post(SOLVE, json!({"run_list": run_list})).await;
        assert_eq!(
            status,
            StatusCode::PRECONDITION_FAILED,
            "{run_list}: {body}"
        );
        assert_eq!(body, json!({"error": [expected]}), "{run_list}");
    }
}

async fn a_broken_cookbook_fails_only_the_runs_that_need_it(h: &Harness) {
    let (alice_key, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice_key);
    upload(&alice, "web", "1.0.0", json!({"base": ">= 1.0"})).await;
    upload(&alice, "base", "1.0.0", json!({})).await;
    // Uploaded after, and needing a cookbook nobody uploaded (chef/chef-server issue 3615:
    // there, one such cookbook failed every run in the org).
    upload(&alice, "broken", "1.0.0", json!({"missing": ">= 0.0"})).await;
    upload(&alice, "base", "2.0.0", json!({"missing": ">= 0.0"})).await;
    let client_key = node_client(h).await;
    let node = h.actor("web-1", &client_key);
    let (status, answer) = node.post(SOLVE, json!({"run_list": ["web"]})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        versions(&answer),
        pairs(&[("base", "1.0.0"), ("web", "1.0.0")])
    );
    let (status, body) = node
        .post(SOLVE, json!({"run_list": ["web", "broken"]}))
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        body["error"][0]["unsatisfiable_run_list_item"],
        "(broken >= 0.0.0)"
    );
    assert_eq!(
        body["error"][0]["non_existent_cookbooks"],
        json!(["missing"])
    );
}

async fn a_pathological_universe_times_out_and_the_server_keeps_answering(h: &Harness) {
    let (alice_key, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice_key);
    // Pigeonhole: 13 pigeons each need a hole of 12 to themselves (pigeon i at version 1.j
    // needs hole j at version 1.i), which no search proves impossible in 2 s.
    for i in 0..13 {
        for j in 0..12 {
            let pigeon = format!("1.{j}.0");
            let hole = format!("1.{i}.0");
            upload(
                &alice,
                &format!("pigeon{i}"),
                &pigeon,
                json!({format!("hole{j}"): format!("= {hole}")}),
            )
            .await;
            upload(&alice, &format!("hole{j}"), &hole, json!({})).await;
        }
    }
    let url = listen(h).await;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let probe = tokio::spawn(probe_status(format!("{url}/_status"), stop_rx));
    let run_list: Vec<String> = (0..13).map(|i| format!("pigeon{i}")).collect();
    let (status, body) = alice.post(SOLVE, json!({"run_list": run_list})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = stop.send(true);
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert_eq!(
        body,
        json!({"error": [{"message": "unable to solve dependencies in alotted time",
                          "non_existent_cookbooks": [], "most_constrained_cookbooks": []}]})
    );
    status_kept_answering("pathological solve", probe.await.unwrap(), 20, 5);
}
