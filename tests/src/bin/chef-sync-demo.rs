//! `chef-sync-demo`: a working primary → replica replication on this machine, on embedded
//! SQLite, in one command. Starts two chef-sync-server processes on free 127.0.0.1 ports,
//! creates the orgs, prepares them, loads a sample, starts chef-syncd, waits until the replica
//! is synced, prints where everything is, and runs until Ctrl-C.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chef_sync_tests::chef::Chef;
use chef_sync_tests::process::{ChefSyncServer, ctl, syncd};

fn check(out: std::process::Output, what: &str) -> String {
    if !out.status.success() {
        eprintln!(
            "chef-sync-demo: {what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        std::process::exit(1);
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::main]
async fn main() {
    // Installed first, so a SIGTERM at any moment stops the demo and everything it started.
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/chef-sync-demo"));
    if dir.exists()
        && let Err(e) = std::fs::remove_dir_all(&dir)
    {
        eprintln!("chef-sync-demo: cannot clear {}: {e}", dir.display());
        std::process::exit(1);
    }
    let dir = match std::fs::create_dir_all(&dir).and_then(|()| dir.canonicalize()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("chef-sync-demo: cannot create {}: {e}", dir.display());
            std::process::exit(1);
        }
    };
    println!("chef-sync demo in {}", dir.display());
    let primary = ChefSyncServer::start(&dir.join("primary"));
    let replica = ChefSyncServer::start(&dir.join("replica"));
    let keys = dir.join("keys");
    let _ = std::fs::create_dir_all(&keys);
    let admin_key = keys.join("admin.pem");
    primary.admin(&[
        "user-create",
        "admin",
        "Demo",
        "Admin",
        "admin@example.com",
        "--filename",
        admin_key.to_str().unwrap_or_default(),
    ]);
    for (server, name) in [(&primary, "primary"), (&replica, "replica")] {
        let validator = keys.join(format!("{name}-acme-validator.pem"));
        let mut args = vec![
            "org-create",
            "acme",
            "Acme Inc.",
            "--filename",
            validator.to_str().unwrap_or_default(),
        ];
        if name == "primary" {
            args.extend(["--association_user", "admin"]);
        }
        server.admin(&args);
    }
    let state = dir.join("syncd");
    let sync_key = keys.join("ec_sync_user.pem");
    let config = dir.join("chef-sync.toml");
    let text = format!(
        "role = \"replica\"\nmaster = \"{}\"\nreplica = \"{}\"\n\n[[organizations]]\nsource = \"acme\"\ndestination = \"acme\"\n\n[ec_sync_client]\ndir = \"{}\"\nlog_directory = \"{}/log\"\nsocket_path = \"{}/ec_sync.sock\"\nsync_key = \"{}\"\npoll_interval = 2\n",
        primary.url,
        replica.url,
        state.display(),
        state.display(),
        state.display(),
        sync_key.display()
    );
    if let Err(e) = std::fs::write(&config, text) {
        eprintln!("chef-sync-demo: cannot write {}: {e}", config.display());
        std::process::exit(1);
    }
    for (server, replica_flag) in [(&primary, false), (&replica, true)] {
        let pivotal = server.pivotal_key();
        let mut args = vec![
            "prepare-org",
            "acme",
            "--server",
            server.url.as_str(),
            "--superuser-key",
            pivotal.to_str().unwrap_or_default(),
        ];
        if replica_flag {
            args.push("--replica");
        }
        print!("{}", check(ctl(&config, &args), "prepare-org"));
    }
    let admin = Chef::new(
        &format!("{}/organizations/acme", primary.url),
        "admin",
        Chef::key_file(&admin_key),
    );
    chef_sync_tests::sample::load(&admin).await;
    println!(
        "loaded the sample into the primary: roles web and db, environment prod, data bag secrets, cookbook nginx 1.0.0"
    );
    let _daemon = syncd(&config);
    print!(
        "{}",
        check(ctl(&config, &["sync-start", "acme"]), "sync-start")
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = check(ctl(&config, &["sync-status", "--json"]), "sync-status");
        if out.contains("\"status\": \"synced\"") {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("chef-sync-demo: the replica did not reach synced in 2 minutes:\n{out}");
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    println!();
    print!("{}", check(ctl(&config, &["sync-status"]), "sync-status"));
    println!();
    println!(
        "primary   {}/organizations/acme   (user admin, key {})",
        primary.url,
        admin_key.display()
    );
    println!(
        "replica   {}/organizations/acme   (read-only except for ec_sync_user)",
        replica.url
    );
    println!(
        "superuser keys  {} and {}",
        primary.pivotal_key().display(),
        replica.pivotal_key().display()
    );
    println!("sync key        {}", sync_key.display());
    println!("config          {}", config.display());
    println!(
        "try             target/debug/chef-sync-ctl --config {} sync-status",
        config.display()
    );
    println!(
        "                target/debug/chef-sync-ctl --config {} sync-log acme -f",
        config.display()
    );
    println!(
        "Replicating; change objects on the primary and watch them arrive. Ctrl-C stops everything."
    );
    let term = async {
        match terminate.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term => {} }
    // Dropping the process handles stops the daemon and both servers.
    println!("stopping");
}
