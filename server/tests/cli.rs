//! The binary's command-line surface: `--help` works and bad usage exits 2 with one line.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_chef-sync-server");

#[test]
fn help_lists_the_subcommands() {
    let out = Command::new(BIN)
        .arg("--help")
        .output()
        .expect("run chef-sync-server");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("serve") && text.contains("migrate"), "{text}");
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let out = Command::new(BIN)
        .arg("frobnicate")
        .output()
        .expect("run chef-sync-server");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
}
