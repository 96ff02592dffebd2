//! chef-sync-server driven by Chef clients nobody here wrote: pythonchef (protocol 1.0) as an
//! org admin and as the validator, and live requests signed by Ruby's mixlib-authentication
//! with protocols 1.0, 1.1 and 1.3.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use chef_sync_tests::peers::{self, pythonchef, repo_root};
use chef_sync_tests::process::ChefSyncServer;
use serde_json::{Value, json};

struct Org {
    _dir: tempfile::TempDir,
    server: ChefSyncServer,
    url: String,
    admin_key: std::path::PathBuf,
    validator_key: std::path::PathBuf,
}

fn org() -> Org {
    let dir = tempfile::tempdir().unwrap();
    let server = ChefSyncServer::start(&dir.path().join("server"));
    let org = server.org_with_admin("acme", "alice");
    Org {
        _dir: dir,
        server,
        url: org.org_url,
        admin_key: org.key,
        validator_key: org.validator_key,
    }
}

#[test]
fn pythonchef_as_org_admin_and_as_validator() {
    if !peers::available() {
        return;
    }
    let org = org();
    let report = pythonchef("crud", &org.url, &org.admin_key, "alice");
    assert_eq!(
        report,
        json!({"ok": ["role", "environment", "data bag", "cookbook"]})
    );
    let v = pythonchef("validator", &org.url, &org.validator_key, "acme-validator");
    assert_eq!(
        v["create client"], 201,
        "the validator registers clients: {v}"
    );
    for write in ["create role", "create data bag", "upload sandbox"] {
        assert_eq!(v[write], 403, "{write}: {v}");
    }
    assert_eq!(v["read role"], 403, "{v}");
    drop(org.server);
}

#[test]
fn mixlib_signed_requests_all_protocols() {
    if !peers::available() {
        return;
    }
    let org = org();
    let out = Command::new("ruby")
        .arg(repo_root().join("tests/interop/mixlib_live.rb"))
        .arg(&org.url)
        .arg(&org.admin_key)
        .arg("alice")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    for v in ["1.0", "1.1", "1.3"] {
        assert_eq!(r[format!("{v} POST")]["status"], 201, "{r}");
        assert_eq!(r[format!("{v} GET")]["status"], 200, "{r}");
        assert_eq!(r[format!("{v} PUT")]["status"], 200, "{r}");
        assert_eq!(r[format!("{v} DELETE")]["status"], 200, "{r}");
    }
    assert_eq!(r["tampered"]["status"], 401);
    assert_eq!(
        r["tampered"]["error"][0],
        "Invalid signature for user or client 'alice'"
    );
    assert_eq!(r["stale"]["status"], 401);
    assert!(
        r["stale"]["error"][0]
            .as_str()
            .unwrap()
            .contains("Synchronize the clock"),
        "{r}"
    );
    assert_eq!(r["unknown user"]["status"], 401);
    assert!(
        r["unknown user"]["error"][0]
            .as_str()
            .unwrap()
            .contains("Ensure that your node_name and client key are correct"),
        "{r}"
    );
    drop(org.server);
}
