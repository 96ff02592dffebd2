//! When an org's worker last got something done (an object applied, the feed found caught up):
//! the readiness check tells a stalled org (no progress while the primary has entries) from a
//! slow one by it. Also how far the full reconcile in flight has got, for
//! `sync-start --wait`'s progress bar.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::Serialize;
use std::time::Duration;

/// The worker's last progress, shared with the health checks.
#[derive(Debug)]
pub struct Progress {
    /// Unix milliseconds.
    last: AtomicI64,
    /// When the worker's loop last went round (or a batch got an answer), unix milliseconds:
    /// the systemd watchdog is fed only while every worker's is recent.
    beat: AtomicI64,
    /// Objects in the full reconcile in flight (0: none).
    total: AtomicU64,
    /// Objects of it done (applied, unchanged or parked).
    done: AtomicU64,
    /// Cookbook file bytes copied by it.
    bytes: AtomicU64,
}

/// How far the full reconcile in flight has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// Objects in it (0: no reconcile in flight).
    pub total: u64,
    /// Objects done.
    pub done: u64,
    /// Cookbook file bytes copied.
    pub bytes: u64,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Default for Progress {
    /// A worker that has just started counts as having made progress.
    fn default() -> Self {
        Progress {
            last: AtomicI64::new(now_ms()),
            beat: AtomicI64::new(now_ms()),
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }
}

impl Progress {
    /// Something was got done just now.
    pub fn advanced(&self) {
        self.last.store(now_ms(), Ordering::Relaxed);
    }

    /// A full reconcile of `total` objects starts.
    pub fn begin(&self, total: u64) {
        self.done.store(0, Ordering::Relaxed);
        self.bytes.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
    }

    /// The full reconcile ended.
    pub fn end(&self) {
        self.total.store(0, Ordering::Relaxed);
    }

    /// One object was dealt with (which also shows the worker is not stuck).
    pub fn object_done(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
        self.beat();
    }

    /// File bytes were copied.
    pub fn add_bytes(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Where the full reconcile in flight stands.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            total: self.total.load(Ordering::Relaxed),
            done: self.done.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    /// The worker is alive and not stuck.
    pub fn beat(&self) {
        self.beat.store(now_ms(), Ordering::Relaxed);
    }

    /// Time since the last beat.
    pub fn since_beat(&self) -> Duration {
        let ms = now_ms() - self.beat.load(Ordering::Relaxed);
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }

    /// Time since the last progress.
    pub fn idle_for(&self) -> Duration {
        let ms = now_ms() - self.last.load(Ordering::Relaxed);
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_resets_the_idle_time() {
        let p = Progress::default();
        p.last.store(now_ms() - 5_000, Ordering::Relaxed);
        assert!(p.idle_for() >= Duration::from_secs(5));
        p.advanced();
        assert!(p.idle_for() < Duration::from_secs(1));
    }

    #[test]
    fn a_reconcile_counts_objects_and_bytes_from_zero() {
        let p = Progress::default();
        p.begin(3);
        p.object_done();
        p.add_bytes(100);
        p.add_bytes(20);
        assert_eq!(
            p.snapshot(),
            Snapshot {
                total: 3,
                done: 1,
                bytes: 120
            }
        );
        p.begin(5);
        assert_eq!(p.snapshot().done, 0);
        p.end();
        assert_eq!(p.snapshot().total, 0);
    }
}
