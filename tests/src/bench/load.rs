//! A native load generator: N keep-alive connections, each cycling through its own list of
//! requests that were signed before the run (a signature stays valid for the server's clock
//! skew window), so the generator spends its CPU on HTTP, not on RSA, and the server's cost
//! per request is what gets measured.

use std::time::{Duration, Instant};

use chef_sync_shared::PrivateKey;
use chef_sync_shared::signing::{self, RequestToSign, SigningVersion, sign_request};
use serde::Serialize;

/// Keep-alive connections of the load generator.
pub const CONNECTIONS: usize = 8;

/// One request, signed and ready to send any number of times.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// HTTP method.
    pub method: reqwest::Method,
    /// Absolute URL.
    pub url: String,
    /// Signed headers.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// Signs `method url` with `body` as `user` (protocol 1.3, API version 1).
pub fn prepare(key: &PrivateKey, user: &str, method: &str, url: &str, body: &[u8]) -> Prepared {
    let parsed = reqwest::Url::parse(url).expect("url");
    let headers = sign_request(
        key,
        &RequestToSign {
            version: SigningVersion::V1_3,
            method,
            path: parsed.path(),
            body: signing::Body::Bytes(body),
            user_id: user,
            timestamp: chrono::Utc::now(),
            server_api_version: "1",
        },
    )
    .expect("sign");
    let mut headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    headers.push(("content-type".into(), "application/json".into()));
    headers.push(("accept".into(), "application/json".into()));
    Prepared {
        method: method.parse().expect("method"),
        url: url.to_owned(),
        headers,
        body: body.to_vec(),
    }
}

/// What a load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    /// Successful requests.
    pub requests: u64,
    /// Requests that failed or answered outside 2xx.
    pub errors: u64,
    /// Wall time.
    pub seconds: f64,
    /// Successful requests per second.
    pub rps: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
}

/// Latency percentile of sorted microseconds.
pub fn percentile(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted_us.len() - 1) as f64).round() as usize;
    sorted_us[rank.min(sorted_us.len() - 1)] as f64 / 1000.0
}

/// An unsigned request (a pre-signed file URL).
pub fn unsigned(method: &str, url: &str) -> Prepared {
    Prepared {
        method: method.parse().expect("method"),
        url: url.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// Runs `per_connection[i]` on connection i, round robin, for `duration`.
pub async fn run(per_connection: Vec<Vec<Prepared>>, duration: Duration) -> LoadResult {
    let tagged = per_connection
        .into_iter()
        .map(|requests| requests.into_iter().map(|r| (0, r)).collect())
        .collect();
    let (all, _) = run_kinds(tagged, duration, 1).await;
    all
}

/// Like [`run`], each request tagged with a kind below `kinds`: the figures over every
/// request, and over the requests of each kind.
pub async fn run_kinds(
    per_connection: Vec<Vec<(usize, Prepared)>>,
    duration: Duration,
    kinds: usize,
) -> (LoadResult, Vec<LoadResult>) {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for requests in per_connection {
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let mut latencies: Vec<(usize, u64)> = Vec::new();
            let mut errors = vec![0u64; kinds.max(1)];
            let mut i = 0;
            while Instant::now() < deadline && !requests.is_empty() {
                let (kind, r) = &requests[i % requests.len()];
                let kind = (*kind).min(kinds.saturating_sub(1));
                i += 1;
                let mut req = client
                    .request(r.method.clone(), &r.url)
                    .body(r.body.clone());
                for (k, v) in &r.headers {
                    req = req.header(k, v);
                }
                let sent = Instant::now();
                match req.send().await {
                    Ok(mut resp) => {
                        let mut ok = resp.status().is_success();
                        // Read the answer to its end and drop each piece, as a load generator
                        // does (wrk too): buffering a 20 MB search answer in a growing Vec
                        // would time the generator's copying, not the server.
                        loop {
                            match resp.chunk().await {
                                Ok(Some(_)) => {}
                                Ok(None) => break,
                                Err(_) => {
                                    ok = false;
                                    break;
                                }
                            }
                        }
                        if ok {
                            latencies.push((kind, sent.elapsed().as_micros() as u64));
                        } else {
                            errors[kind] += 1;
                        }
                    }
                    Err(_) => errors[kind] += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut all: Vec<(usize, u64)> = Vec::new();
    let mut errors = vec![0u64; kinds.max(1)];
    for t in tasks {
        if let Ok((l, e)) = t.await {
            all.extend(l);
            for (total, more) in errors.iter_mut().zip(e) {
                *total += more;
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let figures = |mut us: Vec<u64>, errors: u64| {
        us.sort_unstable();
        LoadResult {
            requests: us.len() as u64,
            errors,
            seconds,
            rps: us.len() as f64 / seconds,
            p50_ms: percentile(&us, 50.0),
            p99_ms: percentile(&us, 99.0),
        }
    };
    let per_kind = (0..kinds.max(1))
        .map(|k| {
            let us = all
                .iter()
                .filter(|(kind, _)| *kind == k)
                .map(|(_, u)| *u)
                .collect();
            figures(us, errors[k])
        })
        .collect();
    let total = figures(all.iter().map(|(_, u)| *u).collect(), errors.iter().sum());
    (total, per_kind)
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles() {
        let v: Vec<u64> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(percentile(&v, 50.0), 51.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
