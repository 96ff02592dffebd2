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
