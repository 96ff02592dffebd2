//! The daemon's state database (SQLite, WAL): per destination org the checkpoint and the
//! primary it belongs to, the started flag, status and times, and the parked objects. A
//! checkpoint moves only here, in one transaction with the parked objects it implies, and only
//! after the writes it covers were acknowledged.

use std::path::Path;
use std::str::FromStr;

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

mod report;

pub use report::{Head, Position, Primary, Report, Standing};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/syncd");

/// Longest error and `last_error` stored, in bytes; longer text is cut with a marker
/// ([`crate::text::bounded`]).
pub const MAX_STORED_TEXT: usize = 1024;

/// Longest path stored, in bytes. Every path the grammar accepts, written its way (as
/// appliable objects are parked), is shorter: the longest, `/data/BAG/ITEM`, is 517 bytes. So
/// only paths that can never be applied are ever cut. Kept under SQLite's limit for an index
/// entry held in its page (about 1,000 bytes with the org's name): a longer key costs a whole
/// 4 KiB overflow page per row.
pub const MAX_STORED_PATH: usize = 600;

/// Longest action stored (the valid ones are `create`, `update` and `delete`).
const MAX_STORED_ACTION: usize = 64;

/// `next_retry` of a parked entry that can never be applied (its path or action broke the
/// grammar): it is kept for the operator to see and never retried. Sorts after every
/// timestamp, so it is never due.
pub const NEVER: &str = "never";

/// Entries that can never be applied, stored one by one per org; beyond this they are only
/// counted, in the one row at [`OVERFLOW_PATH`].
pub const UNAPPLIABLE_KEPT: i64 = 1000;

/// The row that counts the unappliable entries beyond [`UNAPPLIABLE_KEPT`]. Not a path the
/// grammar accepts, so it is never retried and never released by a write.
pub const OVERFLOW_PATH: &str = "(more unappliable feed entries)";

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
    /// The database file could not be created owner-only.
    #[error("state database {0}: {1}")]
    File(String, std::io::Error),
    /// Parking one more object would pass `max_parked_objects`: the checkpoint did not move.
    #[error(
        "{parked} objects are parked for this org, as many as max_parked_objects ({cap}) allows: \
         the checkpoint stays where it is until some are applied (see unsynced-objects) or the \
         limit is raised"
    )]
    ParkedFull {
        /// Objects parked that may still be applied.
        parked: i64,
        /// `max_parked_objects`.
        cap: usize,
    },
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
    /// RFC 3339: when `primary_seq` was heard from the primary.
    pub primary_seq_at: Option<String>,
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
    /// `max_parked_objects`.
    max_parked: usize,
}

/// What a [`State::record`] did beyond what it was asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Committed {
    /// Unappliable entries only counted in the [`OVERFLOW_PATH`] row, not stored one by one.
    pub counted: usize,
}

/// How many rows of each kind an org has parked, as a commit goes.
struct ParkedCounts {
    appliable: i64,
    unappliable: i64,
}

impl ParkedCounts {
    /// Makes room for a new row: true when it is stored, false when it is only counted (an
    /// unappliable entry beyond [`UNAPPLIABLE_KEPT`]), an error when an appliable one would
    /// pass `cap`.
    fn admit(&mut self, p: &Parked, cap: usize) -> StateResult<bool> {
        if p.next_retry == NEVER {
            if self.unappliable >= UNAPPLIABLE_KEPT {
                return Ok(false);
            }
            self.unappliable += 1;
        } else {
            if self.appliable >= i64::try_from(cap).unwrap_or(i64::MAX) {
                return Err(StateError::ParkedFull {
                    parked: self.appliable,
                    cap,
                });
            }
            self.appliable += 1;
        }
        Ok(true)
    }
}

/// What a parked row and its neighbours in `sync-status` need: the count, the first one, and
/// the unappliable entries only counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParkedSummary {
    /// Rows stored one by one (the [`OVERFLOW_PATH`] row not included).
    pub stored: i64,
    /// Unappliable entries counted in the [`OVERFLOW_PATH`] row.
    pub counted: i64,
    /// The first stored row (by feed id, then path).
    pub first: Option<Parked>,
}

/// A parked row cut down to what is stored (see [`MAX_STORED_PATH`], [`MAX_STORED_TEXT`]).
fn stored(p: &Parked) -> Parked {
    use crate::text::bounded;
    let mut path = bounded(&p.path, MAX_STORED_PATH).into_owned();
    if path == OVERFLOW_PATH {
        // A primary sending the counting row's own name must not reset its count.
        path.push_str(" (from the feed)");
    }
    Parked {
        path,
        action: bounded(&p.action, MAX_STORED_ACTION).into_owned(),
        error: bounded(&p.error, MAX_STORED_TEXT).into_owned(),
        ..p.clone()
    }
}

fn parked_row(r: &sqlx::sqlite::SqliteRow) -> StateResult<Parked> {
    Ok(Parked {
        path: r.try_get("path")?,
        action: r.try_get("action")?,
        seq: r.try_get("seq")?,
        attempts: r.try_get("attempts")?,
        error: r.try_get("error")?,
        next_retry: r.try_get("next_retry")?,
    })
}

/// Creates `path` empty and owner-only when it does not exist, and takes group and other
/// access away from one that does: the database names the org pairs and their errors, and
/// SQLite gives its `-wal` and `-shm` files the database's mode. Whoever creates it (the
/// daemon, or chef-sync-ctl run first), SQLite would otherwise make it 0644.
fn owner_only(path: &Path) -> StateResult<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |e| StateError::File(path.display().to_string(), e);
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    let mode = std::fs::metadata(path).map_err(fail)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))
            .map_err(fail)?;
    }
    Ok(())
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
        primary_seq_at: r.try_get("primary_seq_at")?,
        mode: r.try_get("mode")?,
        last_sync: r.try_get("last_sync")?,
        next_sync: r.try_get("next_sync")?,
        last_error: r.try_get("last_error")?,
    })
}

impl State {
    /// Opens (creating if needed) `path` and applies migrations.
    pub async fn open(path: &Path) -> StateResult<State> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StateError::Dir(dir.display().to_string(), e))?;
        }
        owner_only(path)?;
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a checkpoint that was reported written survives a power cut.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(10))
            // A large transaction (a full reconcile's parked objects) grows the WAL; after the
            // next checkpoint it is cut back to this instead of keeping its size for good.
            .pragma("journal_size_limit", (4 << 20).to_string());
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATIONS.run(&pool).await?;
        Ok(State {
            pool,
            max_parked: crate::config::DEFAULT_MAX_PARKED,
        })
    }

    /// The same database, parking at most `max` objects that may still be applied per org.
    pub fn with_max_parked(mut self, max: usize) -> State {
        self.max_parked = max;
        self
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

    /// Whether the org is owed a full reconcile by an upgrade (see migration 0004).
    pub async fn reconcile_owed(&self, destination: &str) -> StateResult<bool> {
        let row = sqlx::query("SELECT reconcile_owed FROM org_state WHERE destination = ?1")
            .bind(destination)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| r.try_get::<i64, _>("reconcile_owed"))
            .transpose()?
            .is_some_and(|owed| owed != 0))
    }

    /// The org's parked objects, oldest first.
    pub async fn parked(&self, destination: &str) -> StateResult<Vec<Parked>> {
        let rows = sqlx::query("SELECT path, action, seq, attempts, error, next_retry FROM parked WHERE destination = ?1 ORDER BY seq, path")
            .bind(destination)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(parked_row).collect()
    }

    /// How many objects the org has parked and the first of them, without reading them all.
    pub async fn parked_summary(&self, destination: &str) -> StateResult<ParkedSummary> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS stored, \
             (SELECT attempts FROM parked WHERE destination = ?1 AND path = ?2) AS counted \
             FROM parked WHERE destination = ?1 AND path <> ?2",
        )
        .bind(destination)
        .bind(OVERFLOW_PATH)
        .fetch_one(&self.pool)
        .await?;
        let first = sqlx::query("SELECT path, action, seq, attempts, error, next_retry FROM parked WHERE destination = ?1 AND path <> ?2 ORDER BY seq, path LIMIT 1")
            .bind(destination)
            .bind(OVERFLOW_PATH)
            .fetch_optional(&self.pool)
            .await?;
        Ok(ParkedSummary {
            stored: row.try_get("stored")?,
            counted: row.try_get::<Option<i64>, _>("counted")?.unwrap_or(0),
            first: first.as_ref().map(parked_row).transpose()?,
        })
    }

    /// Parked objects due for a retry at `now` (never one marked [`NEVER`]).
    pub async fn due(&self, destination: &str, now: &str) -> StateResult<Vec<Parked>> {
        let rows = sqlx::query("SELECT path, action, seq, attempts, error, next_retry FROM parked WHERE destination = ?1 AND next_retry <= ?2 AND next_retry <> ?3 ORDER BY seq, path")
            .bind(destination)
            .bind(now)
            .bind(NEVER)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(parked_row).collect()
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

type Tx<'a> = sqlx::Transaction<'a, sqlx::Sqlite>;

async fn parked_counts(tx: &mut Tx<'_>, destination: &str) -> StateResult<ParkedCounts> {
    let row = sqlx::query(
        "SELECT COALESCE(SUM(next_retry <> ?2), 0) AS appliable, \
         COALESCE(SUM(next_retry = ?2 AND path <> ?3), 0) AS unappliable \
         FROM parked WHERE destination = ?1",
    )
    .bind(destination)
    .bind(NEVER)
    .bind(OVERFLOW_PATH)
    .fetch_one(&mut **tx)
    .await?;
    Ok(ParkedCounts {
        appliable: row.try_get("appliable")?,
        unappliable: row.try_get("unappliable")?,
    })
}

async fn is_parked(tx: &mut Tx<'_>, destination: &str, path: &str) -> StateResult<bool> {
    Ok(
        sqlx::query("SELECT 1 FROM parked WHERE destination = ?1 AND path = ?2")
            .bind(destination)
            .bind(path)
            .fetch_optional(&mut **tx)
            .await?
            .is_some(),
    )
}

async fn upsert_parked(tx: &mut Tx<'_>, destination: &str, p: &Parked) -> StateResult<()> {
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds `n` unappliable entries, the newest `last`, to the [`OVERFLOW_PATH`] row; its
/// `attempts` is the count.
async fn count_unappliable(
    tx: &mut Tx<'_>,
    destination: &str,
    last: &Parked,
    n: usize,
) -> StateResult<()> {
    let before: i64 =
        sqlx::query_scalar("SELECT attempts FROM parked WHERE destination = ?1 AND path = ?2")
            .bind(destination)
            .bind(OVERFLOW_PATH)
            .fetch_optional(&mut **tx)
            .await?
            .unwrap_or(0);
    let total = before + i64::try_from(n).unwrap_or(i64::MAX);
    let error = crate::text::bounded(
        &format!(
            "{total} more feed entries that can never be applied were counted here, not stored \
             one by one ({UNAPPLIABLE_KEPT} are); the newest, id {}: {}: {}",
            last.seq.unwrap_or(0),
            last.path,
            last.error
        ),
        MAX_STORED_TEXT,
    )
    .into_owned();
    sqlx::query(
        "INSERT INTO parked (destination, path, action, seq, attempts, error, next_retry) VALUES (?1, ?2, '-', ?3, ?4, ?5, ?6) \
         ON CONFLICT (destination, path) DO UPDATE SET seq = excluded.seq, attempts = excluded.attempts, error = excluded.error",
    )
    .bind(destination)
    .bind(OVERFLOW_PATH)
    .bind(last.seq)
    .bind(total)
    .bind(&error)
    .bind(NEVER)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn bind(state: &State, identity: &str, url: &str) {
        let bound = Report {
            primary: Some(Primary {
                identity: identity.into(),
                url: url.into(),
            }),
            ..Report::default()
        };
        state.record("dst", &bound).await.unwrap();
    }

    /// A state database of the release before Policyfiles were replicated (migrations up to
    /// 0003), with one org following the feed and one never started.
    async fn previous_release_state(path: &Path) {
        let old = tempfile::tempdir().unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/syncd");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.as_str() < "0004" {
                std::fs::copy(entry.path(), old.path().join(&name)).unwrap();
            }
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .unwrap()
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .connect_with(options)
            .await
            .unwrap();
        sqlx::migrate::Migrator::new(old.path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO org_state (destination, source, started, status, applied_seq) \
             VALUES ('following', 'src', 1, 'synced', 42), ('new', 'src', 0, 'stopped', NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }

    #[tokio::test]
    async fn an_upgrade_owes_each_replicating_org_one_reconcile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        previous_release_state(&path).await;
        let state = State::open(&path).await.unwrap();
        let org = state.org("following").await.unwrap().unwrap();
        assert_eq!(org.applied_seq, Some(42), "the feed position is kept");
        assert!(state.reconcile_owed("following").await.unwrap());
        assert!(
            !state.reconcile_owed("new").await.unwrap(),
            "its bootstrap copies everything anyway"
        );
        let reconciled = Report {
            reconciled: true,
            ..Report::default()
        };
        state.record("following", &reconciled).await.unwrap();
        assert!(!state.reconcile_owed("following").await.unwrap());
        assert_eq!(
            state.org("following").await.unwrap().unwrap().applied_seq,
            Some(42)
        );
    }

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
        bind(&state, "g1", "http://a").await;
        let parked = Parked {
            path: "/roles/x".into(),
            action: "update".into(),
            seq: Some(3),
            attempts: 1,
            error: "400 bad".into(),
            next_retry: "2000-01-01T00:00:00Z".into(),
        };
        state
            .record(
                "dst",
                &Report {
                    position: Position::At(5),
                    park: vec![parked.clone()],
                    release: vec![],
                    ..Report::default()
                },
            )
            .await
            .unwrap();
        state
            .record(
                "dst",
                &Report {
                    position: Position::Kept,
                    park: vec![parked.clone()],
                    release: vec![],
                    ..Report::default()
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
        bind(&state, "g1", "http://b").await;
        let org = state.org("dst").await.unwrap().unwrap();
        assert_eq!(org.applied_seq, Some(5));
        assert_eq!(org.primary_url.as_deref(), Some("http://b"));
        bind(&state, "g2", "http://b").await;
        assert_eq!(state.org("dst").await.unwrap().unwrap().applied_seq, None);

        state
            .record(
                "dst",
                &Report {
                    position: Position::Kept,
                    park: vec![],
                    release: vec!["/roles/x".into()],
                    ..Report::default()
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

    #[tokio::test]
    async fn the_primary_head_is_kept_with_when_it_was_heard() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(&dir.path().join("state.db")).await.unwrap();
        state.ensure_org("dst", "src").await.unwrap();
        assert_eq!(
            state.org("dst").await.unwrap().unwrap().primary_seq_at,
            None
        );
        let before = timestamp(chrono::Utc::now());
        let heard = Report {
            head: Some(Head {
                seq: Some(7),
                mode: "feed",
            }),
            ..Report::default()
        };
        state.record("dst", &heard).await.unwrap();
        let org = state.org("dst").await.unwrap().unwrap();
        assert_eq!(org.primary_seq, Some(7));
        let at = org.primary_seq_at.unwrap();
        assert!(at >= before, "{at} < {before}");
    }

    fn never_appliable(i: usize, path: String) -> Parked {
        Parked {
            error: format!("rejected path: object path '{path}' is bad"),
            path,
            action: "x".repeat(15_000),
            seq: Some(i64::try_from(i).unwrap()),
            attempts: 1,
            next_retry: NEVER.into(),
        }
    }

    fn appliable(name: &str) -> Parked {
        Parked {
            path: format!("/roles/{name}"),
            action: "update".into(),
            seq: Some(1),
            attempts: 1,
            error: "400 bad".into(),
            next_retry: "2000-01-01T00:00:00Z".into(),
        }
    }

    async fn park(state: &State, park: Vec<Parked>) -> StateResult<Committed> {
        let cp = Report {
            position: Position::At(7),
            park,
            ..Report::default()
        };
        state.record("dst", &cp).await
    }

    #[test]
    fn every_path_the_grammar_accepts_is_stored_uncut() {
        let longest = format!("/data/{}/{}", "b".repeat(255), "i".repeat(255));
        let path: chef_sync_shared::ObjectPath = longest.parse().unwrap();
        assert!(path.to_string().len() < MAX_STORED_PATH);
        let cookbook = format!("/cookbooks/{}/{m}.{m}.{m}", "c".repeat(255), m = i64::MAX);
        let (a, b) = ("a".repeat(255), "b".repeat(255));
        for text in [
            cookbook,
            format!("/policy_groups/{a}/policies/{b}"),
            format!("/policies/{a}/revisions/{b}"),
            format!("/cookbook_artifacts/{a}/{b}"),
        ] {
            let path: chef_sync_shared::ObjectPath = text.parse().unwrap();
            assert!(path.to_string().len() < MAX_STORED_PATH, "{text}");
        }
    }

    #[tokio::test]
    async fn parked_rows_are_bounded_in_size_and_in_number() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let state = State::open(&db).await.unwrap();
        state.ensure_org("dst", "src").await.unwrap();
        // 1,500 entries with 15 KB paths: the first UNAPPLIABLE_KEPT are stored (cut), the
        // rest counted in one row.
        let flood: Vec<Parked> = (0..1500)
            .map(|i| never_appliable(i, format!("/roles/{i}\n{}", "x".repeat(15_000))))
            .collect();
        let first = park(&state, flood[..700].to_vec()).await.unwrap();
        assert_eq!(first.counted, 0);
        let second = park(&state, flood[700..].to_vec()).await.unwrap();
        assert_eq!(second.counted, 500);
        let rows = state.parked("dst").await.unwrap();
        assert_eq!(rows.len(), 1001);
        for r in &rows {
            assert!(r.path.len() <= MAX_STORED_PATH, "{}", r.path.len());
            assert!(r.error.len() <= MAX_STORED_TEXT, "{}", r.error.len());
            assert!(r.action.len() <= MAX_STORED_ACTION);
        }
        let summary = state.parked_summary("dst").await.unwrap();
        assert_eq!((summary.stored, summary.counted), (1000, 500));
        let overflow = rows.iter().find(|r| r.path == OVERFLOW_PATH).unwrap();
        assert_eq!(overflow.attempts, 500);
        assert_eq!(overflow.seq, Some(1499));
        assert!(
            overflow.error.starts_with("500 more feed entries"),
            "{}",
            overflow.error
        );
        // Counting goes on; a feed entry named like the counting row cannot reset it.
        park(&state, vec![never_appliable(2000, OVERFLOW_PATH.into())])
            .await
            .unwrap();
        assert_eq!(state.parked_summary("dst").await.unwrap().counted, 501);
        // Never retried.
        assert!(
            state
                .due("dst", "9999-01-01T00:00:00Z")
                .await
                .unwrap()
                .is_empty()
        );
        state.close().await;
        let bytes = std::fs::metadata(&db).unwrap().len()
            + std::fs::metadata(dir.path().join("state.db-wal")).map_or(0, |m| m.len());
        // Unbounded, this was 1,500 × 45 KB.
        assert!(bytes < 8 << 20, "state.db and its WAL hold {bytes} bytes");
    }

    #[tokio::test]
    async fn appliable_objects_beyond_the_cap_hold_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(&dir.path().join("state.db"))
            .await
            .unwrap()
            .with_max_parked(2);
        state.ensure_org("dst", "src").await.unwrap();
        park(&state, vec![appliable("a"), appliable("b")])
            .await
            .unwrap();
        let cp = Report {
            position: Position::At(9),
            park: vec![appliable("a"), appliable("c")],
            head: Some(Head {
                seq: Some(12),
                mode: "feed",
            }),
            standing: Some(Standing::ok(Status::Synced)),
            ..Report::default()
        };
        let err = state.record("dst", &cp).await.unwrap_err();
        assert!(
            matches!(err, StateError::ParkedFull { parked: 2, cap: 2 }),
            "{err}"
        );
        assert!(err.to_string().contains("max_parked_objects (2)"), "{err}");
        // Nothing of that record happened: the checkpoint, the head, the status and the rows
        // are as they were.
        let org = state.org("dst").await.unwrap().unwrap();
        assert_eq!(org.applied_seq, Some(7));
        assert_eq!(org.primary_seq, None);
        assert_eq!(org.status, Status::Stopped);
        let attempts: Vec<i64> = state
            .parked("dst")
            .await
            .unwrap()
            .iter()
            .map(|p| p.attempts)
            .collect();
        assert_eq!(attempts, [1, 1]);
        // Unappliable entries do not count against it; a release makes room.
        park(&state, vec![never_appliable(3, "/bad/../x".into())])
            .await
            .unwrap();
        let cp = Report {
            position: Position::At(9),
            park: vec![appliable("c")],
            release: vec!["/roles/b".into()],
            ..Report::default()
        };
        state.record("dst", &cp).await.unwrap();
        assert_eq!(
            state.org("dst").await.unwrap().unwrap().applied_seq,
            Some(9)
        );
        assert_eq!(state.parked_summary("dst").await.unwrap().stored, 3);
    }

    #[tokio::test]
    async fn the_state_database_is_owner_only_whoever_creates_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("fresh/state.db");
        let state = State::open(&db).await.unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&db), 0o600);
        state.ensure_org("dst", "src").await.unwrap();
        for side in ["state.db-wal", "state.db-shm"] {
            let file = dir.path().join("fresh").join(side);
            if file.exists() {
                assert_eq!(mode(&file), 0o600, "{side}");
            }
        }
        state.close().await;
        // One left readable by an older version is tightened when opened.
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        State::open(&db).await.unwrap().close().await;
        assert_eq!(mode(&db), 0o600);
    }
}
