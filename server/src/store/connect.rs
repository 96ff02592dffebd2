//! Opening the database, choosing the dialect and running migrations.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;

use super::{Store, StoreError, StoreResult};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/server-sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/server-postgres");

/// Which SQL dialect the store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite in WAL mode, one writer connection.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Dialect {
    /// Picks the dialect from a database URL's scheme.
    pub fn from_url(url: &str) -> StoreResult<Self> {
        if url.starts_with("sqlite:") {
            Ok(Dialect::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Dialect::Postgres)
        } else {
            Err(StoreError::BadUrl(url.to_owned()))
        }
    }

    /// Locks the org's counter row for the rest of the transaction (SQLite's single writer
    /// already serialises every write).
    pub(super) fn lock_org_sql(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SELECT last_seq, pruned_through FROM orgs WHERE id = $1",
            Dialect::Postgres => {
                "SELECT last_seq, pruned_through FROM orgs WHERE id = $1 FOR UPDATE"
            }
        }
    }
}

impl Dialect {
    /// A node's row read for the rest of the transaction: locked on PostgreSQL, so two saves of
    /// one node take turns and each diffs its index entries against the other's (SQLite's
    /// single writer already serialises them).
    pub(super) fn node_for_update_sql(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SELECT body FROM nodes WHERE org_id = $1 AND name = $2",
            Dialect::Postgres => {
                "SELECT body FROM nodes WHERE org_id = $1 AND name = $2 FOR UPDATE"
            }
        }
    }

    /// One page of the change log as a finished JSON array with its entry count and last id (`$1` org,
    /// `$2` after, `$3` limit), where the database builds it faster than decoding its rows:
    /// on SQLite, decoding a thousand rows one value at a time costs more than the query.
    /// PostgreSQL's `json_agg` costs more than the rows (see docs/BENCHMARKS.md), so there the
    /// page is built from rows.
    pub(super) fn feed_page_sql(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => Some(
                "SELECT COALESCE(json_group_array(json_object('action', action, 'id', seq, 'path', path)), '[]') AS page, \
                 COUNT(*) AS entries, MAX(seq) AS last \
                 FROM (SELECT action, seq, path FROM change_log WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3)",
            ),
            Dialect::Postgres => None,
        }
    }
}

/// SQLite page cache of the single writer connection, KiB.
const WRITER_CACHE_KIB: i64 = 64 * 1024;
/// SQLite page cache of each reader connection, KiB (SQLite's default).
const READER_CACHE_KIB: i64 = 2 * 1024;

fn sqlite_url(url: &str) -> String {
    // create_if_missing: a fresh data directory must just work.
    if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

impl Store {
    /// Connects, applies pending migrations and returns the store. `pool_size` bounds the
    /// reader pool (and, on PostgreSQL, the writers too).
    pub async fn connect(url: &str, pool_size: u32) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::from_url(url)?;
        let url = match dialect {
            Dialect::Sqlite => sqlite_url(url),
            Dialect::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        // The writer's page cache: index inserts touch pages all over the search b-tree, and
        // SQLite's default 2 MB cache would read most of them back from the file every time.
        let pool = |max: u32, cache_kib: i64| {
            AnyPoolOptions::new()
                .max_connections(max.max(1))
                .acquire_timeout(Duration::from_secs(10))
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if dialect == Dialect::Sqlite {
                            sqlx::query("PRAGMA foreign_keys = ON")
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query("PRAGMA busy_timeout = 10000")
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query("PRAGMA synchronous = NORMAL")
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query(&format!("PRAGMA cache_size = -{cache_kib}"))
                                .execute(&mut *conn)
                                .await?;
                        }
                        Ok(())
                    })
                })
        };
        let write = pool(
            if dialect == Dialect::Sqlite {
                1
            } else {
                pool_size
            },
            WRITER_CACHE_KIB,
        )
        .connect_with(options.clone())
        .await?;
        if dialect == Dialect::Sqlite {
            // WAL lets readers proceed while the single writer commits; it persists in the file.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&write)
                .await?;
        }
        match dialect {
            Dialect::Sqlite => SQLITE_MIGRATIONS.run(&write).await?,
            Dialect::Postgres => POSTGRES_MIGRATIONS.run(&write).await?,
        }
        let read = match dialect {
            Dialect::Sqlite => {
                pool(pool_size, READER_CACHE_KIB)
                    .connect_with(options)
                    .await?
            }
            Dialect::Postgres => write.clone(),
        };
        let inline = match dialect {
            Dialect::Sqlite => super::inline_reader::InlineReader::for_url(&url).map(Arc::new),
            Dialect::Postgres => None,
        };
        let store = Store {
            dialect,
            read,
            write,
            notifier: Default::default(),
            auth: Default::default(),
            inline,
            bulk_reads: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, usize::from),
            )),
            search: Default::default(),
        };
        // Objects stored before the search index existed (or before a rebuild) are indexed
        // before the first request is answered.
        let recorded = store.record_pending_cookbook_files().await?;
        if recorded > 0 {
            tracing::info!(
                versions = recorded,
                "cookbook files: recorded the files of stored versions"
            );
        }
        let indexed = store.index_unindexed().await?;
        if indexed > 0 {
            tracing::info!(
                documents = indexed,
                "search index: indexed stored documents"
            );
        }
        Ok(store)
    }

    /// The dialect in use.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes every connection (graceful shutdown).
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    /// Cheap liveness check for `/_status`.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_from_url() {
        assert_eq!(
            Dialect::from_url("sqlite:///tmp/x.db").unwrap(),
            Dialect::Sqlite
        );
        assert_eq!(
            Dialect::from_url("postgres://u@h/db").unwrap(),
            Dialect::Postgres
        );
        assert!(matches!(
            Dialect::from_url("mysql://x"),
            Err(StoreError::BadUrl(_))
        ));
    }

    #[test]
    fn migration_versions_match_across_dialects() {
        let versions = |m: &Migrator| {
            m.iter()
                .map(|m| (m.version, m.description.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(versions(&SQLITE_MIGRATIONS), versions(&POSTGRES_MIGRATIONS));
        assert!(SQLITE_MIGRATIONS.iter().next().is_some());
    }

    #[test]
    fn sqlite_urls_create_missing_files() {
        assert_eq!(sqlite_url("sqlite:///a.db"), "sqlite:///a.db?mode=rwc");
        assert_eq!(
            sqlite_url("sqlite:///a.db?x=1"),
            "sqlite:///a.db?x=1&mode=rwc"
        );
        assert_eq!(
            sqlite_url("sqlite:///a.db?mode=ro"),
            "sqlite:///a.db?mode=ro"
        );
    }
}
