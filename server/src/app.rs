//! The router and its state, shared by `main` and the tests.

use std::sync::Arc;

use axum::Router;
use axum::middleware;

use crate::config::Config;
use crate::store::Store;
use crate::{api_version, auth, routes};

/// Everything a request handler needs.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Settings, loaded once.
    pub config: Arc<Config>,
    /// The database.
    pub store: Store,
}

/// The complete HTTP application.
pub fn app(state: AppState) -> Router {
    routes::router()
        .layer(middleware::from_fn_with_state(state.clone(), auth::authenticate))
        .layer(middleware::from_fn(api_version::negotiate))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(
            |req: &axum::http::Request<axum::body::Body>| {
                let route = req
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default();
                tracing::info_span!("request", method = %req.method(), route = %route, path = %req.uri().path())
            },
        ))
        .with_state(state)
}
