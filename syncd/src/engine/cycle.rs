//! A sync cycle's start: which primary answers (its identity decides whether the checkpoint
//! still holds), then either a bootstrap (a full reconcile from the primary's current feed
//! position) or a feed page (`follow`). Each returns the report the loop records.

use std::time::Instant;

use serde_json::Value;

use super::feed::{self, FeedError};
use super::outcomes::{Cycle, CycleError, Next, named};
use super::reconcile::reconcile;
use super::sides::Sides;
use super::worker::Worker;
use crate::chef_client::{ChefError, Peer};
use crate::state::{Head, OrgState, Position, Primary, Report, Standing, Status};

impl Worker {
    /// One cycle for `org` as its last cycle left it.
    pub(super) async fn cycle(&mut self, org: &OrgState) -> Result<Cycle, CycleError> {
        let sides = self.sides();
        let identity = self.identity(&sides).await?;
        let same = org.primary_guid.as_deref() == Some(identity.as_str());
        let primary = Some(Primary {
            identity,
            url: sides.primary.base().to_owned(),
        });
        if !same && org.applied_seq.is_some() {
            // A cycle of its own: the checkpoint belongs to another primary, and is forgotten
            // before anything is copied from this one (should the bootstrap fail, a later
            // return to the first primary must not resume from a position this one moved).
            self.feed_documents().forget();
            self.warn(&format!(
                "the primary's identity changed ({}); a full reconcile follows",
                primary.as_ref().map_or("", |p| p.identity.as_str())
            ));
            return Ok(Cycle::now(Report {
                primary,
                position: Position::Dropped,
                ..Report::default()
            }));
        }
        let mut cycle = match org.applied_seq.filter(|_| same) {
            None => self.bootstrap(&sides, org).await?,
            Some(seq) => self.follow(&sides, org.status, seq).await?,
        };
        cycle.report.primary = primary;
        Ok(cycle)
    }

    /// The source org's identity: its guid, or for servers without org objects the URL.
    async fn identity(&self, sides: &Sides) -> Result<String, CycleError> {
        // The first request of every cycle: a primary refusing connections is not waited
        // for here, so that the org fails over (or shows the outage) at once.
        match sides.primary.get_unless_refused("").await {
            Ok(Value::Object(org)) => Ok(org.get("guid").and_then(Value::as_str).map_or_else(
                || format!("url:{}", sides.primary.base()),
                |g| format!("guid:{g}"),
            )),
            Ok(_) | Err(ChefError::Malformed(_)) | Err(ChefError::NotFound) => {
                Ok(format!("url:{}", sides.primary.base()))
            }
            Err(e) => Err(CycleError::failed(Peer::Primary, &e)),
        }
    }

    /// A full copy, from the primary's feed position taken first (so that nothing written
    /// during the copy is missed); that position becomes the checkpoint with the copy.
    async fn bootstrap(&mut self, sides: &Sides, org: &OrgState) -> Result<Cycle, CycleError> {
        let head = match feed::head(&sides.primary).await {
            Ok(h) => Some(h),
            Err(FeedError::Missing(why)) => {
                tracing::debug!(org = %self.destination, %why, "no feed; reconcile mode");
                None
            }
            Err(FeedError::Chef(e)) => return Err(CycleError::failed(Peer::Primary, &e)),
            Err(e) => {
                self.warn(&format!("{e}; copying in full without a feed position"));
                None
            }
        };
        let mode = if head.is_some() { "feed" } else { "reconcile" };
        if head.is_some() || org.last_sync.is_none() {
            self.handle.working(Some(Status::Bootstrapping));
        }
        self.info(&match head {
            Some(seq) => format!("full reconcile started (mode {mode}, feed position {seq})"),
            None => format!("full reconcile started (mode {mode}, no feed position)"),
        });
        let started = Instant::now();
        let outcomes = reconcile(sides, self.settings.concurrency, self.settings.bulk_reads)
            .await
            .map_err(|e| self.unlisted(e))?;
        if let Some(m) = &self.settings.metrics {
            m.reconciled(started.elapsed());
        }
        let total = outcomes.len();
        let changed = named(&outcomes, false);
        let settled = self.settle(outcomes)?;
        self.handle.progress.advanced();
        self.info(&format!(
            "full reconcile done: {total} objects, {} written, {} parked, {:.1} s{changed}",
            settled.written,
            settled.park.len(),
            started.elapsed().as_secs_f64()
        ));
        let (status, next) = self.bootstrapped(head, settled.written);
        let mut report = Report {
            position: head.map_or(Position::Kept, Position::At),
            head: Some(Head { seq: head, mode }),
            reconciled: true,
            standing: Some(Standing::ok(status)),
            ..Report::default()
        };
        report.settle(settled.release, settled.park);
        Ok(Cycle { report, next })
    }

    /// The status after a full copy: `synced` from the feed position it started at (the feed
    /// is followed from there at once); without a feed, `synced` when the pass found nothing
    /// to write, and the next pass after `poll_interval`.
    fn bootstrapped(&self, head: Option<i64>, written: usize) -> (Status, Next) {
        if head.is_some() {
            return (Status::Synced, Next::Now);
        }
        let status = if written == 0 {
            Status::Synced
        } else {
            Status::Syncing
        };
        (status, Next::Sleep(self.settings.poll_interval))
    }
}
