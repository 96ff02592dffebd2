//! The real Chef Infra Client 16.12.3 and its knife, set up by
//! `../shared/peers/chef-client/setup.sh` into `/tmp/chef-client` (`CHEF_CLIENT_ROOT`), for
//! tests that converge a node against chef-sync-server.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::Peer;

/// `../shared/peers/chef-client` beside the repository.
pub fn peer_dir() -> PathBuf {
    crate::peers::repo_root().join("../shared/peers/chef-client")
}

fn root() -> PathBuf {
    std::env::var_os("CHEF_CLIENT_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/chef-client"))
}

/// True when chef-client and knife are set up; in CI their absence fails the test, elsewhere
/// it prints SKIPPED.
pub fn available() -> bool {
    Peer {
        name: "Chef Infra Client 16.12.3 (chef-client, knife)",
        install_hint: "run `../shared/peers/chef-client/setup.sh` as root",
    }
    .require(Command::new(root().join("bin/chef-client")).arg("--version"))
}

/// Writes `DIR/knife.rb` for `user` with `key` against `org_url`, cookbooks from `repo`.
pub fn knife_config(dir: &Path, org_url: &str, user: &str, key: &Path, repo: &Path) -> PathBuf {
    let config = dir.join("knife.rb");
    let text = format!(
        "chef_server_url \"{org_url}\"\nnode_name \"{user}\"\nclient_key \"{}\"\n\
         cookbook_path [\"{}\"]\ncache_path \"{}\"\nsyntax_check_cache_path \"{}\"\n",
        key.display(),
        repo.display(),
        dir.join("cache").display(),
        dir.join("syntax").display(),
    );
    std::fs::write(&config, text).expect("write knife.rb");
    config
}

/// `knife ARGS -c CONFIG`, which must succeed.
pub fn knife(config: &Path, args: &[&str]) -> String {
    // Bounded, so a hung knife fails the test instead of holding CI.
    let out = Command::new("timeout")
        .args(["-k", "10", "180"])
        .arg(root().join("bin/knife"))
        .args(args)
        .arg("-c")
        .arg(config)
        .output()
        .expect("run knife");
    assert!(
        out.status.success(),
        "knife {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One chef-client run through the peer's `run-client.sh URL ARGS` (it writes its client.rb,
/// registers through the validator when asked, converges, saves the node).
pub fn converge(org_url: &str, args: &[&str]) -> Output {
    // Bounded as knife is; `timeout` ends the script and the chef-client it started.
    Command::new("timeout")
        .args(["-k", "10", "300"])
        .arg(peer_dir().join("run-client.sh"))
        .arg(org_url)
        .args(args)
        .output()
        .expect("run chef-client")
}
