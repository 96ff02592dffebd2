//! The cookbook dependency solver behind `POST /environments/ENV/cookbook_versions`: which
//! version of each cookbook a run list gets, given the environment's constraints and the
//! dependencies in every cookbook's metadata.
//!
//! Unlike erchef, whose solver workers are capped at the CPU count and answer 503 when a herd
//! of clients arrives, solves here wait their turn for a CPU (never refused), each within a
//! budget of steps and time, and one org's universe is read once per change of its cookbooks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::store::{Store, StoreResult};
use solve::{Budget, Problem};

pub mod constraint;
pub mod diagnose;
pub mod solve;
pub mod universe;

pub use constraint::{Constraint, Version};
pub use diagnose::Failure;
pub use universe::{Universe, UniverseCache};

/// Time one request may spend solving, from when it gets a CPU (erchef's default is 2 s, then
/// "unable to solve dependencies in alotted time").
const SOLVE_TIME: Duration = Duration::from_secs(2);
/// Candidate versions one request may try; a few milliseconds of work each thousand.
const SOLVE_STEPS: u64 = 2_000_000;

/// The solver service the server keeps: universes by org, and one solve per CPU at a time.
#[derive(Debug)]
pub struct Depsolver {
    universes: UniverseCache,
    cpus: Arc<Semaphore>,
}

impl Default for Depsolver {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        Depsolver {
            universes: UniverseCache::default(),
            cpus: Arc::new(Semaphore::new(cpus)),
        }
    }
}

/// What a solve asks: the environment's constraints and the run list's cookbooks.
#[derive(Debug, Clone)]
pub struct Request {
    pub environment: HashMap<String, Constraint>,
    pub run_list: Vec<(String, Constraint)>,
}

impl Depsolver {
    /// The org's cookbook versions with their dependencies, read again only once the org's
    /// change log has moved since the last read.
    pub async fn universe(&self, store: &Store, org_id: i64) -> StoreResult<Arc<Universe>> {
        let seq = store.last_seq(org_id).await?;
        if let Some(universe) = self.universes.get(org_id, seq) {
            return Ok(universe);
        }
        let rows = store.cookbook_versions(org_id, None, true).await?;
        let universe = Arc::new(Universe::from_manifests(rows.iter().filter_map(|row| {
            row.body
                .as_deref()
                .map(|body| (row.cookbook.as_str(), row.version.as_str(), body))
        })));
        self.universes.put(org_id, seq, universe.clone());
        Ok(universe)
    }

    /// Solves on a blocking thread once a CPU is free (requests wait rather than being
    /// refused); `(cookbook, stored version)` of every cookbook the run list needs.
    pub async fn solve(
        &self,
        universe: Arc<Universe>,
        request: Request,
    ) -> Result<Result<Vec<(String, String)>, Failure>, tokio::task::JoinError> {
        // The permit goes with the work: a client that hangs up does not free the CPU slot
        // while its solve still runs.
        let cpu = self.cpus.clone().acquire_owned().await;
        tokio::task::spawn_blocking(move || {
            let _cpu = cpu;
            let problem = Problem {
                universe: &universe,
                environment: &request.environment,
                run_list: &request.run_list,
            };
            let mut budget = Budget::new(Instant::now() + SOLVE_TIME, SOLVE_STEPS);
            diagnose::solve(problem, &mut budget).map(|solution| {
                solution
                    .into_iter()
                    .filter_map(|(cookbook, version)| {
                        let label = universe
                            .versions(&cookbook)?
                            .iter()
                            .find(|c| c.version == version)?
                            .label
                            .clone();
                        Some((cookbook, label))
                    })
                    .collect()
            })
        })
        .await
    }
}
