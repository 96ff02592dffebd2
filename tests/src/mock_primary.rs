//! A scripted primary for fault tests: an axum server on 127.0.0.1 that verifies every
//! request's Chef signature against the sync user's key and serves one org (`src`) from an
//! in-memory object map, with its feed, failures and delays under the test's control.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chef_sync_shared::PublicKey;
use chef_sync_shared::signing::{self, HeaderSource, SignedRequest};
use serde_json::{Map, Value, json};

/// How the feed answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Feed {
    /// The scripted entries (`{action, id, path}`), filtered by `seq`, with our head header.
    Entries(Vec<Value>),
    /// 404, as current Chef servers answer.
    Missing,
    /// 200 with an empty body, as goiardi answers unknown paths.
    Empty200,
    /// 410 for every position.
    Gone,
    /// This exact JSON, whatever the position.
    Raw(Value),
}

/// What the mock serves and has seen.
#[derive(Debug)]
pub struct Script {
    /// The org's guid.
    pub guid: String,
    /// Objects by org-relative path (`/roles/web`, `/data/bag/item`); bags are `/data/bag`.
    pub objects: BTreeMap<String, Value>,
    /// The feed.
    pub feed: Feed,
    /// Statuses to answer, in order, for requests whose path contains the key.
    pub failures: Vec<(String, VecDeque<u16>)>,
    /// Delays for requests whose path contains the key, for the given number of requests.
    pub delays: Vec<(String, Duration, usize)>,
    /// Raw bodies served with 200 for paths equal to the key.
    pub raw: BTreeMap<String, String>,
    /// Paths answered with a JSON object of this many bytes, streamed without a length (as
    /// a hostile or broken primary might), built as it is sent.
    pub streamed: BTreeMap<String, usize>,
    /// Paths answered `302 Found` with this `Location` (a primary sending the daemon
    /// elsewhere).
    pub redirects: BTreeMap<String, String>,
    /// Request paths seen, in order.
    pub seen: Vec<String>,
    /// Requests whose signature did not verify.
    pub bad_signatures: usize,
}

/// A running mock primary.
#[derive(Debug, Clone)]
pub struct MockPrimary {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Shared with the server task.
    pub script: Arc<Mutex<Script>>,
    key: PublicKey,
}

struct Headers<'a>(&'a HeaderMap);

impl HeaderSource for Headers<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

fn json_response(status: StatusCode, value: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn listing(script: &Script, base: &str, prefix: &str) -> Value {
    let mut map = Map::new();
    for path in script.objects.keys() {
        if let Some(rest) = path.strip_prefix(prefix)
            && !rest.is_empty()
            && !rest.contains('/')
        {
            map.insert(
                rest.to_owned(),
                json!(format!("{base}/organizations/src{path}")),
            );
        }
    }
    Value::Object(map)
}

impl MockPrimary {
    /// Starts the mock, accepting requests signed with `key`.
    pub async fn start(key: PublicKey) -> MockPrimary {
        let script = Arc::new(Mutex::new(Script {
            guid: "0123456789abcdef0123456789abcdef".into(),
            objects: BTreeMap::new(),
            feed: Feed::Entries(Vec::new()),
            failures: Vec::new(),
            delays: Vec::new(),
            raw: BTreeMap::new(),
            streamed: BTreeMap::new(),
            redirects: BTreeMap::new(),
            seen: Vec::new(),
            bad_signatures: 0,
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let mock = MockPrimary { url, script, key };
        let app = Router::new().fallback(handle).with_state(mock.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        mock
    }

    /// Changes the script.
    pub fn edit(&self, f: impl FnOnce(&mut Script)) {
        let mut s = self.script.lock().expect("script");
        f(&mut s);
    }

    /// Reads the script.
    pub fn read<T>(&self, f: impl FnOnce(&Script) -> T) -> T {
        let s = self.script.lock().expect("script");
        f(&s)
    }

    /// Adds an object and a feed entry for it.
    pub fn put(&self, path: &str, value: Value) {
        self.edit(|s| {
            let action = if s.objects.contains_key(path) {
                "update"
            } else {
                "create"
            };
            s.objects.insert(path.to_owned(), value);
            push_entry(s, action, path);
        });
    }

    /// Removes an object with a feed entry.
    pub fn delete(&self, path: &str) {
        self.edit(|s| {
            s.objects.remove(path);
            push_entry(s, "delete", path);
        });
    }
}

/// `{"name": "huge", "description": "xxx…"}` of `size` bytes, in 64 KiB chunks.
fn huge_object(
    size: usize,
) -> impl futures_util::Stream<Item = Result<axum::body::Bytes, std::io::Error>> {
    const CHUNK: usize = 64 * 1024;
    let head = "{\"name\": \"huge\", \"description\": \"";
    let tail = "\"}";
    let filler = size.saturating_sub(head.len() + tail.len());
    let chunks = std::iter::once(axum::body::Bytes::from_static(head.as_bytes()))
        .chain((0..filler.div_ceil(CHUNK)).map(move |i| {
            let n = CHUNK.min(filler - i * CHUNK);
            axum::body::Bytes::from(vec![b'x'; n])
        }))
        .chain(std::iter::once(axum::body::Bytes::from_static(
            tail.as_bytes(),
        )));
    futures_util::stream::iter(chunks.map(Ok))
}

/// Appends a feed entry with the next id.
pub fn push_entry(s: &mut Script, action: &str, path: &str) {
    if let Feed::Entries(entries) = &mut s.feed {
        let id = entries.last().and_then(|e| e["id"].as_i64()).unwrap_or(0) + 1;
        entries.push(json!({"action": action, "id": id, "path": path}));
    }
}

async fn handle(State(mock): State<MockPrimary>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let verified = SignedRequest::from_headers(&Headers(&parts.headers)).and_then(|s| {
        s.verify(
            parts.method.as_str(),
            &path,
            signing::Body::Bytes(&bytes),
            std::slice::from_ref(&mock.key),
        )
    });
    let (delay, fail) = {
        let mut s = mock.script.lock().expect("script");
        s.seen.push(format!("{} {path}", parts.method));
        if verified.is_err() {
            s.bad_signatures += 1;
        }
        let delay = s
            .delays
            .iter_mut()
            .find(|(k, _, n)| path.contains(k.as_str()) && *n > 0)
            .map(|(_, d, n)| {
                *n -= 1;
                *d
            });
        let fail = s
            .failures
            .iter_mut()
            .find(|(k, q)| path.contains(k.as_str()) && !q.is_empty())
            .and_then(|(_, q)| q.pop_front());
        (delay, fail)
    };
    if verified.is_err() {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": ["bad signature"]}),
        );
    }
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    if let Some(code) = fail {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return json_response(status, json!({"error": [format!("scripted {code}")]}));
    }
    let Some(rel) = path.strip_prefix("/organizations/src") else {
        return json_response(StatusCode::NOT_FOUND, json!({"error": ["no such org"]}));
    };
    let base = mock.url.clone();
    let mut s = mock.script.lock().expect("script");
    // Writes (used by prepare-org against a Chef 11 style server): POST adds to a collection
    // by the body's name, PUT replaces.
    if parts.method == axum::http::Method::POST || parts.method == axum::http::Method::PUT {
        let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
            return json_response(StatusCode::BAD_REQUEST, json!({"error": ["bad JSON"]}));
        };
        if parts.method == axum::http::Method::POST {
            let name = value["name"].as_str().unwrap_or_default().to_owned();
            let key = format!("{rel}/{name}");
            if s.objects.contains_key(&key) {
                return json_response(StatusCode::CONFLICT, json!({"error": ["exists"]}));
            }
            s.objects.insert(key, value);
            return json_response(
                StatusCode::CREATED,
                json!({"uri": format!("{base}{path}/{name}")}),
            );
        }
        if !s.objects.contains_key(rel) {
            return json_response(StatusCode::NOT_FOUND, json!({"error": ["not found"]}));
        }
        s.objects.insert(rel.to_owned(), value.clone());
        return json_response(StatusCode::OK, value);
    }
    if let Some(location) = s.redirects.get(rel) {
        return (StatusCode::FOUND, [("location", location.clone())], "").into_response();
    }
    if let Some(raw) = s.raw.get(rel) {
        return (StatusCode::OK, raw.clone()).into_response();
    }
    if let Some(&size) = s.streamed.get(rel) {
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            axum::body::Body::from_stream(huge_object(size)),
        )
            .into_response();
    }
    match rel {
        "" | "/" => json_response(
            StatusCode::OK,
            json!({"name": "src", "full_name": "Source", "guid": s.guid}),
        ),
        "/updated_since" => {
            let param = |name: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                    .and_then(|v| v.parse::<i64>().ok())
            };
            let seq = param("seq").unwrap_or(0);
            let limit = param("limit").unwrap_or(1000) as usize;
            match &s.feed {
                Feed::Missing => {
                    json_response(StatusCode::NOT_FOUND, json!({"error": ["not found"]}))
                }
                Feed::Empty200 => (StatusCode::OK, "").into_response(),
                Feed::Gone => json_response(StatusCode::GONE, json!({"error": ["pruned"]})),
                Feed::Raw(v) => json_response(StatusCode::OK, v.clone()),
                Feed::Entries(entries) => {
                    let head = entries.last().and_then(|e| e["id"].as_i64()).unwrap_or(0);
                    let page: Vec<Value> = entries
                        .iter()
                        .filter(|e| e["id"].as_i64().unwrap_or(0) > seq)
                        .take(limit)
                        .cloned()
                        .collect();
                    let mut r = json_response(StatusCode::OK, Value::Array(page));
                    if let Ok(v) = head.to_string().parse() {
                        r.headers_mut().insert("x-chef-sync-last-seq", v);
                    }
                    r
                }
            }
        }
        "/roles" => json_response(StatusCode::OK, listing(&s, &base, "/roles/")),
        "/environments" => {
            let mut l = listing(&s, &base, "/environments/");
            l["_default"] = json!(format!("{base}/organizations/src/environments/_default"));
            json_response(StatusCode::OK, l)
        }
        "/data" => json_response(StatusCode::OK, listing(&s, &base, "/data/")),
        "/cookbooks" => json_response(StatusCode::OK, json!({})),
        other => {
            if let Some(bag) = other.strip_prefix("/data/")
                && !bag.contains('/')
            {
                return if s.objects.contains_key(other) {
                    json_response(StatusCode::OK, listing(&s, &base, &format!("{other}/")))
                } else {
                    json_response(StatusCode::NOT_FOUND, json!({"error": ["no bag"]}))
                };
            }
            match s.objects.get(other) {
                Some(v) => json_response(StatusCode::OK, v.clone()),
                None => json_response(
                    StatusCode::NOT_FOUND,
                    json!({"error": [format!("{other} not found")]}),
                ),
            }
        }
    }
}
