//! Storage behind one `Store`: the same SQL layer over SQLite (embedded default) and
//! PostgreSQL (scale-out), with the few dialect differences kept in [`Dialect`].
//!
//! Every object write and its change-log entry commit in one transaction; change-log ids are
//! allocated under a per-org row lock (PostgreSQL `FOR UPDATE`; SQLite has a single writer), so
//! no reader can ever see id K+1 before id K.

mod actors;
mod auth_cache;
mod batch;
mod change_log;
mod connect;
mod cookbook_files;
mod feed;
mod groups;
mod inline_reader;
mod keys;
mod nodes;
mod objects;
mod policyfiles;
mod removal;
mod sandboxes;
mod search_index;
mod standing;

pub use actors::{ClientRow, OrgRow, UserRow};
pub use batch::{BatchItem, BatchOp, ItemOutcome, MakeBody};
pub use connect::Dialect;
pub use feed::{FeedPage, MAX_PAGE_DOCUMENT_BYTES, PageDocuments};
pub use groups::GroupMembers;
pub use keys::{KeyOwner, KeyRow};
pub use objects::{CookbookVersionRow, WriteMode, WriteOutcome};
pub use policyfiles::{Assignment, GroupAssignments, PolicyRevisions, StoredRevision};
pub use sandboxes::SandboxRow;
pub use search_index::client_document;
pub use standing::{OrgClient, Standing};

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::{AnyPool, Row};

use crate::feed::FeedNotifier;

/// Storage errors, mapped to HTTP in `error.rs`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object or actor exists already.
    #[error("already exists")]
    Conflict,
    /// The object or actor does not exist.
    #[error("not found")]
    NotFound,
    /// A data bag item's bag does not exist.
    #[error("parent object missing")]
    ParentMissing,
    /// The write was refused by a rule checked inside the transaction.
    #[error("{0}")]
    Refused(String),
    /// A cookbook manifest names a checksum the org has not uploaded (`update`: the version
    /// existed already; Chef words the two cases differently).
    #[error("checksum {checksum} has not been uploaded")]
    UnknownChecksum {
        /// The first such checksum.
        checksum: String,
        /// Whether the write replaced a stored version.
        update: bool,
    },
    /// Feed entries after the requested id were pruned.
    #[error("change log pruned through {0}")]
    Pruned(i64),
    /// The database URL is not sqlite:// or postgres://.
    #[error("unsupported database URL '{0}': use sqlite://PATH or postgres://…")]
    BadUrl(String),
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Any other database failure.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// The database, shared by every request.
#[derive(Debug, Clone)]
pub struct Store {
    dialect: Dialect,
    /// Readers; on PostgreSQL also the writers.
    read: AnyPool,
    /// Writers: a single connection on SQLite so writes never race for the lock.
    write: AnyPool,
    notifier: Arc<FeedNotifier>,
    auth: Arc<AuthRows>,
    /// SQLite only: object point reads without sqlx's worker-thread hop.
    inline: Option<Arc<inline_reader::InlineReader>>,
    /// Chunk reads on blocking threads at once: one per CPU.
    bulk_reads: Arc<tokio::sync::Semaphore>,
    /// Search index and field ids already seen.
    search: Arc<search_index::SearchIds>,
}

/// A user with its live keys (PEM).
type UserKeys = Option<(UserRow, Vec<String>)>;
/// A client with its live keys (PEM).
type ClientKeys = Option<(OrgClient, Vec<String>)>;
/// (org, actor kind, actor name, user id or -1).
type StandingKey = (String, String, String, i64);

/// Cached authentication and authorization rows (see `auth_cache`).
#[derive(Debug, Default)]
struct AuthRows {
    users: auth_cache::Cached<String, UserKeys>,
    clients: auth_cache::Cached<(String, String), ClientKeys>,
    standings: auth_cache::Cached<StandingKey, Option<Standing>>,
}

impl AuthRows {
    fn clear(&self) {
        self.users.clear();
        self.clients.clear();
        self.standings.clear();
    }
}

impl Store {
    /// Forgets cached actors and standings after this process changed one of them.
    fn actors_changed(&self) {
        self.auth.clear();
    }

    /// The `body` of each of an org's rows in `table` whose `key` column is one of `keys`,
    /// keyed by it; read with `IN` lists of at most 500. `table` and `key` are this module's
    /// own literals, never input. On SQLite a chunk is read in one go on a blocking thread
    /// (see `inline_reader`), through sqlx only if that fails.
    async fn bodies_by_key(
        &self,
        table: &str,
        key: &str,
        org_id: i64,
        keys: &[&str],
    ) -> StoreResult<HashMap<String, String>> {
        let mut found = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(500) {
            let sql = format!(
                "SELECT {key} AS k, body FROM {table} WHERE org_id = $1 AND {key} IN ({})",
                numbered(chunk.len(), 2)
            );
            if let Some(rows) = self.inline_bodies(&sql, org_id, chunk).await {
                found.extend(rows);
                continue;
            }
            let mut q = sqlx::query(&sql).bind(org_id);
            for k in chunk {
                q = q.bind(*k);
            }
            for row in q.fetch_all(&self.read).await? {
                found.insert(row.try_get("k")?, row.try_get("body")?);
            }
        }
        Ok(found)
    }

    /// [`Store::bodies_by_key`]'s SQLite way; `None` when it cannot be taken.
    async fn inline_bodies(
        &self,
        sql: &str,
        org_id: i64,
        keys: &[&str],
    ) -> Option<Vec<(String, String)>> {
        let sql = sql.to_owned();
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        self.read_inline(move |inline| inline.bodies(&sql, org_id, &keys))
            .await
    }

    /// Runs a read on SQLite's inline connections on a blocking thread, at most one per CPU
    /// at a time; `None` on PostgreSQL or when the read could not be made (the caller then
    /// goes through sqlx).
    async fn read_inline<T: Send + 'static>(
        &self,
        read: impl FnOnce(&inline_reader::InlineReader) -> rusqlite::Result<T> + Send + 'static,
    ) -> Option<T> {
        let inline = self.inline.clone()?;
        let _slot = self.bulk_reads.acquire().await.ok()?;
        match tokio::task::spawn_blocking(move || read(&inline)).await {
            Ok(Ok(out)) => Some(out),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "inline read falls back to sqlx");
                None
            }
            Err(_) => None,
        }
    }

    /// Wake-ups for long-polling feed readers.
    pub fn feed_notifier(&self) -> &FeedNotifier {
        &self.notifier
    }
}

/// Most parameters a multi-row write statement binds. SQLite finds a numbered parameter's
/// name by walking the statement's list of names, and sqlx asks for every parameter's name,
/// so a statement's binding costs the square of its parameter count: 2,000 parameters made
/// `sqlite3_bind_parameter_name` a tenth of a bulk write's CPU. PostgreSQL gains little
/// beyond a few hundred either.
const MAX_BINDS: usize = 256;

/// `$first, $first+1, …`: `n` numbered placeholders.
fn numbered(n: usize, first: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}
