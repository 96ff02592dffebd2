//! `GET /server_api_version` and `GET /license`: what a Chef client or tool asks a server
//! about itself, answered as Chef Infra Server does (signed, any authenticated actor).

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use crate::api_version;
use crate::error::ApiResult;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/server_api_version", get(server_api_version))
        .route("/license", get(license))
}

async fn server_api_version() -> Response {
    super::ok(json!({
        "min_api_version": api_version::MIN,
        "max_api_version": api_version::MAX,
    }))
}

/// chef-sync-server has no node licence: the limit is never exceeded.
async fn license(State(state): State<AppState>) -> ApiResult<Response> {
    let nodes = state.store.node_count().await?;
    Ok(super::ok(json!({
        "limit_exceeded": false,
        "node_license": i64::MAX,
        "node_count": nodes,
        "upgrade_url": "",
    })))
}
