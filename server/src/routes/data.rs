//! `/data`: data bags and their items. Deleting a bag deletes its items, each with its own
//! feed entry; items are stored exactly as sent (after unwrapping `raw_data`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use chef_sync_shared::objects::{DataBag, DataBagItem, JsonMap};
use chef_sync_shared::{ObjectKind, ObjectPath};
use serde::Deserialize;
use serde_json::{Value, json};

use super::objects::{self, Messages};
use crate::auth::OrgAccess;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{StoreError, WriteMode};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/data", get(list_bags).post(create_bag))
        .route(
            "/data/{bag}",
            get(list_items).post(create_item).delete(remove_bag),
        )
        .route(
            "/data/{bag}/{item}",
            get(show_item).put(update_item).delete(remove_item),
        )
}

pub(super) fn bag_messages(bag: &str) -> Messages {
    Messages {
        conflict: "Data bag already exists".into(),
        missing: format!("Cannot load data bag {bag}"),
    }
}

pub(super) fn item_messages(bag: &str, item: &str) -> Messages {
    Messages {
        conflict: format!("Data Bag Item '{item}' already exists in Data Bag '{bag}'."),
        missing: format!("Cannot load data bag item {item} for data bag {bag}"),
    }
}

fn bag_path(bag: &str) -> ApiResult<ObjectPath> {
    ObjectPath::data_bag(bag).map_err(|_| ApiError::NotFound(bag_messages(bag).missing))
}

fn item_path(bag: &str, item: &str) -> ApiResult<ObjectPath> {
    ObjectPath::data_bag_item(bag, item)
        .map_err(|_| ApiError::NotFound(item_messages(bag, item).missing))
}

pub(super) fn no_such_bag(bag: &str) -> ApiError {
    ApiError::NotFound(format!(
        "No data bag '{bag}' could be found. Please create this data bag before adding items to it."
    ))
}

/// What item writes answer: the item plus `chef_type` and `data_bag`.
fn item_reply(raw: &JsonMap, bag: &str) -> Value {
    let mut out = raw.clone();
    out.insert("chef_type".into(), json!("data_bag_item"));
    out.insert("data_bag".into(), json!(bag));
    Value::Object(out)
}

/// Reads an item body; `url_item` is the id from the URL on update.
pub(super) fn parse_item(body: &[u8], url_item: Option<&str>) -> ApiResult<DataBagItem> {
    let mut value: Value = super::parse_json(body)?;
    if let (Some(id), Some(map)) = (url_item, value.as_object_mut()) {
        // PUT may omit the id; the URL supplies it (also inside a raw_data wrapper).
        let target = match map.get_mut("raw_data") {
            Some(Value::Object(inner)) => inner,
            _ => map,
        };
        target.entry("id").or_insert_with(|| json!(id));
    }
    let has_id = value
        .as_object()
        .is_some_and(|map| match map.get("raw_data") {
            Some(Value::Object(inner)) => inner.contains_key("id"),
            _ => map.contains_key("id"),
        });
    if value.is_object() && !has_id {
        return Err(ApiError::BadRequest("Field 'id' missing".into()));
    }
    let item = DataBagItem::from_json(value).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if let Some(id) = url_item
        && item.id() != id
    {
        return Err(ApiError::BadRequest(
            "DataBagItem name mismatch.".to_owned(),
        ));
    }
    Ok(item)
}

async fn list_bags(
    State(state): State<AppState>,
    access: OrgAccess,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let names = state
        .store
        .object_names(access.org.id, ObjectKind::DataBag, None)
        .await?;
    Ok(super::ok(super::listing(
        &super::org_url(&headers, org, "data"),
        &names,
    )))
}

#[derive(Deserialize)]
struct NewBag {
    name: Option<String>,
}

async fn create_bag(
    State(state): State<AppState>,
    access: OrgAccess,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_object_write()?;
    let new: NewBag = super::parse_json(&body)?;
    let name = new
        .name
        .ok_or_else(|| ApiError::BadRequest("Field 'name' missing".into()))?;
    let path = ObjectPath::data_bag(&name)
        .map_err(|_| ApiError::BadRequest("Field 'name' invalid".into()))?;
    objects::write(
        &state,
        access.org.id,
        &path,
        &DataBag::new(&name),
        WriteMode::Create,
        &bag_messages(&name),
    )
    .await?;
    Ok(super::created(format!(
        "{}/{name}",
        super::org_url(&headers, org, "data")
    )))
}

async fn list_items(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, bag)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = access.org.name.as_str();
    access.require_read()?;
    let path = bag_path(&bag)?;
    if state.store.object(access.org.id, &path).await?.is_none() {
        return Err(ApiError::NotFound(bag_messages(&bag).missing));
    }
    let names = state
        .store
        .object_names(access.org.id, ObjectKind::DataBagItem, Some(&bag))
        .await?;
    Ok(super::ok(super::listing(
        &format!("{}/{bag}", super::org_url(&headers, org, "data")),
        &names,
    )))
}

async fn create_item(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, bag)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    access.require_object_write()?;
    bag_path(&bag).map_err(|_| no_such_bag(&bag))?;
    let item = parse_item(&body, None)?;
    let path = ObjectPath::data_bag_item(&bag, item.id())
        .map_err(|_| ApiError::BadRequest("Field 'id' invalid".into()))?;
    let messages = item_messages(&bag, item.id());
    state
        .store
        .write_object(
            access.org.id,
            &path,
            &Value::Object(item.raw().clone()).to_string(),
            WriteMode::Create,
        )
        .await
        .map_err(|e| match e {
            StoreError::ParentMissing => no_such_bag(&bag),
            other => messages.map(other),
        })?;
    Ok(super::respond(
        axum::http::StatusCode::CREATED,
        item_reply(item.raw(), &bag),
    ))
}

async fn remove_bag(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, bag)): Path<(String, String)>,
) -> ApiResult<Response> {
    access.require_object_write()?;
    let value = objects::remove(
        &state,
        access.org.id,
        &bag_path(&bag)?,
        &bag_messages(&bag).missing,
    )
    .await?;
    Ok(super::ok(value))
}

async fn show_item(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, bag, item)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    access.require_read()?;
    let value = objects::fetch(
        &state,
        access.org.id,
        &item_path(&bag, &item)?,
        &item_messages(&bag, &item).missing,
    )
    .await?;
    Ok(super::ok(value))
}

async fn update_item(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, bag, id)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    access.require_object_write()?;
    let path = item_path(&bag, &id)?;
    let item = parse_item(&body, Some(&id))?;
    objects::write(
        &state,
        access.org.id,
        &path,
        item.raw(),
        WriteMode::Update,
        &item_messages(&bag, &id),
    )
    .await?;
    Ok(super::ok(item_reply(item.raw(), &bag)))
}

async fn remove_item(
    State(state): State<AppState>,
    access: OrgAccess,
    Path((_, bag, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    access.require_object_write()?;
    // Chef words a missing item (or bag) differently on DELETE than on GET.
    let raw = objects::remove(
        &state,
        access.org.id,
        &item_path(&bag, &id)?,
        &format!("Cannot load data bag {bag} item {id}"),
    )
    .await?;
    Ok(super::ok(json!({
        "name": format!("data_bag_item_{bag}_{id}"),
        "json_class": "Chef::DataBagItem",
        "chef_type": "data_bag_item",
        "data_bag": bag,
        "raw_data": raw,
    })))
}
