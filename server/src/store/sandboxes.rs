//! Sandboxes (upload sessions for cookbook files), the checksums each org may reference, blob
//! bytes for the database backend, and the shared server secrets.
//!
//! A checksum (MD5, what Chef names files by) leads to its bytes only through the org's own
//! row: `sha256` names the blob that org uploaded. A NULL `sha256` is a row written before
//! blobs were keyed by SHA-256, and its blob is still the one stored under the MD5.

use std::collections::{BTreeMap, BTreeSet};

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
    /// Its checksums, in order.
    pub checksums: Vec<SandboxFile>,
}

/// One checksum of a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxFile {
    /// Lowercase MD5 hex.
    pub checksum: String,
    /// Whether the file arrived through this sandbox.
    pub uploaded: bool,
    /// The SHA-256 of what arrived; `None` for an upload made before the upgrade.
    pub sha256: Option<String>,
}

impl SandboxFile {
    /// The blob this sandbox's upload was stored under, if it had one.
    pub fn blob_key(&self) -> Option<&str> {
        self.uploaded
            .then(|| self.sha256.as_deref().unwrap_or(&self.checksum))
    }
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
        let rows = sqlx::query(
            "SELECT checksum, uploaded, sha256 FROM sandbox_checksums WHERE sandbox_id = $1 ORDER BY checksum",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        let checksums = rows
            .iter()
            .map(|r| {
                Ok(SandboxFile {
                    checksum: r.try_get("checksum")?,
                    uploaded: r.try_get::<i64, _>("uploaded")? != 0,
                    sha256: r.try_get("sha256")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Some(SandboxRow {
            id: id.to_owned(),
            org_id,
            created_at: row.try_get("created_at")?,
            checksums,
        }))
    }

    /// Whether `checksum` is one the open sandbox `id` of `org_id` waits for: one row read,
    /// however many files the sandbox lists (a replica's shared sandbox lists a thousand, each
    /// uploaded with a request of its own).
    pub async fn sandbox_expects(
        &self,
        org_id: i64,
        id: &str,
        checksum: &str,
    ) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM sandboxes s JOIN sandbox_checksums c ON c.sandbox_id = s.id \
             WHERE s.id = $1 AND s.org_id = $2 AND s.completed = 0 AND c.checksum = $3",
        )
        .bind(id)
        .bind(org_id)
        .bind(checksum)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.is_some())
    }

    /// Records that `checksum` arrived through sandbox `id` and was stored as blob `sha256`.
    pub async fn mark_uploaded(&self, id: &str, checksum: &str, sha256: &str) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE sandbox_checksums SET uploaded = $3, sha256 = $4 WHERE sandbox_id = $1 AND checksum = $2",
        )
        .bind(id)
        .bind(checksum)
        .bind(flag(true))
        .bind(sha256)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Commits a sandbox: the files uploaded through it become the org's content for their
    /// checksums (a later upload replaces an earlier one, as in Chef's per-org bookshelf), and
    /// the sandbox closes. A checksum the org already had and did not upload again keeps its
    /// blob. Pointing the org at the blob and closing the sandbox happen in one transaction,
    /// so the sweep always sees one of the two referencing it.
    pub async fn commit_sandbox(&self, sandbox: &SandboxRow) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        for file in sandbox.checksums.iter().filter(|f| f.uploaded) {
            sqlx::query(
                "INSERT INTO org_checksums (org_id, checksum, sha256) VALUES ($1, $2, $3) \
                 ON CONFLICT (org_id, checksum) DO UPDATE SET sha256 = excluded.sha256",
            )
            .bind(sandbox.org_id)
            .bind(&file.checksum)
            .bind(file.sha256.as_deref())
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

    /// The blob each of `checksums` leads to for the org (its own upload's SHA-256, or the MD5
    /// itself for a row from before the upgrade); checksums the org never committed are absent.
    pub async fn org_blob_keys(
        &self,
        org_id: i64,
        checksums: &BTreeSet<String>,
    ) -> StoreResult<BTreeMap<String, String>> {
        let mut keys = BTreeMap::new();
        for checksum in checksums {
            if let Some(key) = self.org_blob_key(org_id, checksum).await? {
                keys.insert(checksum.clone(), key);
            }
        }
        Ok(keys)
    }

    /// The blob `checksum` leads to for the org, if the org committed it.
    pub async fn org_blob_key(&self, org_id: i64, checksum: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query(
            "SELECT COALESCE(sha256, checksum) AS blob_key FROM org_checksums WHERE org_id = $1 AND checksum = $2",
        )
        .bind(org_id)
        .bind(checksum)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| r.try_get("blob_key")).transpose()?)
    }

    /// Whether the `blobs` table holds `checksum`.
    pub async fn blob_exists(&self, checksum: &str) -> StoreResult<bool> {
        let hit = sqlx::query("SELECT 1 AS one FROM blobs WHERE checksum = $1")
            .bind(checksum)
            .fetch_optional(&self.read)
            .await?;
        Ok(hit.is_some())
    }

    /// Stores blob bytes (content-addressed: an existing row keeps its bytes and only counts
    /// as freshly stored).
    pub async fn put_blob(&self, checksum: &str, data: &[u8]) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO blobs (checksum, data, stored_at) VALUES ($1, $2, $3) \
             ON CONFLICT (checksum) DO UPDATE SET stored_at = excluded.stored_at",
        )
        .bind(checksum)
        .bind(data)
        .bind(now_millis())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Marks a stored blob as stored just now, so the sweep spares it while an upload of the
    /// same content is in flight; false when no such blob is stored.
    pub async fn touch_blob(&self, checksum: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE blobs SET stored_at = $2 WHERE checksum = $1")
            .bind(checksum)
            .bind(now_millis())
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Blob bytes.
    pub async fn blob(&self, checksum: &str) -> StoreResult<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT data FROM blobs WHERE checksum = $1")
            .bind(checksum)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.try_get("data")).transpose()?)
    }

    /// Removes the sandboxes opened before `cutoff` (ms since the epoch) and never committed,
    /// with their checksum rows (`ON DELETE CASCADE`). One statement, so sweeps of several
    /// processes over one database only ever delete a row once; returns how many went.
    pub async fn expire_sandboxes(&self, cutoff: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM sandboxes WHERE completed = 0 AND created_at < $1")
            .bind(cutoff)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }

    /// Whether an org or an open sandbox still references the blob `sha256`. One statement,
    /// so a sandbox's commit (which moves the reference from the sandbox to the org in one
    /// transaction) is seen on one side or the other.
    pub async fn blob_referenced(&self, sha256: &str) -> StoreResult<bool> {
        let hit = sqlx::query(
            "SELECT 1 AS one FROM org_checksums WHERE sha256 = $1 \
             UNION ALL SELECT 1 AS one FROM sandbox_checksums WHERE sha256 = $1 LIMIT 1",
        )
        .bind(sha256)
        .fetch_optional(&self.read)
        .await?;
        Ok(hit.is_some())
    }

    /// Deletes the SHA-256-keyed rows of `blobs` stored before `cutoff` (ms since the epoch)
    /// that no org and no open sandbox references. Legacy MD5-keyed rows are never touched.
    /// The age and the references are checked by the DELETE itself, so a blob stored again
    /// (which refreshes `stored_at`) or committed meanwhile is not removed, and concurrent
    /// sweeps delete each row once.
    pub async fn sweep_blobs(&self, cutoff: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM blobs WHERE stored_at < $1 AND length(checksum) = 64 \
             AND NOT EXISTS (SELECT 1 FROM org_checksums o WHERE o.sha256 = blobs.checksum) \
             AND NOT EXISTS (SELECT 1 FROM sandbox_checksums s WHERE s.sha256 = blobs.checksum)",
        )
        .bind(cutoff)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
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
