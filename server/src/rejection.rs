//! Chef clients expect `{"error": [...]}` on every failure. Our handlers produce that through
//! `ApiError`; this middleware catches the rest (axum's own rejections of bad paths, queries,
//! methods) and turns their plain-text bodies into the same shape.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// Rejection texts are short; anything longer is cut.
const MAX_TEXT: usize = 4096;

/// Chef's `Allow` list: the methods a resource answers, `, `-separated, without the `HEAD`
/// every GET route also answers here.
fn chef_allow(allow: &str) -> String {
    allow
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty() && !m.eq_ignore_ascii_case("HEAD"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rewrites a 405's `Allow` header in Chef's form. axum adds the header outside every layer
/// of its routes, so this runs around the whole router.
pub async fn chef_allow_header(mut response: Response) -> Response {
    if let Some(allow) = response
        .headers()
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .map(chef_allow)
        && let Ok(value) = HeaderValue::from_str(&allow)
    {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// Wraps non-JSON error responses in a Chef error body, keeping the status.
pub async fn chef_error_bodies(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match to_bytes(body, MAX_TEXT).await {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).trim().to_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let json = serde_json::json!({ "error": [text] }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(json))
}

#[cfg(test)]
mod tests {
    #[test]
    fn allow_lists_read_as_chefs() {
        assert_eq!(super::chef_allow("GET,HEAD,POST"), "GET, POST");
        assert_eq!(super::chef_allow("GET,HEAD,PUT,DELETE"), "GET, PUT, DELETE");
    }
}
