//! Removing what uploads that were never committed leave behind: without this any writer
//! could fill the disk by opening sandboxes and uploading into them.
//!
//! One sweep removes the sandboxes older than `sandbox_ttl` (with their checksum rows), then
//! the SHA-256-keyed blobs last stored more than `sandbox_ttl` ago that no org and no open
//! sandbox references, then staging files that dead uploads left in `DATA_DIR/tmp`. Storing a
//! blob again refreshes its age, so content being re-uploaded is not removed under the upload.
//! Legacy MD5-keyed blobs are never removed. Every delete is idempotent and checks its
//! condition itself, so several server processes over one database may sweep at once.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{BlobError, BlobStore};
use crate::config::Config;
use crate::store::Store;

/// Staging files are left this long at least: one still being written is younger (every write
/// refreshes its mtime), so only an upload stalled this long loses its file.
const STAGING_MIN_AGE: Duration = Duration::from_secs(3600);

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Expired sandboxes.
    pub sandboxes: u64,
    /// Blobs nothing referenced.
    pub blobs: u64,
    /// Staging files of dead uploads.
    pub staged: u64,
}

impl Swept {
    fn is_empty(&self) -> bool {
        *self == Swept::default()
    }
}

/// How often `serve` sweeps: a quarter of the TTL, so nothing outlives it by much, but at
/// most every 10 minutes and at least every second.
pub fn sweep_period(sandbox_ttl: u64) -> Duration {
    Duration::from_secs((sandbox_ttl / 4).clamp(1, 600))
}

/// One sweep with `config.sandbox_ttl` (0 disables expiry: nothing is removed).
pub async fn sweep(config: &Config, store: &Store) -> Result<Swept, BlobError> {
    if config.sandbox_ttl == 0 {
        return Ok(Swept::default());
    }
    let ttl = Duration::from_secs(config.sandbox_ttl);
    let now = SystemTime::now();
    let cutoff = now.checked_sub(ttl).unwrap_or(UNIX_EPOCH);
    let sandboxes = store.expire_sandboxes(millis(cutoff)).await?;
    // After the sandboxes, so the blobs only they referenced go in the same sweep.
    let blobs = match BlobStore::from_config(config, store) {
        BlobStore::Filesystem(fs) => fs.sweep(store, cutoff).await?,
        BlobStore::Database(db) => db.sweep_blobs(millis(cutoff)).await?,
    };
    let staging_cutoff = now
        .checked_sub(ttl.max(STAGING_MIN_AGE))
        .unwrap_or(UNIX_EPOCH);
    let staged = sweep_staging(&BlobStore::staging_dir(config), staging_cutoff).await?;
    Ok(Swept {
        sandboxes,
        blobs,
        staged,
    })
}

/// Sweeps every [`sweep_period`] for as long as the server runs; a failed sweep is logged and
/// tried again next period.
pub async fn sweep_forever(config: Arc<Config>, store: Store) {
    if config.sandbox_ttl == 0 {
        tracing::warn!("sandbox_ttl = 0: uploads that are never committed are kept forever");
        return;
    }
    let period = sweep_period(config.sandbox_ttl);
    loop {
        tokio::time::sleep(period).await;
        match sweep(&config, &store).await {
            Ok(swept) if swept.is_empty() => {}
            Ok(swept) => tracing::info!(
                sandboxes = swept.sandboxes,
                blobs = swept.blobs,
                staged = swept.staged,
                "removed expired uploads"
            ),
            Err(e) => tracing::warn!(error = %e, "sweeping expired uploads failed"),
        }
    }
}

/// Milliseconds since the epoch, as the database stores times.
fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Removes the staging files last written before `cutoff`: a process that died mid-upload
/// never dropped its temporary file.
async fn sweep_staging(dir: &Path, cutoff: SystemTime) -> std::io::Result<u64> {
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    while let Some(entry) = entries.next_entry().await? {
        let Ok(meta) = entry.metadata().await else {
            continue;
        };
        if !meta.is_file() || meta.modified()? >= cutoff {
            continue;
        }
        match tokio::fs::remove_file(entry.path()).await {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_is_a_quarter_of_the_ttl_within_bounds() {
        assert_eq!(sweep_period(86_400), Duration::from_secs(600));
        assert_eq!(sweep_period(1_200), Duration::from_secs(300));
        assert_eq!(sweep_period(2), Duration::from_secs(1));
    }

    #[test]
    fn times_become_database_millis() {
        assert_eq!(millis(UNIX_EPOCH + Duration::from_millis(1_500)), 1_500);
        assert_eq!(millis(UNIX_EPOCH), 0);
    }
}
