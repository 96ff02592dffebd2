//! The README's first command: `scripts/demo` builds and runs `chef-sync-demo`. This runs the
//! demo program itself and checks it reaches a synced replica, then stops it.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use chef_sync_tests::process::{Process, bin};

#[test]
fn the_demo_reaches_a_synced_replica_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // The demo prints to stdout; route it to stderr so the harness can read it.
    let mut command = Command::new("sh");
    command.args([
        "-c",
        &format!(
            "exec {} {} 1>&2",
            bin("chef-sync-demo").display(),
            dir.path().join("demo").display()
        ),
    ]);
    let mut demo = Process::spawn(command);
    demo.wait_for_line("Replicating;", Duration::from_secs(180));
    let output = demo.output();
    assert!(output.contains("acme          acme    synced"), "{output}");
    assert!(output.contains("is now a replica org"), "{output}");
    let status = demo.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    std::thread::sleep(Duration::from_millis(500));
    let config = dir.path().join("demo/chef-sync.toml");
    assert!(config.exists());
    // Everything it started is gone: the control socket no longer answers.
    let out = Command::new(bin("chef-sync-ctl"))
        .args(["--config", config.to_str().unwrap(), "reconfigure"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
}
