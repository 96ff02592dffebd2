//! prepare-org against a Chef 11 style server (no organizations: an admin client named after
//! the sync user carries the sync key), idempotent. The org-style path is covered by the
//! replication and fault suites against chef-sync-server.

#![allow(clippy::unwrap_used)]

use chef_sync_shared::PrivateKey;
use chef_sync_tests::mock_primary::MockPrimary;
use chef_sync_tests::process::ctl;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chef11_style_servers_get_an_admin_client() {
    let dir = tempfile::tempdir().unwrap();
    let superuser = PrivateKey::generate(2048).unwrap();
    let superuser_pem = dir.path().join("admin.pem");
    std::fs::write(&superuser_pem, superuser.to_pkcs1_pem().unwrap()).unwrap();
    let mock = MockPrimary::start(superuser.public_key()).await;
    // goiardi answers 200 with an empty body for paths it does not know.
    mock.edit(|s| {
        s.raw.insert("/organizations/acme".into(), String::new());
    });
    let server = format!("{}/organizations/src", mock.url);
    let sync_key = dir.path().join("keys/sync.pem");
    let no_config = dir.path().join("absent.toml");
    let args = [
        "prepare-org",
        "acme",
        "--server",
        &server,
        "--superuser",
        "admin",
        "--superuser-key",
        superuser_pem.to_str().unwrap(),
        "--sync-key",
        sync_key.to_str().unwrap(),
    ];
    let out = ctl(&no_config, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("created sync key"), "{text}");
    assert!(text.contains("created admin client ec_sync_user"), "{text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sync_key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let key = PrivateKey::from_pem(&std::fs::read_to_string(&sync_key).unwrap()).unwrap();
    let client = mock
        .read(|s| s.objects.get("/clients/ec_sync_user").cloned())
        .unwrap();
    assert_eq!(client["admin"], true);
    assert_eq!(
        chef_sync_shared::PublicKey::from_pem(client["public_key"].as_str().unwrap()).unwrap(),
        key.public_key()
    );
    let again = ctl(&no_config, &args);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));
    // A replica flag needs organizations.
    let mut with_replica = args.to_vec();
    with_replica.push("--replica");
    let out = ctl(&no_config, &with_replica);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be made a replica org"));
    assert_eq!(mock.read(|s| s.bad_signatures), 0);
}
