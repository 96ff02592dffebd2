//! chef-sync-server's Prometheus metrics: requests by route pattern, method and status (the
//! route is the router's pattern, `/organizations/{org}/roles/{name}`, so labels stay
//! bounded), and per org the change log's length and newest id, read when scraped.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::app::AppState;

/// `route`, `method`, `status`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The router's pattern, or `unmatched`.
    pub route: String,
    /// HTTP method.
    pub method: String,
    /// HTTP status.
    pub status: u16,
}

/// `org`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OrgLabel {
    /// Org name.
    pub org: String,
}

fn latency_histogram() -> Histogram {
    // 0.1 ms … ~3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// Every metric of the server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
    feed_entries: Family<OrgLabel, Gauge>,
    feed_last_seq: Family<OrgLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// The families, registered under `chef_sync_server_`.
    pub fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("chef_sync_server"),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            feed_entries: Family::default(),
            feed_last_seq: Family::default(),
        };
        m.registry.register(
            "http_requests",
            "Requests by route pattern, method and status",
            m.requests.clone(),
        );
        m.registry.register(
            "http_request_duration_seconds",
            "Request latency by route pattern, method and status",
            m.latency.clone(),
        );
        m.registry.register(
            "feed_entries",
            "Entries in the org's change log (updated_since)",
            m.feed_entries.clone(),
        );
        m.registry.register(
            "feed_last_seq",
            "Newest change id handed out in the org",
            m.feed_last_seq.clone(),
        );
        m
    }

    /// Sets the feed gauges of one org.
    pub fn observe_feed(&self, org: &str, entries: i64, last_seq: i64) {
        let label = OrgLabel {
            org: org.to_owned(),
        };
        self.feed_entries.get_or_create(&label).set(entries);
        self.feed_last_seq.get_or_create(&label).set(last_seq);
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

/// Middleware: counts and times every request.
pub async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    let labels = RequestLabels {
        route,
        method,
        status: response.status().as_u16(),
    };
    state.metrics.requests.get_or_create(&labels).inc();
    state
        .metrics
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}
