//! A replica server with chef-syncd following a primary's orgs (same names on both sides), for
//! end-to-end tests and benchmarks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::chef::Chef;
use crate::process::{ChefSyncServer, Process, ctl, syncd_logging};

/// How the daemon is set up.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// Objects in flight per org.
    pub concurrency: usize,
    /// Long-poll the primary's feed (else poll every second).
    pub long_poll: bool,
    /// `RUST_LOG` for the replica server and chef-syncd instead of the harness's own filter.
    pub rust_log: Option<&'static str>,
    /// Seconds before the daemon gives up on a request.
    pub request_timeout: u64,
    /// Reconciles read documents through search (`bulk_reads`).
    pub bulk_reads: bool,
    /// Feed pages with documents and the replica's bulk write, where offered (`bulk`).
    pub bulk: bool,
    /// Serve `/metrics`, `/healthz` and `/readyz` on a free port of 127.0.0.1.
    pub monitoring: bool,
    /// Seconds without progress before `/readyz` calls an org stalled.
    pub stall_timeout: u64,
    /// Run `sync-start` for every org before the daemon starts (else the orgs stay stopped).
    pub start: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            concurrency: 4,
            long_poll: true,
            rust_log: None,
            request_timeout: 10,
            bulk_reads: true,
            bulk: true,
            monitoring: false,
            stall_timeout: 300,
            start: true,
        }
    }
}

/// Writes chef-syncd's config to `path`; the sync key is `sync.pem` beside it.
pub fn syncd_config(
    path: &Path,
    state: &Path,
    primaries: &[&str],
    replica: &str,
    orgs: &[String],
    t: Tuning,
) {
    let key = path.with_file_name("sync.pem");
    let masters: Vec<String> = primaries.iter().map(|u| format!("\"{u}\"")).collect();
    let mut text = format!(
        "role = \"replica\"\nmaster = [{}]\nreplica = \"{replica}\"\n",
        masters.join(", ")
    );
    for org in orgs {
        text.push_str(&format!(
            "[[organizations]]\nsource = \"{org}\"\ndestination = \"{org}\"\n"
        ));
    }
    text.push_str(&format!(
        "[ec_sync_client]\ndir = \"{s}\"\nlog_directory = \"{s}/log\"\nsocket_path = \"{s}/sock\"\nsync_key = \"{k}\"\npoll_interval = 1\nconcurrency = {c}\nlong_poll = {l}\nreconcile_interval = 0\nrequest_timeout = {t}\nbulk_reads = {b}\nbulk = {bulk}\n",
        s = state.display(),
        k = key.display(),
        c = t.concurrency,
        l = t.long_poll,
        t = t.request_timeout,
        b = t.bulk_reads,
        bulk = t.bulk
    ));
    text.push_str(&format!("stall_timeout = {}\n", t.stall_timeout));
    if t.monitoring {
        text.push_str("metrics_listen = \"127.0.0.1:0\"\n");
    }
    std::fs::write(path, text).expect("config");
}

/// A replica server and the daemon feeding it.
#[derive(Debug)]
pub struct Replication {
    /// The replica.
    pub replica: ChefSyncServer,
    /// chef-syncd's config file.
    pub config: PathBuf,
    /// chef-syncd.
    pub daemon: Process,
    /// When chef-syncd was started (with every org already started, so syncing begins then).
    pub started: std::time::Instant,
    state_dir: PathBuf,
    orgs: Vec<String>,
    rust_log: Option<&'static str>,
}

impl Replication {
    /// Org `boot` of `primary` into a fresh SQLite replica.
    pub async fn start(
        dir: &Path,
        primary: &ChefSyncServer,
        concurrency: usize,
        tag: &str,
        long_poll: bool,
    ) -> Replication {
        let tuning = Tuning {
            concurrency,
            long_poll,
            ..Tuning::default()
        };
        Replication::start_orgs(dir, &[primary], &["boot".to_owned()], tuning, tag, None).await
    }

    /// `orgs` (which exist on the primaries) into a fresh replica over `database` (or SQLite):
    /// creates them on the replica, prepares both sides (the primaries share one database, so
    /// the first one is prepared), starts syncing every org. The daemon fails over from one
    /// primary to the next in this order.
    pub async fn start_orgs(
        dir: &Path,
        primaries: &[&ChefSyncServer],
        orgs: &[String],
        tuning: Tuning,
        tag: &str,
        database: Option<&str>,
    ) -> Replication {
        let urls: Vec<&str> = primaries.iter().map(|p| p.url.as_str()).collect();
        Replication::launch(dir, primaries, &urls, orgs, tuning, tag, database).await
    }

    /// Org `org` of `primary` into a fresh SQLite replica, the daemon reaching the primary
    /// through `via` (a fault proxy); `tag` names the replica's directories.
    pub async fn start_via(
        dir: &Path,
        primary: &ChefSyncServer,
        via: &str,
        org: &str,
        tuning: Tuning,
        tag: &str,
    ) -> Replication {
        let orgs = [org.to_owned()];
        Replication::launch(dir, &[primary], &[via], &orgs, tuning, tag, None).await
    }

    async fn launch(
        dir: &Path,
        primaries: &[&ChefSyncServer],
        daemon_urls: &[&str],
        orgs: &[String],
        tuning: Tuning,
        tag: &str,
        database: Option<&str>,
    ) -> Replication {
        let replica = ChefSyncServer::start_logging(
            &dir.join(format!("replica-{tag}")),
            "127.0.0.1:0",
            database,
            tuning.rust_log,
        );
        let config = dir.join(format!("syncd-{tag}.toml"));
        let state_dir = dir.join(format!("state-{tag}"));
        syncd_config(&config, &state_dir, daemon_urls, &replica.url, orgs, tuning);
        let superuser = Chef::new(
            &replica.url,
            "pivotal",
            Chef::key_file(&replica.pivotal_key()),
        );
        for org in orgs {
            superuser
                .must(
                    "POST",
                    &format!("{}/organizations", replica.url),
                    serde_json::json!({ "name": org, "full_name": org }),
                    201,
                )
                .await;
            for (server, flag) in [(primaries[0], false), (&replica, true)] {
                let pivotal = server.pivotal_key();
                let mut args = vec![
                    "prepare-org",
                    org.as_str(),
                    "--server",
                    server.url.as_str(),
                    "--superuser-key",
                    pivotal.to_str().unwrap_or_default(),
                ];
                if flag {
                    args.push("--replica");
                }
                let out = ctl(&config, &args);
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            if tuning.start {
                let out = ctl(&config, &["sync-start", org]);
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let started = std::time::Instant::now();
        let daemon = syncd_logging(&config, tuning.rust_log);
        Replication {
            replica,
            config,
            daemon,
            started,
            state_dir,
            orgs: orgs.to_vec(),
            rust_log: tuning.rust_log,
        }
    }

    /// Restarts chef-syncd after it was killed (the old process is reaped first).
    pub fn restart_daemon(&mut self) {
        self.daemon.kill();
        self.daemon = syncd_logging(&self.config, self.rust_log);
    }

    /// The daemon's state database (`dir/state.db`).
    pub fn state_db(&self) -> PathBuf {
        self.state_dir.join("state.db")
    }

    /// The replica's superuser, signing against `org`.
    pub fn replica_admin(&self, org: &str) -> Chef {
        Chef::new(
            &format!("{}/organizations/{org}", self.replica.url),
            "pivotal",
            Chef::key_file(&self.replica.pivotal_key()),
        )
    }

    /// `sync-status --json`.
    pub fn status(&self) -> serde_json::Value {
        serde_json::from_slice(&ctl(&self.config, &["sync-status", "--json"]).stdout)
            .unwrap_or_default()
    }

    /// `sync-log ORG` (the last 2000 lines).
    pub fn log(&self, org: &str) -> String {
        String::from_utf8_lossy(&ctl(&self.config, &["sync-log", org, "-n", "2000"]).stdout)
            .into_owned()
    }

    /// Waits (up to two minutes) until the replica's `org` is an exact copy of what `primary`
    /// reads, every object's JSON and every cookbook file's bytes; panics with the differing
    /// paths otherwise.
    pub async fn converge(&self, primary: &Chef, org: &str, what: &str) {
        crate::chef::converge(
            primary,
            &self.replica_admin(org),
            what,
            Duration::from_secs(120),
            || format!("status {}", self.status()),
        )
        .await;
    }

    /// `http://127.0.0.1:PORT` of the daemon's metrics and health listener (the tuning must
    /// have asked for it).
    pub fn monitoring_url(&mut self) -> String {
        let line = self.daemon.wait_for_line(
            "metrics and health checks listening",
            Duration::from_secs(30),
        );
        let address = line
            .split("address=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("address in the listening line");
        format!("http://{address}")
    }

    /// Waits until every org is synced at a feed position of at least `at_least`.
    pub async fn wait_synced(&self, at_least: i64) {
        loop {
            let out = ctl(&self.config, &["sync-status", "--json"]);
            let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let synced = rows.as_array().map_or(0, |rows| {
                rows.iter()
                    .filter(|r| {
                        r["status"] == "synced"
                            && r["applied_seq"].as_i64().is_some_and(|s| s >= at_least)
                    })
                    .count()
            });
            if synced == self.orgs.len() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Bytes under `dir`, recursively.
pub fn dir_bytes(dir: &Path) -> u64 {
    files_under(dir)
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

/// Every file under `dir`, recursively (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            if e.path().is_dir() {
                files_under(&e.path())
            } else {
                vec![e.path()]
            }
        })
        .collect()
}
