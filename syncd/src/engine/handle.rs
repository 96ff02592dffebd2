//! What the daemon, the control socket and the health checks share with a running worker:
//! how to wake it, the batch it has in flight, what it is doing now, its progress, and its
//! servers.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::Notify;

use super::progress::Progress;
use crate::chef_client::ChefServer;
use crate::probe::Probes;
use crate::state::Status;
use crate::status::Live;

/// A feed entry being applied, as `unsynced-objects` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    /// Path.
    pub path: String,
    /// `write` or `delete`.
    pub action: String,
    /// Feed id.
    pub seq: Option<i64>,
}

/// A worker's shared side.
#[derive(Debug)]
pub struct Handle {
    /// Wakes the worker (sync-start, sync-stop, reload).
    pub wake: Notify,
    /// Entries of the batch in flight.
    pub pending: Mutex<Vec<Pending>>,
    /// When the worker last got something done.
    pub progress: Arc<Progress>,
    /// The org's primaries, in failover order.
    pub primaries: Vec<ChefServer>,
    /// The replica org.
    pub replica: ChefServer,
    /// `/readyz`'s last probe of both servers, reused for a moment (see `health`).
    pub probes: tokio::sync::Mutex<Option<Probes>>,
    /// What the worker is doing now (see [`Live`]).
    now: Mutex<Live>,
}

impl Handle {
    /// The handle of a worker for these servers.
    pub fn new(primaries: Vec<ChefServer>, replica: ChefServer) -> Handle {
        Handle {
            wake: Notify::new(),
            pending: Mutex::new(Vec::new()),
            progress: Arc::new(Progress::default()),
            primaries,
            replica,
            probes: tokio::sync::Mutex::new(None),
            now: Mutex::new(Live::default()),
        }
    }

    /// What the worker is doing now, with the size of its batch in flight.
    pub fn live(&self) -> Live {
        let mut live = self.now.lock().map(|l| l.clone()).unwrap_or_default();
        live.in_flight = self.pending.lock().map_or(0, |p| p.len() as i64);
        live
    }

    /// Shows the worker at work under `status` (`None`: as its last cycle recorded).
    pub fn working(&self, status: Option<Status>) {
        if let Ok(mut live) = self.now.lock() {
            live.status = status;
            live.next_sync = None;
        }
    }

    /// Shows the worker waiting until `until` (RFC 3339).
    pub fn waiting(&self, until: Option<String>) {
        if let Ok(mut live) = self.now.lock() {
            live.next_sync = until;
        }
    }

    /// Shows the primary's newest feed id as heard by the cycle under way (`None`: as
    /// recorded, once the cycle's report is).
    pub fn heard(&self, primary_seq: Option<i64>) {
        if let Ok(mut live) = self.now.lock() {
            live.primary_seq = primary_seq;
        }
    }

    /// Shows the recorded error as past (the server it named is back), or as holding again.
    pub fn error_cleared(&self, cleared: bool) {
        if let Ok(mut live) = self.now.lock() {
            live.error_cleared = cleared;
        }
    }

    /// The feed entries of the batch now in flight (empty: none).
    pub fn in_flight(&self, entries: Vec<Pending>) {
        if let Ok(mut pending) = self.pending.lock() {
            *pending = entries;
        }
    }
}
