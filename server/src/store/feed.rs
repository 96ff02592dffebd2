//! Reading the change log.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, StoreResult};

/// One `updated_since` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeEntry {
    /// `create`, `update` or `delete`.
    pub action: String,
    /// Per-org change id.
    pub id: i64,
    /// Org-relative object path.
    pub path: String,
}

/// A page of the feed.
pub type FeedPage = Vec<ChangeEntry>;

impl Store {
    /// Entries with id > `after`, ascending, at most `limit`. `Pruned` when entries after
    /// `after` may have been removed.
    pub async fn changes_since(
        &self,
        org_id: i64,
        after: i64,
        limit: i64,
    ) -> StoreResult<FeedPage> {
        let pruned: i64 = sqlx::query("SELECT pruned_through FROM orgs WHERE id = $1")
            .bind(org_id)
            .fetch_optional(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?
            .try_get("pruned_through")?;
        if after < pruned {
            return Err(StoreError::Pruned(pruned));
        }
        let rows = sqlx::query("SELECT seq, action, path FROM change_log WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3")
            .bind(org_id)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ChangeEntry {
                    action: r.try_get("action")?,
                    id: r.try_get("seq")?,
                    path: r.try_get("path")?,
                })
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
}
