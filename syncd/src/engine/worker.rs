//! One worker per org pair: the loop that runs sync cycles (`cycle`, `follow`) and records
//! each one's report in the state database, the pauses between them, and the failover to the
//! next primary while a server is down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::handle::Handle;
use super::offers::Offer;
use super::outcomes::{CycleError, Next};
use super::sides::Sides;
use crate::chef_client::ChefServer;
use crate::chef_client::retry::delay;
use crate::logs::RotatingFile;
use crate::metrics::OrgMetrics;
use crate::state::{Report, Standing, State, Status};

/// Timing and limits of a worker.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Pause between polls when the primary does not long-poll (and between reconcile passes
    /// in reconcile mode).
    pub poll_interval: Duration,
    /// Between periodic full reconciles (zero: never).
    pub reconcile_interval: Duration,
    /// Objects in flight.
    pub concurrency: usize,
    /// `wait` sent with feed requests.
    pub long_poll: Duration,
    /// Full reconciles read documents through the primary's search, a page at a time.
    pub bulk_reads: bool,
    /// Feed pages with documents and the replica's bulk write, where offered.
    pub bulk: bool,
    /// Where the org's work is counted.
    pub metrics: Option<OrgMetrics>,
    /// Longest pause of the whole org while a server is down.
    pub max_org_backoff: Duration,
}

/// One org pair's worker.
#[derive(Debug)]
pub struct Worker {
    /// Destination org.
    pub destination: String,
    /// The primaries, in failover order (each already pointing at the source org).
    pub primaries: Vec<ChefServer>,
    /// The replica org.
    pub replica: ChefServer,
    /// State database.
    pub state: State,
    /// Shared with the daemon.
    pub handle: Arc<Handle>,
    /// `sync-ORG.log`.
    pub log: RotatingFile,
    /// Timing.
    pub settings: Settings,
    /// Flips to true on shutdown or reload.
    pub shutdown: watch::Receiver<bool>,
    current: usize,
    /// Feed resets (backwards ids, 410) that came right after the previous forced reconcile,
    /// and when the last one was forced: a primary whose feed keeps misbehaving gets a growing
    /// pause instead of a reconcile loop.
    pub(super) resets: u32,
    pub(super) last_reset: Option<Instant>,
    /// Empty answers in a row to a long-poll that came back at once (see `follow`).
    pub(super) quick_answers: u32,
    /// Whether each primary's feed pages carry documents (forgotten when it fails over or
    /// changes identity).
    pub(super) feed_documents: Vec<Arc<Offer>>,
    /// Whether the replica offers the bulk write.
    bulk_write: Arc<Offer>,
}

/// An offer not to be used (`bulk = false`).
fn never() -> Arc<Offer> {
    Arc::new(Offer::never())
}

/// The pause after `failures` failed cycles in a row of an org with `primaries` primaries.
/// Failing over to a primary not yet tried in this run of failures happens at once: one
/// primary stopping, cleanly or not, must not cost a backoff while the next one answers. Only
/// after every primary was tried does the org back off (1 s doubling to `max`, jittered).
fn backoff(primaries: usize, failover: bool, failures: u32, max: Duration) -> Duration {
    let others = u32::try_from(primaries.saturating_sub(1)).unwrap_or(u32::MAX);
    if failover && failures <= others {
        return Duration::ZERO;
    }
    let attempt = failures.saturating_sub(others).clamp(1, 16);
    delay(Duration::from_secs(1), max, attempt)
}

impl Worker {
    /// A worker; call [`Worker::run`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        destination: String,
        primaries: Vec<ChefServer>,
        replica: ChefServer,
        state: State,
        handle: Arc<Handle>,
        log: RotatingFile,
        settings: Settings,
        shutdown: watch::Receiver<bool>,
    ) -> Worker {
        let primaries_len = primaries.len();
        Worker {
            destination,
            primaries,
            replica,
            state,
            handle,
            log,
            settings,
            shutdown,
            current: 0,
            resets: 0,
            last_reset: None,
            quick_answers: 0,
            feed_documents: (0..primaries_len).map(|_| Arc::default()).collect(),
            bulk_write: Arc::default(),
        }
    }

    /// The current primary and the replica.
    pub(super) fn sides(&self) -> Sides {
        Sides {
            primary: self.primaries[self.current % self.primaries.len()].clone(),
            replica: self.replica.clone(),
            metrics: self.settings.metrics.clone(),
            progress: self.handle.progress.clone(),
            bulk_write: if self.settings.bulk {
                self.bulk_write.clone()
            } else {
                never()
            },
        }
    }

    /// Whether to ask the current primary for feed pages with documents.
    pub(super) fn feed_documents(&self) -> Arc<Offer> {
        match self.feed_documents.get(self.current) {
            Some(offer) if self.settings.bulk => offer.clone(),
            _ => never(),
        }
    }

    pub(super) fn info(&self, message: &str) {
        tracing::info!(org = %self.destination, "{message}");
        self.log.line("INFO", message);
    }

    pub(super) fn warn(&self, message: &str) {
        tracing::warn!(org = %self.destination, "{message}");
        self.log.line("WARN", message);
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Runs until shutdown: a cycle, its report recorded, the pause it asked for.
    pub async fn run(mut self) {
        let mut failures: u32 = 0;
        while !self.stopping() {
            self.handle.progress.beat();
            let org = match self.state.org(&self.destination).await {
                Ok(Some(org)) => org,
                Ok(None) => {
                    self.warn("no state row for this org; stopping its worker");
                    return;
                }
                Err(e) => {
                    tracing::error!(org = %self.destination, error = %e, "state database");
                    self.pause(Duration::from_secs(5)).await;
                    continue;
                }
            };
            if !org.started {
                if org.status != Status::Stopped {
                    let stopped = Report::standing(Standing::ok(Status::Stopped));
                    let _ = self.state.record(&self.destination, &stopped).await;
                }
                self.handle.working(None);
                self.pause(Duration::from_secs(3600)).await;
                continue;
            }
            let done = match self.cycle(&org).await {
                Ok(cycle) => {
                    let (head, left) = (cycle.report.head, cycle.report.standing.is_some());
                    let recorded = self.record(&cycle.report).await;
                    recorded
                        .map(|()| (cycle.next, left))
                        .map_err(|e| e.heard(head))
                }
                Err(e) => Err(e),
            };
            self.handle.working(None);
            self.handle.heard(None);
            self.handle.in_flight(Vec::new());
            match done {
                Ok((next, left_a_status)) => {
                    failures = 0;
                    if left_a_status {
                        // The recorded status is current again.
                        self.handle.error_cleared(false);
                    }
                    if let Next::Sleep(d) = next {
                        self.pause(d).await;
                    }
                }
                Err(e) => {
                    failures += 1;
                    self.after_failure(e, failures).await;
                }
            }
        }
    }

    /// Records a cycle's report: everything it changed, in one transaction.
    async fn record(&self, report: &Report) -> Result<(), CycleError> {
        let committed = self.state.record(&self.destination, report).await?;
        if committed.counted > 0 {
            self.warn(&format!(
                "{} feed entries that can never be applied were counted, not stored one by one \
                 (this org already has {} stored; see unsynced-objects)",
                committed.counted,
                crate::state::UNAPPLIABLE_KEPT
            ));
        }
        Ok(())
    }

    /// After a failed cycle: fails over when the primary is down and there is another one,
    /// records the error, and waits for the next attempt (probing a server that refused
    /// connections, so that the org resumes as soon as it is back).
    async fn after_failure(&mut self, e: CycleError, failures: u32) {
        // Whatever answers next (another primary, this one restarted) is judged afresh.
        self.quick_answers = 0;
        let mut message = e.message;
        let failover = e.primary_down && self.primaries.len() > 1;
        if failover {
            self.current = (self.current + 1) % self.primaries.len();
            // Another server answers now: what it offers is learned afresh.
            self.feed_documents[self.current].forget();
            message = format!(
                "{message}; failing over to {}",
                self.primaries[self.current].base()
            );
        }
        let wait = backoff(
            self.primaries.len(),
            failover,
            failures,
            self.settings.max_org_backoff,
        );
        let when = if wait.is_zero() {
            "retrying now".to_owned()
        } else {
            format!("retrying in {} s", wait.as_secs())
        };
        self.warn(&format!("{message} ({when})"));
        let failed = Report {
            head: e.head,
            ..Report::standing(Standing {
                status: Status::Error,
                error: Some(message),
            })
        };
        let _ = self.state.record(&self.destination, &failed).await;
        self.handle.error_cleared(false);
        match e.unreachable {
            // After a failover the next attempt goes elsewhere: nothing to probe.
            Some(origin) if !failover => self.wait_for_server(wait, &origin.base).await,
            _ => self.pause(wait).await,
        }
    }

    /// The base URL of `side`.
    pub(super) fn base_of(&self, side: crate::chef_client::Peer) -> String {
        match side {
            crate::chef_client::Peer::Primary => {
                self.primaries[self.current % self.primaries.len()].base()
            }
            crate::chef_client::Peer::Replica => self.replica.base(),
        }
        .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failover_to_an_untried_primary_goes_at_once() {
        let max = Duration::from_secs(300);
        assert_eq!(backoff(3, true, 1, max), Duration::ZERO);
        assert_eq!(backoff(3, true, 2, max), Duration::ZERO);
        // Every primary tried: back off from 1 s again.
        let third = backoff(3, true, 3, max);
        assert!(third >= Duration::from_secs(1) && third < Duration::from_secs(3));
        // One primary, or a failure that is not the primary's: the usual backoff.
        assert!(backoff(1, false, 1, max) >= Duration::from_secs(1));
        assert!(backoff(2, false, 1, max) >= Duration::from_secs(1));
    }
}
