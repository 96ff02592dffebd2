//! The change-log entries of one write transaction. Ids are handed out from the org's counter,
//! locked when the transaction starts, and the entries are written together just before the
//! commit: a bulk write of 500 objects then costs a few multi-row inserts and one counter
//! update instead of a thousand statements.

use sqlx::{Any, Transaction};

use super::{MAX_BINDS, Store, StoreResult, now_millis, numbered};

/// Rows per `INSERT INTO change_log` (5 binds each).
const ROWS_PER_INSERT: usize = MAX_BINDS / 5;

/// One entry waiting for the commit.
struct Pending {
    seq: i64,
    action: &'static str,
    path: String,
}

/// The entries a transaction that holds the org's lock appends.
pub(super) struct Entries {
    org_id: i64,
    /// The counter when the lock was taken.
    locked: i64,
    last: i64,
    pending: Vec<Pending>,
}

impl Entries {
    /// Locks the org's counter for this transaction (`NotFound`: no such org).
    pub(super) async fn lock(
        store: &Store,
        tx: &mut Transaction<'static, Any>,
        org_id: i64,
    ) -> StoreResult<Self> {
        let last = store.lock_org(tx, org_id).await?;
        Ok(Entries {
            org_id,
            locked: last,
            last,
            pending: Vec::new(),
        })
    }

    pub(super) fn org_id(&self) -> i64 {
        self.org_id
    }

    /// Appends the next entry; its id.
    pub(super) fn append(&mut self, action: &'static str, path: String) -> i64 {
        self.last += 1;
        self.pending.push(Pending {
            seq: self.last,
            action,
            path,
        });
        self.last
    }

    /// The id of the last entry (the org's counter when nothing was appended).
    pub(super) fn last(&self) -> i64 {
        self.last
    }

    /// How many entries were appended: a mark to [`Entries::undo`] to.
    pub(super) fn mark(&self) -> usize {
        self.pending.len()
    }

    /// Forgets the entries appended after `mark` (a batch item refused after it logged).
    pub(super) fn undo(&mut self, mark: usize) {
        self.pending.truncate(mark);
        self.last = self.pending.last().map_or(self.locked, |p| p.seq);
    }

    /// Writes the entries and the org's counter, commits, and wakes the feed's long-polls.
    pub(super) async fn commit(
        mut self,
        store: &Store,
        mut tx: Transaction<'static, Any>,
    ) -> StoreResult<()> {
        let appended = !self.pending.is_empty();
        self.write(&mut tx).await?;
        tx.commit().await?;
        if appended {
            store.feed_notifier().notify(self.org_id, self.last);
        }
        Ok(())
    }

    async fn write(&mut self, tx: &mut Transaction<'static, Any>) -> StoreResult<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let created_at = now_millis();
        for chunk in self.pending.chunks(ROWS_PER_INSERT) {
            let rows = (0..chunk.len())
                .map(|r| format!("({})", numbered(5, r * 5 + 1)))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO change_log (org_id, seq, action, path, created_at) VALUES {rows}"
            );
            let mut q = sqlx::query(&sql);
            for p in chunk {
                q = q
                    .bind(self.org_id)
                    .bind(p.seq)
                    .bind(p.action)
                    .bind(p.path.as_str())
                    .bind(created_at);
            }
            q.execute(&mut **tx).await?;
        }
        sqlx::query("UPDATE orgs SET last_seq = $2 WHERE id = $1")
            .bind(self.org_id)
            .bind(self.last)
            .execute(&mut **tx)
            .await?;
        self.pending.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_hands_the_ids_of_forgotten_entries_out_again() {
        let mut entries = Entries {
            org_id: 1,
            locked: 10,
            last: 10,
            pending: Vec::new(),
        };
        let start = entries.mark();
        assert_eq!(entries.append("create", "/roles/a".into()), 11);
        let mark = entries.mark();
        assert_eq!(entries.append("delete", "/data/b/1".into()), 12);
        assert_eq!(entries.append("delete", "/data/b".into()), 13);
        entries.undo(mark);
        assert_eq!(entries.last(), 11);
        assert_eq!(entries.append("create", "/roles/c".into()), 12);
        entries.undo(start);
        assert_eq!(entries.last(), 10);
        assert!(entries.pending.is_empty());
    }
}
