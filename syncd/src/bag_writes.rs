//! Writes into one data bag, one at a time where the server needs it.
//!
//! goiardi's in-memory store keeps a data bag and all of its items in one record: every item
//! write reads that record, changes it and stores it whole. Two item writes into the same bag
//! at the same time therefore lose one of them, with both answered 201. A replicator writing
//! `concurrency` objects at once would leave holes that only the next full reconcile fills.
//! Against such a server the writes into one bag are serialised (bags still go in parallel);
//! servers that keep items as rows of their own (ours, Chef Infra Server, goiardi on SQL) are
//! not slowed down once the server has answered: goiardi names itself on every answer
//! (`X-Goiardi`). Until a first answer says which kind of server it is, writes into one bag
//! take turns too.

use std::sync::atomic::{AtomicU8, Ordering};

use chef_sync_shared::ObjectPath;
use reqwest::Method;
use reqwest::header::HeaderMap;
use tokio::sync::{Mutex, MutexGuard};

/// Bags are spread over this many locks: enough that different bags rarely wait on each other
/// at any `concurrency` the config allows a replica to be written with in practice, few enough
/// to need no bookkeeping per bag.
const STRIPES: usize = 64;

/// What is known of how the server stores a bag's items.
const UNKNOWN: u8 = 0;
const ROW_PER_ITEM: u8 = 1;
const ONE_RECORD_PER_BAG: u8 = 2;

/// One server's write discipline for data bags; shared by every clone of its client.
#[derive(Debug)]
pub struct BagWrites {
    storage: AtomicU8,
    stripes: Vec<Mutex<()>>,
}

impl Default for BagWrites {
    fn default() -> Self {
        BagWrites {
            storage: AtomicU8::new(UNKNOWN),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }
}

impl BagWrites {
    /// Learns from an answer's headers whether the server keeps a bag in one record. A
    /// goiardi answer settles it for good (an answer without the header may come from a proxy
    /// in front of it).
    pub fn learn(&self, headers: &HeaderMap) {
        if headers.contains_key("x-goiardi") {
            self.storage.store(ONE_RECORD_PER_BAG, Ordering::Relaxed);
        } else {
            let _ = self.storage.compare_exchange(
                UNKNOWN,
                ROW_PER_ITEM,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// Whether writes into one bag take turns on this server.
    pub fn serialised(&self) -> bool {
        self.storage.load(Ordering::Relaxed) != ROW_PER_ITEM
    }

    /// Waits for the right to send `method` to `rel` (relative to the org), when it writes
    /// into a bag of a server that needs it; `None` when the request may go at once.
    pub async fn turn(&self, method: &Method, rel: &str) -> Option<MutexGuard<'_, ()>> {
        if *method == Method::GET || !self.serialised() {
            return None;
        }
        let bag = bag_of(rel)?;
        Some(self.stripes[stripe(&bag)].lock().await)
    }
}

/// The bag a path writes into, read with the shared object path grammar: `/data/BAG` (an
/// item POST, or the bag itself) and `/data/BAG/ITEM`.
fn bag_of(rel: &str) -> Option<String> {
    let path = rel.split('?').next()?;
    match path.parse::<ObjectPath>().ok()? {
        ObjectPath::DataBag { bag } | ObjectPath::DataBagItem { bag, .. } => Some(bag),
        _ => None,
    }
}

fn stripe(bag: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bag.hash(&mut h);
    (h.finish() % STRIPES as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[test]
    fn paths_name_the_bag_they_write_into() {
        assert_eq!(bag_of("/data/users/alice").as_deref(), Some("users"));
        assert_eq!(bag_of("/data/users").as_deref(), Some("users"));
        assert_eq!(bag_of("/data/users?x=1").as_deref(), Some("users"));
        assert_eq!(bag_of("/data"), None);
        assert_eq!(bag_of("/data/"), None);
        assert_eq!(bag_of("/roles/web"), None);
    }

    fn goiardi() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-goiardi", "yes".parse().unwrap());
        h
    }

    #[tokio::test]
    async fn other_servers_are_never_held() {
        let w = BagWrites::default();
        w.learn(&HeaderMap::new());
        assert!(!w.serialised());
        let first = w.turn(&Method::POST, "/data/users").await;
        assert!(first.is_none());
        assert!(w.turn(&Method::PUT, "/data/users/a").await.is_none());
    }

    #[test]
    fn writes_take_turns_until_the_server_is_known_and_goiardi_stays_known() {
        let w = BagWrites::default();
        assert!(w.serialised(), "before any answer");
        w.learn(&goiardi());
        // A proxy's answer without the header does not make goiardi another server.
        w.learn(&HeaderMap::new());
        assert!(w.serialised());
    }

    #[tokio::test]
    async fn goiardi_gets_one_write_per_bag_at_a_time_and_reads_at_once() {
        let w = Arc::new(BagWrites::default());
        w.learn(&goiardi());
        assert!(w.serialised());
        let held = w.turn(&Method::PUT, "/data/users/a").await;
        assert!(held.is_some());
        // A read of the same bag and a write into a bag on another stripe go at once.
        assert!(w.turn(&Method::GET, "/data/users/b").await.is_none());
        let other = (0..)
            .map(|i| format!("bag{i}"))
            .find(|b| stripe(b) != stripe("users"))
            .unwrap();
        let rel = format!("/data/{other}/x");
        let elsewhere = tokio::time::timeout(Duration::from_secs(1), w.turn(&Method::POST, &rel));
        assert!(elsewhere.await.unwrap().is_some());
        // A second write into the same bag waits until the first is answered.
        let w2 = w.clone();
        let waiting = tokio::spawn(async move {
            let _turn = w2.turn(&Method::DELETE, "/data/users/b").await;
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(held);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn writes_into_one_bag_never_overlap() {
        let w = Arc::new(BagWrites::default());
        w.learn(&goiardi());
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (w, now, most) = (w.clone(), now.clone(), most.clone());
                tokio::spawn(async move {
                    let _turn = w.turn(&Method::POST, "/data/users").await;
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1 + i % 3)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
    }
}
