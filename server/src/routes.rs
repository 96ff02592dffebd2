//! HTTP routes, one module per Chef resource.

mod bulk_write;
mod clients;
mod cookbook_artifacts;
mod cookbook_manifest;
mod cookbooks;
mod data;
mod depsolver;
mod documents;
mod environment_views;
mod environments;
mod file_store;
mod groups;
mod keys;
mod nodes;
mod objects;
mod organizations;
mod policies;
mod policy_document;
pub(crate) mod principals;
mod roles;
mod sandboxes;
mod search;
mod server_info;
mod status;
mod updated_since;
mod users;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::auth::{Actor, OrgAccess};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub use status::metrics_router;

/// All routes; unknown paths get a Chef 404 body.
pub fn router() -> Router<AppState> {
    let org = Router::new()
        .merge(organizations::org_router())
        .merge(roles::router())
        .merge(environments::router())
        .merge(environment_views::router())
        .merge(data::router())
        .merge(cookbooks::router())
        .merge(cookbook_artifacts::router())
        .merge(policies::router())
        .merge(depsolver::router())
        .merge(sandboxes::router())
        .merge(clients::router())
        .merge(keys::client_router())
        .merge(keys::org_user_router())
        .merge(groups::router())
        .merge(search::router())
        .merge(nodes::router())
        .merge(principals::router())
        .merge(updated_since::router())
        .merge(bulk_write::router());
    Router::new()
        .merge(status::router())
        .merge(server_info::router())
        .merge(users::router())
        .merge(file_store::router())
        .merge(keys::user_router())
        .merge(organizations::router())
        .nest("/organizations/{org}", org)
        .fallback(|| async { ApiError::NotFound("No such endpoint".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("Method not allowed for this endpoint".into())
        })
}

/// The org a request's path names (`/organizations/ORG/…`), read from the path once, by
/// [`routed_request`], for the request's span, authentication (clients are looked up in it)
/// and the [`OrgAccess`] extractor.
#[derive(Debug, Clone)]
pub struct RequestOrg(pub String);

/// The org named by `/organizations/ORG/...`.
fn org_in_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/organizations/")?;
    rest.split('/').next().filter(|s| !s.is_empty())
}

/// The request as the routes read it: one trailing `/` taken off its path (`/roles/` is
/// `/roles`, as Chef routes it; signatures are unaffected, Mixlib's canonical path drops it
/// too), and the org its path names recorded as [`RequestOrg`].
pub async fn routed_request(mut req: axum::extract::Request) -> axum::extract::Request {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') && !path.ends_with("//") {
        let trimmed = &path[..path.len() - 1];
        let rebuilt = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = rebuilt.parse::<axum::http::Uri>() {
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query = uri.into_parts().path_and_query;
            if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    if let Some(org) = org_in_path(req.uri().path()).map(str::to_owned) {
        req.extensions_mut().insert(RequestOrg(org));
    }
    req
}

/// Parses a JSON body into `T` with a Chef 400 on failure (any content type is accepted, as
/// Chef clients are not consistent about sending one).
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "a JSON request body is required".into(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))
}

/// A whole-number query parameter in `min..=max` (`default` when absent); 400 naming the
/// parameter and the range otherwise.
pub(crate) fn query_number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    name: &str,
    raw: Option<&str>,
    default: T,
    min: T,
    max: T,
) -> ApiResult<T> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.parse::<T>() {
        Ok(v) if v >= min && v <= max => Ok(v),
        _ => Err(ApiError::BadRequest(format!(
            "invalid {name} '{raw}': use a whole number from {min} to {max}"
        ))),
    }
}

/// `http://HOST` of the request, for `uri` fields, `Location` headers and file URLs; `https`
/// when a TLS proxy in front says so with `X-Forwarded-Proto`, so that the URLs handed out
/// lead back through the proxy.
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let scheme = match headers.get("x-forwarded-proto").map(|p| p.as_bytes()) {
        Some(p) if p.eq_ignore_ascii_case(b"https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// `http://HOST/organizations/ORG/COLLECTION`.
pub(crate) fn org_url(headers: &HeaderMap, org: &str, collection: &str) -> String {
    format!("{}/organizations/{org}/{collection}", base_url(headers))
}

/// The signed actor's standing in the org of the request's path, resolved once per request:
/// every org handler takes it as an argument instead of resolving it itself.
impl axum::extract::FromRequestParts<AppState> for OrgAccess {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let actor = parts
            .extensions
            .get::<Actor>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("org route reached without an actor".into()))?;
        let org = parts
            .extensions
            .get::<RequestOrg>()
            .map(|o| o.0.clone())
            .ok_or_else(|| ApiError::Internal("org route reached without an org".into()))?;
        OrgAccess::resolve(state, &actor, &org).await
    }
}

/// 200 with a JSON body.
pub(crate) fn ok(value: serde_json::Value) -> Response {
    respond(StatusCode::OK, value)
}

/// A JSON body with a status.
pub(crate) fn respond(status: StatusCode, value: serde_json::Value) -> Response {
    (status, axum::Json(value)).into_response()
}

/// 201 with `{"uri": uri}` and a `Location` header.
pub(crate) fn created(uri: String) -> Response {
    created_with(uri.clone(), serde_json::json!({ "uri": uri }))
}

/// 201 with a body and a `Location` header.
pub(crate) fn created_with(uri: String, body: serde_json::Value) -> Response {
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(v) = header::HeaderValue::from_str(&uri) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// `{"name": "BASE/…/name", …}`, the shape of every Chef listing.
pub(crate) fn listing(base: &str, names: &[String]) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .map(|n| (n.clone(), serde_json::Value::String(format!("{base}/{n}"))))
        .collect();
    serde_json::Value::Object(map)
}

/// Parses a stored JSON body (written by this server, so failure is an internal error).
pub(crate) fn stored(body: &str) -> ApiResult<serde_json::Value> {
    serde_json::from_str(body)
        .map_err(|e| ApiError::Internal(format!("stored JSON unreadable: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_is_taken_from_the_path() {
        assert_eq!(org_in_path("/organizations/acme/roles"), Some("acme"));
        assert_eq!(org_in_path("/organizations/acme"), Some("acme"));
        assert_eq!(org_in_path("/organizations/"), None);
        assert_eq!(org_in_path("/users/x"), None);
    }

    #[tokio::test]
    async fn routed_requests_lose_one_trailing_slash_and_name_their_org() {
        let req = axum::extract::Request::builder()
            .uri("/organizations/acme/roles/?x=1")
            .body(axum::body::Body::empty())
            .unwrap();
        let req = routed_request(req).await;
        assert_eq!(req.uri().path(), "/organizations/acme/roles");
        assert_eq!(req.uri().query(), Some("x=1"));
        assert_eq!(req.extensions().get::<RequestOrg>().unwrap().0, "acme");
        let req = axum::extract::Request::builder()
            .uri("/users/")
            .body(axum::body::Body::empty())
            .unwrap();
        let req = routed_request(req).await;
        assert_eq!(req.uri().path(), "/users");
        assert!(req.extensions().get::<RequestOrg>().is_none());
    }

    #[test]
    fn urls_follow_the_host_and_a_tls_proxys_scheme() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "chef.example:8443".parse().unwrap());
        assert_eq!(base_url(&headers), "http://chef.example:8443");
        headers.insert("x-forwarded-proto", "HTTPS".parse().unwrap());
        assert_eq!(base_url(&headers), "https://chef.example:8443");
        headers.insert("x-forwarded-proto", "gopher".parse().unwrap());
        assert_eq!(base_url(&headers), "http://chef.example:8443");
        assert_eq!(
            org_url(&HeaderMap::new(), "acme", "roles"),
            "http://127.0.0.1/organizations/acme/roles"
        );
    }
}
