//! Storage behind one `Store`: the same SQL layer over SQLite (embedded default) and
//! PostgreSQL (scale-out), with the few dialect differences kept in [`Dialect`].
//!
//! Every object write and its change-log entry commit in one transaction; change-log ids are
//! allocated under a per-org row lock (PostgreSQL `FOR UPDATE`; SQLite has a single writer), so
//! no reader can ever see id K+1 before id K.

mod actors;
mod connect;
mod feed;
mod objects;

pub use actors::{ClientRow, KeyOwner, OrgRow, UserRow};
pub use connect::Dialect;
pub use feed::{ChangeEntry, FeedPage};
pub use objects::{WriteMode, WriteOutcome};

use std::sync::Arc;

use sqlx::AnyPool;

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
}

impl Store {
    /// Wake-ups for long-polling feed readers.
    pub fn feed_notifier(&self) -> &FeedNotifier {
        &self.notifier
    }
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}
