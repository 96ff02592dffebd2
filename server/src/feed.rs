//! Per-org wake-ups for `updated_since` long-polls, fired after each committed change.
//!
//! Only this process's writes fire them; waiters also re-check the database periodically so
//! writes made by other server processes over the same PostgreSQL are seen too.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// Holds one watch channel per org that someone is waiting on or writing to.
#[derive(Debug, Default)]
pub struct FeedNotifier {
    orgs: Mutex<HashMap<i64, watch::Sender<i64>>>,
}

impl FeedNotifier {
    /// A receiver that changes whenever the org's log grows.
    pub fn subscribe(&self, org_id: i64) -> watch::Receiver<i64> {
        let mut orgs = self.orgs.lock().unwrap_or_else(|p| p.into_inner());
        orgs.entry(org_id)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Records that the org's log reached `seq`.
    pub fn notify(&self, org_id: i64, seq: i64) {
        let orgs = self.orgs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = orgs.get(&org_id) {
            tx.send_replace(seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_wake_on_notify() {
        let n = FeedNotifier::default();
        let mut rx = n.subscribe(1);
        n.notify(2, 5);
        assert!(!rx.has_changed().unwrap());
        n.notify(1, 7);
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow(), 7);
    }
}
