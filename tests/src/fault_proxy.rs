//! A TCP proxy on 127.0.0.1 that sits between chef-syncd and a real server and injects the
//! network faults a real server cannot be asked for: answers held back beyond the client's
//! timeout, connections cut part-way through a file download, and the round-trip time of a
//! link between regions.
//!
//! It works on bytes, not on HTTP: a request is recognised by a marker in what the client sends
//! (`GET /file_store/`), and an answer is delayed or cut as it streams back on that connection.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Default)]
struct Faults {
    /// Every chunk of every answer waits this long (0: pass through).
    hold_ms: AtomicU64,
    /// Answers held back so far.
    held: AtomicUsize,
    /// (marker, bytes of the answer let through, cuts left).
    cut: Mutex<Option<(Vec<u8>, usize, usize)>>,
    /// Connections cut so far.
    cuts: AtomicUsize,
    /// Round-trip time added to every request/answer exchange (0: none).
    rtt_ms: AtomicU64,
}

/// A running proxy; it stops accepting when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`, to give the daemon instead of the server's URL.
    pub url: String,
    faults: Arc<Faults>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FaultProxy {
    /// Proxies to `target` (`http://127.0.0.1:PORT`).
    pub async fn start(target: &str) -> FaultProxy {
        let upstream = target
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let faults = Arc::new(Faults::default());
        let shared = faults.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let faults = shared.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        relay(client, server, faults).await;
                    }
                });
            }
        });
        FaultProxy {
            url,
            faults,
            accept,
        }
    }

    /// Holds every chunk of every answer back for `hold` (`Duration::ZERO` lets them through).
    pub fn hold_answers(&self, hold: Duration) {
        self.faults
            .hold_ms
            .store(hold.as_millis() as u64, Ordering::SeqCst);
    }

    /// Adds `rtt` to every exchange, as a network between regions would: a request waits that
    /// long before it reaches the server (the whole round trip is charged on the way out).
    pub fn add_latency(&self, rtt: Duration) {
        self.faults
            .rtt_ms
            .store(rtt.as_millis() as u64, Ordering::SeqCst);
    }

    /// The next `times` requests containing `marker` get only the first `after` bytes of their
    /// answer before the connection is closed.
    pub fn cut_answers(&self, marker: &str, after: usize, times: usize) {
        if let Ok(mut cut) = self.faults.cut.lock() {
            *cut = Some((marker.as_bytes().to_vec(), after, times));
        }
    }

    /// Connections cut so far.
    pub fn cuts(&self) -> usize {
        self.faults.cuts.load(Ordering::SeqCst)
    }

    /// Answer chunks held back so far.
    pub fn held(&self) -> usize {
        self.faults.held.load(Ordering::SeqCst)
    }
}

/// Uses one planned cut, if any is left.
fn take_cut(faults: &Faults) -> bool {
    let Ok(mut cut) = faults.cut.lock() else {
        return false;
    };
    match cut.as_mut() {
        Some((_, _, left)) if *left > 0 => {
            *left -= 1;
            true
        }
        _ => false,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

async fn relay(client: TcpStream, server: TcpStream, faults: Arc<Faults>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // Set when a request on this connection matched the cut marker: bytes of its answer allowed.
    let budget = Arc::new(Mutex::new(None::<usize>));
    let closed = Arc::new(AtomicBool::new(false));
    // Set when the server has answered since the client last sent: the next bytes from the
    // client start a new exchange, which pays the round trip.
    let new_exchange = Arc::new(AtomicBool::new(true));
    let requests = {
        let faults = faults.clone();
        let budget = budget.clone();
        let closed = closed.clone();
        let new_exchange = new_exchange.clone();
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match client_read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                // Each request on the connection decides afresh whether its answer is cut.
                let armed = faults.cut.lock().ok().and_then(|cut| match cut.as_ref() {
                    Some((marker, after, left)) if *left > 0 && contains(&buf[..n], marker) => {
                        Some(*after)
                    }
                    _ => None,
                });
                if let Ok(mut b) = budget.lock() {
                    *b = armed;
                }
                let rtt = faults.rtt_ms.load(Ordering::SeqCst);
                if rtt > 0 && new_exchange.swap(false, Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(rtt)).await;
                }
                if closed.load(Ordering::SeqCst) || server_write.write_all(&buf[..n]).await.is_err()
                {
                    break;
                }
            }
            let _ = server_write.shutdown().await;
        }
    };
    let answers = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let hold = faults.hold_ms.load(Ordering::SeqCst);
            if hold > 0 {
                faults.held.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(hold)).await;
            }
            let allowed = budget.lock().ok().and_then(|b| *b);
            match allowed {
                Some(left) if left <= n && take_cut(&faults) => {
                    let _ = client_write.write_all(&buf[..left]).await;
                    faults.cuts.fetch_add(1, Ordering::SeqCst);
                    closed.store(true, Ordering::SeqCst);
                    break;
                }
                Some(left) if left <= n => {
                    // Another connection used up the planned cuts meanwhile.
                    if let Ok(mut b) = budget.lock() {
                        *b = None;
                    }
                }
                Some(left) => {
                    if let Ok(mut b) = budget.lock() {
                        *b = Some(left - n);
                    }
                }
                None => {}
            }
            new_exchange.store(true, Ordering::SeqCst);
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    // The connection lives as long as answers flow; a cut also ends the request side.
    let requests = tokio::spawn(requests);
    answers.await;
    requests.abort();
}
