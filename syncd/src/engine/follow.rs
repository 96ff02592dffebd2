//! A feed cycle: objects parked earlier and due again are retried, then the page after the
//! checkpoint is read (long-polled while caught up) and applied, or, when it is empty, the
//! org is caught up and a periodic full reconcile may run. One report covers all of it.

use std::time::{Duration, Instant};

use super::apply::{Outcome, apply, apply_batch, count};
use super::feed::{self, FeedError, PAGE};
use super::handle::Pending;
use super::outcomes::{Cycle, CycleError, Next, action_name, later, named, now};
use super::plan::{Action, Change, coalesce};
use super::reconcile::reconcile;
use super::sides::Sides;
use super::worker::Worker;
use crate::chef_client::Peer;
use crate::chef_client::retry::delay;
use crate::state::{Head, NEVER, Parked, Position, Report, Standing, Status};

/// A long-poll answered sooner than this, empty, did not wait (see [`Worker::caught_up`]).
const QUICK_ANSWER: Duration = Duration::from_secs(1);

impl Worker {
    /// One feed page from checkpoint `applied`, the org's recorded status being `status`.
    pub(super) async fn follow(
        &mut self,
        sides: &Sides,
        status: Status,
        applied: i64,
    ) -> Result<Cycle, CycleError> {
        let mut report = Report::default();
        let retried = self.retry_parked(sides, &mut report).await?;
        if status == Status::Synced
            && !retried
            && let Some(owed) = self.reconcile_due().await?
        {
            return self.periodic_reconcile(sides, owed).await;
        }
        // Long-poll only from a state known to be caught up. After a failure, a failover or a
        // batch the feed is asked without waiting, so that the status says at once where the
        // org stands instead of keeping the last one for a whole long-poll; after retrying
        // parked objects too, so that what they did is recorded at once.
        let wait = if status == Status::Synced && !retried {
            self.settings.long_poll
        } else {
            Duration::ZERO
        };
        if !wait.is_zero() {
            // NEXT SYNC: when this wait ends at the latest (an entry ends it sooner).
            self.handle.waiting(Some(later(wait)));
        }
        let asked = Instant::now();
        let handle = self.handle.clone();
        let mut shutdown = self.shutdown.clone();
        let documents = self.feed_documents();
        let page = tokio::select! {
            page = feed::fetch(&sides.primary, applied, wait, documents.worth_asking()) => page,
            _ = handle.wake.notified() => return Ok(Cycle::now(report)),
            _ = shutdown.changed() => return Ok(Cycle::now(report)),
        };
        self.handle.waiting(None);
        let page = match page {
            Ok(p) => p,
            Err(e) => return self.unfollowable(report, e),
        };
        if documents.worth_asking() {
            documents.learn(page.with_documents);
        }
        self.resets = 0;
        let head = page.head.or(page.last_id).unwrap_or(applied).max(applied);
        let heard = Some(Head {
            seq: Some(head),
            mode: "feed",
        });
        report.head = heard;
        self.handle.heard(Some(head));
        let cycle = if page.len == 0 {
            self.caught_up(report, applied, wait, asked.elapsed())
        } else {
            self.apply_page(sides, report, page, applied).await
        };
        cycle.map_err(|e| e.heard(heard))
    }

    /// The feed could not be read: a reconcile follows (the feed is gone, pruned past the
    /// checkpoint, or went backwards), or the cycle failed.
    fn unfollowable(&mut self, mut report: Report, e: FeedError) -> Result<Cycle, CycleError> {
        match e {
            FeedError::Missing(why) => {
                self.warn(&format!(
                    "the primary's feed disappeared ({why}); switching to reconcile mode"
                ));
                report.position = Position::Dropped;
                Ok(Cycle::now(report))
            }
            e @ (FeedError::Pruned(_) | FeedError::Backwards { .. }) => {
                report.position = Position::Dropped;
                Ok(self.feed_reset(report, &e.to_string()))
            }
            FeedError::Chef(e) => Err(CycleError::failed(Peer::Primary, &e)),
        }
    }

    /// An empty page: the org is caught up. Except for a long-poll that came back empty at
    /// once: a primary stopping cleanly ends its long-polls that way, so the first such answer
    /// is not taken for `synced` but asked again at once (a stopped primary then refuses the
    /// connection, and the worker fails over or reports it). A second one in a row means the
    /// primary does not long-poll: it is then polled every `poll_interval`.
    fn caught_up(
        &mut self,
        mut report: Report,
        applied: i64,
        wait: Duration,
        took: Duration,
    ) -> Result<Cycle, CycleError> {
        let quick = !wait.is_zero() && took < QUICK_ANSWER;
        if quick {
            self.quick_answers = self.quick_answers.saturating_add(1);
            if self.quick_answers == 1 {
                return Ok(Cycle::now(report));
            }
        } else if !wait.is_zero() {
            self.quick_answers = 0;
        }
        self.handle.progress.advanced();
        report.position = Position::At(applied);
        report.standing = Some(Standing::ok(Status::Synced));
        let next = if quick || self.settings.long_poll.is_zero() {
            Next::Sleep(self.settings.poll_interval)
        } else {
            // Straight into the next long-poll (or the periodic reconcile, when it is due).
            Next::Now
        };
        Ok(Cycle { report, next })
    }

    /// Applies a page of entries; the checkpoint moves past it with the report.
    async fn apply_page(
        &mut self,
        sides: &Sides,
        mut report: Report,
        page: feed::Page,
        applied: i64,
    ) -> Result<Cycle, CycleError> {
        self.handle.working(Some(Status::Syncing));
        let changes = coalesce(page.changes.clone());
        self.handle.in_flight(
            changes
                .iter()
                .map(|c| Pending {
                    path: c.path.to_string(),
                    action: action_name(c.action).into(),
                    seq: c.seq,
                })
                .collect(),
        );
        let mut carried = page.documents;
        let known = changes
            .iter()
            .filter_map(|c| Some((c.path.clone(), carried.remove(&c.seq?)?)))
            .collect();
        let outcomes =
            apply_batch(sides, changes, known, |_| None, self.settings.concurrency).await;
        let done = named(&outcomes, true);
        let settled = self.settle(outcomes)?;
        let mut park = settled.park;
        self.park_rejected(&mut park, &page.rejected);
        let parked = park.len();
        report.settle(settled.release, park);
        report.position = page.last_id.map_or(Position::Kept, Position::At);
        self.handle.progress.advanced();
        self.info(&format!(
            "applied feed entries up to {} ({} entries, {} written, {parked} parked){done}",
            page.last_id.unwrap_or(applied),
            page.len,
            settled.written,
        ));
        // A short page is the end of the feed, unless the primary says there is more (a
        // page with documents ends early at its byte bound).
        let behind = page.head.zip(page.last_id).is_some_and(|(h, l)| l < h);
        let status = if page.len < PAGE && !behind {
            Status::Synced
        } else {
            Status::Syncing
        };
        report.standing = Some(Standing::ok(status));
        Ok(Cycle::now(report))
    }

    /// After the checkpoint was dropped because of the feed: reconcile now, unless the previous
    /// forced reconcile was under a minute ago, in which case the primary's feed is inconsistent
    /// and the org waits (doubling each time) before the next full pass.
    fn feed_reset(&mut self, mut report: Report, why: &str) -> Cycle {
        let recent = self
            .last_reset
            .is_some_and(|t| t.elapsed() < Duration::from_secs(60));
        self.last_reset = Some(Instant::now());
        if !recent {
            self.resets = 0;
            self.warn(&format!("{why}; a full reconcile follows"));
            return Cycle::now(report);
        }
        self.resets += 1;
        let wait = delay(
            Duration::from_secs(1),
            self.settings.max_org_backoff,
            self.resets.min(16),
        );
        let message = format!(
            "{why}, again within a minute of the last full reconcile: the primary's feed is \
             inconsistent; next full reconcile in {} s",
            wait.as_secs()
        );
        self.warn(&message);
        report.standing = Some(Standing {
            status: Status::Error,
            error: Some(message),
        });
        Cycle {
            report,
            next: Next::Sleep(wait),
        }
    }

    /// Retries the parked objects whose time has come; whether there were any. A server found
    /// unreachable fails the cycle (the org backs off as a whole, as for a feed page).
    async fn retry_parked(
        &mut self,
        sides: &Sides,
        report: &mut Report,
    ) -> Result<bool, CycleError> {
        let due = self.state.due(&self.destination, &now()).await?;
        let any = !due.is_empty();
        for p in due {
            match self.retry_one(sides, p).await? {
                Ok(path) => report.settle(vec![path], Vec::new()),
                Err(again) => report.settle(Vec::new(), vec![again]),
            }
        }
        Ok(any)
    }

    /// One parked object tried again: its path when it was applied, else the parked row with
    /// its attempts raised and its next retry pushed back (30 s doubling to 1 h).
    async fn retry_one(
        &self,
        sides: &Sides,
        p: Parked,
    ) -> Result<Result<String, Parked>, CycleError> {
        let Ok(path) = p.path.parse() else {
            // A path that breaks the grammar can never be applied; it stays visible.
            return Ok(Err(Parked {
                next_retry: NEVER.into(),
                ..p
            }));
        };
        let action = if p.action == "delete" {
            Action::Delete
        } else {
            Action::Write
        };
        let change = Change {
            path,
            action,
            seq: p.seq,
        };
        let result = apply(sides, &change, None).await;
        count(
            sides,
            &Outcome {
                change,
                result: result.clone(),
            },
        );
        match result {
            Ok(_) => {
                sides.progress.advanced();
                self.info(&format!("parked {} applied on retry", p.path));
                Ok(Ok(p.path))
            }
            Err(e) if e.is_unreachable() => Err(CycleError::unreachable_while(&p.path, &e)),
            Err(e) => {
                let attempts = p.attempts + 1;
                let wait = delay(
                    Duration::from_secs(30),
                    Duration::from_secs(3600),
                    u32::try_from(attempts).unwrap_or(u32::MAX),
                );
                Ok(Err(Parked {
                    error: e.to_string(),
                    next_retry: later(wait),
                    attempts,
                    ..p
                }))
            }
        }
    }

    /// Whether a full reconcile is due (`None`: not yet), and whether because an upgrade owes
    /// one (`Some(true)`) or `reconcile_interval` has passed since the last (`Some(false)`).
    async fn reconcile_due(&self) -> Result<Option<bool>, CycleError> {
        if self.state.reconcile_owed(&self.destination).await? {
            return Ok(Some(true));
        }
        if self.settings.reconcile_interval.is_zero() {
            return Ok(None);
        }
        let last = self.state.last_reconcile(&self.destination).await?;
        let due = last
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .is_none_or(|t| {
                let age = chrono::Utc::now().signed_duration_since(t);
                age.to_std().unwrap_or_default() >= self.settings.reconcile_interval
            });
        Ok(due.then_some(false))
    }

    /// A full reconcile of a caught-up org, as a cycle of its own (the org stays `synced`
    /// meanwhile, as recorded by the cycle that caught up).
    async fn periodic_reconcile(&mut self, sides: &Sides, owed: bool) -> Result<Cycle, CycleError> {
        self.info(if owed {
            "full reconcile started: this release copies objects the previous one did not (Policyfiles)"
        } else {
            "periodic full reconcile started"
        });
        let started = Instant::now();
        let outcomes = reconcile(sides, self.settings.concurrency, self.settings.bulk_reads)
            .await
            .map_err(|e| self.unlisted(e))?;
        if let Some(m) = &self.settings.metrics {
            m.reconciled(started.elapsed());
        }
        let changed = named(&outcomes, false);
        let settled = self.settle(outcomes)?;
        self.info(&format!(
            "periodic full reconcile done: {} objects repaired{changed}",
            settled.written
        ));
        let mut report = Report {
            reconciled: true,
            ..Report::default()
        };
        report.settle(settled.release, settled.park);
        Ok(Cycle::now(report))
    }
}
