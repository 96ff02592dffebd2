//! `chef-syncd`: keeps destination orgs on a replica in step with source orgs on a primary.

use clap::Parser;

/// Replica daemon: follows the primary's change feed and writes into the replica.
#[derive(Debug, Parser)]
#[command(name = "chef-syncd", version)]
struct Cli {
    /// Configuration file (TOML, or chef-sync.rb).
    #[arg(
        long,
        env = "CHEF_SYNC_CONFIG",
        default_value = "/etc/chef-sync/chef-sync.toml"
    )]
    config: std::path::PathBuf,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    eprintln!(
        "chef-syncd: the daemon is not available in this build yet (config {})",
        cli.config.display()
    );
    std::process::ExitCode::from(1)
}
