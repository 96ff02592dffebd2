//! Reading the primary's `updated_since` feed: pages, the head position, and the checks that
//! keep a hostile or broken primary from steering the replica.

use std::collections::HashMap;
use std::time::Duration;

use chef_sync_shared::ObjectPath;
use reqwest::Method;
use serde_json::Value;

use super::plan::{Action, Change};
use crate::chef_client::{ChefError, ChefServer, classify, parse_json};
use crate::state::{MAX_STORED_PATH, MAX_STORED_TEXT};
use crate::text::bounded;

/// The response header our server uses to announce its newest id.
pub const LAST_SEQ_HEADER: &str = "x-chef-sync-last-seq";
/// The response header our server sends when a page carries documents.
pub const DOCUMENTS_HEADER: &str = "x-chef-sync-documents";
/// Entries per page.
pub const PAGE: usize = 1000;

/// A feed entry that cannot be applied, with the reason; it is parked as it came, cut to the
/// sizes the state database keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The path as received.
    pub path: String,
    /// The action as received.
    pub action: String,
    /// Its id.
    pub seq: i64,
    /// Why.
    pub reason: String,
}

/// One page, checked.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Valid entries, in feed order.
    pub changes: Vec<Change>,
    /// Entries rejected (bad path or action).
    pub rejected: Vec<Rejected>,
    /// The highest id on the page.
    pub last_id: Option<i64>,
    /// The primary's newest id, when it says.
    pub head: Option<i64>,
    /// Entries on the page (valid or not).
    pub len: usize,
    /// The documents the page carried, by entry id: `Some` the object's JSON at or after the
    /// entry, `None` gone since. Entries without one are read with a GET.
    pub documents: HashMap<i64, Option<Value>>,
    /// Whether the primary sent documents (it says so in a header when asked).
    pub with_documents: bool,
}

/// Why the feed cannot be followed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FeedError {
    /// The primary has no usable feed (404, 405, or a 200 that is not a JSON array).
    #[error("the primary has no usable updated_since feed ({0})")]
    Missing(String),
    /// 410: entries after our position were pruned.
    #[error("the primary pruned its change log past our position: {0}")]
    Pruned(String),
    /// Ids not strictly increasing above our position.
    #[error("the feed went backwards: id {got} after {after}")]
    Backwards {
        /// The id seen.
        got: i64,
        /// The id it should have exceeded.
        after: i64,
    },
    /// Anything else (retry later).
    #[error(transparent)]
    Chef(#[from] ChefError),
}

/// Checks a page's JSON: ascending ids above `after`, valid actions and paths.
pub fn parse_page(body: &Value, after: i64) -> Result<Page, FeedError> {
    let Some(entries) = body.as_array() else {
        return Err(FeedError::Missing("the answer is not a JSON array".into()));
    };
    let mut page = Page {
        len: entries.len(),
        ..Page::default()
    };
    let mut previous = after;
    for entry in entries {
        let id = entry.get("id").and_then(Value::as_i64).ok_or_else(|| {
            FeedError::Chef(ChefError::Malformed(format!(
                "feed entry without an integer id: {entry}"
            )))
        })?;
        if id <= previous {
            return Err(FeedError::Backwards {
                got: id,
                after: previous,
            });
        }
        previous = id;
        page.last_id = Some(id);
        let raw_path = entry
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let raw_action = entry
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let action = match raw_action.as_str() {
            "create" | "update" => Some(Action::Write),
            "delete" => Some(Action::Delete),
            _ => None,
        };
        // Cut at once: a page may hold a thousand of them, each as long as the primary likes.
        let reject = |reason: String| Rejected {
            path: bounded(&raw_path, MAX_STORED_PATH).into_owned(),
            action: bounded(&raw_action, 64).into_owned(),
            seq: id,
            reason: bounded(&reason, MAX_STORED_TEXT).into_owned(),
        };
        match (action, raw_path.parse::<ObjectPath>()) {
            (Some(action), Ok(path)) => page.changes.push(Change {
                path,
                action,
                seq: Some(id),
            }),
            (None, _) => page
                .rejected
                .push(reject(format!("unknown action '{raw_action}'"))),
            (_, Err(e)) => page.rejected.push(reject(format!("rejected path: {e}"))),
        }
    }
    Ok(page)
}

/// Fetches the page after `after`, long-polling up to `wait`; with `documents`, asks for
/// each entry's document too (a primary that has them says so in [`DOCUMENTS_HEADER`]).
pub async fn fetch(
    primary: &ChefServer,
    after: i64,
    wait: Duration,
    documents: bool,
) -> Result<Page, FeedError> {
    let mut rel = format!(
        "/updated_since?seq={after}&limit={PAGE}&wait={}",
        wait.as_secs()
    );
    if documents {
        rel.push_str("&documents=true");
    }
    let (status, headers, body) = primary
        .request_waiting(Method::GET, &rel, None, wait)
        .await?;
    if status.as_u16() == 404 || status.as_u16() == 405 {
        return Err(FeedError::Missing(format!("{status}")));
    }
    if !status.is_success() {
        return Err(match classify(status, &headers, &body) {
            ChefError::Gone(m) => FeedError::Pruned(m),
            other => FeedError::Chef(other),
        });
    }
    let mut value = parse_json(&body).map_err(|e| FeedError::Missing(e.to_string()))?;
    drop(body);
    let with_documents = documents && headers.contains_key(DOCUMENTS_HEADER);
    let carried = if with_documents {
        take_documents(&mut value)
    } else {
        HashMap::new()
    };
    let mut page = parse_page(&value, after)?;
    page.head = headers
        .get(LAST_SEQ_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    page.documents = carried;
    page.with_documents = with_documents;
    Ok(page)
}

/// Moves each entry's `document` out of the page, by entry id. Only an object or `null` is
/// taken as one; anything else is left for a GET.
fn take_documents(page: &mut Value) -> HashMap<i64, Option<Value>> {
    let mut documents = HashMap::new();
    for entry in page.as_array_mut().into_iter().flatten() {
        let Some(entry) = entry.as_object_mut() else {
            continue;
        };
        let Some(id) = entry.get("id").and_then(Value::as_i64) else {
            continue;
        };
        match entry.remove("document") {
            Some(Value::Null) => {
                documents.insert(id, None);
            }
            Some(doc @ Value::Object(_)) => {
                documents.insert(id, Some(doc));
            }
            _ => {}
        }
    }
    documents
}

/// The primary's newest id: from our server's header in one request, or by paging to the end
/// on servers that do not send it.
pub async fn head(primary: &ChefServer) -> Result<i64, FeedError> {
    let probe = fetch(primary, i64::MAX - 1, Duration::ZERO, false).await;
    match probe {
        Ok(Page { head: Some(h), .. }) => return Ok(h),
        Ok(_) | Err(FeedError::Backwards { .. }) => {}
        Err(e) => return Err(e),
    }
    let mut position = 0;
    loop {
        let page = match fetch(primary, position, Duration::ZERO, false).await {
            Ok(p) => p,
            // A log pruned from the start: only the newest entries matter here.
            Err(FeedError::Pruned(m)) if position == 0 => return Err(FeedError::Pruned(m)),
            Err(e) => return Err(e),
        };
        if let Some(last) = page.last_id {
            position = last;
        }
        if page.len < PAGE {
            return Ok(position);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pages_are_checked() {
        let page = parse_page(
            &json!([
                {"action": "create", "id": 4, "path": "/roles/a"},
                {"action": "delete", "id": 5, "path": "/roles/../users/pivotal"},
                {"action": "explode", "id": 6, "path": "/roles/b"},
                {"action": "update", "id": 9, "path": "/cookbooks/cb/1.2.3"},
            ]),
            3,
        )
        .unwrap();
        assert_eq!(page.changes.len(), 2);
        assert_eq!(page.rejected.len(), 2);
        assert_eq!(page.rejected[0].path, "/roles/../users/pivotal");
        assert_eq!(page.last_id, Some(9));
        assert_eq!(page.len, 4);

        assert!(matches!(
            parse_page(
                &json!([{"action": "create", "id": 3, "path": "/roles/a"}]),
                3
            ),
            Err(FeedError::Backwards { got: 3, after: 3 })
        ));
        assert!(matches!(
            parse_page(
                &json!([
                    {"action": "create", "id": 5, "path": "/roles/a"},
                    {"action": "create", "id": 4, "path": "/roles/b"},
                ]),
                0
            ),
            Err(FeedError::Backwards { got: 4, after: 5 })
        ));
        assert!(matches!(
            parse_page(&json!({"roles": 1}), 0),
            Err(FeedError::Missing(_))
        ));
        assert!(parse_page(&json!([{"action": "create", "path": "/roles/a"}]), 0).is_err());
    }

    #[test]
    fn documents_are_taken_by_entry_id() {
        let mut page = json!([
            {"action": "create", "id": 4, "path": "/roles/a", "document": {"name": "a"}},
            {"action": "update", "id": 5, "path": "/roles/b", "document": null},
            {"action": "update", "id": 6, "path": "/roles/c", "document": "not an object"},
            {"action": "delete", "id": 7, "path": "/roles/d"},
        ]);
        let documents = take_documents(&mut page);
        assert_eq!(documents.len(), 2);
        assert_eq!(documents[&4], Some(json!({"name": "a"})));
        assert_eq!(documents[&5], None);
        assert!(page[0].get("document").is_none());
        assert_eq!(parse_page(&page, 0).unwrap().changes.len(), 4);
    }
}
