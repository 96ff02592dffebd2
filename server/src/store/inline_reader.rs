//! Point reads of objects on SQLite, inline on the async worker instead of through sqlx's
//! per-connection worker thread. A GET of a role is one indexed lookup of a few microseconds;
//! the read benchmark's profile put about a third of the server's CPU in handing each query to
//! that thread and back (flume channel wake-ups). The connections here are read-only; WAL gives
//! them the same committed view the sqlx readers have. A lookup that finds the database busy
//! gives up at once and the caller goes the sqlx way, so the runtime thread is never held.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

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

    /// The stored JSON of one object; `Err` when the lookup could not be made (the caller
    /// then asks sqlx).
    pub fn object(&self, org_id: i64, path: &str) -> rusqlite::Result<Option<String>> {
        let taken = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match taken {
            Some(conn) => conn,
            None => Self::open(&self.path)?,
        };
        let body = conn
            .prepare_cached("SELECT body FROM objects WHERE org_id = ?1 AND path = ?2")?
            .query_row((org_id, path), |row| row.get::<_, String>(0))
            .optional();
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < KEEP
        {
            idle.push(conn);
        }
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
