//! What a chef-sync-server offers beyond the public Chef API (a feed page with documents, the
//! bulk write), learned from its own answers: asked for while unknown, used while offered,
//! and no longer asked for once a server shows it does not have it. Other Chef servers
//! (goiardi, Chef Infra Server) simply never offer them and are written object by object.

use std::sync::atomic::{AtomicU8, Ordering};

const UNKNOWN: u8 = 0;
const OFFERED: u8 = 1;
const ABSENT: u8 = 2;

/// One server's answer to "do you offer this?".
#[derive(Debug, Default)]
pub struct Offer(AtomicU8);

impl Offer {
    /// Whether to ask for it: offered, or not known yet.
    pub fn worth_asking(&self) -> bool {
        self.0.load(Ordering::Relaxed) != ABSENT
    }

    /// Whether the server showed it has it.
    pub fn offered(&self) -> bool {
        self.0.load(Ordering::Relaxed) == OFFERED
    }

    /// What the server's latest answer showed.
    pub fn learn(&self, offered: bool) {
        let value = if offered { OFFERED } else { ABSENT };
        self.0.store(value, Ordering::Relaxed);
    }

    /// Forgets what was learned: the server behind the URL may have changed (a failover, a
    /// new primary identity), so it is asked again.
    pub fn forget(&self) {
        self.0.store(UNKNOWN, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asked_until_refused_and_again_once_forgotten() {
        let offer = Offer::default();
        assert!(offer.worth_asking() && !offer.offered());
        offer.learn(true);
        assert!(offer.worth_asking() && offer.offered());
        offer.learn(false);
        assert!(!offer.worth_asking() && !offer.offered());
        offer.forget();
        assert!(offer.worth_asking());
    }
}
