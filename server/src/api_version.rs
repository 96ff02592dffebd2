//! `X-Ops-Server-API-Version` negotiation: 0 to 2 are served, anything else is 406.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Oldest API version served.
pub const MIN: i64 = 0;
/// Newest API version served.
pub const MAX: i64 = 2;

/// The 406 for a version outside [`MIN`]..=[`MAX`].
fn unsupported(requested: String) -> ApiError {
    ApiError::UnsupportedApiVersion {
        requested,
        min: MIN,
        max: MAX,
    }
}

/// The negotiated API version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersion(pub i64);

fn info(request: &str, response: &str) -> Option<HeaderValue> {
    let json = format!(
        r#"{{"min_version":"{MIN}","max_version":"{MAX}","request_version":"{request}","response_version":"{response}"}}"#
    );
    HeaderValue::from_str(&json).ok()
}

fn tag(mut response: Response, request: &str, answered: &str) -> Response {
    if let Some(v) = info(request, answered) {
        response
            .headers_mut()
            .insert("x-ops-server-api-version", v.clone());
        response.headers_mut().insert("x-ops-server-api-info", v);
    }
    response
}

/// Whether an `Accept` header admits `application/json` (an absent one does).
fn accepts_json(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let media = range.split(';').next().unwrap_or("").trim();
        media.is_empty()
            || media.eq_ignore_ascii_case("application/json")
            || media.eq_ignore_ascii_case("application/*")
            || media == "*/*"
    })
}

/// Middleware: 406 for a request whose `Accept` admits no JSON, as Chef's resources (which
/// provide only `application/json`) answer it. What does not answer JSON is not checked: file
/// downloads and uploads (bytes), `/metrics` (Prometheus text) and `/_status`.
pub async fn accept_json(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let answers_json =
        !path.starts_with("/file_store/") && path != "/metrics" && path != "/_status";
    let refused = answers_json
        && req
            .headers()
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| !accepts_json(accept));
    if refused {
        return ApiError::NotAcceptable("This resource answers application/json only".into())
            .into_response();
    }
    next.run(req).await
}

/// Middleware: parses the header (absent means 0), rejects unsupported versions with 406, and
/// tags every response with the negotiation result.
pub async fn negotiate(mut req: Request, next: Next) -> Response {
    let raw = req
        .headers()
        .get("x-ops-server-api-version")
        .map(|v| v.to_str().unwrap_or("").trim().to_owned());
    let parsed = match &raw {
        None => Some(0),
        Some(s) => s.parse::<i64>().ok(),
    };
    match parsed {
        Some(v) if (MIN..=MAX).contains(&v) => {
            req.extensions_mut().insert(ApiVersion(v));
            let text = v.to_string();
            tag(next.run(req).await, &text, &text)
        }
        Some(v) => tag(
            unsupported(v.to_string()).into_response(),
            &v.to_string(),
            "-1",
        ),
        None => tag(
            unsupported(raw.unwrap_or_default()).into_response(),
            "-1",
            "-1",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::accepts_json;

    #[test]
    fn accept_headers_that_admit_json() {
        for ok in [
            "application/json",
            "*/*",
            "application/*;q=0.5",
            "text/html, application/json",
            "",
        ] {
            assert!(accepts_json(ok), "{ok}");
        }
        for refused in ["application/xml", "text/html", "text/*"] {
            assert!(!accepts_json(refused), "{refused}");
        }
    }
}
