//! HTTP tests of Policyfiles (policies, revisions, policy groups, cookbook artifacts) against
//! Chef Infra Server's behaviour, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)]

#[path = "support/harness.rs"]
mod harness;

use axum::http::StatusCode;
use harness::*;
use serde_json::{Value, json};

on_both_backends!(
    policies_and_groups_as_chef_push_leaves_them,
    cookbook_artifacts_are_immutable_and_release_their_files,
);

const POLICIES: &str = "/organizations/acme/policies";
const GROUPS: &str = "/organizations/acme/policy_groups";
const BASE: &str = "http://chef.test/organizations/acme";

/// The org's feed as `ACTION PATH` lines, ids checked to ascend.
async fn feed(h: &Harness) -> Vec<String> {
    let (status, body) = h
        .as_pivotal("GET", "/organizations/acme/updated_since?seq=0", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let entries = body.as_array().unwrap();
    let ids: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    entries
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["path"].as_str().unwrap()
            )
        })
        .collect()
}

fn revision(name: &str, revision_id: &str) -> Value {
    json!({
        "revision_id": revision_id,
        "name": name,
        "run_list": ["recipe[app::default]"],
        "named_run_lists": {"update": ["recipe[app::update]"]},
        "cookbook_locks": {"app": {
            "identifier": "f04cc40faf628253fe7d9566d66a1733fb1afbe9",
            "dotted_decimal_identifier": "67638399371010690.23642238397896298.25512023620585",
            "version": "0.1.0",
            "source_options": {"path": "."},
            "cache_key": null,
        }},
        "solution_dependencies": {"Policyfile": [["app", ">= 0.0.0"]], "dependencies": {"app (0.1.0)": []}},
        "default_attributes": {},
        "override_attributes": {"x": false},
    })
}

async fn policies_and_groups_as_chef_push_leaves_them(h: &Harness) {
    let (alice, bob) = org_with_users(h).await;
    reader_only(h, "acme", "bob").await;
    let alice = h.actor("alice", &alice);
    let bob = h.actor("bob", &bob);
    let (r1, r2) = ("1".repeat(40), "2".repeat(40));
    assert_eq!(alice.get(POLICIES).await, (StatusCode::OK, json!({})));
    assert_eq!(alice.get(GROUPS).await, (StatusCode::OK, json!({})));

    // `chef push dev`: the assignment creates the group, the policy and the revision.
    let assign = format!("{GROUPS}/dev/policies/app");
    let mut pushed = revision("app", &r1);
    pushed["policy_group"] = json!("dev");
    let (status, body) = alice.put(&assign, pushed.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, pushed, "answered as sent");
    let (status, body) = alice.get(POLICIES).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"app": {"uri": format!("{BASE}/policies/app"), "revisions": {r1.clone(): {}}}})
    );
    let (_, body) = bob.get(GROUPS).await;
    assert_eq!(
        body,
        json!({"dev": {"uri": format!("{BASE}/policy_groups/dev"), "policies": {"app": {"revision_id": r1}}}})
    );
    // What a chef-client in policy mode reads: the revision as stored (`policy_group` is not
    // part of it), every value as sent.
    let (status, body) = bob.get(&assign).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, revision("app", &r1));

    // A new revision pushed to dev replaces the assignment (200); prod gets the old one.
    let (status, _) = alice.put(&assign, revision("app", &r2)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = alice
        .put(&format!("{GROUPS}/prod/policies/app"), revision("app", &r1))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = alice
        .put(&format!("{GROUPS}/test/policies/app"), revision("app", &r2))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, body) = bob.get(&format!("{POLICIES}/app/revisions/{r2}")).await;
    assert_eq!(body["policy_group_list"], json!(["dev", "test"]));
    assert_eq!(body["cookbook_locks"]["app"]["cache_key"], Value::Null);
    let (_, body) = bob.get(&format!("{POLICIES}/app")).await;
    assert_eq!(body, json!({"revisions": {r1.clone(): {}, r2.clone(): {}}}));

    // Revisions never change: POSTing one again is 409, and an assignment carrying different
    // content under an existing revision id keeps the stored content.
    let (status, _) = alice
        .post(&format!("{POLICIES}/app/revisions"), revision("app", &r1))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let mut changed = revision("app", &r1);
    changed["run_list"] = json!(["recipe[app::other]"]);
    let (status, _) = alice.put(&assign, changed).await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = bob.get(&assign).await;
    assert_eq!(body["run_list"], json!(["recipe[app::default]"]));

    // Chef's refusals.
    let (status, body) = alice
        .post(&format!("{POLICIES}/other/revisions"), revision("app", &r1))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"][0],
        "Field 'name' invalid : other does not match app"
    );
    let mut bad = revision("app", &r1);
    bad["run_list"] = json!(["role[web]"]);
    let (_, body) = alice.put(&assign, bad).await;
    assert_eq!(body["error"][0], "Field 'run_list' is not a valid run list");
    let (status, _) = alice
        .put(
            &format!("{GROUPS}/{}/policies/app", "g".repeat(256)),
            revision("app", &r1),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "group names are bounded");
    let (status, body) = bob.put(&assign, revision("app", &r2)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Removing an assignment leaves the group (listed without `policies`), the policy and
    // the revision.
    let (status, body) = alice.delete(&format!("{GROUPS}/prod/policies/app")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, revision("app", &r1));
    let (status, body) = alice.get(&format!("{GROUPS}/prod/policies/app")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["error"][0],
        "Cannot load policy app in policy group prod"
    );
    let (_, body) = bob.get(GROUPS).await;
    assert_eq!(
        body["prod"],
        json!({"uri": format!("{BASE}/policy_groups/prod")})
    );
    let (_, body) = bob.get(&format!("{GROUPS}/prod")).await;
    assert_eq!(body["policies"], json!({}));

    // Deleting a revision removes its assignments; deleting a group leaves the policy;
    // deleting the policy removes its revisions.
    let (status, _) = alice
        .delete(&format!("{POLICIES}/app/revisions/{r2}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    // (dev is on r1 again since the PUT of the changed r1 above; test was on r2.)
    let (_, body) = bob.get(&format!("{GROUPS}/test")).await;
    assert_eq!(body["policies"], json!({}));
    let (_, body) = bob.get(&format!("{GROUPS}/dev")).await;
    assert_eq!(body["policies"], json!({"app": {"revision_id": r1}}));
    let (status, body) = alice.delete(&format!("{GROUPS}/test")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = alice.get(&format!("{GROUPS}/test")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"][0], "policy_group 'test' not found");
    let (status, body) = alice.delete(&format!("{POLICIES}/app")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"revisions": {r1.clone(): {}}}));
    assert_eq!(
        alice.get(&format!("{POLICIES}/app")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        alice.get(&format!("{POLICIES}/app/revisions/{r1}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(alice.get(POLICIES).await.1, json!({}));
    let (_, body) = bob.get(GROUPS).await;
    assert_eq!(
        body,
        json!({"dev": {"uri": format!("{BASE}/policy_groups/dev")},
               "prod": {"uri": format!("{BASE}/policy_groups/prod")}}),
        "the groups remain, without assignments"
    );

    // Every change is in the feed, in the order a replica applies it: what is pointed at
    // before what points at it, and the other way round on removal. Refused writes and an
    // assignment that changed nothing left no entry.
    let rev = |r: &str| format!("/policies/app/revisions/{r}");
    let expected: Vec<String> = [
        ("create", "/policies/app".to_owned()),
        ("create", "/policy_groups/dev".to_owned()),
        ("create", rev(&r1)),
        ("create", "/policy_groups/dev/policies/app".to_owned()),
        ("create", rev(&r2)),
        ("update", "/policy_groups/dev/policies/app".to_owned()),
        ("create", "/policy_groups/prod".to_owned()),
        ("create", "/policy_groups/prod/policies/app".to_owned()),
        ("create", "/policy_groups/test".to_owned()),
        ("create", "/policy_groups/test/policies/app".to_owned()),
        ("update", "/policy_groups/dev/policies/app".to_owned()),
        ("delete", "/policy_groups/prod/policies/app".to_owned()),
        ("delete", "/policy_groups/test/policies/app".to_owned()),
        ("delete", rev(&r2)),
        ("delete", "/policy_groups/test".to_owned()),
        ("delete", "/policy_groups/dev/policies/app".to_owned()),
        ("delete", rev(&r1)),
        ("delete", "/policies/app".to_owned()),
    ]
    .into_iter()
    .map(|(action, path)| format!("{action} {path}"))
    .collect();
    assert_eq!(feed(h).await, expected);
    let (status, _) = alice.put(&assign, revision("app", &r1)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = alice.put(&assign, revision("app", &r1)).await;
    assert_eq!(status, StatusCode::OK);
    let after = feed(h).await;
    assert_eq!(
        after[expected.len()..],
        [
            "create /policies/app".to_owned(),
            format!("create {}", rev(&r1)),
            "create /policy_groups/dev/policies/app".to_owned(),
        ],
        "the same revision assigned again is not a change"
    );
}

fn artifact(identifier: &str, recipe: &[u8]) -> Value {
    json!({
        "name": "app",
        "identifier": identifier,
        "version": "1.2.3.beta.5",
        "chef_type": "cookbook_version",
        "frozen?": false,
        "metadata": {"name": "app", "version": "1.2.3", "providing": {"app::default": ">= 0.0.0"}},
        "recipes": [{"name": "default.rb", "path": "recipes/default.rb", "checksum": md5_hex(recipe), "specificity": "default"}],
    })
}

async fn cookbook_artifacts_are_immutable_and_release_their_files(h: &Harness) {
    let (alice, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice);
    let (recipe, other): (&[u8], &[u8]) = (b"log 'app'", b"never uploaded");
    upload_files(h, &alice, &[recipe]).await;
    let id = "1".repeat(40);
    let url = format!("/organizations/acme/cookbook_artifacts/app/{id}");
    let (status, body) = alice.put(&url, artifact(&id, recipe)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body,
        json!({"uri": format!("{BASE}/cookbook_artifacts/app")})
    );
    let (status, body) = alice.put(&url, artifact(&id, recipe)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body, json!({"error": "Cookbook artifact already exists"}));
    let (status, body) = alice
        .put(
            &format!(
                "/organizations/acme/cookbook_artifacts/app/{}",
                "2".repeat(40)
            ),
            artifact(&"2".repeat(40), other),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"][0],
        "Manifest has a checksum that hasn't been uploaded."
    );

    // Listed by name; read as segments (v0) or all_files (v2), each file downloadable.
    let listing = json!({"app": {"url": format!("{BASE}/cookbook_artifacts/app"),
        "versions": [{"url": format!("{BASE}/cookbook_artifacts/app/{id}"), "identifier": id}]}});
    assert_eq!(
        alice.get("/organizations/acme/cookbook_artifacts").await.1,
        listing
    );
    assert_eq!(
        alice
            .get("/organizations/acme/cookbook_artifacts/app")
            .await
            .1,
        listing
    );
    let (status, body) = alice
        .get("/organizations/acme/cookbook_artifacts/none")
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({"error": ["not_found"]}))
    );
    let (_, v0) = alice.get(&url).await;
    assert_eq!(v0["version"], "1.2.3.beta.5");
    assert_eq!(
        v0["metadata"]["providing"],
        json!({"app::default": ">= 0.0.0"})
    );
    assert_eq!(v0["recipes"][0]["name"], "default.rb");
    assert!(v0.get("json_class").is_none() && v0.get("all_files").is_none());
    let (_, v2) = alice.with_api("2", "GET", &url, None).await;
    assert!(v2.get("recipes").is_none(), "{v2}");
    assert_eq!(v2["all_files"][0]["name"], "recipes/default.rb");
    let file_url = v2["all_files"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(
        download(h, &file_url).await,
        (StatusCode::OK, recipe.to_vec())
    );

    // Deleting the only artifact that had the file releases it.
    let (status, body) = alice.delete(&url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["recipes"][0]["path"], "recipes/default.rb");
    assert_eq!(download(h, &file_url).await.0, StatusCode::NOT_FOUND);
    let (status, body) = alice.get(&url).await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({"error": ["not_found"]}))
    );
    assert_eq!(alice.delete(&url).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        alice.get("/organizations/acme/cookbook_artifacts").await.1,
        json!({})
    );
    assert_eq!(
        feed(h).await,
        [
            format!("create /cookbook_artifacts/app/{id}"),
            format!("delete /cookbook_artifacts/app/{id}"),
        ]
    );
}
