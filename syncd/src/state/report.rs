//! What one sync cycle did, recorded in one transaction: where the checkpoint goes, the
//! objects parked and released with it, the primary it belongs to and the newest id heard
//! from it, whether a full reconcile ended, and the status the org is left in. A crash before
//! the commit leaves the previous cycle's record whole; after it, this one's.

use super::{
    Committed, MAX_STORED_TEXT, Parked, State, StateResult, Status, Tx, count_unappliable,
    is_parked, parked_counts, stored, timestamp, upsert_parked,
};

/// Where the checkpoint goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Position {
    /// Stays where it is.
    #[default]
    Kept,
    /// Moves to this feed id (a sync just reached it).
    At(i64),
    /// Is forgotten: a full reconcile comes next.
    Dropped,
}

/// The status an org is left in, as `sync-status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// Status.
    pub status: Status,
    /// Why it is failing, when it is (cut to [`MAX_STORED_TEXT`] when stored).
    pub error: Option<String>,
}

impl Standing {
    /// A status without an error.
    pub fn ok(status: Status) -> Standing {
        Standing {
            status,
            error: None,
        }
    }
}

/// The primary a checkpoint belongs to: its identity (source org guid, or URL) and URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Primary {
    /// `guid:…` or `url:…`.
    pub identity: String,
    /// The base URL it was reached at.
    pub url: String,
}

/// The primary's newest feed id as heard now, and how the org is kept in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The newest id (`None`: the primary has no feed).
    pub seq: Option<i64>,
    /// `feed` or `reconcile`.
    pub mode: &'static str,
}

/// Everything a cycle changes in the state database.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The primary the checkpoint belongs to; another identity than the stored one forgets
    /// the stored checkpoint (unless `position` sets a new one).
    pub primary: Option<Primary>,
    /// Where the checkpoint goes.
    pub position: Position,
    /// Objects that failed: parked (or their attempt count raised).
    pub park: Vec<Parked>,
    /// Paths that succeeded or were superseded: released.
    pub release: Vec<String>,
    /// The primary's newest id, heard now.
    pub head: Option<Head>,
    /// A full reconcile ended.
    pub reconciled: bool,
    /// The status the org is left in (`None`: as it was).
    pub standing: Option<Standing>,
}

impl Report {
    /// Adds what a batch released and parked, in the order it happened: a path released after
    /// it was parked in the same cycle is released, one parked after its release is parked.
    pub fn settle(&mut self, release: Vec<String>, park: Vec<Parked>) {
        for path in release {
            self.park.retain(|p| p.path != path);
            self.release.push(path);
        }
        for p in park {
            self.release.retain(|path| *path != p.path);
            self.park.retain(|q| q.path != p.path);
            self.park.push(p);
        }
    }

    /// A report that only leaves the org in `standing`.
    pub fn standing(standing: Standing) -> Report {
        Report {
            standing: Some(standing),
            ..Report::default()
        }
    }
}

impl State {
    /// Records `report` for `destination` in one transaction. Each parked row is cut to
    /// [`super::MAX_STORED_PATH`] and [`MAX_STORED_TEXT`]; unappliable entries beyond
    /// [`super::UNAPPLIABLE_KEPT`] are only counted; and a new appliable object beyond
    /// `max_parked_objects` fails the whole record with [`super::StateError::ParkedFull`], so
    /// that nothing of the cycle is kept and the entries it covers are read again later.
    pub async fn record(&self, destination: &str, report: &Report) -> StateResult<Committed> {
        let mut tx = self.pool.begin().await?;
        let now = timestamp(chrono::Utc::now());
        if let Some(primary) = &report.primary {
            bind_primary(&mut tx, destination, primary).await?;
        }
        let position = match report.position {
            Position::Kept => None,
            Position::At(seq) => Some(Some(seq)),
            Position::Dropped => Some(None),
        };
        if let Some(seq) = position {
            sqlx::query(
                "UPDATE org_state SET applied_seq = ?2, \
                 last_sync = CASE WHEN ?2 IS NULL THEN last_sync ELSE ?3 END \
                 WHERE destination = ?1",
            )
            .bind(destination)
            .bind(seq)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        let committed = self.park_and_release(&mut tx, destination, report).await?;
        finish(&mut tx, destination, report, &now).await?;
        tx.commit().await?;
        Ok(committed)
    }

    async fn park_and_release(
        &self,
        tx: &mut Tx<'_>,
        destination: &str,
        report: &Report,
    ) -> StateResult<Committed> {
        for path in &report.release {
            sqlx::query("DELETE FROM parked WHERE destination = ?1 AND path = ?2")
                .bind(destination)
                .bind(path)
                .execute(&mut **tx)
                .await?;
        }
        let mut counts = parked_counts(tx, destination).await?;
        let mut over = Vec::new();
        for p in report.park.iter().map(stored) {
            let known = is_parked(tx, destination, &p.path).await?;
            if known || counts.admit(&p, self.max_parked)? {
                upsert_parked(tx, destination, &p).await?;
            } else {
                over.push(p);
            }
        }
        if let Some(last) = over.last() {
            count_unappliable(tx, destination, last, over.len()).await?;
        }
        Ok(Committed {
            counted: over.len(),
        })
    }
}

/// The rest of a report: the primary's head, the end of a reconcile, the status.
async fn finish(tx: &mut Tx<'_>, destination: &str, report: &Report, now: &str) -> StateResult<()> {
    if let Some(head) = report.head {
        sqlx::query(
            "UPDATE org_state SET primary_seq = ?2, mode = ?3, primary_seq_at = ?4 \
             WHERE destination = ?1",
        )
        .bind(destination)
        .bind(head.seq)
        .bind(head.mode)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    if report.reconciled {
        sqlx::query(
            "UPDATE org_state SET last_reconcile = ?2, last_sync = ?2, reconcile_owed = 0 \
             WHERE destination = ?1",
        )
        .bind(destination)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    if let Some(standing) = &report.standing {
        let error = standing
            .error
            .as_deref()
            .map(|e| crate::text::bounded(e, MAX_STORED_TEXT));
        sqlx::query(
            "UPDATE org_state SET status = ?2, last_error = ?3, next_sync = NULL \
             WHERE destination = ?1",
        )
        .bind(destination)
        .bind(standing.status.as_str())
        .bind(error.as_deref())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Binds the checkpoint to `primary`: another identity than the stored one forgets it.
async fn bind_primary(tx: &mut Tx<'_>, destination: &str, primary: &Primary) -> StateResult<()> {
    sqlx::query(
        "UPDATE org_state SET \
         applied_seq = CASE WHEN primary_guid IS ?2 THEN applied_seq ELSE NULL END, \
         primary_guid = ?2, primary_url = ?3 WHERE destination = ?1",
    )
    .bind(destination)
    .bind(&primary.identity)
    .bind(&primary.url)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
