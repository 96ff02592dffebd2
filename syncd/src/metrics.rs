//! chef-syncd's Prometheus metrics. Labels are bounded: the destination org (from the config),
//! the peer (`primary`, `replica`), the object type, the action and the HTTP status; never an
//! object name. Counters and histograms are updated as work happens; the per-org gauges are
//! read from the state database when scraped, so they say exactly what `sync-status` says.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::OrgState;

/// `org`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OrgLabel {
    /// Destination org.
    pub org: String,
}

/// `org`, `type`, `action`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    /// Destination org.
    pub org: String,
    /// `role`, `environment`, `data_bag`, `data_bag_item`, `cookbook_version`.
    pub r#type: String,
    /// `write`, `delete`; for applied objects also `unchanged`.
    pub action: String,
}

/// `org`, `peer`, `status`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Destination org.
    pub org: String,
    /// `primary` or `replica`.
    pub peer: String,
    /// The HTTP status, or `error` when no answer came.
    pub status: String,
}

/// `org`, `peer`, `direction`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransferLabels {
    /// Destination org.
    pub org: String,
    /// `primary` or `replica`.
    pub peer: String,
    /// `received` or `sent`.
    pub direction: String,
}

fn seconds_histogram() -> Histogram {
    // 1 ms … ~33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

fn reconcile_histogram() -> Histogram {
    // 0.1 s … ~55 min.
    Histogram::new(exponential_buckets(0.1, 2.0, 16))
}

/// Every metric of the daemon.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    applied_seq: Family<OrgLabel, Gauge>,
    primary_seq: Family<OrgLabel, Gauge>,
    seq_lag: Family<OrgLabel, Gauge>,
    since_sync: Family<OrgLabel, Gauge<f64, AtomicU64>>,
    parked: Family<OrgLabel, Gauge>,
    applied: Family<ObjectLabels, Counter>,
    failed: Family<ObjectLabels, Counter>,
    bytes: Family<TransferLabels, Counter>,
    requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
    retries: Family<OrgLabel, Counter>,
    reconciles: Family<OrgLabel, Counter>,
    reconcile_seconds: Family<OrgLabel, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// The families, registered under `chef_sync_`.
    pub fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("chef_sync"),
            applied_seq: Family::default(),
            primary_seq: Family::default(),
            seq_lag: Family::default(),
            since_sync: Family::default(),
            parked: Family::default(),
            applied: Family::default(),
            failed: Family::default(),
            bytes: Family::default(),
            requests: Family::new_with_constructor(seconds_histogram),
            retries: Family::default(),
            reconciles: Family::default(),
            reconcile_seconds: Family::new_with_constructor(reconcile_histogram),
        };
        m.register_positions();
        m.register_work();
        m
    }

    /// Where each org stands: feed positions, lag, parked objects.
    fn register_positions(&mut self) {
        let m = self;
        m.registry.register(
            "applied_seq",
            "Newest primary feed id applied to the replica",
            m.applied_seq.clone(),
        );
        m.registry.register(
            "primary_seq",
            "Newest feed id the primary reported",
            m.primary_seq.clone(),
        );
        m.registry.register(
            "seq_lag",
            "Feed entries the replica is behind the primary",
            m.seq_lag.clone(),
        );
        m.registry.register(
            "seconds_since_last_sync",
            "Seconds since the org last completed a sync cycle",
            m.since_sync.clone(),
        );
        m.registry.register(
            "parked_objects",
            "Objects that failed and wait for a retry",
            m.parked.clone(),
        );
    }

    /// What the workers did: objects, bytes, requests, retries, reconciles.
    fn register_work(&mut self) {
        let m = self;
        m.registry.register(
            "objects_applied",
            "Objects applied to the replica, by type and action",
            m.applied.clone(),
        );
        m.registry.register(
            "objects_failed",
            "Objects that could not be applied, by type and action",
            m.failed.clone(),
        );
        m.registry.register(
            "bytes_transferred",
            "Bytes of request and answer bodies, by peer and direction",
            m.bytes.clone(),
        );
        m.registry.register(
            "request_duration_seconds",
            "Chef API requests by peer and status (feed long-polls excluded)",
            m.requests.clone(),
        );
        m.registry.register(
            "retries",
            "Requests retried after a transient failure",
            m.retries.clone(),
        );
        m.registry.register(
            "reconcile_runs",
            "Full reconciles (bootstrap, periodic, after a feed reset)",
            m.reconciles.clone(),
        );
        m.registry.register(
            "reconcile_duration_seconds",
            "Duration of full reconciles",
            m.reconcile_seconds.clone(),
        );
    }

    /// The handle an org's worker and its servers record through.
    pub fn org(self: &Arc<Self>, org: &str) -> OrgMetrics {
        OrgMetrics {
            metrics: self.clone(),
            org: org.to_owned(),
        }
    }

    /// Sets an org's gauges from its state row and its count of parked objects.
    pub fn observe_org(&self, row: &OrgState, parked: usize) {
        let label = OrgLabel {
            org: row.destination.clone(),
        };
        let applied = row.applied_seq.unwrap_or(0);
        let primary = row.primary_seq.unwrap_or(applied);
        self.applied_seq.get_or_create(&label).set(applied);
        self.primary_seq.get_or_create(&label).set(primary);
        self.seq_lag
            .get_or_create(&label)
            .set((primary - applied).max(0));
        // Never synced: NaN, which Prometheus shows as such rather than as a small number.
        let since = row
            .last_sync
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(f64::NAN, |t| {
                let age = chrono::Utc::now() - t.with_timezone(&chrono::Utc);
                age.num_milliseconds() as f64 / 1000.0
            });
        self.since_sync.get_or_create(&label).set(since);
        self.parked
            .get_or_create(&label)
            .set(i64::try_from(parked).unwrap_or(i64::MAX));
    }

    /// The text exposition (OpenMetrics, which Prometheus scrapes).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// One org's view of the metrics.
#[derive(Debug, Clone)]
pub struct OrgMetrics {
    metrics: Arc<Metrics>,
    org: String,
}

impl OrgMetrics {
    /// Counts one object applied (`action`: `write`, `delete` or `unchanged`) or, with `ok`
    /// false, one that failed (`action`: what was attempted), of type `kind`.
    pub fn outcome(&self, kind: &str, action: &str, ok: bool) {
        let family = if ok {
            &self.metrics.applied
        } else {
            &self.metrics.failed
        };
        family
            .get_or_create(&ObjectLabels {
                org: self.org.clone(),
                r#type: kind.to_owned(),
                action: action.to_owned(),
            })
            .inc();
    }

    /// Records one request to `peer`: its status (`None`: no answer), duration (`None`: a
    /// long-poll, kept out of the latency histogram) and body sizes.
    pub fn request(
        &self,
        peer: &str,
        status: Option<u16>,
        took: Option<Duration>,
        sent: usize,
        received: usize,
    ) {
        if let Some(took) = took {
            self.metrics
                .requests
                .get_or_create(&RequestLabels {
                    org: self.org.clone(),
                    peer: peer.to_owned(),
                    status: status.map_or_else(|| "error".to_owned(), |s| s.to_string()),
                })
                .observe(took.as_secs_f64());
        }
        self.transferred(peer, "sent", sent);
        self.transferred(peer, "received", received);
    }

    /// Adds body bytes moved to or from `peer` (`direction`: `sent` or `received`).
    pub fn transferred(&self, peer: &str, direction: &str, bytes: usize) {
        if bytes == 0 {
            return;
        }
        self.metrics
            .bytes
            .get_or_create(&TransferLabels {
                org: self.org.clone(),
                peer: peer.to_owned(),
                direction: direction.to_owned(),
            })
            .inc_by(bytes as u64);
    }

    /// Counts one retry.
    pub fn retried(&self) {
        self.metrics
            .retries
            .get_or_create(&OrgLabel {
                org: self.org.clone(),
            })
            .inc();
    }

    /// Records a finished full reconcile.
    pub fn reconciled(&self, took: Duration) {
        let label = OrgLabel {
            org: self.org.clone(),
        };
        self.metrics.reconciles.get_or_create(&label).inc();
        self.metrics
            .reconcile_seconds
            .get_or_create(&label)
            .observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_requests_and_reconciles_show_in_the_exposition() {
        let metrics = Arc::new(Metrics::new());
        let acme = metrics.org("acme");
        acme.outcome("role", "write", true);
        acme.outcome("data_bag_item", "delete", false);
        acme.request("primary", Some(200), Some(Duration::from_millis(3)), 0, 120);
        acme.request("replica", None, Some(Duration::from_secs(2)), 50, 0);
        acme.request("primary", Some(200), None, 0, 10);
        acme.retried();
        acme.reconciled(Duration::from_secs(3));
        let text = metrics.encode();
        for line in [
            r#"chef_sync_objects_applied_total{org="acme",type="role",action="write"} 1"#,
            r#"chef_sync_objects_failed_total{org="acme",type="data_bag_item",action="delete"} 1"#,
            r#"chef_sync_bytes_transferred_total{org="acme",peer="primary",direction="received"} 130"#,
            r#"chef_sync_bytes_transferred_total{org="acme",peer="replica",direction="sent"} 50"#,
            r#"chef_sync_request_duration_seconds_count{org="acme",peer="primary",status="200"} 1"#,
            r#"chef_sync_request_duration_seconds_count{org="acme",peer="replica",status="error"} 1"#,
            r#"chef_sync_retries_total{org="acme"} 1"#,
            r#"chef_sync_reconcile_runs_total{org="acme"} 1"#,
            r#"chef_sync_reconcile_duration_seconds_sum{org="acme"} 3.0"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
