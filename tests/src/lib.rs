//! Test harness shared by the end-to-end suites.
//!
//! External peers (Ruby's mixlib-authentication, later goiardi and pythonchef) are optional on a
//! developer's machine but mandatory in CI: [`Peer::require`] turns their absence into a visible
//! skip locally and a test failure when the `CI` environment variable is set.

#![allow(clippy::unwrap_used)]

pub mod bench;
pub mod chef;
pub mod chef_client;
pub mod fault_proxy;
pub mod mixlib;
pub mod mock_primary;
pub mod peers;
pub mod postgres;
pub mod process;
pub mod replica;
pub mod sample;
pub mod systemd;

use std::process::Command;

/// True when running under CI (`CI` set to anything but empty, `0` or `false`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// An external program a test needs.
#[derive(Debug)]
pub struct Peer {
    /// What it is, for messages.
    pub name: &'static str,
    /// How to install it.
    pub install_hint: &'static str,
}

impl Peer {
    /// Runs `probe`; `true` if the peer is usable. When it is not: panics under CI, otherwise
    /// prints a visible SKIPPED line to stderr and returns `false`.
    pub fn require(&self, probe: &mut Command) -> bool {
        let ok = probe.output().is_ok_and(|o| o.status.success());
        if ok {
            return true;
        }
        if in_ci() {
            panic!(
                "{} is required in CI but is not usable; {}",
                self.name, self.install_hint
            );
        }
        eprintln!(
            "SKIPPED: {} is not installed here, so this test did not run ({}; under CI=true it is mandatory)",
            self.name, self.install_hint
        );
        false
    }
}
