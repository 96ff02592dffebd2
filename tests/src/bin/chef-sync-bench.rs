//! `chef-sync-bench`: starts everything itself on 127.0.0.1, generates its data
//! deterministically, measures, and writes `bench.json` and `bench.md` (see
//! docs/BENCHMARKS.md for the command and the latest figures).
//!
//!   chef-sync-bench [--out DIR] [--seconds N] [--scale F] [--only read,feed,lag,sustained,delta,bootstrap,region,idle,search,runs,policyfiles]

use std::path::PathBuf;

use chef_sync_tests::bench::report::Report;
use chef_sync_tests::bench::{
    bootstrap, delta, feed, idle, lag, policyfiles, region, runs, search, sustained, throughput,
};

struct Options {
    out: PathBuf,
    seconds: u64,
    only: Option<Vec<String>>,
    /// Fraction of the data sets (1.0 = bootstrap's 10,000 roles, search's 10,000
    /// nodes, …).
    scale: f64,
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        out: PathBuf::from("target/bench"),
        seconds: 10,
        only: None,
        scale: 1.0,
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => o.out = args.next().map(PathBuf::from).unwrap_or(o.out),
            "--seconds" => {
                o.seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(o.seconds)
            }
            "--only" => {
                o.only = args
                    .next()
                    .map(|s| s.split(',').map(str::to_owned).collect())
            }
            "--scale" => o.scale = args.next().and_then(|s| s.parse().ok()).unwrap_or(o.scale),
            other => {
                eprintln!("chef-sync-bench: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    o
}

#[tokio::main]
async fn main() {
    let options = options();
    let wanted = |b: &str| {
        options
            .only
            .as_ref()
            .is_none_or(|o| o.iter().any(|x| x == b))
    };
    let work = tempfile::tempdir().expect("tempdir");
    let mut report = Report {
        started: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        machine: format!(
            "{} CPUs, {}",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(
                    |c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                        .split(':')
                        .nth(1)
                        .unwrap_or("")
                        .trim()
                        .to_owned())
                )
                .unwrap_or_default()
        ),
        rows: Vec::new(),
    };
    // Interrupted (Ctrl-C, SIGTERM): the running benchmark is dropped, which stops every server
    // and daemon it started, instead of leaving them running.
    let interrupted = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    let benches = async {
        let dir = work.path();
        let seconds = options.seconds;
        if wanted("read") {
            throughput::run(&mut report, dir, seconds).await;
        }
        if wanted("feed") {
            feed::run(&mut report, dir, seconds).await;
        }
        if wanted("lag") {
            lag::run(&mut report, dir, seconds * 6, true).await;
            lag::run(&mut report, dir, seconds * 6, false).await;
        }
        if wanted("sustained") {
            sustained::run(&mut report, dir, seconds * 6, true).await;
            sustained::run(&mut report, dir, seconds * 6, false).await;
        }
        if wanted("delta") {
            delta::run(&mut report, dir).await;
        }
        if wanted("bootstrap") {
            bootstrap::run(&mut report, dir, options.scale).await;
        }
        if wanted("region") {
            region::run(&mut report, dir, options.scale).await;
        }
        if wanted("idle") {
            idle::run(&mut report, dir, seconds * 3).await;
        }
        if wanted("search") {
            search::run(&mut report, dir, seconds, options.scale).await;
        }
        if wanted("runs") {
            runs::run(&mut report, dir, seconds).await;
        }
        if wanted("policyfiles") {
            policyfiles::run(&mut report, dir, seconds * 3, options.scale).await;
        }
    };
    tokio::select! {
        _ = benches => {}
        _ = interrupted => {
            eprintln!("chef-sync-bench: interrupted; the report holds what finished");
        }
    }
    if let Err(e) = std::fs::create_dir_all(&options.out) {
        eprintln!("chef-sync-bench: {}: {e}", options.out.display());
        std::process::exit(1);
    }
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    let md = report.markdown();
    let _ = std::fs::write(options.out.join("bench.json"), json);
    let _ = std::fs::write(options.out.join("bench.md"), &md);
    println!("\n{md}");
}
