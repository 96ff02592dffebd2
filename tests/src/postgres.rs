//! Throwaway PostgreSQL databases on the machine's server (127.0.0.1:5432, user postgres) for
//! tests and benchmarks that run several server processes over one database. Outside CI an
//! unreachable server is a visible skip; under CI it fails the test.

use sqlx::Connection;

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A uniquely named database, dropped (with any open connections) when this value is dropped.
#[derive(Debug)]
pub struct TempDatabase {
    /// `postgres://postgres@127.0.0.1:5432/NAME`.
    pub url: String,
    name: String,
    /// Left in place when dropped (see [`TempDatabase::kept`]).
    keep: bool,
}

async fn admin(sql: &str) -> Result<(), sqlx::Error> {
    let mut conn = sqlx::PgConnection::connect(ADMIN_URL).await?;
    sqlx::query(sql).execute(&mut conn).await?;
    conn.close().await
}

impl TempDatabase {
    /// A fresh database, or `None` after printing SKIPPED when PostgreSQL is not reachable
    /// outside CI.
    pub async fn create(purpose: &str) -> Option<TempDatabase> {
        let name = format!(
            "chef_sync_{purpose}_{}_{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        match admin(&format!("CREATE DATABASE {name}")).await {
            Ok(()) => Some(TempDatabase {
                url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
                name,
                keep: false,
            }),
            Err(e) => {
                assert!(!crate::in_ci(), "PostgreSQL is required in CI: {e}");
                eprintln!(
                    "SKIPPED: PostgreSQL at 127.0.0.1:5432 is not reachable ({e}); this part did not run"
                );
                None
            }
        }
    }
}

impl TempDatabase {
    /// The database `name`, left in place when dropped, so that a benchmark loads a large data
    /// set once and measures it across runs; `fresh` drops what an earlier run left first.
    pub async fn kept(name: &str, fresh: bool) -> Option<TempDatabase> {
        let made = async {
            if fresh {
                admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
                admin(&format!("CREATE DATABASE {name}")).await?;
            }
            Ok::<(), sqlx::Error>(())
        };
        if let Err(e) = made.await {
            eprintln!("SKIPPED: cannot create PostgreSQL database {name}: {e}");
            return None;
        }
        Some(TempDatabase {
            url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            name: name.to_owned(),
            keep: true,
        })
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop may run inside a runtime, so the statement gets its own thread and runtime.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(admin(&sql))
                .map_err(|e| e.to_string())
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}
