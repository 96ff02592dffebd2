//! What a chef-sync-server offers beyond the public Chef API (a feed page with documents, the
//! bulk write), learned from its own answers: asked for while unknown, used while offered,
//! and not asked for again for a while once a server shows it does not have it. Other Chef
//! servers (goiardi, Chef Infra Server) simply never offer them and are written object by
//! object; a server upgraded in place under a running daemon is found out within
//! [`ASK_AGAIN_AFTER`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a "not offered" answer stands before the server is asked again (one request
/// that it refuses cheaply, every ten minutes).
pub const ASK_AGAIN_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy)]
enum Known {
    Unknown,
    Offered,
    Absent(Instant),
    /// Not to be used whatever the server says (`bulk = false`).
    Never,
}

/// One server's answer to "do you offer this?".
#[derive(Debug)]
pub struct Offer(Mutex<Known>);

impl Default for Offer {
    fn default() -> Self {
        Offer(Mutex::new(Known::Unknown))
    }
}

impl Offer {
    /// An offer never used (`bulk = false`): nothing the server answers changes that.
    pub fn never() -> Self {
        Offer(Mutex::new(Known::Never))
    }

    fn known(&self) -> Known {
        // A poisoned lock only means a panic elsewhere: asking again is always safe.
        self.0.lock().map_or(Known::Unknown, |k| *k)
    }

    fn set(&self, known: Known) {
        if let Ok(mut k) = self.0.lock()
            && !matches!(*k, Known::Never)
        {
            *k = known;
        }
    }

    /// Whether to ask for it: offered, not known yet, or refused long enough ago.
    pub fn worth_asking(&self) -> bool {
        self.worth_asking_at(Instant::now())
    }

    fn worth_asking_at(&self, now: Instant) -> bool {
        match self.known() {
            Known::Absent(since) => now.saturating_duration_since(since) >= ASK_AGAIN_AFTER,
            Known::Unknown | Known::Offered => true,
            Known::Never => false,
        }
    }

    /// Whether the server showed it has it.
    pub fn offered(&self) -> bool {
        matches!(self.known(), Known::Offered)
    }

    /// What the server's latest answer showed.
    pub fn learn(&self, offered: bool) {
        self.set(if offered {
            Known::Offered
        } else {
            Known::Absent(Instant::now())
        });
    }

    /// Forgets what was learned: the server behind the URL may have changed (a failover, a
    /// new primary identity), so it is asked again.
    pub fn forget(&self) {
        self.set(Known::Unknown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asked_until_refused_and_again_once_forgotten_or_later() {
        let offer = Offer::default();
        assert!(offer.worth_asking() && !offer.offered());
        offer.learn(true);
        assert!(offer.worth_asking() && offer.offered());
        offer.learn(false);
        assert!(!offer.worth_asking() && !offer.offered());
        let later = Instant::now() + ASK_AGAIN_AFTER;
        assert!(offer.worth_asking_at(later) && !offer.offered());
        offer.forget();
        assert!(offer.worth_asking());
    }

    #[test]
    fn never_stays_never() {
        let offer = Offer::never();
        offer.learn(true);
        offer.forget();
        let later = Instant::now() + ASK_AGAIN_AFTER;
        assert!(!offer.worth_asking_at(later) && !offer.offered());
    }
}
