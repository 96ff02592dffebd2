//! `plan ORG` (what the next sync would create, update and delete on the replica) and
//! `verify ORG` (both sides compared in full; differences no pending feed entry or parked
//! object explains are drift: objects edited on the replica). Neither writes anything, to the
//! servers or to the state database.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use chef_sync_shared::ObjectPath;
use serde::Serialize;

use super::report::table;
use super::{CtlError, load_replica, open_state, require_org};
use crate::chef_client::ChefError;
use crate::config::Config;
use crate::engine::inspect::{self, Difference, Drift, Sides, Unread, compare_all, compare_some};
use crate::org_pair::Wiring;

/// `plan --json`.
#[derive(Debug, Serialize)]
pub struct Plan {
    /// Destination org.
    pub organization: String,
    /// `feed` (the entries after the checkpoint, and the parked objects) or `full` (no
    /// checkpoint yet: the bootstrap's full reconcile).
    pub mode: &'static str,
    /// What the sync would do.
    pub changes: Vec<Drift>,
}

/// One difference found by `verify`.
#[derive(Debug, Serialize)]
pub struct Finding {
    /// The object.
    pub path: String,
    /// What a sync would do to it.
    pub action: Difference,
    /// A feed entry after the checkpoint, or a parked object, already covers it (catching
    /// up, not drift).
    pub pending: bool,
}

/// `verify --json`.
#[derive(Debug, Serialize)]
pub struct Verification {
    /// Destination org.
    pub organization: String,
    /// Objects compared (on either side).
    pub compared: usize,
    /// Differences not explained by pending work.
    pub drift: usize,
    /// Every difference.
    pub differences: Vec<Finding>,
}

fn failed(what: &str, e: ChefError) -> CtlError {
    CtlError::Failed(format!("{what}: {e}"))
}

/// The org's two sides, as the daemon would reach them (its first primary).
fn sides(config: &Config, org: &str) -> Result<Sides, CtlError> {
    let pair = config
        .pair(org)
        .ok_or_else(|| CtlError::Usage(format!("unknown org {org}")))?;
    let wiring =
        Wiring::load(config, Duration::ZERO).map_err(|e| CtlError::Failed(e.to_string()))?;
    wiring
        .sides(config, pair)
        .ok_or_else(|| CtlError::Usage(format!("no primary configured for {org}")))
}

/// What both commands start from.
struct Org {
    config: Config,
    /// The org's feed checkpoint, if it has one.
    checkpoint: Option<i64>,
    /// Paths of its parked objects.
    parked: Vec<String>,
    sides: Sides,
}

impl Org {
    async fn open(path: &Path, org: &str, command: &str) -> Result<Org, CtlError> {
        let config = load_replica(path, command)?;
        require_org(&config, path, org)?;
        let state = open_state(&config).await?;
        let checkpoint = state.org(org).await?.and_then(|r| r.applied_seq);
        let parked = state
            .parked(org)
            .await?
            .into_iter()
            .map(|p| p.path)
            .collect();
        state.close().await;
        let sides = sides(&config, org)?;
        Ok(Org {
            config,
            checkpoint,
            parked,
            sides,
        })
    }
}

/// Paths with work pending: feed entries after `applied` and parked objects.
async fn pending(
    sides: &Sides,
    applied: i64,
    parked: impl IntoIterator<Item = String>,
) -> Result<BTreeSet<ObjectPath>, CtlError> {
    inspect::pending(sides, applied, parked)
        .await
        .map_err(|e| match e {
            Unread::Failed(e) => failed("reading the primary's feed", e),
            unfollowable => CtlError::Failed(unfollowable.to_string()),
        })
}

/// Runs `plan ORG`.
pub async fn plan(path: &Path, org: &str, json: bool) -> Result<String, CtlError> {
    let Org {
        config,
        checkpoint,
        parked,
        sides,
    } = Org::open(path, org, "plan").await?;
    let concurrency = config.ec_sync_client.concurrency;
    let (mode, changes) = match checkpoint {
        Some(applied) => {
            let paths = pending(&sides, applied, parked).await?;
            let changes = compare_some(&sides, paths.into_iter().collect(), concurrency)
                .await
                .map_err(|e| failed("comparing", e))?;
            ("feed", changes)
        }
        None => {
            let (_, changes) = compare_all(&sides, config.ec_sync_client.bulk_reads, concurrency)
                .await
                .map_err(|e| failed("comparing", e))?;
            ("full", changes)
        }
    };
    let plan = Plan {
        organization: org.to_owned(),
        mode,
        changes,
    };
    if json {
        return serde_json::to_string_pretty(&plan).map_err(|e| CtlError::Failed(e.to_string()));
    }
    let count = |a| plan.changes.iter().filter(|c| c.action == a).count();
    use Difference::{Create, Delete, Update};
    let summary = format!(
        "{org}: the next sync ({}) would create {}, update {}, delete {} on the replica",
        if mode == "feed" {
            "feed entries after the checkpoint and parked objects"
        } else {
            "a full reconcile: no checkpoint yet"
        },
        count(Create),
        count(Update),
        count(Delete)
    );
    if plan.changes.is_empty() {
        return Ok(format!("{summary}\nnothing to do"));
    }
    let rows: Vec<Vec<String>> = plan
        .changes
        .iter()
        .map(|c| vec![action_word(c.action).to_owned(), c.path.clone()])
        .collect();
    Ok(format!("{}\n{summary}", table(&["ACTION", "PATH"], &rows)))
}

fn action_word(a: Difference) -> &'static str {
    match a {
        Difference::Create => "create",
        Difference::Update => "update",
        Difference::Delete => "delete",
    }
}

/// `verify`'s report as JSON or as a table with a summary line.
fn verification_text(org: &str, report: &Verification, json: bool) -> Result<String, CtlError> {
    if json {
        return serde_json::to_string_pretty(report).map_err(|e| CtlError::Failed(e.to_string()));
    }
    let summary = format!(
        "{org}: {} objects compared, {} differ, {} drifted (differences no pending sync explains)",
        report.compared,
        report.differences.len(),
        report.drift
    );
    if report.differences.is_empty() {
        return Ok(summary);
    }
    let rows: Vec<Vec<String>> = report
        .differences
        .iter()
        .map(|f| {
            vec![
                action_word(f.action).to_owned(),
                f.path.clone(),
                if f.pending { "pending" } else { "drift" }.to_owned(),
            ]
        })
        .collect();
    Ok(format!(
        "{}\n{summary}",
        table(&["SYNC WOULD", "PATH", "KIND"], &rows)
    ))
}

/// Runs `verify ORG`; `Err(Drift)` carries the report when drift was found (exit 1).
pub async fn verify(path: &Path, org: &str, json: bool) -> Result<String, CtlError> {
    let Org {
        config,
        checkpoint,
        parked,
        sides,
    } = Org::open(path, org, "verify").await?;
    let (compared, differences) = compare_all(
        &sides,
        config.ec_sync_client.bulk_reads,
        config.ec_sync_client.concurrency,
    )
    .await
    .map_err(|e| failed("comparing", e))?;
    let covered = match checkpoint {
        Some(applied) => pending(&sides, applied, parked).await?,
        // Never synced: everything is pending the bootstrap.
        None => differences
            .iter()
            .filter_map(|d| d.path.parse().ok())
            .collect(),
    };
    let findings: Vec<Finding> = differences
        .into_iter()
        .map(|d| Finding {
            pending: d.path.parse().is_ok_and(|p| covered.contains(&p)),
            path: d.path,
            action: d.action,
        })
        .collect();
    let drift = findings.iter().filter(|f| !f.pending).count();
    let report = Verification {
        organization: org.to_owned(),
        compared,
        drift,
        differences: findings,
    };
    let text = verification_text(org, &report, json)?;
    if drift > 0 {
        return Err(CtlError::Drift(text));
    }
    Ok(text)
}
