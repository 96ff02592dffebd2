//! systemd integration (`Type=notify`): READY=1 once the daemon serves (state open, workers
//! started, control socket and metrics listener bound), and WATCHDOG=1 only while it makes real
//! progress: the state database takes a write and no worker's loop has been silent longer than
//! its longest legitimate wait. A wedged worker therefore gets the daemon restarted by systemd.
//! Outside systemd (no `NOTIFY_SOCKET`) all of it is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;

use crate::daemon::Daemon;

/// Tells systemd the daemon is up.
pub fn ready(orgs: usize) {
    let status = format!("STATUS=syncing {orgs} organization(s)");
    let _ = sd_notify::notify(false, &[NotifyState::Ready, NotifyState::Custom(&status)]);
}

/// Tells systemd the daemon is stopping.
pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}

/// systemd's watchdog period, when it asked for one.
pub fn period() -> Option<Duration> {
    let mut usec = 0;
    sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec))
}

/// Why the daemon is not healthy enough to feed the watchdog, if it is not.
pub async fn unhealthy(daemon: &Daemon, stale_after: Duration) -> Option<String> {
    if let Err(e) = daemon.state().check_writable().await {
        return Some(format!("state database: {e}"));
    }
    let config = daemon.config().await;
    let mut silences = Vec::new();
    for pair in &config.organizations {
        if let Some(handle) = daemon.handle(&pair.destination).await {
            silences.push((pair.destination.clone(), handle.progress.since_beat()));
        }
    }
    silent_worker(&silences, stale_after)
}

/// The first worker silent for longer than `stale_after`, said in words.
fn silent_worker(silences: &[(String, Duration)], stale_after: Duration) -> Option<String> {
    silences
        .iter()
        .find(|(_, silent)| *silent > stale_after)
        .map(|(org, silent)| {
            format!(
                "the worker of {org} has been silent for {} s",
                silent.as_secs()
            )
        })
}

/// Feeds the watchdog at half its period while the daemon is healthy; logs once when it
/// stops feeding it.
pub async fn feed(daemon: Daemon, period: Duration, stale_after: Duration) {
    let mut starving = false;
    loop {
        tokio::time::sleep(period / 2).await;
        match unhealthy(&daemon, stale_after).await {
            None => {
                starving = false;
                let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
            }
            Some(why) if !starving => {
                starving = true;
                tracing::error!("not feeding the systemd watchdog: {why}");
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_silent_worker_starves_the_watchdog() {
        let limit = Duration::from_secs(385);
        let healthy = vec![
            ("acme".to_owned(), Duration::from_secs(3)),
            ("beta".to_owned(), Duration::from_secs(380)),
        ];
        assert_eq!(silent_worker(&healthy, limit), None);
        let wedged = vec![
            ("acme".to_owned(), Duration::from_secs(3)),
            ("beta".to_owned(), Duration::from_secs(400)),
        ];
        assert_eq!(
            silent_worker(&wedged, limit).as_deref(),
            Some("the worker of beta has been silent for 400 s")
        );
    }
}
