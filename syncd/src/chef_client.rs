//! Every request chef-syncd makes to a Chef server: signed (Mixlib::Authentication), with a
//! timeout, retried here when it failed for a reason that may pass, and with each failure
//! classified once, here, into what the engine does with it, naming the side it came from.

pub mod retry;

use std::sync::Arc;
use std::time::Duration;

use chef_sync_shared::signing::{self, RequestToSign, SigningVersion, sign_request};
use chef_sync_shared::{ErrorBody, PrivateKey};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::bag_writes::BagWrites;
use crate::metrics::OrgMetrics;
use crate::tls_trust::Http;
use retry::{Persistence, RetryPolicy};

/// Which end of an org pair a server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// Where objects come from.
    Primary,
    /// Where they go.
    Replica,
}

impl Peer {
    /// `primary` or `replica`, for messages and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Peer::Primary => "primary",
            Peer::Replica => "replica",
        }
    }
}

/// The server a failure came from: its side and base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Which end of the org pair.
    pub peer: Peer,
    /// Its base URL.
    pub base: String,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The API version we read and write with: v1 (segment manifests) is what every Chef server,
/// goiardi included, understands.
pub const API_VERSION: &str = "1";

/// Largest JSON body accepted from a server (a cookbook manifest or a feed page).
const MAX_JSON: usize = 16 * 1024 * 1024;

/// How a failed request is handled.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChefError {
    /// Worth retrying: network failure, timeout, 5xx, 429.
    #[error("{message}")]
    Transient {
        /// Why.
        message: String,
        /// `Retry-After`, when the server sent one.
        retry_after: Option<Duration>,
        /// The server could not be reached at all (connection refused, DNS, TLS).
        unreachable: bool,
        /// The server that failed, set by the [`ChefServer`] that made the request.
        from: Option<Origin>,
    },
    /// 404.
    #[error("not found")]
    NotFound,
    /// 410 (the feed was pruned past our position).
    #[error("gone: {0}")]
    Gone(String),
    /// Refused for good: 400, 401, 403, 405, 409, 412, ….
    #[error("{status}: {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The server's error message.
        message: String,
    },
    /// A 2xx whose body is not the JSON expected (goiardi answers 200 with an empty body for
    /// paths it does not know): never taken as success.
    #[error("malformed answer: {0}")]
    Malformed(String),
}

impl ChefError {
    /// A transient failure not yet tied to a server.
    pub fn transient(message: impl Into<String>, unreachable: bool) -> ChefError {
        ChefError::Transient {
            message: message.into(),
            retry_after: None,
            unreachable,
            from: None,
        }
    }

    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, ChefError::Transient { .. })
    }

    /// Whether the failure is a server that could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ChefError::Transient {
                unreachable: true,
                ..
            }
        )
    }

    /// The server a transient failure came from.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            ChefError::Transient { from, .. } => from.as_ref(),
            _ => None,
        }
    }

    /// The same failure, tied to `origin` (a transient one not yet tied to a server).
    fn tied_to(mut self, origin: &Origin) -> ChefError {
        if let ChefError::Transient { from, .. } = &mut self {
            from.get_or_insert_with(|| origin.clone());
        }
        self
    }

    fn from_reqwest(mut e: reqwest::Error) -> ChefError {
        let unreachable = e.is_connect();
        // File URLs carry their signature in the query: it never goes into a message or a log.
        if let Some(url) = e.url_mut() {
            url.set_query(None);
        }
        let mut message = format!("request failed: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        ChefError::transient(message, unreachable)
    }
}

/// A Chef org on one server: its base URL (`http://host/organizations/ORG`, or the server root
/// for Chef 11 style servers) and the identity requests are signed with.
#[derive(Clone)]
pub struct ChefServer {
    base: String,
    user: String,
    key: Arc<PrivateKey>,
    http: Http,
    version: SigningVersion,
    timeout: Duration,
    /// Which end of the org pair this server is, and its base URL.
    origin: Origin,
    /// How failed requests are retried.
    retry: RetryPolicy,
    /// Where requests and retries are counted.
    metrics: Option<OrgMetrics>,
    /// Whether writes into one data bag must wait for each other on this server.
    bag_writes: Arc<BagWrites>,
}

impl std::fmt::Debug for ChefServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChefServer")
            .field("base", &self.base)
            .field("user", &self.user)
            .finish()
    }
}

/// The HTTP clients with the daemon's timeouts (see [`Http`] for whose certificates they accept).
pub fn http_client(timeout: Duration) -> Http {
    Http::new(timeout)
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The origin (`scheme://host:port`) a redirect's `Location` points at, for the message; never
/// its path or query, which may carry a pre-signed URL's signature.
fn redirect_target(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| reqwest::Url::parse(v).ok())
        .map(|u| format!(" to {}", u.origin().ascii_serialization()))
        .unwrap_or_default()
}

/// Maps a non-success status and its body to a [`ChefError`].
pub fn classify(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> ChefError {
    let message = ErrorBody::parse(body)
        .map(|e| e.message())
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
    let message = if message.is_empty() {
        status.to_string()
    } else {
        message
    };
    match status.as_u16() {
        // Redirects are never followed (see `tls_trust::Http`): a server that answers with one
        // is refused, like any other answer that is not the object.
        code @ 300..=399 => ChefError::Rejected {
            status: code,
            message: format!(
                "answered with a redirect{}, which is not followed",
                redirect_target(headers)
            ),
        },
        404 => ChefError::NotFound,
        410 => ChefError::Gone(message),
        408 | 429 | 500..=599 => ChefError::Transient {
            message: format!("{}: {message}", status.as_u16()),
            retry_after: retry_after(headers),
            unreachable: false,
            from: None,
        },
        code => ChefError::Rejected {
            status: code,
            message,
        },
    }
}

/// Whether `a` and `b` have the same origin: scheme, host and port (a default port written
/// out or left implicit is the same port; host names compare without regard to case, as the
/// URL parser lowercases them). A URL with user information never matches: requests signed as
/// the sync user go only to the server configured, spelled as configured.
pub fn same_origin(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    let plain = |u: &reqwest::Url| u.username().is_empty() && u.password().is_none();
    plain(a)
        && plain(b)
        && a.host().is_some()
        && a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Whether a file URL carries its own signature in its query.
fn presigned(url: &reqwest::Url) -> bool {
    url.query_pairs().any(|(k, _)| {
        k.eq_ignore_ascii_case("signature") || k.eq_ignore_ascii_case("x-amz-signature")
    })
}

/// Parses a 2xx JSON body; an empty or non-JSON body is `Malformed`.
pub fn parse_json(body: &[u8]) -> Result<Value, ChefError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ChefError::Malformed(
            "empty body where JSON was expected".into(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| ChefError::Malformed(format!("invalid JSON: {e}")))
}

impl ChefServer {
    /// The `peer` end of an org pair at `base` (no trailing slash), signing as `user` with
    /// `key`; failed requests are retried as [`RetryPolicy::default`] says.
    pub fn new(peer: Peer, base: &str, user: &str, key: Arc<PrivateKey>, http: Http) -> ChefServer {
        let base = base.trim_end_matches('/').to_owned();
        ChefServer {
            origin: Origin {
                peer,
                base: base.clone(),
            },
            base,
            user: user.to_owned(),
            key,
            http,
            version: SigningVersion::V1_3,
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            metrics: None,
            bag_writes: Arc::default(),
        }
    }

    /// Records every request and retry in `metrics`.
    pub fn with_metrics(mut self, metrics: OrgMetrics) -> ChefServer {
        self.metrics = Some(metrics);
        self
    }

    /// Retries failed requests as `policy` says.
    pub fn with_retry(mut self, policy: RetryPolicy) -> ChefServer {
        self.retry = policy;
        self
    }

    /// Which end of the org pair this server is.
    pub fn peer(&self) -> Peer {
        self.origin.peer
    }

    fn observe(&self, status: Option<u16>, took: Option<Duration>, sent: usize, received: usize) {
        if let Some(metrics) = &self.metrics {
            metrics.request(self.origin.peer.as_str(), status, took, sent, received);
        }
    }

    /// Runs `op` (requests to this server, or an exchange it leads, such as a file streamed
    /// from it) with this server's retries, counting each in its metrics.
    pub async fn retrying<T, F, Fut>(&self, op: F) -> Result<T, ChefError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ChefError>>,
    {
        self.retrying_as(Persistence::Always, op).await
    }

    async fn retrying_as<T, F, Fut>(&self, persistence: Persistence, op: F) -> Result<T, ChefError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ChefError>>,
    {
        let retried = || {
            if let Some(m) = &self.metrics {
                m.retried();
            }
        };
        retry::retry(&self.retry, persistence, op, retried).await
    }

    /// Abandons a request (and lets the caller retry it) after `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> ChefServer {
        self.timeout = timeout;
        self
    }

    /// Signs with another protocol version (some servers only know 1.0/1.1).
    pub fn with_signing(mut self, version: SigningVersion) -> ChefServer {
        self.version = version;
        self
    }

    /// The org's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `base` + `rel`.
    pub fn url(&self, rel: &str) -> String {
        format!("{}{rel}", self.base)
    }

    /// Whether `url` is on this server (same origin as the base URL): only such requests are
    /// signed.
    fn is_own(&self, url: &reqwest::Url) -> bool {
        reqwest::Url::parse(&self.base).is_ok_and(|base| same_origin(&base, url))
    }

    fn parse(url: &str) -> Result<reqwest::Url, ChefError> {
        // The query may be a pre-signed URL's signature: it stays out of the message.
        reqwest::Url::parse(url).map_err(|e| {
            let shown = url.split('?').next().unwrap_or_default();
            ChefError::Malformed(format!("bad URL {}: {e}", crate::text::bounded(shown, 300)))
        })
    }

    fn signed(
        &self,
        method: Method,
        url: &str,
        body: &[u8],
    ) -> Result<reqwest::RequestBuilder, ChefError> {
        let parsed = Self::parse(url)?;
        // A signed request is a credential the receiver could replay against this server.
        if !self.is_own(&parsed) {
            return Err(ChefError::Rejected {
                status: 0,
                message: format!(
                    "refusing to sign a request to {}: not the origin of {}",
                    parsed.origin().ascii_serialization(),
                    self.base
                ),
            });
        }
        let headers = sign_request(
            &self.key,
            &RequestToSign {
                version: self.version,
                method: method.as_str(),
                path: parsed.path(),
                body: signing::Body::Bytes(body),
                user_id: &self.user,
                timestamp: chrono::Utc::now(),
                server_api_version: API_VERSION,
            },
        )
        .map_err(|e| ChefError::Rejected {
            status: 0,
            message: format!("cannot sign: {e}"),
        })?;
        let mut req = self
            .http
            .for_url(&parsed)
            .request(method, parsed)
            .header("accept", "application/json")
            .header("x-chef-version", "18.0.0");
        for (k, v) in headers.iter() {
            req = req.header(k, v);
        }
        Ok(req)
    }

    /// Sends a signed request to `base + rel` and returns the status, headers and body.
    pub async fn request(
        &self,
        method: Method,
        rel: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, Vec<u8>), ChefError> {
        self.request_waiting(method, rel, body, Duration::ZERO)
            .await
    }

    /// Like [`ChefServer::request`] for a request the server may hold for `wait` (long-poll).
    pub async fn request_waiting(
        &self,
        method: Method,
        rel: &str,
        body: Option<&Value>,
        wait: Duration,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, Vec<u8>), ChefError> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let sent = bytes.len();
        let started = std::time::Instant::now();
        // A long-poll's time is the primary's wait, not its latency.
        let took = || (wait.is_zero()).then(|| started.elapsed());
        let result = self
            .exchange(method, rel, body.is_some(), bytes, wait)
            .await
            .map_err(|e| e.tied_to(&self.origin));
        match &result {
            Ok((status, _, received)) => {
                self.observe(Some(status.as_u16()), took(), sent, received.len())
            }
            Err(_) => self.observe(None, took(), sent, 0),
        }
        result
    }

    async fn exchange(
        &self,
        method: Method,
        rel: &str,
        has_body: bool,
        bytes: Vec<u8>,
        wait: Duration,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, Vec<u8>), ChefError> {
        // Held until the whole answer is in: the server has stored the bag by then.
        let turn = self.bag_writes.turn(&method, rel).await;
        let mut req = self
            .signed(method, &self.url(rel), &bytes)?
            .timeout(self.timeout + wait);
        if has_body {
            req = req.header("content-type", "application/json").body(bytes);
        }
        let resp = req.send().await.map_err(ChefError::from_reqwest)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        self.bag_writes.learn(&headers);
        if resp.content_length().is_some_and(|n| n > MAX_JSON as u64) {
            return Err(ChefError::Malformed(format!(
                "answer larger than {MAX_JSON} bytes"
            )));
        }
        let mut body = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp.chunk().await.map_err(ChefError::from_reqwest)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_JSON {
                return Err(ChefError::Malformed(format!(
                    "answer larger than {MAX_JSON} bytes"
                )));
            }
        }
        drop(turn);
        Ok((status, headers, body))
    }

    /// Signed JSON call, once; non-2xx becomes a classified error.
    pub async fn call(
        &self,
        method: Method,
        rel: &str,
        body: Option<&Value>,
    ) -> Result<Value, ChefError> {
        let (status, headers, bytes) = self.request(method, rel, body).await?;
        if !status.is_success() {
            return Err(classify(status, &headers, &bytes).tied_to(&self.origin));
        }
        parse_json(&bytes)
    }

    /// GET `rel` as JSON, retried.
    pub async fn get(&self, rel: &str) -> Result<Value, ChefError> {
        self.retrying(|| self.call(Method::GET, rel, None)).await
    }

    /// GET `rel` as JSON, retried, except that a refused connection is answered at once (see
    /// [`Persistence::UnlessRefused`]).
    pub async fn get_unless_refused(&self, rel: &str) -> Result<Value, ChefError> {
        self.retrying_as(Persistence::UnlessRefused, || {
            self.call(Method::GET, rel, None)
        })
        .await
    }

    /// PUT JSON, retried.
    pub async fn put(&self, rel: &str, body: &Value) -> Result<Value, ChefError> {
        self.retrying(|| self.call(Method::PUT, rel, Some(body)))
            .await
    }

    /// POST JSON, retried.
    pub async fn post(&self, rel: &str, body: &Value) -> Result<Value, ChefError> {
        self.retrying(|| self.call(Method::POST, rel, Some(body)))
            .await
    }

    /// DELETE, retried; a 404 counts as done.
    pub async fn delete(&self, rel: &str) -> Result<(), ChefError> {
        self.retrying(|| async {
            let (status, headers, bytes) = self.request(Method::DELETE, rel, None).await?;
            if status.is_success() || status == StatusCode::NOT_FOUND {
                Ok(())
            } else {
                Err(classify(status, &headers, &bytes).tied_to(&self.origin))
            }
        })
        .await
    }

    /// A request to a file URL the server handed out: signed when it points at this server
    /// and carries no signature of its own (goiardi's file URLs; Chef clients sign file
    /// requests there too), plain otherwise: a pre-signed URL (chef-sync-server's
    /// `expires`/`signature`, bookshelf's and S3's `X-Amz-Signature`) carries its own
    /// authorisation, and an RSA signature per file would cost more CPU than the file; the
    /// sync user's signature must never travel to a host the server named.
    fn file_request(
        &self,
        method: Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, ChefError> {
        let parsed = Self::parse(url)?;
        if self.is_own(&parsed) && !presigned(&parsed) {
            return self.signed(method, url, b"");
        }
        Ok(self.http.for_url(&parsed).request(method, parsed))
    }

    /// An absolute URL handed out by the server (file download), as a stream; see
    /// [`ChefServer::file_request`] for when it is signed.
    pub async fn download(&self, url: &str) -> Result<reqwest::Response, ChefError> {
        let req = self.file_request(Method::GET, url)?.timeout(self.timeout);
        let started = std::time::Instant::now();
        let resp = req.send().await.map_err(|e| {
            self.observe(None, Some(started.elapsed()), 0, 0);
            ChefError::from_reqwest(e).tied_to(&self.origin)
        })?;
        // The file's bytes are counted by their announced length; they stream to the caller.
        let length = resp.content_length().unwrap_or(0);
        self.observe(
            Some(resp.status().as_u16()),
            Some(started.elapsed()),
            0,
            usize::try_from(length).unwrap_or(usize::MAX),
        );
        if resp.status().is_success() {
            Ok(resp)
        } else {
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp.bytes().await.unwrap_or_default();
            Err(classify(status, &headers, &body).tied_to(&self.origin))
        }
    }

    /// PUTs a file to an upload URL handed out by the server, streaming `body`.
    pub async fn upload(
        &self,
        url: &str,
        body: reqwest::Body,
        content_md5: &str,
        length: Option<u64>,
    ) -> Result<(), ChefError> {
        let mut req = self
            .file_request(Method::PUT, url)?
            .header("content-type", "application/x-binary")
            .header("content-md5", content_md5);
        if let Some(len) = length {
            req = req.header("content-length", len);
        }
        let started = std::time::Instant::now();
        let sent = usize::try_from(length.unwrap_or(0)).unwrap_or(usize::MAX);
        let resp = req.body(body).send().await.map_err(|e| {
            self.observe(None, Some(started.elapsed()), sent, 0);
            ChefError::from_reqwest(e).tied_to(&self.origin)
        })?;
        self.observe(
            Some(resp.status().as_u16()),
            Some(started.elapsed()),
            sent,
            0,
        );
        if resp.status().is_success() {
            Ok(())
        } else {
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp.bytes().await.unwrap_or_default();
            Err(classify(status, &headers, &body).tied_to(&self.origin))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_file_urls_without_a_signature_of_their_own_are_signed() {
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        assert!(presigned(&url(
            "http://r/file_store/organizations/o/checksums/abc?expires=1&signature=x"
        )));
        assert!(presigned(&url(
            "https://b/bookshelf/organization-1/checksum-abc?AWSAccessKeyId=k&Expires=1&Signature=s"
        )));
        assert!(presigned(&url(
            "https://s3/x?X-Amz-Signature=s&X-Amz-Expires=9"
        )));
        assert!(!presigned(&url("http://goiardi:4545/file_store/abc")));
        assert!(!presigned(&url("http://r/file_store/x?expires=1")));
    }

    #[test]
    fn statuses_are_classified_once() {
        let h = reqwest::header::HeaderMap::new();
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, &h, b""),
            ChefError::NotFound
        ));
        assert!(classify(StatusCode::BAD_GATEWAY, &h, b"").is_transient());
        assert!(classify(StatusCode::TOO_MANY_REQUESTS, &h, b"").is_transient());
        assert!(
            matches!(classify(StatusCode::GONE, &h, b"{\"error\":[\"pruned\"]}"), ChefError::Gone(m) if m == "pruned")
        );
        match classify(StatusCode::FORBIDDEN, &h, br#"{"error":["no"]}"#) {
            ChefError::Rejected { status, message } => {
                assert_eq!(status, 403);
                assert_eq!(message, "no");
            }
            other => panic!("{other:?}"),
        }
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        match classify(StatusCode::SERVICE_UNAVAILABLE, &h, b"") {
            ChefError::Transient { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(7)));
            }
            other => panic!("{other:?}"),
        }
    }

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).unwrap()
    }

    #[test]
    fn same_origin_is_scheme_host_and_port() {
        let same = |a: &str, b: &str| same_origin(&url(a), &url(b));
        let base = "http://127.0.0.1:8080/organizations/acme";
        assert!(same(
            base,
            "http://127.0.0.1:8080/organizations/acme/cookbooks/x"
        ));
        assert!(same(base, "http://127.0.0.1:8080/bookshelf/f?sig=1"));
        // Ports: another port, or the default port instead of 8080, is another origin.
        assert!(!same(base, "http://127.0.0.1:8081/organizations/acme"));
        assert!(!same(base, "http://127.0.0.1/organizations/acme"));
        // Default ports written out or left implicit are the same port.
        assert!(same("https://chef.example", "https://chef.example:443/x"));
        assert!(same("http://chef.example:80/o", "http://chef.example/f"));
        assert!(!same("https://chef.example", "https://chef.example:80/x"));
        assert!(!same("https://chef.example", "http://chef.example:443/x"));
        // Scheme and host.
        assert!(!same("https://chef.example", "http://chef.example/x"));
        assert!(!same("https://chef.example", "https://other.example/x"));
        assert!(!same(
            "https://chef.example",
            "https://chef.example.evil.test/x"
        ));
        assert!(!same("http://127.0.0.1:8080", "http://localhost:8080/x"));
        assert!(!same("http://127.0.0.1:8080", "http://[::1]:8080/x"));
        // Host names compare without regard to case.
        assert!(same("https://Chef.Example", "HTTPS://CHEF.example/x"));
        // User information never matches, on either side.
        assert!(!same("http://chef.example", "http://u:p@chef.example/x"));
        assert!(!same("http://chef.example", "http://u@chef.example/x"));
        assert!(!same("http://u@chef.example", "http://u@chef.example/x"));
        assert!(!same(
            "http://chef.example",
            "http://@chef.example:80@evil.test/x"
        ));
    }

    #[tokio::test]
    async fn requests_to_another_origin_are_never_signed() {
        let key = Arc::new(PrivateKey::generate(2048).unwrap());
        let server = ChefServer::new(
            Peer::Primary,
            "http://127.0.0.1:9/organizations/acme",
            "sync",
            key,
            Http::new(Duration::from_secs(5)),
        );
        let has_chef_headers = |req: reqwest::RequestBuilder| {
            let req = req.build().unwrap();
            req.headers()
                .keys()
                .any(|k| k.as_str().starts_with("x-ops-"))
        };
        // Own origin: signed unless the URL carries its own signature.
        let own = "http://127.0.0.1:9/organizations/acme/files/x";
        assert!(has_chef_headers(
            server.file_request(Method::GET, own).unwrap()
        ));
        let presigned = "http://127.0.0.1:9/organizations/acme/files/x?expires=1&signature=s";
        assert!(!has_chef_headers(
            server.file_request(Method::GET, presigned).unwrap()
        ));
        for other in [
            "http://127.0.0.1:10/organizations/secretorg/data/creds/db",
            "https://127.0.0.1:9/organizations/acme/files/x",
            "http://sync:pw@127.0.0.1:9/organizations/acme/files/x",
            "https://bucket.s3.example/f?X-Amz-Signature=s",
        ] {
            let req = server.file_request(Method::GET, other).unwrap();
            assert!(!has_chef_headers(req), "{other} got Chef headers");
            assert!(matches!(
                server.signed(Method::GET, other, b""),
                Err(ChefError::Rejected { status: 0, .. })
            ));
        }
    }

    #[test]
    fn a_redirect_is_a_refusal_naming_only_the_target_origin() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "location",
            "http://10.0.0.9:81/steal?signature=secret".parse().unwrap(),
        );
        match classify(StatusCode::FOUND, &h, b"") {
            ChefError::Rejected { status, message } => {
                assert_eq!(status, 302);
                assert!(message.contains("to http://10.0.0.9:81,"), "{message}");
                assert!(!message.contains("secret"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_empty_200_is_never_success() {
        assert!(matches!(parse_json(b""), Err(ChefError::Malformed(_))));
        assert!(matches!(parse_json(b"  \n"), Err(ChefError::Malformed(_))));
        assert!(matches!(
            parse_json(b"<html>"),
            Err(ChefError::Malformed(_))
        ));
        assert_eq!(parse_json(b"[]").unwrap(), serde_json::json!([]));
    }
}
