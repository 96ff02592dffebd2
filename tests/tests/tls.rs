//! Chef servers on this host reached over TLS with a self-signed certificate made out to another
//! name, as Chef Infra Server answers on `https://127.0.0.1`: chef-sync-ctl prepares orgs there
//! and chef-syncd replicates from `https://localhost:PORT` into `https://127.0.0.1:PORT`, as the
//! original chef-sync's `replica "https://127.0.0.1"` needs. TLS is terminated by socat in front
//! of real chef-sync-servers. (Servers elsewhere are verified; `tls_trust` unit-tests which
//! URLs count as this host.) Documents only: socat cannot tell the server its scheme
//! (`X-Forwarded-Proto`), so the file URLs it hands out would say http.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chef_sync_tests::chef::{Chef, converge};
use chef_sync_tests::process::{ChefSyncServer, Process, ctl, free_port, syncd};
use serde_json::json;

/// A self-signed certificate for `chef.example.com` and its key, made with openssl.
fn certificate(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=chef.example.com", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert.display().to_string(), key.display().to_string())
}

/// socat terminating TLS on a free port of 127.0.0.1 in front of `server`; the port.
fn tls_front(server: &ChefSyncServer, cert: &(String, String)) -> (Process, u16) {
    let port = free_port();
    let target = server.url.trim_start_matches("http://");
    let mut command = Command::new("socat");
    command.args([
        &format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
            cert.0, cert.1
        ),
        &format!("TCP:{target}"),
    ]);
    let process = Process::spawn(command);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "socat did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    (process, port)
}

#[test]
fn servers_on_this_host_are_reached_over_tls_with_their_own_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let cert = certificate(dir.path());
    let primary = ChefSyncServer::start(&dir.path().join("primary"));
    let replica = ChefSyncServer::start(&dir.path().join("replica"));
    let alice = primary.org_with_admin("acme", "alice");
    replica.admin(&[
        "org-create",
        "acme",
        "Acme",
        "--filename",
        &dir.path().join("validator.pem").to_string_lossy(),
    ]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        alice
            .chef
            .must(
                "POST",
                "/roles",
                json!({"name": "web", "run_list": ["recipe[nginx]"]}),
                201,
            )
            .await;
        alice
            .chef
            .must("POST", "/environments", json!({"name": "prod"}), 201)
            .await;
        alice
            .chef
            .must("POST", "/data", json!({"name": "bag"}), 201)
            .await;
        alice
            .chef
            .must("POST", "/data/bag", json!({"id": "item", "x": 1}), 201)
            .await;
    });
    let (_primary_tls, primary_port) = tls_front(&primary, &cert);
    let (_replica_tls, replica_port) = tls_front(&replica, &cert);
    let master = format!("https://localhost:{primary_port}");
    let replica_url = format!("https://127.0.0.1:{replica_port}");

    let d = dir.path().display();
    let config = dir.path().join("chef-sync.toml");
    std::fs::write(
        &config,
        format!(
            "role = \"replica\"\nmaster = \"{master}\"\nreplica = \"{replica_url}\"\n\
             [[organizations]]\nsource = \"acme\"\ndestination = \"acme\"\n\
             [ec_sync_client]\ndir = \"{d}/state\"\nsocket_path = \"{d}/sock\"\n\
             log_directory = \"{d}/log\"\nsync_key = \"{d}/sync.pem\"\n"
        ),
    )
    .unwrap();
    // prepare-org through the TLS fronts, both sides.
    for (url, pivotal, replica_flag) in [
        (&master, primary.pivotal_key(), None),
        (&replica_url, replica.pivotal_key(), Some("--replica")),
    ] {
        let pivotal = pivotal.display().to_string();
        let mut args = vec![
            "prepare-org",
            "acme",
            "--server",
            url,
            "--superuser-key",
            &pivotal,
        ];
        args.extend(replica_flag);
        let out = ctl(&config, &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut daemon = syncd(&config);
    let out = ctl(&config, &["sync-start", "acme", "--wait"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        daemon.output()
    );
    let sync_key = Chef::key_file(&dir.path().join("sync.pem"));
    let from = Chef::new(
        &format!("{}/organizations/acme", primary.url),
        "ec_sync_user",
        sync_key.clone(),
    );
    let to = Chef::new(
        &format!("{}/organizations/acme", replica.url),
        "ec_sync_user",
        sync_key,
    );
    runtime.block_on(converge(
        &from,
        &to,
        "replica behind TLS",
        Duration::from_secs(30),
        String::new,
    ));
    let status = ctl(&config, &["sync-status", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(rows[0]["status"], "synced", "{rows}");
    assert_eq!(rows[0]["last_error"], serde_json::Value::Null, "{rows}");
}
