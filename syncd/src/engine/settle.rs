//! A batch's outcomes sorted into a cycle's report: what to release, what to park (and the
//! feed entries that can never be applied), or a server found unreachable that fails the
//! cycle; and a reconcile that could not list a side, said with the fix.

use std::time::Duration;

use super::apply::{Applied, Outcome};
use super::feed;
use super::outcomes::{CycleError, Settled, action_name, later, missing_org};
use super::reconcile::Unlisted;
use super::worker::Worker;
use crate::chef_client::ChefError;
use crate::state::{MAX_STORED_TEXT, NEVER, Parked};
use crate::text::bounded;

/// Entries of one feed page that can never be applied logged one by one; the rest of the
/// page's are logged as a count.
const REJECTED_LOGGED_PER_PAGE: usize = 10;

impl Worker {
    /// A reconcile that could not list one side. A 404 there means the org is missing on
    /// that server (or hidden from the sync user): the message names the side, the URL and
    /// the fix, since nothing the daemon retries can repair it.
    pub(super) fn unlisted(&self, u: Unlisted) -> CycleError {
        if !matches!(u.error, ChefError::NotFound) {
            return CycleError::failed(u.side, &u.error);
        }
        let base = self.base_of(u.side);
        CycleError::new(missing_org(u.side, &base, &self.destination))
    }

    /// Splits outcomes into what to release and what to park; a server that could not be
    /// reached at all fails the whole batch instead (nothing of it is recorded).
    pub(super) fn settle(&self, outcomes: Vec<Outcome>) -> Result<Settled, CycleError> {
        let mut settled = Settled::default();
        for o in outcomes {
            let path = o.change.path.to_string();
            match o.result {
                Ok(applied) => {
                    if applied != Applied::Unchanged {
                        settled.written += 1;
                    }
                    settled.release.push(path);
                }
                Err(e) if e.is_unreachable() => {
                    return Err(CycleError::unreachable_while(&path, &e));
                }
                Err(e) => {
                    let error = bounded(&e.to_string(), MAX_STORED_TEXT).into_owned();
                    self.warn(&format!("parked {path}: {error}"));
                    settled.park.push(Parked {
                        path,
                        action: action_name(o.change.action).into(),
                        seq: o.change.seq,
                        attempts: 1,
                        error,
                        next_retry: later(Duration::from_secs(30)),
                    });
                }
            }
        }
        Ok(settled)
    }

    /// Parks a page's entries that can never be applied (bad path or action). The first few
    /// are logged one by one, the rest in one line: a hostile page of a thousand such entries
    /// must not become a thousand log lines.
    pub(super) fn park_rejected(&self, park: &mut Vec<Parked>, rejected: &[feed::Rejected]) {
        for (i, r) in rejected.iter().enumerate() {
            if i < REJECTED_LOGGED_PER_PAGE {
                self.warn(&format!(
                    "parked feed entry {} ({}): {}",
                    r.seq, r.path, r.reason
                ));
            }
            park.push(Parked {
                path: r.path.clone(),
                action: r.action.clone(),
                seq: Some(r.seq),
                attempts: 1,
                error: r.reason.clone(),
                next_retry: NEVER.into(),
            });
        }
        if let Some(more) = rejected.len().checked_sub(REJECTED_LOGGED_PER_PAGE)
            && more > 0
        {
            self.warn(&format!(
                "parked {more} more feed entries of this page that can never be applied \
                 (see unsynced-objects)"
            ));
        }
    }
}
