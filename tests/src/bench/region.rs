//! Bootstrap across regions: chef-syncd beside its replica, the primary behind a link with a
//! round-trip time (a proxy on 127.0.0.1 that delays every exchange), the daemon as configured
//! by default against the serial per-object copy. On loopback a copy is bound by CPU; across
//! regions it is bound by round trips, which is the case the "10× the serial copy" target is
//! about.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::bootstrap::{concurrent, per_object, serial};
use super::dataset::DataSet;
use super::report::Report;
use crate::fault_proxy::FaultProxy;
use crate::process::ChefSyncServer;
use crate::replica::{Replication, Tuning};

/// Round trip between the regions (a transatlantic link is 70–90 ms; 50 ms is a near one).
pub const RTT: Duration = Duration::from_millis(50);

/// Share of the data set copied (5 %: the serial copy still pays one round trip per
/// object and per file, about a minute).
pub const SHARE: f64 = 0.05;

async fn copy(dir: &Path, primary: &ChefSyncServer, tuning: Tuning, tag: &str) -> f64 {
    let proxy = FaultProxy::start(&primary.url).await;
    proxy.add_latency(RTT);
    let r = Replication::start_via(dir, primary, &proxy.url, "boot", tuning, tag).await;
    r.wait_synced(1).await;
    // From the daemon's start, as in the loopback bootstrap; setup before it is not counted.
    r.started.elapsed().as_secs_f64()
}

/// A primary holding `data` in org `boot`.
async fn loaded(dir: &Path, data: &DataSet, name: &str) -> ChefSyncServer {
    let primary = ChefSyncServer::start(&dir.join(name));
    let chef = primary
        .org_with_admin("boot", "boot")
        .chef
        .signing(chef_sync_shared::signing::SigningVersion::V1_3);
    data.load(&chef).await;
    primary
}

/// Over a link with [`RTT`]: the whole (scaled) data set through the bulk paths, then a share
/// of it through the bulk paths, object by object (`bulk = false`) and serially.
pub async fn run(report: &mut Report, dir: &Path, scale: f64) {
    let rtt_ms = RTT.as_millis();
    let whole = DataSet::scaled(scale);
    let primary = loaded(dir, &whole, "region-whole").await;
    let seconds = copy(dir, &primary, concurrent(), "region-whole").await;
    drop(primary);
    let objects = whole.objects() as f64;
    println!(
        "bootstrap across a {rtt_ms} ms link, {objects} objects, bulk paths: {seconds:.1} s, {:.0} objects/s",
        objects / seconds
    );
    report.add(
        "bootstrap",
        &format!(
            "{objects} objects and {} cookbook files across a {rtt_ms} ms round trip to the primary (daemon beside the replica), bulk paths",
            whole.cookbook_versions * whole.files_per_version
        ),
        json!({"seconds": seconds, "objects_per_s": objects / seconds}),
        Some(("≥ 1,000 objects/s", objects / seconds >= 1000.0)),
    );

    let data = DataSet::scaled(scale * SHARE);
    let objects = data.objects() as f64;
    let primary = loaded(dir, &data, "region-primary").await;
    let fast = copy(dir, &primary, concurrent(), "region-c8").await;
    println!(
        "bootstrap across a {rtt_ms} ms link, concurrency 8, bulk paths: {fast:.1} s, {:.0} objects/s",
        objects / fast
    );
    let single = copy(dir, &primary, per_object(), "region-c8-off").await;
    println!(
        "bootstrap across a {rtt_ms} ms link, concurrency 8, bulk = false: {single:.1} s, {:.0} objects/s",
        objects / single
    );
    let slow = copy(dir, &primary, serial(), "region-c1").await;
    println!(
        "bootstrap across a {rtt_ms} ms link, serial, one GET per object: {slow:.1} s, {:.0} objects/s",
        objects / slow
    );
    let files = data.cookbook_versions * data.files_per_version;
    report.add(
        "bootstrap",
        &format!(
            "across a {rtt_ms} ms round trip to the primary (daemon beside the replica): {objects} objects and {files} cookbook files, concurrency 8, bulk paths"
        ),
        json!({"seconds": fast, "objects_per_s": objects / fast}),
        None,
    );
    report.add(
        "bootstrap",
        &format!("the same across {rtt_ms} ms with bulk = false"),
        json!({"seconds": single, "objects_per_s": objects / single, "bulk_speedup": single / fast}),
        None,
    );
    report.add(
        "bootstrap",
        &format!("the same across {rtt_ms} ms, serial, one GET per object"),
        json!({"seconds": slow, "objects_per_s": objects / slow, "speedup": slow / fast}),
        Some(("≥ 10× the serial copy", slow / fast >= 10.0)),
    );
}
