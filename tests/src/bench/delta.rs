//! Cookbook delta: a new version that changes one file transfers only that file.

use std::path::Path;

use serde_json::json;

use super::dataset::file_bytes;
use super::report::Report;
use crate::process::ChefSyncServer;
use crate::replica::{Replication, dir_bytes};

/// A new version of a 100-file cookbook that changes one file: bytes stored on the replica.
pub async fn run(report: &mut Report, dir: &Path) {
    let primary = ChefSyncServer::start(&dir.join("delta-primary"));
    let chef = primary.org_with_admin("boot", "boot").chef;
    let mut files: Vec<(String, Vec<u8>)> = (0..100)
        .map(|f| {
            (
                format!("files/default/f{f:03}.txt"),
                file_bytes(f as u64, 2_500),
            )
        })
        .collect();
    let refs = |files: &[(String, Vec<u8>)]| {
        files
            .iter()
            .map(|(p, b)| (p.clone(), b.clone()))
            .collect::<Vec<_>>()
    };
    let upload = |version: &'static str, files: Vec<(String, Vec<u8>)>| {
        let chef = chef.clone();
        async move {
            let r: Vec<(&str, &[u8])> = files
                .iter()
                .map(|(p, b)| (p.as_str(), b.as_slice()))
                .collect();
            chef.upload_cookbook("big", version, &r, false).await;
        }
    };
    upload("1.0.0", refs(&files)).await;
    let r = Replication::start(dir, &primary, 8, "delta", true).await;
    r.wait_synced(1).await;
    let blobs = r.replica.data_dir.join("blobs");
    let before = dir_bytes(&blobs);
    files[42].1 = file_bytes(4242, 2_600);
    let changed = files[42].1.len() as u64;
    upload("1.1.0", refs(&files)).await;
    r.wait_synced(2).await;
    let added = dir_bytes(&blobs) - before;
    println!(
        "cookbook delta: one changed file of {changed} bytes; the replica stored {added} new bytes"
    );
    report.add(
        "cookbook delta",
        "new version of a 100-file cookbook, one file changed",
        json!({"changed_file_bytes": changed, "bytes_stored_on_replica": added, "versions_on_replica": 2}),
        Some(("only the changed file's bytes are transferred", added == changed)),
    );
}
