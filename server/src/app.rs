//! The router, on top of the state, routes and middleware; shared by `main` and the tests.

use axum::Router;
use axum::middleware;

use crate::state::AppState;
use crate::{api_version, auth, rejection, routes, trace};

/// The complete HTTP application.
pub fn app(state: AppState) -> Router {
    let routes = routes::router()
        .layer(middleware::from_fn(api_version::accept_json))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(middleware::from_fn(api_version::negotiate))
        .layer(middleware::from_fn(rejection::chef_error_bodies))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::record,
        ))
        .layer(trace::layer())
        .with_state(state);
    Router::new()
        .fallback_service(routes)
        .layer(middleware::map_response(rejection::chef_allow_header))
        .layer(middleware::map_request(routes::routed_request))
}

/// The application of the `metrics_listen` listener: `/metrics` with every series.
pub fn metrics_app(state: AppState) -> Router {
    routes::metrics_router()
        .fallback(|| async { crate::error::ApiError::NotFound("No such endpoint".into()) })
        .with_state(state)
}
