//! The two bulk paths between chef-sync servers, on SQLite and PostgreSQL: feed pages with
//! documents (`updated_since?documents=true`) and the bulk write (`POST /_bulk_write`).

#![allow(clippy::unwrap_used)]

#[path = "support/harness.rs"]
mod harness;

use axum::http::StatusCode;
use chef_sync_shared::signing::SigningVersion;
use harness::*;
use serde_json::{Value, json};

on_both_backends!(
    feed_pages_carry_current_documents,
    feed_pages_with_documents_end_at_their_byte_bound,
    bulk_write_applies_each_item_with_its_own_result,
    bulk_write_stores_what_the_object_routes_store,
    bulk_write_of_cookbook_manifests_needs_their_files,
    bulk_write_limits_and_refusals,
    bulk_write_items_see_what_earlier_items_changed,
);

const ORG: &str = "/organizations/acme";

async fn feed(alice: &As<'_>, query: &str) -> Vec<Value> {
    let (status, page) = alice.get(&format!("{ORG}/updated_since?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page.as_array().unwrap().clone()
}

async fn bulk(alice: &As<'_>, items: Value) -> Vec<Value> {
    let (status, reply) = alice
        .post(&format!("{ORG}/_bulk_write"), json!({ "items": items }))
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    reply["results"].as_array().unwrap().clone()
}

async fn last_seq(h: &Harness) -> i64 {
    let org = h.store.org("acme").await.unwrap().unwrap();
    h.store.last_seq(org.id).await.unwrap()
}

async fn feed_pages_carry_current_documents(h: &Harness) {
    let (alice_key, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice_key);
    for (path, body) in [
        ("/roles", json!({"name": "web", "description": "v1"})),
        ("/environments", json!({"name": "prod"})),
        ("/data", json!({"name": "users"})),
        ("/data/users", json!({"id": "alice", "shell": "zsh"})),
        ("/data/users", json!({"id": "gone"})),
    ] {
        let (status, reply) = alice.post(&format!("{ORG}{path}"), body).await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
    }
    let (status, _) = alice
        .put(
            &format!("{ORG}/roles/web"),
            json!({"name": "web", "description": "v2"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = alice.delete(&format!("{ORG}/data/users/gone")).await;
    assert_eq!(status, StatusCode::OK);
    upload_files(h, &alice, &[b"cookbook file"]).await;
    let (status, reply) = alice
        .put(
            &format!("{ORG}/cookbooks/cb/1.0.0"),
            json!({"name": "cb-1.0.0", "cookbook_name": "cb", "version": "1.0.0",
                   "metadata": {"name": "cb", "version": "1.0.0"},
                   "recipes": [{"name": "default.rb", "path": "recipes/default.rb",
                                "checksum": md5_hex(b"cookbook file"), "specificity": "default"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");

    // Without the parameter: entries only, and no header.
    let (status, headers, plain) = h
        .send(signed(
            "alice",
            &alice_key,
            "GET",
            &format!("{ORG}/updated_since?seq=0"),
            b"",
            SigningVersion::V1_1,
            chrono::Utc::now(),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get("x-chef-sync-documents").is_none());
    assert!(
        plain
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e.get("document").is_none())
    );

    let (status, headers, page) = h
        .send(signed(
            "alice",
            &alice_key,
            "GET",
            &format!("{ORG}/updated_since?seq=0&documents=true"),
            b"",
            SigningVersion::V1_1,
            chrono::Utc::now(),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-chef-sync-documents"], "true");
    let page = page.as_array().unwrap();
    let entries: Vec<(String, String)> = page
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // The same entries as without documents.
    let plain_entries: Vec<(String, String)> = plain
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(entries, plain_entries);
    let document_of = |path: &str| -> Vec<Option<Value>> {
        page.iter()
            .filter(|e| e["path"] == path)
            .map(|e| e.get("document").cloned())
            .collect()
    };
    // The role's first entry carries nothing; its last carries the current role.
    let (_, web) = alice.get(&format!("{ORG}/roles/web")).await;
    assert_eq!(document_of("/roles/web"), vec![None, Some(web)]);
    let (_, prod) = alice.get(&format!("{ORG}/environments/prod")).await;
    assert_eq!(document_of("/environments/prod"), vec![Some(prod)]);
    assert_eq!(
        document_of("/data/users/alice"),
        vec![Some(json!({"id": "alice", "shell": "zsh"}))]
    );
    assert_eq!(
        document_of("/data/users")[0].as_ref().unwrap()["name"],
        "users"
    );
    // A delete carries none; a create of an object deleted since carries null.
    assert_eq!(document_of("/data/users/gone"), vec![None, None]);
    // Cookbook manifests are read through their route (it hands out the file URLs).
    assert_eq!(document_of("/cookbooks/cb/1.0.0"), vec![None]);

    // An entry whose object is deleted after it: the document is what is current, null.
    let after = page.last().unwrap()["id"].as_i64().unwrap();
    let (status, _) = alice
        .post(&format!("{ORG}/roles"), json!({"name": "brief"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    alice.delete(&format!("{ORG}/roles/brief")).await;
    let later = feed(&alice, &format!("seq={after}&documents=true&limit=1")).await;
    assert_eq!(later.len(), 1);
    assert_eq!(later[0]["path"], "/roles/brief");
    assert_eq!(later[0]["document"], Value::Null);
    assert!(later[0].as_object().unwrap().contains_key("document"));

    let (status, reply) = alice
        .get(&format!("{ORG}/updated_since?seq=0&documents=yes"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(reply["error"][0].as_str().unwrap().contains("documents"));
}

async fn feed_pages_with_documents_end_at_their_byte_bound(h: &Harness) {
    let (alice_key, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice_key);
    alice
        .post(&format!("{ORG}/data"), json!({"name": "big"}))
        .await;
    // 100 items of 90 kB (Chef's item limit is 100 kB): 46 fit a page's 4 MiB of documents.
    let blob = "x".repeat(90_000);
    for i in 0..100 {
        let (status, reply) = alice
            .post(
                &format!("{ORG}/data/big"),
                json!({"id": format!("i{i}"), "blob": blob}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
    }
    let mut after = 0;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = feed(&alice, &format!("seq={after}&documents=true")).await;
        if page.is_empty() {
            break;
        }
        pages += 1;
        let bytes: usize = page
            .iter()
            .filter_map(|e| e.get("document"))
            .map(|d| d.to_string().len())
            .sum();
        assert!(
            page.len() == 1 || bytes <= chef_sync_server::store::MAX_PAGE_DOCUMENT_BYTES,
            "{bytes} bytes of documents on one page"
        );
        for e in &page {
            let id = e["id"].as_i64().unwrap();
            assert_eq!(id, after + 1, "no entry skipped");
            after = id;
            if e["path"] != "/data/big" {
                assert_eq!(e["document"]["blob"].as_str().unwrap().len(), blob.len());
            }
            seen.push(e["path"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(seen.len(), 101);
    assert!(
        pages >= 3,
        "the pages ended at their byte bound ({pages} pages)"
    );
}

async fn bulk_write_applies_each_item_with_its_own_result(h: &Harness) {
    let (alice_key, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice_key);
    alice
        .post(&format!("{ORG}/roles"), json!({"name": "old"}))
        .await;
    let before = last_seq(h).await;
    let items = json!([
        {"action": "write", "path": "/data/users", "document": {"name": "users"}},
        {"action": "write", "path": "/data/users/alice", "document": {"id": "alice", "uid": 1}},
        {"action": "write", "path": "/roles/web", "document": {"name": "web", "run_list": ["recipe[nginx]"]}},
        {"action": "write", "path": "/roles/bad", "document": {"name": "other"}},
        {"action": "write", "path": "/data/nobag/i", "document": {"id": "i"}},
        {"action": "write", "path": "/environments/prod", "document": {"name": "prod", "cookbook_versions": {"nginx": "= 1.0.0"}}},
        {"action": "delete", "path": "/roles/old"},
        {"action": "delete", "path": "/roles/never"},
        {"action": "write", "path": "/environments/_default", "document": {"name": "_default"}},
        {"action": "write", "path": "/policies/app", "document": {}},
        {"action": "write", "path": "/roles/../x", "document": {}},
    ]);
    let results = bulk(&alice, items.clone()).await;
    let outcome = |i: usize| {
        (
            results[i]["path"].as_str().unwrap().to_owned(),
            results[i]["status"].as_u64().unwrap(),
            results[i]["outcome"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(outcome(0), ("/data/users".into(), 201, "created".into()));
    assert_eq!(
        outcome(1),
        ("/data/users/alice".into(), 201, "created".into())
    );
    assert_eq!(outcome(2), ("/roles/web".into(), 201, "created".into()));
    assert_eq!(outcome(3), ("/roles/bad".into(), 400, "failed".into()));
    assert_eq!(results[3]["error"][0], "Role name mismatch.");
    assert_eq!(outcome(4), ("/data/nobag/i".into(), 404, "failed".into()));
    assert!(
        results[4]["error"][0]
            .as_str()
            .unwrap()
            .contains("No data bag 'nobag'")
    );
    assert_eq!(
        outcome(5),
        ("/environments/prod".into(), 201, "created".into())
    );
    assert_eq!(outcome(6), ("/roles/old".into(), 200, "deleted".into()));
    assert_eq!(outcome(7), ("/roles/never".into(), 200, "absent".into()));
    assert_eq!(outcome(8).1, 405);
    assert_eq!(outcome(9).1, 400);
    assert_eq!(outcome(10).1, 400);

    // What was applied is there; what failed is not.
    let (status, web) = alice.get(&format!("{ORG}/roles/web")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(web["run_list"], json!(["recipe[nginx]"]));
    assert_eq!(
        alice.get(&format!("{ORG}/roles/bad")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        alice.get(&format!("{ORG}/roles/old")).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, item) = alice.get(&format!("{ORG}/data/users/alice")).await;
    assert_eq!(item["uid"], 1);
    // Searchable at once, as after a per-object write.
    let (_, found) = alice.get(&format!("{ORG}/search/role?q=name:web")).await;
    assert_eq!(found["total"], 1, "{found}");

    // One feed entry per applied write, in item order.
    let entries = feed(&alice, &format!("seq={before}")).await;
    let logged: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        logged,
        [
            ("create", "/data/users"),
            ("create", "/data/users/alice"),
            ("create", "/roles/web"),
            ("create", "/environments/prod"),
            ("delete", "/roles/old"),
        ]
    );

    // The same batch again changes nothing and logs nothing.
    let seq = last_seq(h).await;
    let again = bulk(&alice, items).await;
    assert_eq!(again[0]["outcome"], "unchanged");
    assert_eq!(again[2]["outcome"], "unchanged");
    assert_eq!(again[6]["outcome"], "absent");
    assert_eq!(last_seq(h).await, seq);

    // An update is an update; a bag delete takes its items with it, each logged.
    let results = bulk(
        &alice,
        json!([
            {"action": "write", "path": "/roles/web", "document": {"name": "web", "description": "new"}},
            {"action": "delete", "path": "/data/users"},
        ]),
    )
    .await;
    assert_eq!(results[0]["outcome"], "updated");
    assert_eq!(results[1]["outcome"], "deleted");
    let tail: Vec<String> = feed(&alice, &format!("seq={seq}"))
        .await
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["path"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        tail,
        [
            "update /roles/web",
            "delete /data/users/alice",
            "delete /data/users"
        ]
    );
}

async fn bulk_write_stores_what_the_object_routes_store(h: &Harness) {
    let (alice_key, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice_key);
    let role = |name: &str| {
        json!({"name": name, "run_list": ["role[base]", "nginx"],
               "env_run_lists": {"prod": ["recipe[a::b]"]}, "default_attributes": {"a": {"b": 1}}})
    };
    let env = |name: &str| json!({"name": name, "cookbook_versions": {"x": "~> 1.2"}});
    alice.post(&format!("{ORG}/roles"), role("by-route")).await;
    alice
        .post(&format!("{ORG}/environments"), env("by-route"))
        .await;
    alice
        .post(&format!("{ORG}/data"), json!({"name": "b"}))
        .await;
    alice
        .post(
            &format!("{ORG}/data/b"),
            json!({"id": "by-route", "k": [1, 2]}),
        )
        .await;
    let results = bulk(
        &alice,
        json!([
            {"action": "write", "path": "/roles/by-bulk", "document": role("by-bulk")},
            {"action": "write", "path": "/environments/by-bulk", "document": env("by-bulk")},
            {"action": "write", "path": "/data/b/by-bulk", "document": {"id": "by-bulk", "k": [1, 2]}},
        ]),
    )
    .await;
    assert!(
        results.iter().all(|r| r["outcome"] == "created"),
        "{results:?}"
    );
    for collection in ["roles", "environments", "data/b"] {
        let (_, by_route) = alice.get(&format!("{ORG}/{collection}/by-route")).await;
        let (_, by_bulk) = alice.get(&format!("{ORG}/{collection}/by-bulk")).await;
        let renamed = by_route.to_string().replace("by-route", "by-bulk");
        assert_eq!(by_bulk.to_string(), renamed, "{collection}");
    }
    // What the route stored, written again in bulk, is unchanged (no feed entry).
    let (_, stored) = alice.get(&format!("{ORG}/roles/by-route")).await;
    let seq = last_seq(h).await;
    let results = bulk(
        &alice,
        json!([{"action": "write", "path": "/roles/by-route", "document": stored}]),
    )
    .await;
    assert_eq!(results[0]["outcome"], "unchanged");
    assert_eq!(last_seq(h).await, seq);
}

async fn bulk_write_of_cookbook_manifests_needs_their_files(h: &Harness) {
    let (alice_key, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice_key);
    upload_files(h, &alice, &[b"uploaded"]).await;
    let manifest = |version: &str, checksum: String| {
        json!({"name": format!("cb-{version}"), "cookbook_name": "cb", "version": version,
               "metadata": {"name": "cb", "version": version},
               "recipes": [{"name": "default.rb", "path": "recipes/default.rb",
                            "checksum": checksum, "specificity": "default"}]})
    };
    let seq = last_seq(h).await;
    let results = bulk(
        &alice,
        json!([
            {"action": "write", "path": "/cookbooks/cb/1.0.0", "document": manifest("1.0.0", md5_hex(b"uploaded"))},
            {"action": "write", "path": "/cookbooks/cb/2.0.0", "document": manifest("2.0.0", md5_hex(b"never uploaded"))},
            {"action": "write", "path": "/cookbooks/cb/3", "document": manifest("3", md5_hex(b"uploaded"))},
        ]),
    )
    .await;
    assert_eq!(results[0]["outcome"], "created", "{results:?}");
    assert_eq!(results[1]["status"], 400, "{results:?}");
    assert_eq!(results[2]["outcome"], "created", "{results:?}");
    assert_eq!(results[2]["path"], "/cookbooks/cb/3");
    assert_eq!(
        alice.get(&format!("{ORG}/cookbooks/cb/2.0.0")).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, cb) = alice.get(&format!("{ORG}/cookbooks/cb/3.0.0")).await;
    assert_eq!(status, StatusCode::OK, "{cb}");
    let logged: Vec<String> = feed(&alice, &format!("seq={seq}"))
        .await
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(logged, ["/cookbooks/cb/1.0.0", "/cookbooks/cb/3.0.0"]);
    // The refused version left no reference behind: deleting the others releases the file.
    let results = bulk(
        &alice,
        json!([
            {"action": "delete", "path": "/cookbooks/cb/1.0.0"},
            {"action": "delete", "path": "/cookbooks/cb/3.0.0"},
        ]),
    )
    .await;
    assert!(
        results.iter().all(|r| r["outcome"] == "deleted"),
        "{results:?}"
    );
    let (_, sandbox) = alice
        .post(
            &format!("{ORG}/sandboxes"),
            json!({"checksums": {md5_hex(b"uploaded"): null}}),
        )
        .await;
    assert_eq!(
        sandbox["checksums"][md5_hex(b"uploaded")]["needs_upload"],
        true,
        "{sandbox}"
    );
}

async fn bulk_write_limits_and_refusals(h: &Harness) {
    let (alice_key, bob_key) = org_with_users(h).await;
    let alice = h.actor("alice", &alice_key);
    let seq = last_seq(h).await;
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"action": "write", "path": format!("/roles/r{i}"), "document": {"name": format!("r{i}")}}))
        .collect();
    let (status, reply) = alice
        .post(&format!("{ORG}/_bulk_write"), json!({ "items": many }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(reply["error"][0].as_str().unwrap().contains("at most 1000"));
    for bad in [
        json!({}),
        json!({"items": {}}),
        json!({"items": [], "extra": 1}),
        json!({"items": [{"action": "write", "path": "/roles/a", "document": {}, "x": 1}]}),
        json!([1]),
    ] {
        let (status, reply) = alice.post(&format!("{ORG}/_bulk_write"), bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {reply}");
        assert!(reply["error"].is_array(), "{reply}");
    }
    let results = bulk(
        &alice,
        json!([
            {"action": "delete", "path": "/roles/a", "document": {"name": "a"}},
            {"action": "write", "path": "/roles/a"},
            {"action": "explode", "path": "/roles/a"},
            {"action": "write", "path": "/roles/a", "document": [1]},
        ]),
    )
    .await;
    assert!(results.iter().all(|r| r["status"] == 400), "{results:?}");
    assert_eq!(last_seq(h).await, seq, "nothing written");
    // A member who only reads may not write in bulk either; nor may another org's admin.
    reader_only(h, "acme", "bob").await;
    let (status, _) = h
        .call(
            "bob",
            &bob_key,
            "POST",
            &format!("{ORG}/_bulk_write"),
            Some(json!({"items": []})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h
        .call(
            "alice",
            &alice_key,
            "POST",
            "/organizations/other/_bulk_write",
            Some(json!({"items": []})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(last_seq(h).await, seq);
}

/// A batch reads what is stored once, ahead of its items: an item still sees what the items
/// before it wrote and deleted (a bag deleted mid-batch takes its items, and an item of it
/// written afterwards has no bag).
async fn bulk_write_items_see_what_earlier_items_changed(h: &Harness) {
    let (alice_key, _) = org_with_users(h).await;
    let alice = h.actor("alice", &alice_key);
    alice
        .post(&format!("{ORG}/data"), json!({"name": "keep"}))
        .await;
    alice
        .post(&format!("{ORG}/data/keep"), json!({"id": "a", "v": 0}))
        .await;
    let before = last_seq(h).await;
    let results = bulk(
        &alice,
        json!([
            {"action": "write", "path": "/data/keep/a", "document": {"id": "a", "v": 1}},
            {"action": "write", "path": "/data/keep/a", "document": {"id": "a", "v": 2}},
            {"action": "write", "path": "/data/keep/a", "document": {"id": "a", "v": 2}},
            {"action": "write", "path": "/data/temp", "document": {"name": "temp"}},
            {"action": "write", "path": "/data/temp/x", "document": {"id": "x"}},
            {"action": "delete", "path": "/data/temp"},
            {"action": "write", "path": "/data/temp/y", "document": {"id": "y"}},
            {"action": "delete", "path": "/data/temp/x"},
            {"action": "write", "path": "/data/temp", "document": {"name": "temp"}},
            {"action": "write", "path": "/data/temp/x", "document": {"id": "x", "again": true}},
        ]),
    )
    .await;
    let outcomes: Vec<&str> = results
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "updated",
            "updated",
            "unchanged",
            "created",
            "created",
            "deleted",
            "failed",
            "absent",
            "created",
            "created"
        ]
    );
    assert_eq!(results[6]["status"], 404);
    let (_, item) = alice.get(&format!("{ORG}/data/keep/a")).await;
    assert_eq!(item["v"], 2);
    let (_, item) = alice.get(&format!("{ORG}/data/temp/x")).await;
    assert_eq!(item["again"], true);
    // Entry ids stay contiguous around the refused item.
    let entries = feed(&alice, &format!("seq={before}")).await;
    let seqs: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    let expected: Vec<i64> = (before + 1..=before + 8).collect();
    assert_eq!(seqs, expected, "{entries:?}");
    assert_eq!(last_seq(h).await, before + 8);
    let (_, found) = alice.get(&format!("{ORG}/search/temp?q=*:*")).await;
    assert_eq!(found["total"], 1, "{found}");
    // The index holds each document's last body only.
    for (query, total) in [("v:2", 1), ("v:1", 0), ("v:0", 0), ("id:a", 1)] {
        let (_, found) = alice.get(&format!("{ORG}/search/keep?q={query}")).await;
        assert_eq!(found["total"], total, "{query}: {found}");
    }
    let (_, found) = alice.get(&format!("{ORG}/search/temp?q=again:true")).await;
    assert_eq!(found["total"], 1, "{found}");
}
