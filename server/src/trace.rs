//! One tracing span per request with method, matched route, org, actor, status and latency.
//! Keys, signatures and bodies are never recorded.

use std::time::Duration;

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{Request, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{MakeSpan, OnResponse, TraceLayer};
use tracing::Span;

/// Records the authenticated actor on the current request span.
pub fn record_actor(name: &str) {
    Span::current().record("actor", tracing::field::display(name));
}

#[derive(Debug, Clone, Copy)]
pub struct RequestSpan;

impl MakeSpan<Body> for RequestSpan {
    fn make_span(&mut self, req: &Request<Body>) -> Span {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or("(unmatched)", MatchedPath::as_str);
        let span = tracing::info_span!(
            "request",
            method = %req.method(),
            route = %route,
            org = tracing::field::Empty,
            actor = tracing::field::Empty,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        if let Some(org) = req.extensions().get::<crate::routes::RequestOrg>() {
            span.record("org", tracing::field::display(&org.0));
        }
        span
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RecordResponse;

impl<B> OnResponse<B> for RecordResponse {
    fn on_response(self, response: &Response<B>, latency: Duration, span: &Span) {
        span.record("status", response.status().as_u16());
        span.record(
            "latency_ms",
            tracing::field::display(format_args!("{:.3}", latency.as_secs_f64() * 1000.0)),
        );
        tracing::info!(parent: span, "request finished");
    }
}

/// The tracing layer for the router.
pub fn layer() -> TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    RequestSpan,
    tower_http::trace::DefaultOnRequest,
    RecordResponse,
> {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_response(RecordResponse)
}
