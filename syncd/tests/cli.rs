//! The binaries' command-line surface: `--help` works and bad usage exits 2.

use std::process::Command;

#[test]
fn both_binaries_answer_help() {
    for (bin, name) in [
        (env!("CARGO_BIN_EXE_chef-syncd"), "chef-syncd"),
        (env!("CARGO_BIN_EXE_chef-sync-ctl"), "chef-sync-ctl"),
    ] {
        let out = Command::new(bin)
            .arg("--help")
            .output()
            .expect("run binary");
        assert!(out.status.success(), "{name}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("--config"), "{name}: {text}");
    }
}

#[test]
fn unknown_flags_are_usage_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_chef-sync-ctl"))
        .arg("--no-such-flag")
        .output()
        .expect("run chef-sync-ctl");
    assert_eq!(out.status.code(), Some(2));
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write config");
    p
}

fn ctl(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chef-sync-ctl"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run chef-sync-ctl")
}

fn replica_config(dir: &std::path::Path) -> std::path::PathBuf {
    write(
        dir,
        "chef-sync.toml",
        &format!(
            "role = \"replica\"\nmaster = \"http://127.0.0.1:9\"\nreplica = \"http://127.0.0.1:9\"\n[[organizations]]\nsource = \"a\"\ndestination = \"b\"\n[ec_sync_client]\ndir = \"{0}/state\"\nlog_directory = \"{0}/log\"\nsocket_path = \"{0}/sock\"\nsync_key = \"{0}/k.pem\"\n",
            dir.display()
        ),
    )
}

#[test]
fn commands_say_where_they_must_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master = write(dir.path(), "master.toml", "role = \"master\"\n");
    let out = ctl(&master, &["sync-start", "b"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("runs on a replica"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_chef-syncd"))
        .arg("--config")
        .arg(&master)
        .output()
        .expect("run chef-syncd");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("role is master"));

    let config = replica_config(dir.path());
    let out = ctl(&config, &["reconfigure"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("chef-syncd is not running"));
    let out = ctl(&config, &["sync-start", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a destination"));
}

#[test]
fn org_flags_and_status_work_without_the_daemon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = replica_config(dir.path());
    let out = ctl(&config, &["sync-start", "b"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("chef-syncd is not running"));
    let out = ctl(&config, &["sync-status", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(rows[0]["organization"], "b");
    assert_eq!(rows[0]["source"], "a");
    assert_eq!(rows[0]["unsynced"], 0);
    for key in [
        "status",
        "last_sync",
        "next_sync",
        "applied_seq",
        "primary_seq",
        "last_error",
    ] {
        assert!(rows[0].get(key).is_some(), "{key}");
    }
    let out = ctl(&config, &["sync-status"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ORGANIZATION"));
    let out = ctl(&config, &["unsynced-objects", "b", "--json"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    let out = ctl(&config, &["sync-stop", "b"]);
    assert!(out.status.success());
    let out = ctl(&config, &["sync-status", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(rows[0]["status"], "stopped");
}

#[test]
fn show_config_prints_the_effective_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rb = write(
        dir.path(),
        "chef-sync.rb",
        "role :replica\nmaster 'https://p.example'\nreplica 'https://r.example'\norganizations [{:source => 'a', :destination => 'b'}]\nec_sync_client['concurrency'] = 3\n",
    );
    let out = ctl(&rb, &["show-config", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(config["role"], "replica");
    assert_eq!(config["master"], serde_json::json!(["https://p.example"]));
    assert_eq!(config["ec_sync_client"]["concurrency"], 3);
    assert_eq!(config["ec_sync_client"]["poll_interval"], 10);
    let out = ctl(&rb, &["show-config"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("concurrency = 3"));
    let bad = write(
        dir.path(),
        "bad.rb",
        "role :replica\nec_sync_client['concurrency'] = 'many'\n",
    );
    let out = ctl(&bad, &["show-config"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.rb:2: ec_sync_client.concurrency"),
        "{err}"
    );
}
