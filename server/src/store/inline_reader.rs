//! Point reads of objects on SQLite, inline on the async worker instead of through sqlx's
//! per-connection worker thread. A GET of a role is one indexed lookup of a few microseconds;
//! the read benchmark's profile put about a third of the server's CPU in handing each query to
//! that thread and back (flume channel wake-ups). The connections here are read-only; WAL gives
//! them the same committed view the sqlx readers have. A lookup that finds the database busy
//! gives up at once and the caller goes the sqlx way, so the runtime thread is never held.
//!
//! Search answers read their rows in chunks of tens of large documents (nodes of 40 KB):
//! through sqlx each row crossed the thread boundary on its own, and those wake-ups took a
//! fifth of the server's CPU at 10,000 nodes. A chunk is read here on a blocking thread in
//! one go instead, at most one chunk per CPU at a time; so are the search index's entry
//! scans (thousands of small rows for `platform:ubuntu` at 10,000 nodes).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::search::query::Glob;

/// Idle connections kept.
const KEEP: usize = 8;

/// Read-only SQLite connections used inline.
#[derive(Debug)]
pub struct InlineReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl InlineReader {
    /// For the database file of a `sqlite://PATH[?…]` URL; `None` for anything else (an
    /// in-memory database, another backend).
    pub fn for_url(url: &str) -> Option<InlineReader> {
        let path = url.strip_prefix("sqlite://")?.split('?').next()?;
        if path.is_empty() || path.contains(":memory:") {
            return None;
        }
        Some(InlineReader {
            path: PathBuf::from(path),
            idle: Mutex::new(Vec::new()),
        })
    }

    fn open(path: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::ZERO)?;
        Ok(conn)
    }

    fn take(&self) -> rusqlite::Result<Connection> {
        let taken = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match taken {
            Some(conn) => Ok(conn),
            None => Self::open(&self.path),
        }
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < KEEP
        {
            idle.push(conn);
        }
    }

    /// `(key, body)` of an org's rows whose key is one of `keys`, for a statement `sql` of
    /// the form `SELECT key, body FROM … WHERE org_id = ?1 AND key IN (?2, …)`; blocking,
    /// so for a blocking thread.
    pub fn bodies(
        &self,
        sql: &str,
        org_id: i64,
        keys: &[String],
    ) -> rusqlite::Result<Vec<(String, String)>> {
        let conn = self.take()?;
        let rows = (|| {
            let mut statement = conn.prepare_cached(sql)?;
            let params = std::iter::once(Value::Integer(org_id))
                .chain(keys.iter().map(|k| Value::Text(k.clone())));
            let mapped = statement.query_map(rusqlite::params_from_iter(params), |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            mapped.collect::<rusqlite::Result<Vec<_>>>()
        })();
        self.give_back(conn);
        rows
    }

    /// The integer first column of each row of `sql` (bound to `params`) whose text second
    /// column `keep` accepts, if `keep` is given; reading stops after `limit` rows: the ids
    /// and the number of rows read.
    pub fn ids(
        &self,
        sql: &str,
        params: Vec<Value>,
        keep: Option<&Glob>,
        limit: usize,
    ) -> rusqlite::Result<(Vec<i64>, usize)> {
        let conn = self.take()?;
        let read = (|| {
            let mut statement = conn.prepare_cached(sql)?;
            let mut rows = statement.query(rusqlite::params_from_iter(params))?;
            let (mut ids, mut read) = (Vec::new(), 0usize);
            while let Some(row) = rows.next()? {
                read += 1;
                if read > limit {
                    break;
                }
                if let Some(glob) = keep
                    && !glob.matches(row.get_ref(1)?.as_str()?)
                {
                    continue;
                }
                ids.push(row.get::<_, i64>(0)?);
            }
            Ok((ids, read))
        })();
        self.give_back(conn);
        read
    }

    /// The text first column of each row of `sql` bound to `params`.
    pub fn texts(&self, sql: &str, params: Vec<Value>) -> rusqlite::Result<Vec<String>> {
        let conn = self.take()?;
        let read = (|| {
            let mut statement = conn.prepare_cached(sql)?;
            let rows = statement.query_map(rusqlite::params_from_iter(params), |row| {
                row.get::<_, String>(0)
            })?;
            rows.collect()
        })();
        self.give_back(conn);
        read
    }

    /// The stored JSON of one object; `Err` when the lookup could not be made (the caller
    /// then asks sqlx).
    pub fn object(&self, org_id: i64, path: &str) -> rusqlite::Result<Option<String>> {
        let conn = self.take()?;
        let body = conn
            .prepare_cached("SELECT body FROM objects WHERE org_id = ?1 AND path = ?2")
            .and_then(|mut statement| {
                statement
                    .query_row((org_id, path), |row| row.get::<_, String>(0))
                    .optional()
            });
        self.give_back(conn);
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sqlite_files_get_an_inline_reader() {
        assert!(InlineReader::for_url("sqlite:///var/lib/x.db?mode=rwc").is_some());
        assert!(InlineReader::for_url("sqlite::memory:").is_none());
        assert!(InlineReader::for_url("sqlite://:memory:").is_none());
        assert!(InlineReader::for_url("postgres://u@h/db").is_none());
    }

    #[test]
    fn reads_what_another_connection_committed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let writer = Connection::open(&file).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; \
                 CREATE TABLE objects (org_id INTEGER, path TEXT, body TEXT); \
                 INSERT INTO objects VALUES (1, '/roles/web', '{\"name\":\"web\"}');",
            )
            .unwrap();
        let reader =
            InlineReader::for_url(&format!("sqlite://{}?mode=rwc", file.display())).unwrap();
        assert_eq!(
            reader.object(1, "/roles/web").unwrap().as_deref(),
            Some("{\"name\":\"web\"}")
        );
        assert_eq!(reader.object(2, "/roles/web").unwrap(), None);
        let keys = ["/roles/web".to_owned(), "/roles/none".to_owned()];
        let rows = reader
            .bodies(
                "SELECT path, body FROM objects WHERE org_id = ?1 AND path IN (?2, ?3)",
                1,
                &keys,
            )
            .unwrap();
        assert_eq!(
            rows,
            [("/roles/web".to_owned(), "{\"name\":\"web\"}".to_owned())]
        );
        writer
            .execute(
                "UPDATE objects SET body = '{}' WHERE path = '/roles/web'",
                (),
            )
            .unwrap();
        assert_eq!(
            reader.object(1, "/roles/web").unwrap().as_deref(),
            Some("{}")
        );
    }
}
