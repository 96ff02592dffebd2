//! Writing many objects into a replica that is a chef-sync-server with one request per batch
//! (`POST /organizations/ORG/_bulk_write`, one transaction and one feed entry per object on
//! the replica), instead of a request and a transaction per object. The server reports each
//! item's result, so one object it refuses is parked on its own, as on the per-object path.
//!
//! Whatever the bulk write cannot carry is handed back to be written object by object: a
//! replica that does not offer it (404/405: goiardi, Chef Infra Server), a batch refused
//! whole (too large, malformed), or an answer that does not account for every item.

use serde_json::{Map, Value, json};

use super::apply::Outcome;
use super::plan::{Action, Change};
use super::sides::{Applied, Sides};
use crate::chef_client::ChefError;

/// Most items one request carries (the server takes up to 1,000).
pub const ITEMS_PER_REQUEST: usize = 500;
/// Most document bytes one request carries, well under the server's request size limit
/// (2 MB by default); a larger single document goes alone.
pub const BYTES_PER_REQUEST: usize = 1024 * 1024;

/// One object to make equal to the primary's.
#[derive(Debug, Clone)]
pub struct Item {
    /// The change it settles.
    pub change: Change,
    /// The path as the replica is to be told it (a cookbook version as its manifest writes
    /// its version).
    pub rel: String,
    /// The primary's document; `None` deletes the object.
    pub document: Option<Value>,
}

impl Item {
    /// An item for `change` with the primary's `document` (`None`: the primary has none).
    pub fn new(change: Change, document: Option<Value>) -> Item {
        let document = match change.action {
            Action::Delete => None,
            Action::Write => document,
        };
        Item {
            rel: change.path.to_string(),
            change,
            document,
        }
    }
}

/// What a bulk write did: outcomes for the items it carried, and the items it could not
/// carry, to be written one by one.
#[derive(Debug, Default)]
pub struct Written {
    /// One per item carried.
    pub outcomes: Vec<Outcome>,
    /// Items left for the per-object path.
    pub left: Vec<Item>,
    /// A server was found unreachable: nothing more is attempted.
    pub stopped: bool,
}

/// Writes `items` in order, batch by batch (in order also inside a batch: the caller puts
/// bags before their items and deletes after them).
pub async fn write(sides: &Sides, items: Vec<Item>) -> Written {
    let mut written = Written::default();
    let mut rest = items.into_iter().peekable();
    while rest.peek().is_some() {
        if !sides.bulk_write.worth_asking() {
            written.left.extend(rest);
            break;
        }
        let batch = next_batch(&mut rest);
        match send(sides, batch).await {
            Ok(outcomes) => written.outcomes.extend(outcomes),
            Err((Unsent::NotOffered, batch)) => {
                sides.bulk_write.learn(false);
                written.left.extend(batch);
            }
            Err((Unsent::Refused(why), batch)) => {
                tracing::debug!(%why, "bulk write refused; writing the batch object by object");
                written.left.extend(batch);
            }
            Err((Unsent::Failed(e), batch)) => {
                let unreachable = e.is_unreachable();
                written
                    .outcomes
                    .extend(batch.into_iter().map(|item| Outcome {
                        change: item.change,
                        result: Err(e.clone()),
                    }));
                if unreachable {
                    written.stopped = true;
                    return written;
                }
            }
        }
    }
    written
}

fn next_batch(rest: &mut std::iter::Peekable<impl Iterator<Item = Item>>) -> Vec<Item> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while batch.len() < ITEMS_PER_REQUEST {
        let Some(next) = rest.peek() else { break };
        let size = next.document.as_ref().map_or(0, json_size) + next.rel.len();
        if !batch.is_empty() && bytes + size > BYTES_PER_REQUEST {
            break;
        }
        bytes += size;
        batch.extend(rest.next());
    }
    batch
}

/// Serialised size without building the text.
fn json_size(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Why a batch was not written.
enum Unsent {
    /// The replica has no bulk write.
    NotOffered,
    /// Refused whole, or answered with results that do not fit the batch: the per-object
    /// path writes it (and isolates whatever is wrong with it).
    Refused(String),
    /// Could not be sent (retried already): every item of it failed so.
    Failed(ChefError),
}

async fn send(sides: &Sides, batch: Vec<Item>) -> Result<Vec<Outcome>, (Unsent, Vec<Item>)> {
    // Documents move into the request and back out of it should the batch fall back.
    let mut heads = Vec::with_capacity(batch.len());
    let items: Vec<Value> = batch
        .into_iter()
        .map(|item| {
            let mut m = Map::new();
            m.insert("path".into(), json!(item.rel));
            match item.document {
                Some(doc) => {
                    m.insert("action".into(), json!("write"));
                    m.insert("document".into(), doc);
                }
                None => {
                    m.insert("action".into(), json!("delete"));
                }
            }
            heads.push((item.change, item.rel));
            Value::Object(m)
        })
        .collect();
    let request = json!({ "items": items });
    let unsent = |why: Unsent, request: Value| {
        let mut documents = match request {
            Value::Object(mut m) => match m.remove("items") {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
        .into_iter();
        let back = heads
            .iter()
            .map(|(change, rel)| Item {
                change: change.clone(),
                rel: rel.clone(),
                document: documents
                    .next()
                    .and_then(|mut v| v.as_object_mut().and_then(|m| m.remove("document"))),
            })
            .collect();
        Err((why, back))
    };
    let answer = match sides.replica.post("/_bulk_write", &request).await {
        Ok(answer) => answer,
        // goiardi answers any unknown path with 200 and an empty body.
        Err(
            ChefError::NotFound | ChefError::Rejected { status: 405, .. } | ChefError::Malformed(_),
        ) => {
            return unsent(Unsent::NotOffered, request);
        }
        Err(e) if e.is_transient() => return unsent(Unsent::Failed(e), request),
        Err(e) => return unsent(Unsent::Refused(e.to_string()), request),
    };
    if answer.get("results").is_none() {
        return unsent(Unsent::NotOffered, request);
    }
    match read_results(&answer, &heads) {
        Ok(outcomes) => {
            sides.bulk_write.learn(true);
            Ok(outcomes)
        }
        Err(why) => unsent(Unsent::Refused(why), request),
    }
}

/// The answer's results, item by item; an error when it does not account for each item in
/// order.
fn read_results(answer: &Value, batch: &[(Change, String)]) -> Result<Vec<Outcome>, String> {
    let results = answer
        .get("results")
        .and_then(Value::as_array)
        .ok_or("the bulk write answer has no results")?;
    if results.len() != batch.len() {
        return Err(format!(
            "the bulk write answered {} results for {} items",
            results.len(),
            batch.len()
        ));
    }
    batch
        .iter()
        .zip(results)
        .map(|((change, rel), result)| {
            if result.get("path").and_then(Value::as_str) != Some(rel.as_str()) {
                return Err(format!("the bulk write answered out of order at {rel}"));
            }
            Ok(Outcome {
                change: change.clone(),
                result: item_result(result),
            })
        })
        .collect()
}

fn item_result(result: &Value) -> Result<Applied, ChefError> {
    match result.get("outcome").and_then(Value::as_str) {
        Some("created" | "updated") => Ok(Applied::Written),
        Some("unchanged") => Ok(Applied::Unchanged),
        Some("deleted" | "absent") => Ok(Applied::Deleted),
        _ => {
            let status = result
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(500);
            let message = result
                .get("error")
                .and_then(Value::as_array)
                .and_then(|e| e.first())
                .and_then(Value::as_str)
                .unwrap_or("refused by the bulk write");
            Err(ChefError::Rejected {
                status,
                message: crate::text::bounded(message, 1000).into_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(path: &str, document: Option<Value>) -> Item {
        let action = if document.is_some() {
            Action::Write
        } else {
            Action::Delete
        };
        Item::new(
            Change {
                path: path.parse().unwrap(),
                action,
                seq: None,
            },
            document,
        )
    }

    #[test]
    fn batches_end_at_the_item_or_byte_bound() {
        let big = json!({ "id": "x", "blob": "a".repeat(BYTES_PER_REQUEST / 2) });
        let mut items = vec![item("/data/b/1", Some(big.clone()))];
        items.push(item("/data/b/2", Some(big.clone())));
        items.push(item("/data/b/3", Some(big)));
        items.extend((0..ITEMS_PER_REQUEST + 5).map(|i| item(&format!("/roles/r{i}"), None)));
        let mut rest = items.into_iter().peekable();
        assert_eq!(next_batch(&mut rest).len(), 1, "two halves do not fit");
        assert_eq!(next_batch(&mut rest).len(), 1);
        assert_eq!(next_batch(&mut rest).len(), ITEMS_PER_REQUEST);
        assert_eq!(next_batch(&mut rest).len(), 6);
        assert!(rest.peek().is_none());
    }

    #[test]
    fn results_must_match_the_batch() {
        let batch = vec![
            item("/roles/a", Some(json!({"name": "a"}))),
            item("/roles/b", None),
            item("/data/x/y", Some(json!({"id": "y"}))),
        ];
        let answer = json!({"results": [
            {"path": "/roles/a", "status": 201, "outcome": "created"},
            {"path": "/roles/b", "status": 200, "outcome": "absent"},
            {"path": "/data/x/y", "status": 404, "outcome": "failed", "error": ["No data bag 'x'"]},
        ]});
        let batch: Vec<(Change, String)> = batch.into_iter().map(|i| (i.change, i.rel)).collect();
        let outcomes = read_results(&answer, &batch).unwrap();
        assert!(matches!(outcomes[0].result, Ok(Applied::Written)));
        assert!(matches!(outcomes[1].result, Ok(Applied::Deleted)));
        assert!(matches!(
            &outcomes[2].result,
            Err(ChefError::Rejected { status: 404, message }) if message == "No data bag 'x'"
        ));
        let short = json!({"results": [{"path": "/roles/a", "outcome": "created"}]});
        assert!(read_results(&short, &batch).is_err());
        let swapped = json!({"results": [
            {"path": "/roles/b", "outcome": "created"},
            {"path": "/roles/a", "outcome": "created"},
            {"path": "/data/x/y", "outcome": "created"},
        ]});
        assert!(read_results(&swapped, &batch).is_err());
        assert!(read_results(&json!([]), &batch).is_err());
    }
}
