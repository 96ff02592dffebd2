//! Reading the change log.

use sqlx::Row;

use super::{Store, StoreError, StoreResult};

impl Store {
    /// Entries with id > `after`, ascending, at most `limit`, as a JSON array of
    /// `{"action","id","path"}` (the `updated_since` body). `Pruned` when entries after `after`
    /// may have been removed.
    pub async fn changes_since(&self, org_id: i64, after: i64, limit: i64) -> StoreResult<String> {
        let pruned: i64 = sqlx::query("SELECT pruned_through FROM orgs WHERE id = $1")
            .bind(org_id)
            .fetch_optional(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?
            .try_get("pruned_through")?;
        if after < pruned {
            return Err(StoreError::Pruned(pruned));
        }
        let row = sqlx::query(self.dialect.feed_page_sql())
            .bind(org_id)
            .bind(after)
            .bind(limit)
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get("page")?)
    }

    /// Every org's change-log length and newest id: `(org, entries, last_seq)`.
    pub async fn feed_sizes(&self) -> StoreResult<Vec<(String, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT o.name AS name, o.last_seq AS last_seq, \
             (SELECT COUNT(*) FROM change_log c WHERE c.org_id = o.id) AS entries \
             FROM orgs o ORDER BY o.name",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("name")?,
                    r.try_get("entries")?,
                    r.try_get("last_seq")?,
                ))
            })
            .collect()
    }

    /// The highest change id handed out in an org.
    pub async fn last_seq(&self, org_id: i64) -> StoreResult<i64> {
        let row = sqlx::query("SELECT last_seq FROM orgs WHERE id = $1")
            .bind(org_id)
            .fetch_optional(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(row.try_get("last_seq")?)
    }

    /// Removes entries older than `before` (milliseconds since the epoch), except the latest
    /// entry of every path that still exists. Readers positioned before the highest removed id
    /// get `Pruned` (410) from then on. Returns (entries removed, new pruned-through id).
    pub async fn prune_log(&self, org_id: i64, before: i64) -> StoreResult<(u64, i64)> {
        const PRUNABLE: &str = "org_id = $1 AND created_at < $2 AND seq NOT IN ( \
             SELECT MAX(c.seq) FROM change_log c JOIN objects o ON o.org_id = c.org_id AND o.path = c.path \
             WHERE c.org_id = $1 GROUP BY c.path)";
        let mut tx = self.write.begin().await?;
        // Hold the org's counter lock so no writer interleaves with the bookkeeping.
        let locked = sqlx::query(self.dialect.lock_org_sql())
            .bind(org_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let pruned_before: i64 = locked.try_get("pruned_through")?;
        let highest: Option<i64> = sqlx::query(&format!(
            "SELECT MAX(seq) AS highest FROM change_log WHERE {PRUNABLE}"
        ))
        .bind(org_id)
        .bind(before)
        .fetch_one(&mut *tx)
        .await?
        .try_get("highest")?;
        let Some(highest) = highest else {
            return Ok((0, pruned_before));
        };
        let removed = sqlx::query(&format!("DELETE FROM change_log WHERE {PRUNABLE}"))
            .bind(org_id)
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let through = highest.max(pruned_before);
        sqlx::query("UPDATE orgs SET pruned_through = $2 WHERE id = $1")
            .bind(org_id)
            .bind(through)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((removed, through))
    }
}
