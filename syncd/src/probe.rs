//! Probing an org's servers for `/readyz`: one signed request each, the result kept for a
//! moment so that a flood of readiness checks is not a flood of signed requests. The worker's
//! handle holds the last [`Probes`]; the health module asks for them.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::chef_client::retry::RetryPolicy;
use crate::chef_client::{ChefError, ChefServer};

/// How long a probe request may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an org's probe results answer `/readyz` before both servers are asked again: a
/// flood of `/readyz` must not become a flood of signed requests to the Chef servers.
pub const PROBE_REUSE: Duration = Duration::from_secs(2);

/// An org's last probe of its primaries and its replica, and when it was made.
#[derive(Debug, Clone)]
pub struct Probes {
    at: Instant,
    primary: Check,
    replica: Check,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Healthy.
    pub ok: bool,
    /// What was checked (a URL, a path), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Check {
    /// A check that passed.
    pub fn pass(target: Option<String>) -> Check {
        Check {
            ok: true,
            target,
            error: None,
        }
    }

    /// A check that failed, with why.
    pub fn fail(target: Option<String>, error: String) -> Check {
        Check {
            ok: false,
            target,
            error: Some(error),
        }
    }
}

impl Probes {
    /// Results just made.
    pub fn new(primary: Check, replica: Check) -> Probes {
        Probes {
            at: Instant::now(),
            primary,
            replica,
        }
    }

    /// The primary's and the replica's results, while younger than [`PROBE_REUSE`].
    pub fn recent(&self) -> Option<(Check, Check)> {
        (self.at.elapsed() < PROBE_REUSE).then(|| (self.primary.clone(), self.replica.clone()))
    }
}

/// Whether `server` answers a signed request: any answer but a refused signature counts (a
/// Chef 11 style server answers its root with 404).
pub async fn probe(server: &ChefServer) -> Check {
    let target = Some(server.base().to_owned());
    let once = server
        .clone()
        .with_timeout(PROBE_TIMEOUT)
        .with_retry(RetryPolicy::once());
    match once.get("").await {
        Ok(_) | Err(ChefError::NotFound) | Err(ChefError::Malformed(_)) => Check::pass(target),
        Err(
            e @ ChefError::Rejected {
                status: 401 | 403, ..
            },
        ) => Check::fail(target, format!("the signed request was refused: {e}")),
        Err(ChefError::Rejected { .. }) | Err(ChefError::Gone(_)) => Check::pass(target),
        Err(e) => Check::fail(target, e.to_string()),
    }
}

/// The first primary that answers, else the first one's failure.
pub async fn probe_primaries(primaries: &[ChefServer]) -> Check {
    let mut first_failure = None;
    for server in primaries {
        let check = probe(server).await;
        if check.ok {
            return check;
        }
        first_failure.get_or_insert(check);
    }
    first_failure.unwrap_or_else(|| Check::fail(None, "no primary configured".into()))
}
