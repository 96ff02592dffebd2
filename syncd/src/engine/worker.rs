//! One worker per org pair: bootstrap when there is no valid checkpoint, then follow the feed
//! (or reconcile periodically when the primary has none), park what fails for good, back off
//! as a whole while a server is down, and fail over to the next primary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Notify, watch};

use super::apply::{Applied, Sides, apply};
use super::apply::{Outcome, apply_batch};
use super::backoff::{RetryPolicy, delay, retry_reachable};
use super::feed::{self, FeedError, PAGE};
use super::plan::{Action, Change, coalesce};
use super::progress::Progress;
use super::reconcile::{Unlisted, reconcile};
use crate::chef_client::{ChefError, ChefServer};
use crate::logs::RotatingFile;
use crate::metrics::OrgMetrics;
use crate::state::{
    Checkpoint, MAX_STORED_TEXT, NEVER, OrgState, Parked, State, Status, UNAPPLIABLE_KEPT,
    timestamp,
};
use crate::text::bounded;

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
    /// Per-request retries.
    pub retry: RetryPolicy,
    /// Where the org's work is counted.
    pub metrics: Option<OrgMetrics>,
    /// Longest pause of the whole org while a server is down.
    pub max_org_backoff: Duration,
}

/// A feed entry being applied, as `unsynced-objects` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    /// Path.
    pub path: String,
    /// `write` or `delete`.
    pub action: String,
    /// Feed id.
    pub seq: Option<i64>,
}

/// What the daemon, the control socket and the health checks share with a worker.
#[derive(Debug)]
pub struct Handle {
    /// Wakes the worker (sync-start, sync-stop, reload).
    pub wake: Notify,
    /// Entries of the batch in flight.
    pub pending: std::sync::Mutex<Vec<Pending>>,
    /// When the worker last got something done.
    pub progress: Arc<Progress>,
    /// The org's primaries, in failover order.
    pub primaries: Vec<ChefServer>,
    /// The replica org.
    pub replica: ChefServer,
    /// `/readyz`'s last probe of both servers, reused for a moment (see `health`).
    pub probes: tokio::sync::Mutex<Option<crate::health::Probes>>,
}

impl Handle {
    /// The handle of a worker for these servers.
    pub fn new(primaries: Vec<ChefServer>, replica: ChefServer) -> Handle {
        Handle {
            wake: Notify::new(),
            pending: std::sync::Mutex::new(Vec::new()),
            progress: Arc::new(Progress::default()),
            primaries,
            replica,
            probes: tokio::sync::Mutex::new(None),
        }
    }
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
    resets: u32,
    last_reset: Option<Instant>,
    /// Empty answers in a row to a long-poll that came back at once (see
    /// [`Worker::caught_up`]).
    quick_answers: u32,
}

/// What the loop does after a cycle.
enum Next {
    Now,
    Sleep(Duration),
}

/// How a pause ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paused {
    /// Its time ran out.
    Elapsed,
    /// sync-start/stop, a reload or shutdown.
    Woken,
    /// The server probed accepts connections again.
    Probed,
}

/// A failed cycle: the message and whether the primary looked down (→ fail over).
struct CycleError {
    message: String,
    primary_down: bool,
    /// The base URL of a server that refused connections: probed during the backoff, so the
    /// org resumes as soon as it is back rather than when the backoff ends.
    unreachable: Option<String>,
}

impl CycleError {
    fn new(message: impl Into<String>) -> Self {
        CycleError {
            message: message.into(),
            primary_down: false,
            unreachable: None,
        }
    }
}

/// Entries of one feed page that can never be applied logged one by one; the rest of the page's
/// are logged as a count.
const REJECTED_LOGGED_PER_PAGE: usize = 10;

/// How often a pausing worker shows it is alive.
const BEAT_WHILE_PAUSED: Duration = Duration::from_secs(5);

/// How often a server that refused connections is probed while an org backs off.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// Objects named in one sync-log line about a batch; the rest are counted.
const NAMED_PER_LINE: usize = 20;

/// A long-poll answered sooner than this, empty, did not wait (see [`Worker::caught_up`]).
const QUICK_ANSWER: Duration = Duration::from_secs(1);

/// Whether `address` (`host:port`) accepts a TCP connection within [`PROBE_INTERVAL`].
async fn accepts(address: &str) -> bool {
    let connect = tokio::net::TcpStream::connect(address);
    matches!(
        tokio::time::timeout(PROBE_INTERVAL, connect).await,
        Ok(Ok(_))
    )
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

/// Why a reconcile found no org at `base` (it answered 404), and what fixes it: `org` is the
/// destination org for the replica, and the primary's org is read from its URL.
fn missing_org(side: &str, base: &str, org: &str) -> String {
    let fix = if side == "replica" {
        format!(
            "create org '{org}' on the replica, then run `chef-sync-ctl prepare-org {org} --replica`"
        )
    } else {
        let (server, source) = base
            .rsplit_once("/organizations/")
            .unwrap_or((base, "SOURCE"));
        format!(
            "check `source` in the configuration, or create org '{source}' on the primary and \
             run `chef-sync-ctl prepare-org {source} --server {server}`"
        )
    };
    format!(
        "{side} org not found: {base} answered 404 (the org does not exist there, or the sync \
         user cannot see it); {fix}"
    )
}

/// `host:port` of a base URL.
fn socket_address(base: &str) -> Option<String> {
    let url = reqwest::Url::parse(base).ok()?;
    Some(format!(
        "{}:{}",
        url.host_str()?,
        url.port_or_known_default()?
    ))
}

impl From<crate::state::StateError> for CycleError {
    fn from(e: crate::state::StateError) -> Self {
        CycleError::new(e.to_string())
    }
}

fn now() -> String {
    timestamp(chrono::Utc::now())
}

fn later(d: Duration) -> String {
    timestamp(chrono::Utc::now() + chrono::Duration::from_std(d).unwrap_or_default())
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
        }
    }

    fn sides(&self) -> Sides {
        Sides {
            primary: self.primaries[self.current % self.primaries.len()].clone(),
            replica: self.replica.clone(),
            retry: self.settings.retry.clone(),
            metrics: self.settings.metrics.clone(),
            progress: self.handle.progress.clone(),
        }
    }

    fn info(&self, message: &str) {
        tracing::info!(org = %self.destination, "{message}");
        self.log.line("INFO", message);
    }

    fn warn(&self, message: &str) {
        tracing::warn!(org = %self.destination, "{message}");
        self.log.line("WARN", message);
    }

    fn reconciled(&self, took: Duration) {
        if let Some(m) = &self.settings.metrics {
            m.reconciled(took);
        }
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Sleeps up to `d`, waking early for sync-start/stop, reload or shutdown; beats every
    /// few seconds meanwhile (a pause is the loop working as meant).
    async fn pause(&mut self, d: Duration) {
        let handle = self.handle.clone();
        let mut shutdown = self.shutdown.clone();
        let beating = async {
            loop {
                handle.progress.beat();
                tokio::time::sleep(BEAT_WHILE_PAUSED).await;
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = handle.wake.notified() => {}
            _ = shutdown.changed() => {}
            () = beating => {}
        }
    }

    /// Like [`Self::pause`], and also ends once `base` accepts TCP connections again.
    async fn pause_probing(&mut self, d: Duration, base: &str) -> Paused {
        let Some(address) = socket_address(base) else {
            self.pause(d).await;
            return Paused::Elapsed;
        };
        let progress = self.handle.progress.clone();
        let probe = async {
            loop {
                progress.beat();
                tokio::time::sleep(PROBE_INTERVAL).await;
                if accepts(&address).await {
                    return;
                }
            }
        };
        let handle = self.handle.clone();
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => Paused::Elapsed,
            _ = handle.wake.notified() => Paused::Woken,
            _ = shutdown.changed() => Paused::Woken,
            () = probe => Paused::Probed,
        }
    }

    /// Waits out a backoff from `base`, a server that refused connections, ending it early
    /// when the server accepts them again. Finding it back (by the probe, or by one last look
    /// when the backoff ran out) is written to the sync log and shown in `sync-status` at
    /// once: the org is being retried now, so it is no longer `error` with a stale reason.
    async fn wait_for_server(&mut self, wait: Duration, base: &str) {
        let back = match self.pause_probing(wait, base).await {
            Paused::Probed => true,
            Paused::Elapsed => match socket_address(base) {
                Some(address) => accepts(&address).await,
                None => false,
            },
            Paused::Woken => false,
        };
        if back {
            self.info(&format!("{base} accepts connections again; retrying now"));
            if let Err(e) = self.state.resume(&self.destination).await {
                tracing::error!(org = %self.destination, error = %e, "state database");
            }
        }
    }

    /// Runs until shutdown.
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
                    let _ = self
                        .state
                        .set_status(&self.destination, Status::Stopped, None, None)
                        .await;
                }
                self.pause(Duration::from_secs(3600)).await;
                continue;
            }
            if org.next_sync.is_some() {
                // The wait it named is over: the org is being worked on now (shown as `-`),
                // never a time in the past.
                let _ = self.state.set_next_sync(&self.destination, None).await;
            }
            match self.cycle(&org).await {
                Ok(Next::Now) => failures = 0,
                Ok(Next::Sleep(d)) => {
                    failures = 0;
                    self.pause(d).await;
                }
                Err(e) => {
                    failures += 1;
                    self.after_failure(e, failures).await;
                }
            }
        }
    }

    /// After a failed cycle: fails over when the primary is down and there is another one,
    /// records the error and when the next attempt comes, and waits for it (probing a server
    /// that refused connections, so that the org resumes as soon as it is back).
    async fn after_failure(&mut self, e: CycleError, failures: u32) {
        // Whatever answers next (another primary, this one restarted) is judged afresh.
        self.quick_answers = 0;
        let mut message = e.message;
        let failover = e.primary_down && self.primaries.len() > 1;
        if failover {
            self.current = (self.current + 1) % self.primaries.len();
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
        let _ = self
            .state
            .set_status(
                &self.destination,
                Status::Error,
                Some(&message),
                Some(&later(wait)),
            )
            .await;
        self.handle.pending.lock().map(|mut p| p.clear()).ok();
        match e.unreachable {
            // After a failover the next attempt goes elsewhere: nothing to probe.
            Some(base) if !failover => self.wait_for_server(wait, &base).await,
            _ => self.pause(wait).await,
        }
    }

    /// The source org's identity: its guid, or for servers without org objects the URL.
    async fn identity(&self, sides: &Sides) -> Result<String, CycleError> {
        // The first request of every cycle: a primary refusing connections is not waited
        // for here, so that the org fails over (or shows the outage) at once.
        match retry_reachable(&sides.retry, || sides.primary.get("")).await {
            Ok(Value::Object(org)) => Ok(org.get("guid").and_then(Value::as_str).map_or_else(
                || format!("url:{}", sides.primary.base()),
                |g| format!("guid:{g}"),
            )),
            Ok(_) | Err(ChefError::Malformed(_)) | Err(ChefError::NotFound) => {
                Ok(format!("url:{}", sides.primary.base()))
            }
            Err(e) => Err(self.failed("primary", &e)),
        }
    }

    fn failed(&self, side: &str, e: &ChefError) -> CycleError {
        let refused = matches!(
            e,
            ChefError::Transient {
                unreachable: true,
                ..
            }
        );
        let side = match refused.then(|| self.side_named_in(&e.to_string())) {
            Some(named @ ("primary" | "replica")) => named,
            _ => side,
        };
        let primary_down = side == "primary" && e.is_transient();
        CycleError {
            unreachable: refused.then(|| self.base_of(side)).flatten(),
            message: format!(
                "{side} {}: {e}",
                match e {
                    ChefError::Transient { .. } => "unavailable",
                    ChefError::Malformed(_) => "sent an unusable answer",
                    _ => "refused",
                }
            ),
            primary_down,
        }
    }

    /// A reconcile that could not list one side. A 404 there means the org is missing on
    /// that server (or hidden from the sync user): the message names the side, the URL and
    /// the fix, since nothing the daemon retries can repair it.
    fn unlisted(&self, u: Unlisted) -> CycleError {
        if !matches!(u.error, ChefError::NotFound) {
            return self.failed(u.side, &u.error);
        }
        let sides = self.sides();
        let base = match u.side {
            "replica" => sides.replica.base(),
            _ => sides.primary.base(),
        };
        CycleError::new(missing_org(u.side, base, &self.destination))
    }

    async fn cycle(&mut self, org: &OrgState) -> Result<Next, CycleError> {
        let sides = self.sides();
        let identity = self.identity(&sides).await?;
        let same = self
            .state
            .bind_primary(&self.destination, &identity, sides.primary.base())
            .await?;
        if !same && org.applied_seq.is_some() {
            self.warn(&format!(
                "the primary's identity changed ({identity}); a full reconcile follows"
            ));
        }
        let applied = if same { org.applied_seq } else { None };
        match applied {
            None => self.bootstrap(&sides).await,
            Some(seq) => self.follow(&sides, org.status, seq).await,
        }
    }

    /// The base URL of `side` (`primary` or `replica`).
    fn base_of(&self, side: &str) -> Option<String> {
        let sides = self.sides();
        match side {
            "primary" => Some(sides.primary.base().to_owned()),
            "replica" => Some(sides.replica.base().to_owned()),
            _ => None,
        }
    }

    /// Which server a transport error's URL points at: `primary`, `replica`, or `server` when
    /// both live at the same address.
    fn side_named_in(&self, message: &str) -> &'static str {
        let sides = self.sides();
        let origin = |base: &str| {
            let end = base
                .match_indices('/')
                .nth(2)
                .map_or(base.len(), |(i, _)| i);
            format!("{}/", &base[..end])
        };
        let primary = message.contains(&origin(sides.primary.base()));
        let replica = message.contains(&origin(sides.replica.base()));
        match (primary, replica) {
            (true, false) => "primary",
            (false, true) => "replica",
            _ => "server",
        }
    }

    /// Splits outcomes into what to release and what to park; a server that could not be
    /// reached at all fails the whole batch instead (nothing is checkpointed).
    fn settle(&self, outcomes: Vec<Outcome>) -> Result<(Checkpoint, usize), CycleError> {
        let mut cp = Checkpoint::default();
        let mut written = 0;
        for o in outcomes {
            let path = o.change.path.to_string();
            match o.result {
                Ok(applied) => {
                    if applied != Applied::Unchanged {
                        written += 1;
                    }
                    cp.release.push(path);
                }
                Err(ChefError::Transient {
                    unreachable: true,
                    message,
                    ..
                }) => {
                    let side = self.side_named_in(&message);
                    return Err(CycleError {
                        message: format!("{side} unreachable while applying {path}: {message}"),
                        // Only a dead primary is a reason to fail over to the next one.
                        primary_down: side != "replica",
                        unreachable: self.base_of(side),
                    });
                }
                Err(e) => {
                    let error = bounded(&e.to_string(), MAX_STORED_TEXT).into_owned();
                    self.warn(&format!("parked {path}: {error}"));
                    cp.park.push(Parked {
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
        Ok((cp, written))
    }

    async fn bootstrap(&mut self, sides: &Sides) -> Result<Next, CycleError> {
        let head = match feed::head(&sides.primary).await {
            Ok(h) => Some(h),
            Err(FeedError::Missing(why)) => {
                tracing::debug!(org = %self.destination, %why, "no feed; reconcile mode");
                None
            }
            Err(FeedError::Chef(e)) => return Err(self.failed("primary", &e)),
            Err(e) => {
                self.warn(&format!("{e}; copying in full without a feed position"));
                None
            }
        };
        let mode = if head.is_some() { "feed" } else { "reconcile" };
        let row = self.state.org(&self.destination).await?;
        let first = row.as_ref().and_then(|o| o.last_sync.as_ref()).is_none();
        // Retrying after a failure: the error stays visible until this attempt gets through.
        let still_failing = row
            .filter(|o| o.status == Status::Error)
            .and_then(|o| o.last_error);
        if head.is_some() || first {
            self.state
                .set_status(
                    &self.destination,
                    Status::Bootstrapping,
                    still_failing.as_deref(),
                    None,
                )
                .await?;
        }
        self.info(&match head {
            Some(seq) => format!("full reconcile started (mode {mode}, feed position {seq})"),
            None => format!("full reconcile started (mode {mode}, no feed position)"),
        });
        let started = Instant::now();
        let outcomes = reconcile(sides, self.settings.concurrency, self.settings.bulk_reads)
            .await
            .map_err(|e| self.unlisted(e))?;
        self.reconciled(started.elapsed());
        let total = outcomes.len();
        let changed = named(&outcomes, false);
        let (mut cp, written) = self.settle(outcomes)?;
        let parked = cp.park.len();
        cp.applied_seq = head;
        self.state.commit(&self.destination, &cp).await?;
        self.handle.progress.advanced();
        self.state
            .set_primary_seq(&self.destination, head, mode)
            .await?;
        self.state.reconciled(&self.destination).await?;
        self.info(&format!(
            "full reconcile done: {total} objects, {written} written, {parked} parked, {:.1} s{changed}",
            started.elapsed().as_secs_f64()
        ));
        self.bootstrapped(head, written).await
    }

    /// The status after a full copy: `synced` from the feed position it started at (the feed
    /// is followed from there at once); without a feed, `synced` when the pass found nothing
    /// to write, and the next pass after `poll_interval`.
    async fn bootstrapped(
        &mut self,
        head: Option<i64>,
        written: usize,
    ) -> Result<Next, CycleError> {
        if head.is_some() {
            self.state
                .set_status(&self.destination, Status::Synced, None, None)
                .await?;
            return Ok(Next::Now);
        }
        let status = if written == 0 {
            Status::Synced
        } else {
            Status::Syncing
        };
        let next = self.settings.poll_interval;
        self.state
            .set_status(&self.destination, status, None, Some(&later(next)))
            .await?;
        Ok(Next::Sleep(next))
    }

    async fn retry_parked(&mut self, sides: &Sides) -> Result<(), CycleError> {
        let due = self.state.due(&self.destination, &now()).await?;
        if due.is_empty() {
            return Ok(());
        }
        let mut cp = Checkpoint::default();
        for p in due {
            let Ok(path) = p.path.parse() else {
                // A path that breaks the grammar can never be applied; it stays visible.
                cp.park.push(Parked {
                    next_retry: NEVER.into(),
                    ..p
                });
                continue;
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
            if let Some(m) = &sides.metrics {
                m.outcome(&Outcome {
                    change: change.clone(),
                    result: result.clone(),
                });
            }
            match result {
                Ok(_) => {
                    sides.progress.advanced();
                    self.info(&format!("parked {} applied on retry", p.path));
                    cp.release.push(p.path);
                }
                Err(ChefError::Transient {
                    unreachable: true, ..
                }) => return Ok(()),
                Err(e) => {
                    let attempts = p.attempts + 1;
                    cp.park.push(Parked {
                        error: e.to_string(),
                        next_retry: later(delay(
                            Duration::from_secs(30),
                            Duration::from_secs(3600),
                            u32::try_from(attempts).unwrap_or(u32::MAX),
                        )),
                        ..p
                    });
                }
            }
        }
        self.state.commit(&self.destination, &cp).await?;
        Ok(())
    }

    async fn follow(
        &mut self,
        sides: &Sides,
        status: Status,
        applied: i64,
    ) -> Result<Next, CycleError> {
        self.retry_parked(sides).await?;
        // Long-poll only from a state known to be caught up. After a failure, a failover or a
        // batch the feed is asked without waiting, so that the status says at once where the
        // org stands instead of keeping the last one for a whole long-poll.
        let wait = if status == Status::Synced {
            self.settings.long_poll
        } else {
            Duration::ZERO
        };
        if !wait.is_zero() {
            // NEXT SYNC: when this wait ends at the latest (an entry ends it sooner).
            self.state
                .set_next_sync(&self.destination, Some(&later(wait)))
                .await?;
        }
        let asked = Instant::now();
        let handle = self.handle.clone();
        let mut shutdown = self.shutdown.clone();
        let page = tokio::select! {
            page = feed::fetch(&sides.primary, applied, wait) => page,
            _ = handle.wake.notified() => return Ok(Next::Now),
            _ = shutdown.changed() => return Ok(Next::Now),
        };
        let page = match page {
            Ok(p) => p,
            Err(FeedError::Missing(why)) => {
                self.warn(&format!(
                    "the primary's feed disappeared ({why}); switching to reconcile mode"
                ));
                self.state.drop_checkpoint(&self.destination).await?;
                return Ok(Next::Now);
            }
            Err(e @ (FeedError::Pruned(_) | FeedError::Backwards { .. })) => {
                self.state.drop_checkpoint(&self.destination).await?;
                return self.feed_reset(&e.to_string()).await;
            }
            Err(FeedError::Chef(e)) => return Err(self.failed("primary", &e)),
        };
        self.resets = 0;
        let head = page.head.or(page.last_id).unwrap_or(applied).max(applied);
        self.state
            .set_primary_seq(&self.destination, Some(head), "feed")
            .await?;
        if page.len == 0 {
            return self.caught_up(sides, applied, wait, asked.elapsed()).await;
        }
        self.apply_page(sides, page, applied).await
    }

    /// An empty page: the org is caught up. Except for a long-poll that came back empty at
    /// once: a primary stopping cleanly ends its long-polls that way, so the first such answer
    /// is not taken for `synced` but asked again at once (a stopped primary then refuses the
    /// connection, and the worker fails over or reports it). A second one in a row means the
    /// primary does not long-poll: it is then polled every `poll_interval`.
    async fn caught_up(
        &mut self,
        sides: &Sides,
        applied: i64,
        wait: Duration,
        took: Duration,
    ) -> Result<Next, CycleError> {
        let quick = !wait.is_zero() && took < QUICK_ANSWER;
        if quick {
            self.quick_answers = self.quick_answers.saturating_add(1);
            if self.quick_answers == 1 {
                return Ok(Next::Now);
            }
        } else if !wait.is_zero() {
            self.quick_answers = 0;
        }
        self.handle.progress.advanced();
        self.state
            .commit(
                &self.destination,
                &Checkpoint {
                    applied_seq: Some(applied),
                    ..Default::default()
                },
            )
            .await?;
        let (next, next_sync) = if quick || self.settings.long_poll.is_zero() {
            let d = self.settings.poll_interval;
            (Next::Sleep(d), Some(later(d)))
        } else {
            // Straight into the next long-poll, which records its own end.
            (Next::Now, None)
        };
        self.state
            .set_status(
                &self.destination,
                Status::Synced,
                None,
                next_sync.as_deref(),
            )
            .await?;
        self.periodic_reconcile(sides).await?;
        Ok(next)
    }

    /// Applies a page of entries and moves the checkpoint past it.
    async fn apply_page(
        &mut self,
        sides: &Sides,
        page: feed::Page,
        applied: i64,
    ) -> Result<Next, CycleError> {
        self.state
            .set_status(&self.destination, Status::Syncing, None, None)
            .await?;
        let changes = coalesce(page.changes.clone());
        if let Ok(mut pending) = self.handle.pending.lock() {
            *pending = changes
                .iter()
                .map(|c| Pending {
                    path: c.path.to_string(),
                    action: action_name(c.action).into(),
                    seq: c.seq,
                })
                .collect();
        }
        let outcomes = self.apply_all(sides, changes).await;
        let done = named(&outcomes, true);
        let (mut cp, written) = self.settle(outcomes)?;
        self.park_rejected(&mut cp, &page.rejected);
        cp.applied_seq = page.last_id;
        let committed = self.state.commit(&self.destination, &cp).await?;
        if committed.counted > 0 {
            self.warn(&format!(
                "{} feed entries that can never be applied were counted, not stored one by one \
                 (this org already has {UNAPPLIABLE_KEPT} stored; see unsynced-objects)",
                committed.counted
            ));
        }
        self.handle.progress.advanced();
        if let Ok(mut pending) = self.handle.pending.lock() {
            pending.clear();
        }
        self.info(&format!(
            "applied feed entries up to {} ({} entries, {written} written, {} parked){done}",
            page.last_id.unwrap_or(applied),
            page.len,
            cp.park.len()
        ));
        let status = if page.len < PAGE {
            Status::Synced
        } else {
            Status::Syncing
        };
        self.state
            .set_status(&self.destination, status, None, None)
            .await?;
        Ok(Next::Now)
    }

    /// Parks a page's entries that can never be applied (bad path or action). The first few
    /// are logged one by one, the rest in one line: a hostile page of a thousand such entries
    /// must not become a thousand log lines.
    fn park_rejected(&self, cp: &mut Checkpoint, rejected: &[feed::Rejected]) {
        for (i, r) in rejected.iter().enumerate() {
            if i < REJECTED_LOGGED_PER_PAGE {
                self.warn(&format!(
                    "parked feed entry {} ({}): {}",
                    r.seq, r.path, r.reason
                ));
            }
            cp.park.push(Parked {
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

    /// After the checkpoint was dropped because of the feed: reconcile now, unless the previous
    /// forced reconcile was under a minute ago, in which case the primary's feed is inconsistent
    /// and the org waits (doubling each time) before the next full pass.
    async fn feed_reset(&mut self, why: &str) -> Result<Next, CycleError> {
        let recent = self
            .last_reset
            .is_some_and(|t| t.elapsed() < Duration::from_secs(60));
        self.last_reset = Some(Instant::now());
        if !recent {
            self.resets = 0;
            self.warn(&format!("{why}; a full reconcile follows"));
            return Ok(Next::Now);
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
        self.state
            .set_status(
                &self.destination,
                Status::Error,
                Some(&message),
                Some(&later(wait)),
            )
            .await?;
        Ok(Next::Sleep(wait))
    }

    async fn apply_all(&self, sides: &Sides, changes: Vec<Change>) -> Vec<Outcome> {
        apply_batch(sides, changes, |_| None, self.settings.concurrency).await
    }

    async fn periodic_reconcile(&mut self, sides: &Sides) -> Result<(), CycleError> {
        let owed = self.state.reconcile_owed(&self.destination).await?;
        if self.settings.reconcile_interval.is_zero() && !owed {
            return Ok(());
        }
        let last = self.state.last_reconcile(&self.destination).await?;
        let due = owed
            || last
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                .is_none_or(|t| {
                    let age = chrono::Utc::now().signed_duration_since(t);
                    age.to_std().unwrap_or_default() >= self.settings.reconcile_interval
                });
        if !due {
            return Ok(());
        }
        self.info(if owed {
            "full reconcile started: this release copies objects the previous one did not (Policyfiles)"
        } else {
            "periodic full reconcile started"
        });
        let started = Instant::now();
        let outcomes = reconcile(sides, self.settings.concurrency, self.settings.bulk_reads)
            .await
            .map_err(|e| self.unlisted(e))?;
        self.reconciled(started.elapsed());
        let changed = named(&outcomes, false);
        let (cp, written) = self.settle(outcomes)?;
        self.state.commit(&self.destination, &cp).await?;
        self.state.reconciled(&self.destination).await?;
        self.info(&format!(
            "periodic full reconcile done: {written} objects repaired{changed}"
        ));
        Ok(())
    }
}

/// `: PATH what, …` for the objects a batch applied (all of them, or with `all` false only
/// the ones it wrote or deleted), up to [`NAMED_PER_LINE`], then how many more: the sync log
/// says what changed without a line per object. Empty when there is nothing to name.
fn named(outcomes: &[Outcome], all: bool) -> String {
    let mut applied: Vec<(Option<i64>, String, &str)> = outcomes
        .iter()
        .filter_map(|o| {
            let what = match &o.result {
                Ok(Applied::Written) => "written",
                Ok(Applied::Deleted) => "deleted",
                Ok(Applied::Unchanged) if all => "unchanged",
                _ => return None,
            };
            Some((o.change.seq, o.change.path.to_string(), what))
        })
        .collect();
    // Outcomes arrive as objects finish; the log reads in feed order (by path in a reconcile).
    applied.sort();
    if applied.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = applied
        .iter()
        .take(NAMED_PER_LINE)
        .map(|(_, path, what)| format!("{path} {what}"))
        .collect();
    let mut text = format!(": {}", shown.join(", "));
    if applied.len() > NAMED_PER_LINE {
        text.push_str(&format!(" and {} more", applied.len() - NAMED_PER_LINE));
    }
    text
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Write => "update",
        Action::Delete => "delete",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chef_sync_shared::ObjectPath;

    fn outcome(path: &str, result: Result<Applied, ChefError>) -> Outcome {
        Outcome {
            change: Change {
                path: path.parse::<ObjectPath>().unwrap(),
                action: Action::Write,
                seq: Some(1),
            },
            result,
        }
    }

    #[test]
    fn a_batch_names_its_objects_up_to_twenty_then_counts() {
        let few = vec![
            outcome("/roles/web", Ok(Applied::Written)),
            outcome("/roles/old", Ok(Applied::Deleted)),
            outcome("/roles/same", Ok(Applied::Unchanged)),
            outcome("/roles/bad", Err(ChefError::NotFound)),
        ];
        assert_eq!(
            named(&few, true),
            ": /roles/old deleted, /roles/same unchanged, /roles/web written"
        );
        assert_eq!(
            named(&few, false),
            ": /roles/old deleted, /roles/web written"
        );
        assert_eq!(named(&few[2..], false), "");
        // Finished in any order, named in feed order.
        let many: Vec<Outcome> = (0..25)
            .rev()
            .map(|i| Outcome {
                change: Change {
                    seq: Some(i),
                    ..outcome(&format!("/roles/r{i:02}"), Ok(Applied::Written)).change
                },
                result: Ok(Applied::Written),
            })
            .collect();
        let line = named(&many, true);
        assert!(
            line.starts_with(": /roles/r00 written, /roles/r01 written"),
            "{line}"
        );
        assert!(line.contains("/roles/r19 written and 5 more"), "{line}");
        assert!(!line.contains("/roles/r20"), "{line}");
    }

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

    #[test]
    fn a_missing_org_is_named_with_its_side_url_and_fix() {
        let replica = missing_org("replica", "http://127.0.0.1:9/organizations/acme", "acme");
        assert!(
            replica.starts_with(
                "replica org not found: http://127.0.0.1:9/organizations/acme answered 404"
            ),
            "{replica}"
        );
        assert!(
            replica.contains("`chef-sync-ctl prepare-org acme --replica`"),
            "{replica}"
        );
        let primary = missing_org("primary", "https://p1.example/organizations/src", "acme");
        assert!(
            primary.contains("`chef-sync-ctl prepare-org src --server https://p1.example`"),
            "{primary}"
        );
    }

    #[test]
    fn probes_go_to_the_host_and_port_of_a_base_url() {
        assert_eq!(
            socket_address("http://127.0.0.1:8080/organizations/acme").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            socket_address("https://chef.example/organizations/acme").as_deref(),
            Some("chef.example:443")
        );
        assert_eq!(
            socket_address("http://[::1]:9/").as_deref(),
            Some("[::1]:9")
        );
        assert_eq!(socket_address("not a url"), None);
    }
}
