//! A small, fixed sample of every replicated object type: two roles, an environment, a data
//! bag with two items (one encrypted-style), and a frozen cookbook with three files.

use serde_json::json;

use crate::chef::Chef;

/// Creates the sample in the org `chef` points at.
pub async fn load(chef: &Chef) {
    chef.must(
        "POST",
        "/roles",
        json!({"name": "web", "run_list": ["recipe[nginx]"], "env_run_lists": {"prod": ["recipe[nginx::prod]"]}}),
        201,
    )
    .await;
    chef.must(
        "POST",
        "/roles",
        json!({"name": "db", "default_attributes": {"pg": {"version": 15}}}),
        201,
    )
    .await;
    chef.must(
        "POST",
        "/environments",
        json!({"name": "prod", "cookbook_versions": {"nginx": "~> 1.0"}}),
        201,
    )
    .await;
    chef.must("POST", "/data", json!({"name": "secrets"}), 201)
        .await;
    chef.must(
        "POST",
        "/data/secrets",
        json!({"id": "db", "password": {"encrypted_data": "x", "iv": "y", "version": 3, "cipher": "aes-256-gcm"}}),
        201,
    )
    .await;
    chef.must(
        "POST",
        "/data/secrets",
        json!({"id": "api", "token": "t"}),
        201,
    )
    .await;
    chef.upload_cookbook(
        "nginx",
        "1.0.0",
        &[
            ("recipes/default.rb", b"package 'nginx'\n"),
            ("templates/default/nginx.conf.erb", b"worker_processes 4;\n"),
            ("README.md", b"# nginx\n"),
        ],
        true,
    )
    .await;
}
