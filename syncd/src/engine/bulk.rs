//! Bulk reads through Chef search: a reconcile reads the primary's roles, environments and data
//! bag items a page of full objects at a time (`GET /search/INDEX?q=*:*&start=N&rows=R`, public
//! Chef API on every Chef server) instead of one signed GET per object.
//!
//! Search can only save requests, never change what is copied: a row is used only for a path
//! the reconcile's listing holds, servers fetch search rows from their object store (not from
//! the index), and whatever a search does not return (an index behind the store, a server
//! without search, a page refused) is read object by object as before.

use chef_sync_shared::ObjectPath;
use serde_json::Value;

use crate::chef_client::{ChefError, ChefServer};

/// Rows asked for per page: large enough that the signature per page is negligible, small
/// enough that a page of large data bag items stays well under the answer size limit.
pub const PAGE_ROWS: usize = 250;

/// A searchable collection of documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Index {
    /// `role`.
    Roles,
    /// `environment`.
    Environments,
    /// One data bag's items.
    Bag(String),
}

impl Index {
    fn name(&self) -> &str {
        match self {
            Index::Roles => "role",
            Index::Environments => "environment",
            Index::Bag(bag) => bag,
        }
    }

    /// The path and the object of one search row (a data bag item comes wrapped in
    /// `raw_data`), or `None` for a row this index cannot hold.
    fn document(&self, row: Value) -> Option<(ObjectPath, Value)> {
        match self {
            Index::Roles | Index::Environments => {
                let name = row.get("name")?.as_str()?;
                let path = match self {
                    Index::Roles => ObjectPath::role(name),
                    _ => ObjectPath::environment(name),
                }
                .ok()?;
                Some((path, row))
            }
            Index::Bag(bag) => {
                let item = match row {
                    Value::Object(mut map) if map.contains_key("raw_data") => {
                        map.remove("raw_data")?
                    }
                    other => other,
                };
                let id = item.get("id")?.as_str()?;
                let path = ObjectPath::data_bag_item(bag, id).ok()?;
                Some((path, item))
            }
        }
    }
}

/// Reads one index page by page.
#[derive(Debug)]
pub struct Pages<'a> {
    server: &'a ChefServer,
    index: Index,
    start: usize,
    done: bool,
}

impl<'a> Pages<'a> {
    /// Pages of `index` on `server`.
    pub fn new(server: &'a ChefServer, index: Index) -> Pages<'a> {
        Pages {
            server,
            index,
            start: 0,
            done: false,
        }
    }

    /// The next page of documents; `Ok(None)` when the index is exhausted. A server that
    /// cannot search (no such endpoint or index, an answer not shaped like a search result)
    /// ends the pages with `Err(Unsupported)`: the caller reads the rest one by one.
    pub async fn next(&mut self) -> Result<Option<Vec<(ObjectPath, Value)>>, Unsupported> {
        if self.done {
            return Ok(None);
        }
        let rel = format!(
            "/search/{}?q=*:*&start={}&rows={PAGE_ROWS}",
            self.index.name(),
            self.start
        );
        let answer = match self.server.get(&rel).await {
            Ok(v) => v,
            Err(e) => {
                self.done = true;
                return Err(Unsupported(e));
            }
        };
        let total = answer.get("total").and_then(Value::as_u64);
        let rows = match answer {
            Value::Object(mut map) => match map.remove("rows") {
                Some(Value::Array(rows)) => rows,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        let Some(total) = total else {
            self.done = true;
            return Err(Unsupported(ChefError::Malformed(format!(
                "{rel}: not a search result"
            ))));
        };
        let count = rows.len();
        self.start += count;
        if count == 0 || self.start as u64 >= total {
            self.done = true;
        }
        Ok(Some(
            rows.into_iter()
                .filter_map(|row| self.index.document(row))
                .collect(),
        ))
    }
}

/// Why a server's search could not be used (the objects are then read one by one).
#[derive(Debug)]
pub struct Unsupported(pub ChefError);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_become_documents_at_their_paths() {
        let role = json!({"name": "web", "json_class": "Chef::Role"});
        assert_eq!(
            Index::Roles.document(role.clone()),
            Some(("/roles/web".parse().unwrap(), role))
        );
        let wrapped = json!({
            "name": "data_bag_item_users_alice", "json_class": "Chef::DataBagItem",
            "chef_type": "data_bag_item", "data_bag": "users",
            "raw_data": {"id": "alice", "shell": "/bin/zsh"},
        });
        assert_eq!(
            Index::Bag("users".into()).document(wrapped),
            Some((
                "/data/users/alice".parse().unwrap(),
                json!({"id": "alice", "shell": "/bin/zsh"})
            ))
        );
        // Some servers answer with the bare item.
        assert_eq!(
            Index::Bag("users".into()).document(json!({"id": "bob"})),
            Some(("/data/users/bob".parse().unwrap(), json!({"id": "bob"})))
        );
        assert_eq!(Index::Roles.document(json!({"name": "no spaces"})), None);
        assert_eq!(Index::Environments.document(json!([1])), None);
        assert_eq!(Index::Bag("b".into()).document(json!({"x": 1})), None);
    }
}
