//! When an org's worker last got something done (an object applied, the feed found caught up):
//! the readiness check tells a stalled org (no progress while the primary has entries) from a
//! slow one by it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// The worker's last progress, shared with the health checks.
#[derive(Debug)]
pub struct Progress {
    /// Unix milliseconds.
    last: AtomicI64,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Default for Progress {
    /// A worker that has just started counts as having made progress.
    fn default() -> Self {
        Progress {
            last: AtomicI64::new(now_ms()),
        }
    }
}

impl Progress {
    /// Something was got done just now.
    pub fn advanced(&self) {
        self.last.store(now_ms(), Ordering::Relaxed);
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
}
