//! `chef-sync-server`: the Chef-API server that plays primary and replica.
//!
//! Only the command-line surface exists so far; the server itself is built under issue #3.

use clap::{Parser, Subcommand};

/// Chef-API-compatible server for roles, environments, data bags and cookbooks, with the
/// `updated_since` change feed that chef-syncd follows.
#[derive(Debug, Parser)]
#[command(name = "chef-sync-server", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let name = match cli.command {
        Command::Serve => "serve",
        Command::Migrate => "migrate",
    };
    eprintln!("chef-sync-server: '{name}' is not available in this build yet");
    std::process::ExitCode::from(1)
}
