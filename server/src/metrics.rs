//! chef-sync-server's Prometheus metrics: requests by route pattern, method and status, and per
//! org the change log's length and newest id, read when scraped.
//!
//! Every label value comes from a closed set, whatever a client sends: the route is the
//! router's pattern (`/organizations/{org}/roles/{name}`) or `unmatched`, the method one of
//! the standard ones or `other`, the status one this server produced. An unauthenticated peer
//! can therefore not grow the registry, nor the `/metrics` body, by inventing methods or paths.

use std::sync::Arc;
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

/// `route`, `method`, `status`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The router's pattern, or `unmatched`.
    pub route: String,
    /// HTTP method, or `other`.
    pub method: &'static str,
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
    /// Request series only: what an unauthenticated scrape of the API listener sees.
    registry: Registry,
    /// Everything, the org-labelled feed gauges included: for `metrics_listen` or a
    /// `metrics_token` scrape, since org names are not for anyone on the network.
    private: Registry,
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
            private: Registry::with_prefix("chef_sync_server"),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            feed_entries: Family::default(),
            feed_last_seq: Family::default(),
        };
        for registry in [&mut m.registry, &mut m.private] {
            registry.register(
                "http_requests",
                "Requests by route pattern, method and status",
                m.requests.clone(),
            );
            registry.register(
                "http_request_duration_seconds",
                "Request latency by route pattern, method and status",
                m.latency.clone(),
            );
        }
        m.private.register(
            "feed_entries",
            "Entries in the org's change log (updated_since)",
            m.feed_entries.clone(),
        );
        m.private.register(
            "feed_last_seq",
            "Newest change id handed out in the org",
            m.feed_last_seq.clone(),
        );
        m
    }

    /// Sets the feed gauges to `sizes` (org, entries, newest id), dropping orgs no longer
    /// listed, so a deleted org leaves no series behind.
    pub fn observe_feeds(&self, sizes: &[(String, i64, i64)]) {
        self.feed_entries.clear();
        self.feed_last_seq.clear();
        for (org, entries, last_seq) in sizes {
            let label = OrgLabel { org: org.clone() };
            self.feed_entries.get_or_create(&label).set(*entries);
            self.feed_last_seq.get_or_create(&label).set(*last_seq);
        }
    }

    /// The text exposition (OpenMetrics, which Prometheus scrapes); `with_orgs` adds the
    /// org-labelled series.
    pub fn encode(&self, with_orgs: bool) -> String {
        let registry = if with_orgs {
            &self.private
        } else {
            &self.registry
        };
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
            text.clear();
        }
        text
    }
}

/// The label of a request method: one of a fixed set, so invented methods cannot add series.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    const KNOWN: [(Method, &str); 7] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::PATCH, "PATCH"),
    ];
    KNOWN
        .iter()
        .find(|(m, _)| m == method)
        .map_or("other", |(_, label)| label)
}

/// Middleware: counts and times every request.
pub async fn record(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let started = Instant::now();
    let response = next.run(req).await;
    let labels = RequestLabels {
        route,
        method,
        status: response.status().as_u16(),
    };
    metrics.requests.get_or_create(&labels).inc();
    metrics
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}
