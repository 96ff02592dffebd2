//! `/search`: the index list, `GET /search/INDEX?q=&start=&rows=` (full objects) and
//! `POST /search/INDEX` (partial search: only the named attributes of each object). Indexes
//! are `node`, `role`, `environment`, `client` and one per data bag. Matching runs on the
//! store's search index (see `store::search_index`); a page's objects are read and sent a
//! chunk at a time, so an answer of 1,000 large nodes never sits in memory whole.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query as QueryParams, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chef_sync_shared::{ObjectKind, ObjectPath};
use futures_util::{StreamExt, stream};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::documents::Document;
use crate::auth::OrgAccess;
use crate::error::{ApiError, ApiResult};
use crate::search::{IndexKind, Query};
use crate::state::AppState;
use crate::store::{Store, client_document};
use chef_sync_shared::objects::{Environment, Role};

/// Rows per page when `rows` is not given (what Chef clients and knife ask for).
pub const DEFAULT_ROWS: i64 = 1000;
/// Largest `rows` accepted.
pub const MAX_ROWS: i64 = 10_000;
/// Objects read from the store and sent per chunk of an answer.
const ROWS_PER_CHUNK: usize = 25;
/// Sort orders accepted: all of them are the order this server answers in (by name).
const SORTS: [&str; 4] = [
    "X_CHEF_id_CHEF_X asc",
    "X_CHEF_id_CHEF_X",
    "name asc",
    "id asc",
];

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/search", get(indexes))
        .route("/search/{index}", get(search).post(partial_search))
}

#[derive(Debug, Deserialize)]
struct Params {
    q: Option<String>,
    start: Option<String>,
    rows: Option<String>,
    sort: Option<String>,
}

/// What an index holds, and where its objects are read from.
#[derive(Debug, Clone)]
struct Index {
    kind: IndexKind,
}

impl Index {
    async fn resolve(state: &AppState, org_id: i64, name: &str) -> ApiResult<Index> {
        let kind = match name {
            "role" => IndexKind::Role,
            "environment" => IndexKind::Environment,
            "client" => IndexKind::Client,
            "node" => IndexKind::Node,
            _ => {
                let unknown = || {
                    ApiError::NotFound(format!(
                        "I don't know how to search for {name} data objects."
                    ))
                };
                let path = ObjectPath::data_bag(name).map_err(|_| unknown())?;
                if state.store.object(org_id, &path).await?.is_none() {
                    return Err(unknown());
                }
                IndexKind::DataBag(name.to_owned())
            }
        };
        Ok(Index { kind })
    }

    /// The stored kind whose `*:*` pages straight from the objects table.
    fn object_kind(&self) -> Option<(ObjectKind, Option<&str>)> {
        match &self.kind {
            IndexKind::Role => Some((ObjectKind::Role, None)),
            IndexKind::Environment => Some((ObjectKind::Environment, None)),
            IndexKind::DataBag(bag) => Some((ObjectKind::DataBagItem, Some(bag))),
            IndexKind::Node | IndexKind::Client => None,
        }
    }

    /// Objects that exist without being stored, first in every answer.
    fn builtins(&self) -> Vec<(String, Value)> {
        let builtin = match self.kind {
            IndexKind::Role => Role::builtin(),
            IndexKind::Environment => Environment::builtin(),
            _ => None,
        };
        builtin
            .map(|(name, value)| (name.to_owned(), value))
            .into_iter()
            .collect()
    }

    /// `http://HOST/organizations/ORG/roles/NAME` and the like.
    fn url(&self, headers: &HeaderMap, org: &str, name: &str) -> String {
        let collection = match &self.kind {
            IndexKind::Node => "nodes".to_owned(),
            IndexKind::Role => "roles".to_owned(),
            IndexKind::Environment => "environments".to_owned(),
            IndexKind::Client => "clients".to_owned(),
            IndexKind::DataBag(bag) => format!("data/{bag}"),
        };
        format!("{}/{name}", super::org_url(headers, org, &collection))
    }

    /// A search row: the stored object's text, for a data bag item inside Chef's wrapper
    /// (the pieces go out as they are, without copying the object into a row).
    fn row(&self, name: &str, object: String, out: &mut Vec<Bytes>) {
        match &self.kind {
            IndexKind::DataBag(bag) => {
                out.push(Bytes::from(format!(
                    "{{\"name\":{},\"json_class\":\"Chef::DataBagItem\",\"chef_type\":\"data_bag_item\",\"data_bag\":{},\"raw_data\":",
                    Value::from(format!("data_bag_item_{bag}_{name}")),
                    Value::from(bag.as_str()),
                )));
                out.push(Bytes::from(object));
                out.push(Bytes::from_static(b"}"));
            }
            _ => out.push(Bytes::from(object)),
        }
    }

    /// The stored text of the named objects that still exist, in the order asked.
    async fn bodies(
        &self,
        store: &Store,
        org_id: i64,
        org: &str,
        names: &[String],
    ) -> ApiResult<Vec<(String, String)>> {
        if let Some((kind, parent)) = self.object_kind() {
            return Ok(store.objects_named(org_id, kind, parent, names).await?);
        }
        if let IndexKind::Node = self.kind {
            return Ok(store.nodes_named(org_id, names).await?);
        }
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let IndexKind::Client = self.kind
                && let Some(client) = store.client(org_id, name).await?
            {
                out.push((
                    name.clone(),
                    client_document(org, name, client.validator).to_string(),
                ));
            }
        }
        Ok(out)
    }
}

async fn indexes(
    State(state): State<AppState>,
    access: OrgAccess,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let base = super::org_url(&headers, org, "search");
    let mut names: Vec<String> = ["node", "role", "environment", "client"]
        .map(str::to_owned)
        .to_vec();
    names.extend(
        state
            .store
            .object_names(access.org.id, ObjectKind::DataBag, None)
            .await?,
    );
    Ok(super::ok(super::listing(&base, &names)))
}

/// One page of matches: built-ins (already in hand) first, then stored objects by name.
struct Page {
    total: i64,
    start: i64,
    builtins: Vec<(String, Value)>,
    /// Names of the stored objects on this page, or `(offset, limit)` for `*:*` read straight
    /// from the objects table.
    stored: Stored,
}

enum Stored {
    Named(Vec<String>),
    Paged(i64, i64),
}

async fn run(state: &AppState, org_id: i64, index: &Index, params: &Params) -> ApiResult<Page> {
    let query = Query::parse(params.q.as_deref().unwrap_or("*:*"))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let start = super::query_number("start", params.start.as_deref(), 0, 0, i64::MAX)?;
    let rows = super::query_number("rows", params.rows.as_deref(), DEFAULT_ROWS, 0, MAX_ROWS)?;
    if let Some(sort) = params.sort.as_deref()
        && !sort.trim().is_empty()
        && !SORTS.contains(&sort.trim())
    {
        return Err(ApiError::BadRequest(format!(
            "sorting by '{sort}' is not supported: results come sorted by name"
        )));
    }
    let builtins: Vec<(String, Value)> = index
        .builtins()
        .into_iter()
        .filter(|(_, object)| query.is_all() || query.matches(&index.kind.terms(object)))
        .collect();
    let skip = usize::try_from(start).unwrap_or(usize::MAX);
    let page_builtins: Vec<(String, Value)> = builtins
        .iter()
        .skip(skip)
        .take(usize::try_from(rows).unwrap_or(usize::MAX))
        .cloned()
        .collect();
    let offset = (start - builtins.len() as i64).max(0);
    let left = rows - page_builtins.len() as i64;
    if query.is_all()
        && let Some((kind, parent)) = index.object_kind()
    {
        let stored_total = state.store.object_count(org_id, kind, parent).await?;
        return Ok(Page {
            total: stored_total + builtins.len() as i64,
            start,
            builtins: page_builtins,
            // Only as many rows as are stored past the offset are read.
            stored: Stored::Paged(offset, left.min(stored_total.saturating_sub(offset))),
        });
    }
    let names = match state.store.search_index(org_id, &index.kind).await? {
        Some(index_id) => {
            state
                .store
                .search_names(index_id, &query)
                .await
                .map_err(|e| match e {
                    crate::store::StoreError::Refused(why) => ApiError::BadRequest(why),
                    other => other.into(),
                })?
        }
        None => Vec::new(),
    };
    let total = names.len() as i64 + builtins.len() as i64;
    let page: Vec<String> = names
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(left.max(0)).unwrap_or(0))
        .collect();
    Ok(Page {
        total,
        start,
        builtins: page_builtins,
        stored: Stored::Named(page),
    })
}

/// How each row of an answer is written.
enum Shape {
    Full,
    /// Partial search: the filter, and the base URL pieces for each row's `url`.
    Partial(Vec<(String, Vec<String>)>, HeaderMap, String),
}

impl Shape {
    fn row(
        &self,
        index: &Index,
        name: &str,
        object: String,
        out: &mut Vec<Bytes>,
    ) -> ApiResult<()> {
        match self {
            Shape::Full => index.row(name, object, out),
            Shape::Partial(filter, headers, org) => {
                let mut object = super::stored(&object)?;
                if let IndexKind::Node = index.kind {
                    // Chef extracts a node's partial-search values from its merged
                    // attributes, as it indexes them.
                    object = crate::search::document::node_for_index(&object);
                }
                let data: Map<String, Value> = filter
                    .iter()
                    .map(|(result, keys)| {
                        let found = dig(&object, keys).cloned().unwrap_or(Value::Null);
                        (result.clone(), found)
                    })
                    .collect();
                let row = json!({ "url": index.url(headers, org, name), "data": data });
                out.push(Bytes::from(row.to_string()));
            }
        }
        Ok(())
    }
}

/// One chunk of an answer's stored rows: names to read, or `(offset, count)` of a `*:*` page
/// read straight from the objects table.
enum Chunk {
    Named(Vec<String>),
    Paged(i64, i64),
}

impl Stored {
    /// The page's rows in chunks of [`ROWS_PER_CHUNK`], in order.
    fn chunks(self) -> Vec<Chunk> {
        match self {
            Stored::Named(names) => names
                .chunks(ROWS_PER_CHUNK)
                .map(|c| Chunk::Named(c.to_vec()))
                .collect(),
            Stored::Paged(offset, left) => {
                let step = ROWS_PER_CHUNK as i64;
                (0..left.max(0))
                    .step_by(ROWS_PER_CHUNK)
                    .map(|done| Chunk::Paged(offset.saturating_add(done), step.min(left - done)))
                    .collect()
            }
        }
    }
}

/// What reading a chunk needs; shared by the chunks read at once.
#[derive(Clone)]
struct Reader {
    store: Store,
    org_id: i64,
    org: Arc<str>,
    index: Arc<Index>,
    shape: Arc<Shape>,
}

impl Reader {
    /// The rows of one chunk, each as the pieces it is sent in. Objects deleted since the
    /// match are left out.
    async fn rows(self, chunk: Chunk) -> ApiResult<Vec<Vec<Bytes>>> {
        let bodies = match chunk {
            Chunk::Named(names) => {
                self.index
                    .bodies(&self.store, self.org_id, &self.org, &names)
                    .await?
            }
            Chunk::Paged(offset, count) => match self.index.object_kind() {
                Some((kind, parent)) => {
                    self.store
                        .object_bodies(self.org_id, kind, parent, Some((offset, count)))
                        .await?
                }
                None => Vec::new(),
            },
        };
        let mut rows = Vec::with_capacity(bodies.len());
        for (name, body) in bodies {
            let mut pieces = Vec::with_capacity(3);
            self.shape.row(&self.index, &name, body, &mut pieces)?;
            rows.push(pieces);
        }
        Ok(rows)
    }
}

/// Chunks read ahead of the one being sent: reading the next chunks overlaps with writing
/// this one to the socket (and, on PostgreSQL, runs on more than one database connection).
const CHUNKS_AHEAD: usize = 2;

/// 200 with `{"total", "start", "rows"}`, the rows streamed a chunk at a time. Objects deleted
/// between matching and sending are left out of the page.
fn answer(
    state: &AppState,
    org_id: i64,
    org: &str,
    index: Index,
    shape: Shape,
    page: Page,
) -> ApiResult<Response> {
    let head = format!(
        "{{\"total\":{},\"start\":{},\"rows\":[",
        page.total, page.start
    );
    let mut first_rows = Vec::new();
    for (name, object) in &page.builtins {
        let mut pieces = Vec::new();
        shape.row(&index, name, object.to_string(), &mut pieces)?;
        first_rows.push(pieces);
    }
    let reader = Reader {
        store: state.store.clone(),
        org_id,
        org: Arc::from(org),
        index: Arc::new(index),
        shape: Arc::new(shape),
    };
    let stored = stream::iter(page.stored.chunks())
        .map(move |chunk| reader.clone().rows(chunk))
        .buffered(CHUNKS_AHEAD);
    let rows = stream::once(async move { Ok(first_rows) }).chain(stored);
    // Commas between rows; an error ends the body short (the status is sent already), so the
    // client sees a broken answer instead of a silently partial one.
    let pieces = rows
        .scan((true, false), |(first, failed), chunk| {
            if *failed {
                return std::future::ready(None);
            }
            let out: Vec<Result<Bytes, std::io::Error>> = match chunk {
                Ok(rows) => {
                    let mut out = Vec::new();
                    for row in rows {
                        if !std::mem::take(first) {
                            out.push(Ok(Bytes::from_static(b",")));
                        }
                        out.extend(row.into_iter().map(Ok));
                    }
                    out
                }
                Err(e) => {
                    tracing::warn!(error = %e, "search answer cut short");
                    *failed = true;
                    vec![Err(std::io::Error::other(e.to_string()))]
                }
            };
            std::future::ready(Some(stream::iter(out)))
        })
        .flatten();
    let body = stream::once(async move { Ok::<Bytes, std::io::Error>(Bytes::from(head)) })
        .chain(pieces)
        .chain(stream::once(async { Ok(Bytes::from_static(b"]}")) }));
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

async fn search(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, index)): Path<(String, String)>,
    QueryParams(params): QueryParams<Params>,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let index = Index::resolve(&state, access.org.id, &index).await?;
    let page = run(&state, access.org.id, &index, &params).await?;
    answer(&state, access.org.id, org, index, Shape::Full, page)
}

/// `{"result name": ["key", "path"], …}`: what partial search returns of each object.
fn parse_filter(body: &[u8]) -> ApiResult<Vec<(String, Vec<String>)>> {
    let filter: Map<String, Value> = super::parse_json(body)?;
    filter
        .into_iter()
        .map(|(name, path)| {
            let keys = path
                .as_array()
                .and_then(|keys| {
                    keys.iter()
                        .map(|k| k.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| {
                    ApiError::BadRequest("invalid partial search request body".into())
                })?;
            Ok((name, keys))
        })
        .collect()
}

/// The value at `keys`; an empty path is `null`, as in Chef.
fn dig<'a>(mut value: &'a Value, keys: &[String]) -> Option<&'a Value> {
    if keys.is_empty() {
        return None;
    }
    for key in keys {
        value = value.get(key)?;
    }
    Some(value)
}

async fn partial_search(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, index)): Path<(String, String)>,
    QueryParams(params): QueryParams<Params>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let filter = parse_filter(&body)?;
    let index = Index::resolve(&state, access.org.id, &index).await?;
    let page = run(&state, access.org.id, &index, &params).await?;
    let shape = Shape::Partial(filter, headers, org.to_owned());
    answer(&state, access.org.id, org, index, shape, page)
}
