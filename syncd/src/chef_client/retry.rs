//! Retrying transient failures with jittered exponential backoff (honouring `Retry-After`),
//! and the delay curve the per-org backoff uses while a server is down.

use std::future::Future;
use std::time::Duration;

use super::ChefError;

/// How one request is retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// First delay.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for RetryPolicy {
    /// CouchDB's replicator schedule as a baseline: 0.25 s doubling, five attempts.
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(250),
            max: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry: for requests whose caller reports a failure at once (an
    /// operator's command, a health probe).
    pub fn once() -> RetryPolicy {
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        }
    }
}

/// `base · 2^attempt`, capped, times a random factor in [0.5, 1.5) so that many objects
/// failing together do not retry together.
pub fn delay(base: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(attempt.min(20)));
    let capped = exp.min(max);
    let jitter = 0.5 + rand::random::<f64>();
    capped.mul_f64(jitter).min(max)
}

/// Whether a refused connection is retried like any transient failure (`Always`), or is an
/// answer at once (`UnlessRefused`): the caller then has something better to do than wait
/// for the server (fail over to the next primary, or back off as a whole while probing it,
/// showing the outage in `sync-status` meanwhile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Every transient failure is retried.
    Always,
    /// A refused connection is returned at once.
    UnlessRefused,
}

/// Runs `op` until it succeeds, fails for good, or runs out of attempts; `retried` is told of
/// every retry.
pub async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    persistence: Persistence,
    mut op: F,
    retried: impl Fn(),
) -> Result<T, ChefError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ChefError>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(ChefError::Transient {
                retry_after,
                message,
                unreachable,
                ..
            }) if attempt + 1 < policy.attempts
                && !(persistence == Persistence::UnlessRefused && unreachable) =>
            {
                let wait = match retry_after {
                    Some(server_says) => server_says.min(policy.max),
                    None => delay(policy.base, policy.max, attempt),
                };
                // Recovered retries leave no other trace; the manager log shows them.
                tracing::info!(
                    attempt = attempt + 1,
                    wait_ms = wait.as_millis() as u64,
                    error = %message,
                    "retrying"
                );
                retried();
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn delays_grow_and_stay_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for attempt in 0..30 {
            let d = delay(base, max, attempt);
            assert!(d <= max);
            let nominal = base
                .saturating_mul(2u32.saturating_pow(attempt.min(20)))
                .min(max);
            assert!(d >= nominal.mul_f64(0.5), "{attempt}: {d:?}");
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_permanent_ones_are_not() {
        let policy = RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(1),
            max: Duration::from_millis(5),
        };
        let calls = AtomicU32::new(0);
        let out = retry(
            &policy,
            Persistence::Always,
            || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(ChefError::transient("502", false))
                } else {
                    Ok(7)
                }
            },
            || (),
        )
        .await;
        assert_eq!(out.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let calls = AtomicU32::new(0);
        let out: Result<(), _> = retry(
            &policy,
            Persistence::Always,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(ChefError::Rejected {
                    status: 400,
                    message: "bad".into(),
                })
            },
            || (),
        )
        .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = AtomicU32::new(0);
        let out: Result<(), _> = retry(
            &policy,
            Persistence::Always,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(ChefError::transient("down", true))
            },
            || (),
        )
        .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_refused_connection_ends_an_unless_refused_retry_at_once() {
        let policy = RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(1),
            max: Duration::from_millis(5),
        };
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = retry(
            &policy,
            Persistence::UnlessRefused,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(ChefError::transient("Connection refused", true))
            },
            || (),
        )
        .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Other transient failures are still retried.
        let calls = AtomicU32::new(0);
        let out = retry(
            &policy,
            Persistence::UnlessRefused,
            || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(ChefError::transient("503", false))
                } else {
                    Ok(1)
                }
            },
            || (),
        )
        .await;
        assert_eq!(out.unwrap(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
