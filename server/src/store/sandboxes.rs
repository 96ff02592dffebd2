//! Sandboxes (upload sessions for cookbook files), the checksums each org may reference, blob
//! bytes for the database backend, and the shared server secrets.

use std::collections::BTreeSet;

use sqlx::Row;

use super::{Store, StoreError, StoreResult, flag, now_millis};

/// An open sandbox.
#[derive(Debug, Clone)]
pub struct SandboxRow {
    /// 32 hex digits.
    pub id: String,
    /// Owning org.
    pub org_id: i64,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Its checksums and whether each arrived through this sandbox.
    pub checksums: Vec<(String, bool)>,
}

impl Store {
    /// Opens a sandbox for `checksums` (lowercase MD5 hex).
    pub async fn create_sandbox(
        &self,
        org_id: i64,
        id: &str,
        checksums: &BTreeSet<String>,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO sandboxes (id, org_id, created_at, completed) VALUES ($1, $2, $3, 0)",
        )
        .bind(id)
        .bind(org_id)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        for checksum in checksums {
            sqlx::query(
                "INSERT INTO sandbox_checksums (sandbox_id, checksum, uploaded) VALUES ($1, $2, 0)",
            )
            .bind(id)
            .bind(checksum)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// An open sandbox of `org_id`.
    pub async fn sandbox(&self, org_id: i64, id: &str) -> StoreResult<Option<SandboxRow>> {
        let Some(row) = sqlx::query(
            "SELECT created_at FROM sandboxes WHERE id = $1 AND org_id = $2 AND completed = 0",
        )
        .bind(id)
        .bind(org_id)
        .fetch_optional(&self.read)
        .await?
        else {
            return Ok(None);
        };
        let rows = sqlx::query("SELECT checksum, uploaded FROM sandbox_checksums WHERE sandbox_id = $1 ORDER BY checksum")
            .bind(id)
            .fetch_all(&self.read)
            .await?;
        let checksums = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("checksum")?,
                    r.try_get::<i64, _>("uploaded")? != 0,
                ))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Some(SandboxRow {
            id: id.to_owned(),
            org_id,
            created_at: row.try_get("created_at")?,
            checksums,
        }))
    }

    /// Records that `checksum` arrived through sandbox `id`.
    pub async fn mark_uploaded(&self, id: &str, checksum: &str) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE sandbox_checksums SET uploaded = $3 WHERE sandbox_id = $1 AND checksum = $2",
        )
        .bind(id)
        .bind(checksum)
        .bind(flag(true))
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Commits a sandbox: its checksums become visible to the org and the sandbox closes.
    pub async fn commit_sandbox(&self, sandbox: &SandboxRow) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        for (checksum, _) in &sandbox.checksums {
            sqlx::query("INSERT INTO org_checksums (org_id, checksum) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(sandbox.org_id)
                .bind(checksum)
                .execute(&mut *tx)
                .await?;
        }
        let closed = sqlx::query("DELETE FROM sandboxes WHERE id = $1 AND completed = 0")
            .bind(&sandbox.id)
            .execute(&mut *tx)
            .await?;
        if closed.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Which of `checksums` the org may reference.
    pub async fn org_checksums(
        &self,
        org_id: i64,
        checksums: &BTreeSet<String>,
    ) -> StoreResult<BTreeSet<String>> {
        let mut known = BTreeSet::new();
        // One query per checksum keeps the SQL portable; manifests hold tens of files.
        for checksum in checksums {
            let hit = sqlx::query(
                "SELECT 1 AS one FROM org_checksums WHERE org_id = $1 AND checksum = $2",
            )
            .bind(org_id)
            .bind(checksum)
            .fetch_optional(&self.read)
            .await?;
            if hit.is_some() {
                known.insert(checksum.clone());
            }
        }
        Ok(known)
    }

    /// Whether the `blobs` table holds `checksum`.
    pub async fn blob_exists(&self, checksum: &str) -> StoreResult<bool> {
        let hit = sqlx::query("SELECT 1 AS one FROM blobs WHERE checksum = $1")
            .bind(checksum)
            .fetch_optional(&self.read)
            .await?;
        Ok(hit.is_some())
    }

    /// Stores blob bytes (content-addressed: an existing row is left alone).
    pub async fn put_blob(&self, checksum: &str, data: &[u8]) -> StoreResult<()> {
        sqlx::query("INSERT INTO blobs (checksum, data) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(checksum)
            .bind(data)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Blob bytes.
    pub async fn blob(&self, checksum: &str) -> StoreResult<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT data FROM blobs WHERE checksum = $1")
            .bind(checksum)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.try_get("data")).transpose()?)
    }

    /// The secret called `name`, created from `fresh` by the first process that asks; every
    /// process over the same database gets the same value.
    pub async fn shared_secret(&self, name: &str, fresh: &str) -> StoreResult<String> {
        sqlx::query(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(fresh)
        .execute(&self.write)
        .await?;
        let row = sqlx::query("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.write)
            .await?;
        Ok(row.try_get("value")?)
    }
}
