//! A real chef-client (16.12.3, Ruby) converging against a replica: everything it reads was
//! put on the primary with knife and copied by chef-syncd; it registers with the replica
//! org's validator, resolves a cookbook with a dependency, renders a template from a role
//! attribute, a data bag item and a search, and saves its node on the replica. A second run,
//! after a role and cookbook change on the primary has been replicated, picks them up.
//! Signing 1.1 (the client's default) on the first run, 1.3 on the second.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use chef_sync_tests::chef_client::{self, converge, knife, knife_config};
use chef_sync_tests::process::ChefSyncServer;
use chef_sync_tests::replica::{Replication, Tuning};
use serde_json::json;

/// The `app` cookbook at `version` (depending on `base`) and `base`, under `repo`.
fn write_cookbooks(repo: &Path, version: &str, banner: &str) {
    let app = repo.join("app");
    std::fs::create_dir_all(app.join("recipes")).unwrap();
    std::fs::create_dir_all(app.join("templates")).unwrap();
    std::fs::write(
        app.join("metadata.rb"),
        format!("name 'app'\nversion '{version}'\ndepends 'base', '>= 1.0'\n"),
    )
    .unwrap();
    std::fs::write(
        app.join("recipes/default.rb"),
        "include_recipe 'base'\n\
         bag = data_bag_item('config', 'main')\n\
         roles = search(:role, 'name:web').map(&:name)\n\
         template ::File.join(node['app']['dir'], 'app.conf') do\n\
           source 'app.conf.erb'\n\
           variables(message: bag['message'], roles: roles.join(','))\n\
         end\n",
    )
    .unwrap();
    std::fs::write(
        app.join("templates/app.conf.erb"),
        format!("{banner}\ngreeting=<%= node['app']['greeting'] %>\nmessage=<%= @message %>\nroles=<%= @roles %>\n"),
    )
    .unwrap();
    let base = repo.join("base");
    std::fs::create_dir_all(base.join("recipes")).unwrap();
    std::fs::write(base.join("metadata.rb"), "name 'base'\nversion '1.0.0'\n").unwrap();
    std::fs::write(
        base.join("recipes/default.rb"),
        "file ::File.join(node['app']['dir'], 'base.txt') do\n  content 'base'\nend\n",
    )
    .unwrap();
}

fn role_file(dir: &Path, out: &Path, greeting: &str) -> String {
    let role = json!({
        "name": "web", "json_class": "Chef::Role", "chef_type": "role",
        "run_list": ["recipe[app]"],
        "default_attributes": {"app": {"greeting": greeting, "dir": out.display().to_string()}},
    });
    let path = dir.join("web.json");
    std::fs::write(&path, role.to_string()).unwrap();
    path.display().to_string()
}

fn succeeded(out: &std::process::Output, what: &str) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}: exit {:?}\n{text}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_converges_against_a_replica_with_what_chef_syncd_copied() {
    if !chef_client::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (repo, out, knife_dir) = (
        dir.path().join("repo"),
        dir.path().join("out"),
        dir.path().join("knife"),
    );
    for d in [&repo, &out, &knife_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    let primary = ChefSyncServer::start(&dir.path().join("primary"));
    let org = primary.org_with_admin("acme", "alice");
    let config = knife_config(&knife_dir, &org.org_url, "alice", &org.key, &repo);

    // The primary, as an operator fills it with knife.
    write_cookbooks(&repo, "1.0.0", "# v1");
    let item = dir.path().join("main.json");
    std::fs::write(
        &item,
        json!({"id": "main", "message": "from the bag"}).to_string(),
    )
    .unwrap();
    let role = role_file(dir.path(), &out, "hello v1");
    for args in [
        &["cookbook", "upload", "base", "app"][..],
        &["role", "from", "file", &role],
        &["data", "bag", "create", "config"],
        &[
            "data",
            "bag",
            "from",
            "file",
            "config",
            item.to_str().unwrap(),
        ],
    ] {
        knife(&config, args);
    }

    // chef-syncd copies it into the replica's org.
    let replication = Replication::start_orgs(
        dir.path(),
        &[&primary],
        &["acme".to_owned()],
        Tuning::default(),
        "nodes",
        None,
    )
    .await;
    replication
        .converge(&org.chef, "acme", "knife uploads")
        .await;
    let replica_org = format!("{}/organizations/acme", replication.replica.url);
    let superuser = replication.replica_admin("acme");
    let validator = superuser
        .must(
            "POST",
            "/clients",
            json!({"name": "site-validator", "validator": true, "create_key": true}),
            201,
        )
        .await;
    let validator_key = dir.path().join("site-validator.pem");
    let private = validator["chef_key"]["private_key"]
        .as_str()
        .or(validator["private_key"].as_str())
        .unwrap();
    std::fs::write(&validator_key, private).unwrap();

    // First run: registers with the replica org's validator, signing 1.1.
    let work = dir.path().join("node-a");
    let first = converge(
        &replica_org,
        &[
            "-V",
            "site-validator",
            "-v",
            validator_key.to_str().unwrap(),
            "-n",
            "node-a",
            "-r",
            "role[web]",
            "-w",
            work.to_str().unwrap(),
        ],
    );
    succeeded(&first, "first chef-client run");
    let rendered = std::fs::read_to_string(out.join("app.conf")).unwrap();
    assert_eq!(
        rendered,
        "# v1\ngreeting=hello v1\nmessage=from the bag\nroles=web\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("base.txt")).unwrap(),
        "base"
    );
    // The node is saved on the replica (not on the primary) with the run's recipes and roles,
    // and found by search there.
    let node = superuser.get("/nodes/node-a").await;
    assert_eq!(node["run_list"], json!(["role[web]"]));
    assert_eq!(node["automatic"]["roles"], json!(["web"]));
    let recipes = node["automatic"]["recipes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        recipes.contains(&json!("app")) && recipes.contains(&json!("base::default")),
        "{recipes:?}"
    );
    let found = superuser
        .get("/search/node?q=recipes:app%20AND%20role:web")
        .await;
    assert_eq!(found["total"], 1, "{found}");
    let (status, _) = org.chef.call("GET", "/nodes/node-a", None).await;
    assert_eq!(status, 404, "nodes stay on the server they were saved on");

    // A role and cookbook change on the primary reaches the replica…
    write_cookbooks(&repo, "1.1.0", "# v2");
    let role = role_file(dir.path(), &out, "hello v2");
    knife(&config, &["cookbook", "upload", "app"]);
    knife(&config, &["role", "from", "file", &role]);
    replication
        .converge(&org.chef, "acme", "second upload")
        .await;

    // …and the next run (with its own client key now, signing 1.3) picks it up.
    let clients_before = superuser.get("/clients").await;
    let second = converge(
        &replica_org,
        &[
            "-n",
            "node-a",
            "-r",
            "role[web]",
            "-w",
            work.to_str().unwrap(),
            "-p",
            "1.3",
        ],
    );
    succeeded(&second, "second chef-client run");
    let clients_after = superuser.get("/clients").await;
    assert_eq!(clients_after, clients_before, "no second registration");
    let rendered = std::fs::read_to_string(out.join("app.conf")).unwrap();
    assert_eq!(
        rendered,
        "# v2\ngreeting=hello v2\nmessage=from the bag\nroles=web\n"
    );
    let node = superuser.get("/nodes/node-a").await;
    assert_eq!(
        node["automatic"]["cookbooks"]["app"]["version"], "1.1.0",
        "{}",
        node["automatic"]["cookbooks"]
    );
}
