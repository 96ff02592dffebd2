//! Parsed public keys by their PEM text, so a key is decoded once rather than on every request.
//! Keyed by the PEM itself: a rotated or deleted key is simply not asked for again, so the
//! cache can never authorize with a key the database no longer holds.

use std::collections::HashMap;
use std::sync::Mutex;

use chef_sync_shared::PublicKey;

/// Entries kept before the cache starts over (keys are ~450 bytes of PEM each).
const CAPACITY: usize = 10_000;

/// PEM → parsed key.
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: Mutex<HashMap<String, PublicKey>>,
}

impl KeyCache {
    /// The parsed keys of `pems`, skipping any that do not parse.
    pub fn parse(&self, pems: &[String]) -> Vec<PublicKey> {
        let Ok(mut keys) = self.keys.lock() else {
            return pems
                .iter()
                .filter_map(|p| PublicKey::from_pem(p).ok())
                .collect();
        };
        let mut out = Vec::with_capacity(pems.len());
        for pem in pems {
            if let Some(k) = keys.get(pem) {
                out.push(k.clone());
                continue;
            }
            if let Ok(k) = PublicKey::from_pem(pem) {
                if keys.len() >= CAPACITY {
                    keys.clear();
                }
                keys.insert(pem.clone(), k.clone());
                out.push(k);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_once_and_skips_garbage() {
        let pem = include_str!("../../../shared/tests/fixtures/fixed-key.pub.pem").to_owned();
        let cache = KeyCache::default();
        let keys = cache.parse(&[pem.clone(), "garbage".into()]);
        assert_eq!(keys.len(), 1);
        assert_eq!(cache.parse(&[pem]).len(), 1);
        assert_eq!(cache.keys.lock().unwrap().len(), 1);
    }
}
