//! `/search`: the index list, `GET /search/INDEX?q=&start=&rows=` (full objects) and
//! `POST /search/INDEX` (partial search: only the named attributes of each object). Indexes
//! are `role`, `environment` and one per data bag; `*:*` pages straight from the store, other
//! queries are matched object by object (see `crate::search`).

use axum::body::Bytes;
use axum::extract::{Path, Query as QueryParams, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use chef_sync_shared::ObjectKind;
use chef_sync_shared::objects::{Environment, Role};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::documents::Document;
use crate::app::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::search::{Fields, Query};

/// Rows per page when `rows` is not given (what Chef clients and knife ask for).
pub const DEFAULT_ROWS: i64 = 1000;
/// Largest `rows` accepted.
pub const MAX_ROWS: i64 = 10_000;
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

/// What an index holds.
enum Index {
    Role,
    Environment,
    Bag(String),
}

impl Index {
    async fn resolve(state: &AppState, org_id: i64, name: &str) -> ApiResult<Index> {
        match name {
            "role" => return Ok(Index::Role),
            "environment" => return Ok(Index::Environment),
            _ => {}
        }
        let unknown = || {
            ApiError::NotFound(format!(
                "I don't know how to search for {name} data objects."
            ))
        };
        let path = chef_sync_shared::ObjectPath::data_bag(name).map_err(|_| unknown())?;
        match state.store.object(org_id, &path).await? {
            Some(_) => Ok(Index::Bag(name.to_owned())),
            None => Err(unknown()),
        }
    }

    fn kind(&self) -> ObjectKind {
        match self {
            Index::Role => ObjectKind::Role,
            Index::Environment => ObjectKind::Environment,
            Index::Bag(_) => ObjectKind::DataBagItem,
        }
    }

    fn parent(&self) -> Option<&str> {
        match self {
            Index::Bag(bag) => Some(bag),
            _ => None,
        }
    }

    /// Objects that exist without being stored, first in every answer.
    fn builtins(&self) -> Vec<(String, Value)> {
        let builtin = match self {
            Index::Role => Role::builtin(),
            Index::Environment => Environment::builtin(),
            Index::Bag(_) => None,
        };
        builtin
            .map(|(name, value)| (name.to_owned(), value))
            .into_iter()
            .collect()
    }

    /// `http://HOST/organizations/ORG/roles/NAME` and the like.
    fn url(&self, headers: &HeaderMap, org: &str, name: &str) -> String {
        match self {
            Index::Role => format!("{}/{name}", super::org_url(headers, org, "roles")),
            Index::Environment => {
                format!("{}/{name}", super::org_url(headers, org, "environments"))
            }
            Index::Bag(bag) => format!("{}/{bag}/{name}", super::org_url(headers, org, "data")),
        }
    }

    /// What a search row holds: the object, or for a data bag item Chef's wrapper around it.
    fn row(&self, name: &str, object: Value) -> Value {
        match self {
            Index::Bag(bag) => json!({
                "name": format!("data_bag_item_{bag}_{name}"),
                "json_class": "Chef::DataBagItem",
                "chef_type": "data_bag_item",
                "data_bag": bag,
                "raw_data": object,
            }),
            _ => object,
        }
    }

    /// The fields an object is found by (a data bag item also by its bag and type).
    fn fields(&self, object: &Value) -> Fields {
        let mut fields = Fields::of(object);
        if let Index::Bag(bag) = self {
            fields.add("data_bag", bag.clone());
            fields.add("chef_type", "data_bag_item".into());
        }
        fields
    }
}

async fn indexes(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let access = super::access(&state, &actor, &org).await?;
    access.require_read()?;
    let base = super::org_url(&headers, &org, "search");
    let mut names = vec!["role".to_owned(), "environment".to_owned()];
    names.extend(
        state
            .store
            .object_names(access.org.id, ObjectKind::DataBag, None)
            .await?,
    );
    Ok(super::ok(super::listing(&base, &names)))
}

/// One page of matches: `(total, [(name, object)])`.
struct Page {
    total: i64,
    start: i64,
    hits: Vec<(String, Value)>,
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
    let builtins = index.builtins();
    let decode = |(name, body): (String, String)| -> ApiResult<(String, Value)> {
        Ok((name, super::stored(&body)?))
    };
    if query.is_all() {
        // Built-ins come first, then the stored objects by name, a page at a time.
        let stored_total = state
            .store
            .object_count(org_id, index.kind(), index.parent())
            .await?;
        let skip_builtins = usize::try_from(start).unwrap_or(usize::MAX);
        let mut hits: Vec<(String, Value)> = builtins
            .iter()
            .skip(skip_builtins)
            .take(usize::try_from(rows).unwrap_or(usize::MAX))
            .cloned()
            .collect();
        let offset = (start - builtins.len() as i64).max(0);
        let left = rows - hits.len() as i64;
        if left > 0 {
            let bodies = state
                .store
                .object_bodies(org_id, index.kind(), index.parent(), Some((offset, left)))
                .await?;
            for row in bodies {
                hits.push(decode(row)?);
            }
        }
        return Ok(Page {
            total: stored_total + builtins.len() as i64,
            start,
            hits,
        });
    }
    let mut matched = Vec::new();
    let all = state
        .store
        .object_bodies(org_id, index.kind(), index.parent(), None)
        .await?;
    let mut total = 0i64;
    let candidates = builtins
        .into_iter()
        .map(Ok)
        .chain(all.into_iter().map(decode));
    for candidate in candidates {
        let (name, object) = candidate?;
        if !query.matches(&index.fields(&object)) {
            continue;
        }
        if total >= start && (matched.len() as i64) < rows {
            matched.push((name, object));
        }
        total += 1;
    }
    Ok(Page {
        total,
        start,
        hits: matched,
    })
}

async fn search(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((org, index)): Path<(String, String)>,
    QueryParams(params): QueryParams<Params>,
) -> ApiResult<Response> {
    let access = super::access(&state, &actor, &org).await?;
    access.require_read()?;
    let index = Index::resolve(&state, access.org.id, &index).await?;
    let page = run(&state, access.org.id, &index, &params).await?;
    let rows: Vec<Value> = page
        .hits
        .into_iter()
        .map(|(name, object)| index.row(&name, object))
        .collect();
    Ok(super::ok(
        json!({ "total": page.total, "start": page.start, "rows": rows }),
    ))
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
                    ApiError::BadRequest(format!(
                        "partial search: '{name}' must be an array of attribute names"
                    ))
                })?;
            Ok((name, keys))
        })
        .collect()
}

fn dig<'a>(mut value: &'a Value, keys: &[String]) -> Option<&'a Value> {
    for key in keys {
        value = value.get(key)?;
    }
    Some(value)
}

async fn partial_search(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((org, index)): Path<(String, String)>,
    QueryParams(params): QueryParams<Params>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let access = super::access(&state, &actor, &org).await?;
    access.require_read()?;
    let filter = parse_filter(&body)?;
    let index = Index::resolve(&state, access.org.id, &index).await?;
    let page = run(&state, access.org.id, &index, &params).await?;
    let rows: Vec<Value> = page
        .hits
        .into_iter()
        .map(|(name, object)| {
            let data: Map<String, Value> = filter
                .iter()
                .map(|(result, keys)| {
                    let found = dig(&object, keys).cloned().unwrap_or(Value::Null);
                    (result.clone(), found)
                })
                .collect();
            json!({ "url": index.url(&headers, &org, &name), "data": data })
        })
        .collect();
    Ok(super::ok(
        json!({ "total": page.total, "start": page.start, "rows": rows }),
    ))
}
