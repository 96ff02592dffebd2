//! The daemon's state database (SQLite, WAL): per destination org the checkpoint and the
//! primary it belongs to, the started flag, status and times, and the parked objects. A
//! checkpoint moves only here, in one transaction with the parked objects it implies, and only
//! after the writes it covers were acknowledged.

use std::path::Path;
use std::str::FromStr;

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/syncd");

/// State database failures.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite failed.
    #[error("state database: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("state database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The directory could not be created.
    #[error("state directory {0}: {1}")]
    Dir(String, std::io::Error),
}

/// Result alias.
pub type StateResult<T> = Result<T, StateError>;

/// What `sync-status` reports for an org.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not started.
    Stopped,
    /// Copying everything (first sync, after a 410 or an identity change).
    Bootstrapping,
    /// Applying the feed.
    Syncing,
    /// Caught up.
    Synced,
    /// Failing; `last_error` says why.
    Error,
}

impl Status {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Stopped => "stopped",
            Status::Bootstrapping => "bootstrapping",
            Status::Syncing => "syncing",
            Status::Synced => "synced",
            Status::Error => "error",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "bootstrapping" => Status::Bootstrapping,
            "syncing" => Status::Syncing,
            "synced" => Status::Synced,
            "error" => Status::Error,
            _ => Status::Stopped,
        }
    }
}

/// One org's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgState {
    /// Destination org.
    pub destination: String,
    /// Source org.
    pub source: String,
    /// sync-start was given (and not sync-stop).
    pub started: bool,
    /// Current status.
    pub status: Status,
    /// Checkpoint.
    pub applied_seq: Option<i64>,
    /// The source org's guid the checkpoint belongs to.
    pub primary_guid: Option<String>,
    /// The primary URL the checkpoint came from.
    pub primary_url: Option<String>,
    /// The primary's newest id when last seen.
    pub primary_seq: Option<i64>,
    /// `feed` or `reconcile`.
    pub mode: Option<String>,
    /// RFC 3339.
    pub last_sync: Option<String>,
    /// RFC 3339.
    pub next_sync: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// A parked object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Parked {
    /// Org-relative path (as received, even when it broke the grammar).
    pub path: String,
    /// `create`, `update` or `delete`.
    pub action: String,
    /// Feed id, if it came from the feed.
    pub seq: Option<i64>,
    /// Attempts so far.
    pub attempts: i64,
    /// The last error.
    pub error: String,
    /// RFC 3339 time of the next retry.
    pub next_retry: String,
}

/// The state database.
#[derive(Debug, Clone)]
pub struct State {
    pool: SqlitePool,
}

/// RFC 3339 UTC with seconds, as shown to operators.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn org_state(r: &sqlx::sqlite::SqliteRow) -> StateResult<OrgState> {
    Ok(OrgState {
        destination: r.try_get("destination")?,
        source: r.try_get("source")?,
        started: r.try_get::<i64, _>("started")? != 0,
        status: Status::parse(&r.try_get::<String, _>("status")?),
        applied_seq: r.try_get("applied_seq")?,
        primary_guid: r.try_get("primary_guid")?,
        primary_url: r.try_get("primary_url")?,
        primary_seq: r.try_get("primary_seq")?,
        mode: r.try_get("mode")?,
        last_sync: r.try_get("last_sync")?,
        next_sync: r.try_get("next_sync")?,
        last_error: r.try_get("last_error")?,
    })
}

/// The checkpoint after a batch: the new applied id and what to park or release with it.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    /// New applied id (`None` leaves it).
    pub applied_seq: Option<i64>,
    /// Objects that failed: parked (or their attempt count raised).
    pub park: Vec<Parked>,
    /// Paths that succeeded or were superseded: released.
    pub release: Vec<String>,
}

impl State {
    /// Opens (creating if needed) `path` and applies migrations.
    pub async fn open(path: &Path) -> StateResult<State> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StateError::Dir(dir.display().to_string(), e))?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a checkpoint that was reported written survives a power cut.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATIONS.run(&pool).await?;
        Ok(State { pool })
    }

    /// Makes sure every configured pair has a row (new rows start stopped).
    pub async fn ensure_org(&self, destination: &str, source: &str) -> StateResult<()> {
        sqlx::query("INSERT INTO org_state (destination, source) VALUES (?1, ?2) ON CONFLICT (destination) DO NOTHING")
            .bind(destination)
            .bind(source)
            .execute(&self.pool)
            .await?;
        // A pair whose source org changed in the config starts over.
        sqlx::query("UPDATE org_state SET source = ?2, applied_seq = NULL, primary_guid = NULL WHERE destination = ?1 AND source <> ?2")
            .bind(destination)
            .bind(source)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// One org's state.
    pub async fn org(&self, destination: &str) -> StateResult<Option<OrgState>> {
        let row = sqlx::query("SELECT * FROM org_state WHERE destination = ?1")
            .bind(destination)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(org_state).transpose()
    }

    /// sync-start / sync-stop.
    pub async fn set_started(&self, destination: &str, started: bool) -> StateResult<()> {
        let status = if started { "syncing" } else { "stopped" };
        sqlx::query("UPDATE org_state SET started = ?2, status = CASE WHEN ?2 = 0 THEN 'stopped' ELSE (CASE WHEN status = 'stopped' THEN ?3 ELSE status END) END WHERE destination = ?1")
            .bind(destination)
            .bind(i64::from(started))
            .bind(status)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records status, error and the next planned sync.
    pub async fn set_status(
        &self,
        destination: &str,
        status: Status,
        last_error: Option<&str>,
        next_sync: Option<&str>,
    ) -> StateResult<()> {
        sqlx::query("UPDATE org_state SET status = ?2, last_error = ?3, next_sync = ?4 WHERE destination = ?1")
            .bind(destination)
            .bind(status.as_str())
            .bind(last_error)
            .bind(next_sync)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records the primary's newest id and the sync mode.
    pub async fn set_primary_seq(
        &self,
        destination: &str,
        primary_seq: Option<i64>,
        mode: &str,
    ) -> StateResult<()> {
        sqlx::query("UPDATE org_state SET primary_seq = ?2, mode = ?3 WHERE destination = ?1")
            .bind(destination)
            .bind(primary_seq)
            .bind(mode)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Binds the checkpoint to a primary identity; a different identity drops the checkpoint.
    pub async fn bind_primary(
        &self,
        destination: &str,
        guid: &str,
        url: &str,
    ) -> StateResult<bool> {
        let current = self.org(destination).await?;
        let same = current
            .as_ref()
            .and_then(|o| o.primary_guid.as_deref())
            .is_some_and(|g| g == guid);
        if !same {
            sqlx::query("UPDATE org_state SET primary_guid = ?2, primary_url = ?3, applied_seq = NULL WHERE destination = ?1")
                .bind(destination)
                .bind(guid)
                .bind(url)
                .execute(&self.pool)
                .await?;
        } else {
            sqlx::query("UPDATE org_state SET primary_url = ?2 WHERE destination = ?1")
                .bind(destination)
                .bind(url)
                .execute(&self.pool)
                .await?;
        }
        Ok(same)
    }

    /// Forgets the checkpoint (a full reconcile follows).
    pub async fn drop_checkpoint(&self, destination: &str) -> StateResult<()> {
        sqlx::query("UPDATE org_state SET applied_seq = NULL WHERE destination = ?1")
            .bind(destination)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Moves the checkpoint and records parked/released objects, in one transaction.
    pub async fn commit(&self, destination: &str, cp: &Checkpoint) -> StateResult<()> {
        let mut tx = self.pool.begin().await?;
        let now = timestamp(chrono::Utc::now());
        if let Some(seq) = cp.applied_seq {
            sqlx::query(
                "UPDATE org_state SET applied_seq = ?2, last_sync = ?3 WHERE destination = ?1",
            )
            .bind(destination)
            .bind(seq)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        for path in &cp.release {
            sqlx::query("DELETE FROM parked WHERE destination = ?1 AND path = ?2")
                .bind(destination)
                .bind(path)
                .execute(&mut *tx)
                .await?;
        }
        for p in &cp.park {
            sqlx::query(
                "INSERT INTO parked (destination, path, action, seq, attempts, error, next_retry) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (destination, path) DO UPDATE SET action = excluded.action, seq = excluded.seq, \
                 attempts = parked.attempts + 1, error = excluded.error, next_retry = excluded.next_retry",
            )
            .bind(destination)
            .bind(&p.path)
            .bind(&p.action)
            .bind(p.seq)
            .bind(p.attempts)
            .bind(&p.error)
            .bind(&p.next_retry)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records the end of a full reconcile.
    pub async fn reconciled(&self, destination: &str) -> StateResult<()> {
        let now = timestamp(chrono::Utc::now());
        sqlx::query(
            "UPDATE org_state SET last_reconcile = ?2, last_sync = ?2 WHERE destination = ?1",
        )
        .bind(destination)
        .bind(&now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// When the last full reconcile ended.
    pub async fn last_reconcile(&self, destination: &str) -> StateResult<Option<String>> {
        let row = sqlx::query("SELECT last_reconcile FROM org_state WHERE destination = ?1")
            .bind(destination)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| r.try_get("last_reconcile"))
            .transpose()?
            .flatten())
    }

    /// The org's parked objects, oldest first.
    pub async fn parked(&self, destination: &str) -> StateResult<Vec<Parked>> {
        let rows = sqlx::query("SELECT path, action, seq, attempts, error, next_retry FROM parked WHERE destination = ?1 ORDER BY seq, path")
            .bind(destination)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Parked {
                    path: r.try_get("path")?,
                    action: r.try_get("action")?,
                    seq: r.try_get("seq")?,
                    attempts: r.try_get("attempts")?,
                    error: r.try_get("error")?,
                    next_retry: r.try_get("next_retry")?,
                })
            })
            .collect()
    }

    /// Parked objects due for a retry at `now`.
    pub async fn due(&self, destination: &str, now: &str) -> StateResult<Vec<Parked>> {
        Ok(self
            .parked(destination)
            .await?
            .into_iter()
            .filter(|p| p.next_retry.as_str() <= now)
            .collect())
    }

    /// Rewrites the readiness row: fails when the database no longer takes writes (disk full,
    /// read-only file system, a lock held too long).
    pub async fn check_writable(&self) -> StateResult<()> {
        sqlx::query(
            "INSERT INTO readiness_check (id, checked_at) VALUES (1, ?1) \
             ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
        )
        .bind(timestamp(chrono::Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checkpoints_and_parking() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(&dir.path().join("s/state.db")).await.unwrap();
        state.ensure_org("dst", "src").await.unwrap();
        state.ensure_org("dst", "src").await.unwrap();
        let org = state.org("dst").await.unwrap().unwrap();
        assert_eq!(org.status, Status::Stopped);
        assert!(!org.started);
        assert_eq!(org.applied_seq, None);

        state.set_started("dst", true).await.unwrap();
        assert!(state.org("dst").await.unwrap().unwrap().started);
        assert!(!state.bind_primary("dst", "g1", "http://a").await.unwrap());
        let parked = Parked {
            path: "/roles/x".into(),
            action: "update".into(),
            seq: Some(3),
            attempts: 1,
            error: "400 bad".into(),
            next_retry: "2000-01-01T00:00:00Z".into(),
        };
        state
            .commit(
                "dst",
                &Checkpoint {
                    applied_seq: Some(5),
                    park: vec![parked.clone()],
                    release: vec![],
                },
            )
            .await
            .unwrap();
        state
            .commit(
                "dst",
                &Checkpoint {
                    applied_seq: None,
                    park: vec![parked.clone()],
                    release: vec![],
                },
            )
            .await
            .unwrap();
        let list = state.parked("dst").await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].attempts, 2);
        assert_eq!(
            state
                .due("dst", "2001-01-01T00:00:00Z")
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            state
                .due("dst", "1999-01-01T00:00:00Z")
                .await
                .unwrap()
                .len(),
            0
        );
        let org = state.org("dst").await.unwrap().unwrap();
        assert_eq!(org.applied_seq, Some(5));
        assert!(org.last_sync.is_some());

        // Same identity keeps the checkpoint; a different one drops it.
        assert!(state.bind_primary("dst", "g1", "http://b").await.unwrap());
        assert_eq!(
            state.org("dst").await.unwrap().unwrap().applied_seq,
            Some(5)
        );
        assert!(!state.bind_primary("dst", "g2", "http://b").await.unwrap());
        assert_eq!(state.org("dst").await.unwrap().unwrap().applied_seq, None);

        state
            .commit(
                "dst",
                &Checkpoint {
                    applied_seq: None,
                    park: vec![],
                    release: vec!["/roles/x".into()],
                },
            )
            .await
            .unwrap();
        assert!(state.parked("dst").await.unwrap().is_empty());
        state.set_started("dst", false).await.unwrap();
        assert_eq!(
            state.org("dst").await.unwrap().unwrap().status,
            Status::Stopped
        );
        // Reopening keeps everything.
        state.close().await;
        let again = State::open(&dir.path().join("s/state.db")).await.unwrap();
        assert_eq!(
            again
                .org("dst")
                .await
                .unwrap()
                .unwrap()
                .primary_guid
                .as_deref(),
            Some("g2")
        );
    }
}
