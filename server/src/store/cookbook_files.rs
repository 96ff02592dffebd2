//! Which files each stored cookbook version references. Deleting or replacing a version
//! releases the checksums no version of the org references any more: they leave
//! `org_checksums`, so their download URLs answer 404 (as Chef's do once a file is
//! unreferenced), a later upload of the same content is asked for again, and the blob sweep
//! may drop the bytes.

use std::collections::BTreeSet;

use chef_sync_shared::objects::SEGMENTS;
use serde_json::Value;
use sqlx::{Any, Row, Transaction};

use super::{Store, StoreError, StoreResult};

/// The checksums a stored manifest (cookbook version or artifact) references: every file
/// entry of `all_files` and of the nine segments, in lower case (none for an unreadable one:
/// it could not have been stored through the API).
fn checksums(body: Option<&str>) -> BTreeSet<String> {
    let Some(Value::Object(doc)) = body.and_then(|b| serde_json::from_str(b).ok()) else {
        return BTreeSet::new();
    };
    std::iter::once("all_files")
        .chain(SEGMENTS)
        .filter_map(|list| doc.get(list).and_then(Value::as_array))
        .flatten()
        .filter_map(|file| file.get("checksum").and_then(Value::as_str))
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Records that the version at `path` references the file `checksum`.
async fn record(
    tx: &mut Transaction<'static, Any>,
    org_id: i64,
    checksum: &str,
    path: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO cookbook_files (org_id, checksum, path) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(org_id)
    .bind(checksum)
    .bind(path)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records that the version at `path` now references the files of `new` instead of those of
/// `old` (either absent: created or deleted), inside the write's transaction, and releases
/// the org's checksums nothing references any more. A file the new manifest adds must be one
/// the org uploaded: checked here, under the org's write lock, so a concurrent release of the
/// same checksum cannot leave a stored manifest naming a file that is gone.
pub(super) async fn replace(
    tx: &mut Transaction<'static, Any>,
    org_id: i64,
    path: &str,
    old: Option<&str>,
    new: Option<&str>,
) -> StoreResult<()> {
    let (before, after) = (checksums(old), checksums(new));
    for added in after.difference(&before) {
        let uploaded =
            sqlx::query("SELECT 1 FROM org_checksums WHERE org_id = $1 AND checksum = $2")
                .bind(org_id)
                .bind(added)
                .fetch_optional(&mut **tx)
                .await?;
        if uploaded.is_none() {
            return Err(StoreError::UnknownChecksum {
                checksum: added.clone(),
                update: old.is_some(),
            });
        }
        record(tx, org_id, added, path).await?;
    }
    for dropped in before.difference(&after) {
        sqlx::query("DELETE FROM cookbook_files WHERE org_id = $1 AND checksum = $2 AND path = $3")
            .bind(org_id)
            .bind(dropped)
            .bind(path)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "DELETE FROM org_checksums WHERE org_id = $1 AND checksum = $2 AND NOT EXISTS \
             (SELECT 1 FROM cookbook_files f WHERE f.org_id = $1 AND f.checksum = $2)",
        )
        .bind(org_id)
        .bind(dropped)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Reads the manifests of versions stored before `cookbook_files` existed (listed by its
    /// migration) and records their files, at the first start of this release. Returns how
    /// many versions it read. Each version is read and recorded under its org's write lock, so
    /// another server process over the same database, already serving, cannot change the
    /// version between the read and the record.
    pub async fn record_pending_cookbook_files(&self) -> StoreResult<usize> {
        let mut done = 0;
        loop {
            let pending = sqlx::query(
                "SELECT org_id, path FROM cookbook_files_pending ORDER BY org_id, path LIMIT 200",
            )
            .fetch_all(&self.write)
            .await?;
            if pending.is_empty() {
                return Ok(done);
            }
            for row in pending {
                let org_id: i64 = row.try_get("org_id")?;
                let path: String = row.try_get("path")?;
                let mut tx = self.write.begin().await?;
                // An org deleted since the migration has nothing left to record.
                if self.lock_org(&mut tx, org_id).await.is_ok() {
                    let still_pending = sqlx::query(
                        "SELECT 1 FROM cookbook_files_pending WHERE org_id = $1 AND path = $2",
                    )
                    .bind(org_id)
                    .bind(&path)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                    let body: Option<String> =
                        sqlx::query("SELECT body FROM objects WHERE org_id = $1 AND path = $2")
                            .bind(org_id)
                            .bind(&path)
                            .fetch_optional(&mut *tx)
                            .await?
                            .map(|r| r.try_get("body"))
                            .transpose()?;
                    if still_pending {
                        for checksum in checksums(body.as_deref()) {
                            record(&mut tx, org_id, &checksum, &path).await?;
                        }
                    }
                }
                sqlx::query("DELETE FROM cookbook_files_pending WHERE org_id = $1 AND path = $2")
                    .bind(org_id)
                    .bind(&path)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                done += 1;
            }
        }
    }
}
