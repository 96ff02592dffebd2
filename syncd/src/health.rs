//! Readiness of chef-syncd: the config is loaded, the state database takes writes, and every
//! started org's primary and replica answer a signed request and its sync is not stalled.
//! An org that is behind but still getting work done is `behind` (slow, ready); one that has got
//! nothing done for `stall_timeout` while the primary has entries is `stalled` (not ready).

use std::time::Duration;

use serde::Serialize;

use crate::daemon::Daemon;
use crate::engine::handle::Handle;
pub use crate::probe::{Check, PROBE_REUSE, Probes};
use crate::probe::{probe, probe_primaries};
use crate::state::{OrgState, Status};

/// Where an org's sync stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sync {
    /// Not started.
    Stopped,
    /// Nothing left to copy.
    CaughtUp,
    /// Behind, and work got done within `stall_timeout`.
    Behind,
    /// Behind, and nothing got done for `stall_timeout`.
    Stalled,
}

/// One org's readiness.
#[derive(Debug, Clone, Serialize)]
pub struct OrgReadiness {
    /// Destination org.
    pub organization: String,
    /// All of its checks pass.
    pub ok: bool,
    /// Where its sync stands.
    pub sync: Sync,
    /// `sync-status`'s status.
    pub status: Status,
    /// Feed entries behind the primary, when known.
    pub seq_lag: Option<i64>,
    /// Seconds since the worker last got something done.
    pub idle_seconds: u64,
    /// The first primary that answered (or the first one's failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<Check>,
    /// The replica.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<Check>,
    /// The sync's last error, as `sync-status` shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The whole answer of `/readyz`.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    /// `ready` or `unready`.
    pub status: &'static str,
    /// The config in force.
    pub config: Check,
    /// The state database takes writes.
    pub state_db: Check,
    /// One entry per configured org.
    pub organizations: Vec<OrgReadiness>,
}

impl Readiness {
    /// Every check passes.
    pub fn ready(&self) -> bool {
        self.status == "ready"
    }
}

/// The org's probe results, made now or reused from the last [`PROBE_REUSE`]. The lock is
/// held while probing, so concurrent `/readyz` requests wait for one probe and share it.
async fn probes(handle: &Handle) -> (Check, Check) {
    let mut last = handle.probes.lock().await;
    if let Some(recent) = last.as_ref().and_then(Probes::recent) {
        return recent;
    }
    let (primary, replica) =
        tokio::join!(probe_primaries(&handle.primaries), probe(&handle.replica));
    *last = Some(Probes::new(primary.clone(), replica.clone()));
    (primary, replica)
}

/// Where a started org's sync stands, from its state row and its idle time.
pub fn classify(row: &OrgState, idle: Duration, stall_timeout: Duration) -> Sync {
    if !row.started {
        return Sync::Stopped;
    }
    let behind = match (row.applied_seq, row.primary_seq) {
        (Some(applied), Some(primary)) => primary > applied,
        // Bootstrapping, or a primary without a feed: behind until a pass finds nothing.
        _ => row.status != Status::Synced,
    } || matches!(row.status, Status::Bootstrapping | Status::Error);
    match (behind, idle >= stall_timeout) {
        (false, _) => Sync::CaughtUp,
        (true, false) => Sync::Behind,
        (true, true) => Sync::Stalled,
    }
}

/// Runs every check.
pub async fn readiness(daemon: &Daemon, config_path: &str) -> Readiness {
    let config = daemon.config().await;
    let state_db = match daemon.state().check_writable().await {
        Ok(()) => Check::pass(None),
        Err(e) => Check::fail(None, e.to_string()),
    };
    let stall_timeout = Duration::from_secs(config.ec_sync_client.stall_timeout);
    let mut organizations = Vec::new();
    for pair in &config.organizations {
        let org = &pair.destination;
        let row = match daemon.org(org).await {
            Ok(Some(row)) => row,
            Ok(None) | Err(_) => continue,
        };
        let handle = daemon.handle(org).await;
        let idle = handle
            .as_ref()
            .map_or(Duration::ZERO, |h| h.progress.idle_for());
        let sync = classify(&row, idle, stall_timeout);
        let (primary, replica) = match (&handle, row.started) {
            (Some(h), true) => {
                let (primary, replica) = probes(h).await;
                (Some(primary), Some(replica))
            }
            _ => (None, None),
        };
        let ok = sync != Sync::Stalled
            && primary.as_ref().is_none_or(|c| c.ok)
            && replica.as_ref().is_none_or(|c| c.ok);
        organizations.push(OrgReadiness {
            organization: org.clone(),
            ok,
            sync,
            status: row.status,
            seq_lag: row
                .applied_seq
                .zip(row.primary_seq)
                .map(|(a, p)| (p - a).max(0)),
            idle_seconds: idle.as_secs(),
            primary,
            replica,
            last_error: row.last_error.clone(),
        });
    }
    let config = Check::pass(Some(config_path.to_owned()));
    let ready = state_db.ok && organizations.iter().all(|o| o.ok);
    Readiness {
        status: if ready { "ready" } else { "unready" },
        config,
        state_db,
        organizations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chef_client::{ChefServer, Peer};

    #[tokio::test]
    async fn a_flood_of_readiness_checks_probes_each_server_once() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let app = axum::Router::new().fallback(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { "{}" }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let key = Arc::new(chef_sync_shared::PrivateKey::generate(2048).unwrap());
        let http = crate::tls_trust::Http::new(Duration::from_secs(5));
        let server = |peer, org: &str| {
            ChefServer::new(
                peer,
                &format!("{url}/organizations/{org}"),
                "sync",
                key.clone(),
                http.clone(),
            )
        };
        let handle = Handle::new(
            vec![server(Peer::Primary, "src")],
            server(Peer::Replica, "dst"),
        );
        let answers = futures_util::future::join_all((0..50).map(|_| probes(&handle))).await;
        assert!(answers.iter().all(|(p, r)| p.ok && r.ok));
        assert_eq!(hits.load(Ordering::SeqCst), 2, "one probe of each server");
        tokio::time::sleep(PROBE_REUSE + Duration::from_millis(100)).await;
        probes(&handle).await;
        assert_eq!(
            hits.load(Ordering::SeqCst),
            4,
            "probed again once the result is old"
        );
    }

    fn row(status: Status, applied: Option<i64>, primary: Option<i64>) -> OrgState {
        OrgState {
            destination: "acme".into(),
            source: "acme".into(),
            started: true,
            status,
            applied_seq: applied,
            primary_guid: None,
            primary_url: None,
            primary_seq: primary,
            primary_seq_at: None,
            mode: None,
            last_sync: None,
            next_sync: None,
            last_error: None,
        }
    }

    #[test]
    fn stalled_is_behind_with_no_recent_progress() {
        let minute = Duration::from_secs(60);
        let quiet = Duration::from_secs(600);
        let recent = Duration::from_secs(5);
        let caught_up = row(Status::Synced, Some(10), Some(10));
        assert_eq!(classify(&caught_up, quiet, minute), Sync::CaughtUp);
        let behind = row(Status::Syncing, Some(10), Some(500));
        assert_eq!(classify(&behind, recent, minute), Sync::Behind);
        assert_eq!(classify(&behind, quiet, minute), Sync::Stalled);
        // A failing org does not know how far behind it is: it is not caught up.
        let failing = row(Status::Error, Some(10), Some(10));
        assert_eq!(classify(&failing, recent, minute), Sync::Behind);
        assert_eq!(classify(&failing, quiet, minute), Sync::Stalled);
        let bootstrapping = row(Status::Bootstrapping, None, Some(10));
        assert_eq!(classify(&bootstrapping, recent, minute), Sync::Behind);
        let reconcile_mode = row(Status::Synced, Some(0), None);
        assert_eq!(classify(&reconcile_mode, quiet, minute), Sync::CaughtUp);
        let stopped = OrgState {
            started: false,
            ..behind
        };
        assert_eq!(classify(&stopped, quiet, minute), Sync::Stopped);
    }
}
