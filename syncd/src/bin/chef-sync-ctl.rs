//! `chef-sync-ctl`: operator commands for chef-syncd.

use clap::Parser;

/// Operator CLI for chef-syncd.
#[derive(Debug, Parser)]
#[command(name = "chef-sync-ctl", version)]
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
        "chef-sync-ctl: no commands are available in this build yet (config {})",
        cli.config.display()
    );
    std::process::ExitCode::from(1)
}
