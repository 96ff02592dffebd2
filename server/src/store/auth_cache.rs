//! A short-lived cache of what authenticating and authorizing a request reads (actor with
//! keys, org standing), so a busy server does not repeat the same queries for every request.
//! This process's own changes to users, clients, keys, groups and orgs clear it at once;
//! changes made by another server process over the same database are seen within the TTL.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an entry is trusted.
pub const TTL: Duration = Duration::from_secs(1);
/// Entries per map before it starts over.
const CAPACITY: usize = 10_000;

/// One map of cached rows.
#[derive(Debug)]
pub(super) struct Cached<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K, V> Default for Cached<K, V> {
    fn default() -> Self {
        Cached {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Cached<K, V> {
    /// The value if it is younger than the TTL.
    pub(super) fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, v)| v.clone())
    }

    /// Remembers a value read at `read_at` (taken before the query, so a write that raced the
    /// query cannot be hidden for longer than the TTL).
    pub(super) fn put(&self, key: K, value: V, read_at: Instant) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(key, (read_at, value));
        }
    }

    pub(super) fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_clear() {
        let c: Cached<&str, i32> = Cached::default();
        c.put("a", 1, Instant::now());
        assert_eq!(c.get(&"a"), Some(1));
        c.put("b", 2, Instant::now() - TTL);
        assert_eq!(c.get(&"b"), None);
        c.clear();
        assert_eq!(c.get(&"a"), None);
    }
}
