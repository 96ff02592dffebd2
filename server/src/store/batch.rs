//! Many writes and deletes of one org's replicated objects in one transaction (the bulk write
//! a replica's chef-syncd sends): each item gets its own change-log entry and its own result,
//! and an item refused by a rule leaves the others applied.

use chef_sync_shared::{ObjectKind, ObjectPath};
use sqlx::Any;
use sqlx::Transaction;

use super::change_log::Entries;
use super::objects::{Known, WriteMode};
use super::search_index::Learned;
use super::{Store, StoreError, StoreResult, WriteOutcome};

/// Computes an item's body from the stored one (`None`: not stored), or refuses the write.
pub type MakeBody = Box<dyn FnOnce(Option<&str>) -> StoreResult<String> + Send>;

/// What one item asks for.
pub enum BatchOp {
    /// Create or replace the object with the body `make_body` computes.
    Write(MakeBody),
    /// Delete the object if it exists.
    Delete,
}

impl std::fmt::Debug for BatchOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BatchOp::Write(_) => "Write",
            BatchOp::Delete => "Delete",
        })
    }
}

/// One item of a batch.
#[derive(Debug)]
pub struct BatchItem {
    /// The object.
    pub path: ObjectPath,
    /// What to do with it.
    pub op: BatchOp,
}

/// What one item did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Written (created, updated, or unchanged: same content as stored).
    Written(WriteOutcome),
    /// Deleted; the id of its entry.
    Deleted(i64),
    /// Nothing to delete.
    Absent,
}

impl Store {
    /// Applies `items` in order in one transaction. An item refused by a rule (`Refused`,
    /// `ParentMissing`, `UnknownChecksum`, …) gets that error as its result and changes
    /// nothing; a database failure rolls the whole batch back and is returned as the error.
    pub async fn apply_batch(
        &self,
        org_id: i64,
        items: Vec<BatchItem>,
    ) -> StoreResult<Vec<StoreResult<ItemOutcome>>> {
        let mut tx = self.write.begin().await?;
        let mut entries = Entries::lock(self, &mut tx, org_id).await?;
        let first = entries.last();
        let mut known = Known::holding();
        let paths: Vec<String> = items.iter().map(|i| i.path.to_string()).collect();
        known.prefetch(&mut tx, org_id, &paths).await?;
        let mut results = Vec::with_capacity(items.len());
        let mut learned: Vec<Learned> = Vec::new();
        for item in items {
            if matches!(item.op, BatchOp::Delete) {
                // A delete reads the rows and index entries the held writes would change.
                learned.push(self.write_held(&mut tx, org_id, &mut known).await?);
            }
            let result = self
                .apply_item(&mut tx, &mut entries, &mut known, item)
                .await;
            match result {
                Ok((outcome, mut l)) => {
                    learned.append(&mut l);
                    results.push(Ok(outcome));
                }
                Err(e @ (StoreError::Db(_) | StoreError::Migrate(_))) => return Err(e),
                Err(e) => results.push(Err(e)),
            }
        }
        if entries.last() == first {
            // Nothing written: the transaction only read.
            return Ok(results);
        }
        learned.push(self.write_held(&mut tx, org_id, &mut known).await?);
        entries.commit(self, tx).await?;
        for l in learned {
            self.learn(l);
        }
        Ok(results)
    }

    async fn apply_item(
        &self,
        tx: &mut Transaction<'static, Any>,
        entries: &mut Entries,
        known: &mut Known,
        item: BatchItem,
    ) -> StoreResult<(ItemOutcome, Vec<Learned>)> {
        // A cookbook version's file references are written before its checksums are known
        // to be uploaded: a savepoint undoes them when they are not.
        let guarded = item.path.kind() == ObjectKind::CookbookVersion;
        if guarded {
            sqlx::query("SAVEPOINT batch_item")
                .execute(&mut **tx)
                .await?;
        }
        let mark = entries.mark();
        let result = match item.op {
            BatchOp::Write(make_body) => self
                .write_in(tx, entries, known, &item.path, WriteMode::Upsert, make_body)
                .await
                .map(|(o, l)| (ItemOutcome::Written(o), l.into_iter().collect())),
            BatchOp::Delete => match self.delete_in(tx, entries, known, &item.path).await {
                Ok((_, l)) => Ok((ItemOutcome::Deleted(entries.last()), l)),
                Err(StoreError::NotFound) => Ok((ItemOutcome::Absent, Vec::new())),
                Err(e) => Err(e),
            },
        };
        if guarded {
            let end = if result.is_ok() {
                "RELEASE SAVEPOINT batch_item"
            } else {
                "ROLLBACK TO SAVEPOINT batch_item"
            };
            sqlx::query(end).execute(&mut **tx).await?;
        }
        if result.is_err() {
            entries.undo(mark);
        }
        result
    }
}
