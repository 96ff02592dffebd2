//! The pauses between a worker's cycles: a sleep that sync-start/stop, a reload or shutdown
//! ends early, and the backoff from a server that refused connections, which also ends as soon
//! as that server accepts them again.

use std::time::Duration;

use super::outcomes::later;
use super::worker::Worker;
use crate::state::Status;

/// How a pause ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paused {
    /// Its time ran out.
    Elapsed,
    /// sync-start/stop, a reload or shutdown.
    Woken,
    /// The server probed accepts connections again.
    Probed,
}

/// How often a pausing worker shows it is alive.
const BEAT_WHILE_PAUSED: Duration = Duration::from_secs(5);

/// How often a server that refused connections is probed while an org backs off.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// Whether `address` (`host:port`) accepts a TCP connection within [`PROBE_INTERVAL`].
async fn accepts(address: &str) -> bool {
    let connect = tokio::net::TcpStream::connect(address);
    matches!(
        tokio::time::timeout(PROBE_INTERVAL, connect).await,
        Ok(Ok(_))
    )
}

/// `host:port` of a base URL.
fn socket_address(base: &str) -> Option<String> {
    let url = reqwest::Url::parse(base).ok()?;
    Some(format!(
        "{}:{}",
        url.host_str()?,
        url.port_or_known_default()?
    ))
}

impl Worker {
    /// Sleeps up to `d`, waking early for sync-start/stop, reload or shutdown; beats every
    /// few seconds meanwhile (a pause is the loop working as meant). `sync-status` shows its
    /// end as NEXT SYNC.
    pub(super) async fn pause(&mut self, d: Duration) {
        self.handle.waiting(Some(later(d)));
        let handle = self.handle.clone();
        let mut shutdown = self.shutdown.clone();
        let beating = async {
            loop {
                handle.progress.beat();
                tokio::time::sleep(BEAT_WHILE_PAUSED).await;
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = handle.wake.notified() => {}
            _ = shutdown.changed() => {}
            () = beating => {}
        }
        self.handle.waiting(None);
    }

    /// Like [`Self::pause`], and also ends once `base` accepts TCP connections again.
    async fn pause_probing(&mut self, d: Duration, base: &str) -> Paused {
        let Some(address) = socket_address(base) else {
            self.pause(d).await;
            return Paused::Elapsed;
        };
        let progress = self.handle.progress.clone();
        let probe = async {
            loop {
                progress.beat();
                tokio::time::sleep(PROBE_INTERVAL).await;
                if accepts(&address).await {
                    return;
                }
            }
        };
        self.handle.waiting(Some(later(d)));
        let handle = self.handle.clone();
        let mut shutdown = self.shutdown.clone();
        let paused = tokio::select! {
            _ = tokio::time::sleep(d) => Paused::Elapsed,
            _ = handle.wake.notified() => Paused::Woken,
            _ = shutdown.changed() => Paused::Woken,
            () = probe => Paused::Probed,
        };
        self.handle.waiting(None);
        paused
    }

    /// Waits out a backoff from `base`, a server that refused connections, ending it early
    /// when the server accepts them again. Finding it back (by the probe, or by one last look
    /// when the backoff ran out) is written to the sync log and shown in `sync-status` at
    /// once: the org is being retried now, so it is no longer `error` with a stale reason.
    pub(super) async fn wait_for_server(&mut self, wait: Duration, base: &str) {
        let back = match self.pause_probing(wait, base).await {
            Paused::Probed => true,
            Paused::Elapsed => match socket_address(base) {
                Some(address) => accepts(&address).await,
                None => false,
            },
            Paused::Woken => false,
        };
        if back {
            self.info(&format!("{base} accepts connections again; retrying now"));
            self.resumed().await;
        }
    }

    /// The org is being retried now: shown as `bootstrapping` (no checkpoint, and the
    /// primary has a feed) or `syncing`, without the error it was recorded with.
    async fn resumed(&self) {
        let row = self.state.org(&self.destination).await.ok().flatten();
        let bootstrapping =
            row.is_some_and(|r| r.applied_seq.is_none() && r.mode.as_deref() != Some("reconcile"));
        self.handle.working(Some(if bootstrapping {
            Status::Bootstrapping
        } else {
            Status::Syncing
        }));
        self.handle.error_cleared(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_go_to_the_host_and_port_of_a_base_url() {
        assert_eq!(
            socket_address("http://127.0.0.1:8080/organizations/acme").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            socket_address("https://chef.example/organizations/acme").as_deref(),
            Some("chef.example:443")
        );
        assert_eq!(
            socket_address("http://[::1]:9/").as_deref(),
            Some("[::1]:9")
        );
        assert_eq!(socket_address("not a url"), None);
    }
}
