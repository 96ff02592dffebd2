//! Copying many cookbook versions into a replica that offers the bulk write: the manifests
//! are read from the primary, the files none of the replica's stored versions has go through
//! one sandbox per group of versions (only the missing ones cross the wire, MD5-checked, as
//! on the per-object path), and once the sandbox is committed the manifests go in the bulk
//! write. A group whose files cannot be uploaded, and a manifest the bulk write refuses or
//! hands back, are copied version by version, so one bad version is parked on its own.

use chef_sync_shared::ObjectPath;
use chef_sync_shared::objects::{CookbookFile, CookbookVersion};
use futures_util::StreamExt;

use super::apply::Outcome;
use super::bulk_write::{self, Item};
use super::cookbooks::{self, comparable, is_md5, manifest, put_path, without_urls};
use super::plan::Change;
use super::sides::{Applied, Sides};
use crate::chef_client::ChefError;

/// Most files one shared sandbox lists.
pub const FILES_PER_SANDBOX: usize = 1000;

/// A version to write: its change and the primary's manifest.
struct Copy {
    change: Change,
    source: CookbookVersion,
}

/// What reading one version decided.
enum Read {
    /// Settled already (unchanged, gone, unreadable).
    Done(Outcome),
    /// To be written (a manifest is large beside an outcome).
    Copy(Box<Copy>),
}

/// Copies the cookbook versions `changes` (writes) and returns one outcome per change.
pub async fn copy(
    sides: &Sides,
    changes: Vec<Change>,
    replica_has: &(dyn Fn(&ObjectPath) -> Option<bool> + Sync),
    concurrency: usize,
) -> Vec<Outcome> {
    if changes.is_empty() {
        return Vec::new();
    }
    let mut outcomes = Vec::new();
    let mut copies = Vec::new();
    let mut reads = futures_util::stream::iter(changes)
        .map(|change| {
            let has = replica_has(&change.path);
            async move { read(sides, change, has).await }
        })
        .buffered(concurrency.max(1));
    while let Some(r) = reads.next().await {
        match r {
            Read::Done(outcome) => {
                let unreachable = outcome.result.as_ref().is_err_and(|e| e.is_unreachable());
                outcomes.push(outcome);
                if unreachable {
                    return outcomes;
                }
            }
            Read::Copy(c) => copies.push(*c),
        }
    }
    for group in groups(copies) {
        let done = write_group(sides, group, concurrency).await;
        let unreachable = done
            .iter()
            .any(|o| o.result.as_ref().is_err_and(|e| e.is_unreachable()));
        outcomes.extend(done);
        if unreachable {
            break;
        }
    }
    outcomes
}

/// Reads the primary's manifest and, where the replica may have the version, the replica's.
async fn read(sides: &Sides, change: Change, has: Option<bool>) -> Read {
    let rel = change.path.to_string();
    let done = |change, result| Read::Done(Outcome { change, result });
    let source = match sides.primary_get(&rel).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            // Deleted on the primary since.
            let result = sides.replica_delete(&rel).await;
            return done(change, result);
        }
        Err(e) => return done(change, Err(e)),
    };
    let source = match manifest(source, &rel) {
        Ok(m) => m,
        Err(e) => return done(change, Err(e)),
    };
    if let Some(bad) = source
        .all_file_entries()
        .iter()
        .find(|f| !is_md5(&f.checksum))
    {
        let e = ChefError::Malformed(format!(
            "{rel}: file {} has checksum '{}'",
            bad.path, bad.checksum
        ));
        return done(change, Err(e));
    }
    if has != Some(false) {
        match sides.replica_get(&rel).await {
            Ok(Some(current)) => {
                let current = manifest(current, &rel).map(comparable).ok();
                if current == Some(comparable(source.clone())) {
                    return done(change, Ok(Applied::Unchanged));
                }
            }
            Ok(None) => {}
            Err(e) => return done(change, Err(e)),
        }
    }
    Read::Copy(Box::new(Copy { change, source }))
}

/// Groups of versions whose files fit one sandbox (a version with more files is a group of
/// its own).
fn groups(copies: Vec<Copy>) -> Vec<Vec<Copy>> {
    let mut groups: Vec<Vec<Copy>> = Vec::new();
    let mut files = 0;
    for c in copies {
        let n = c.source.all_file_entries().len();
        match groups.last_mut() {
            Some(g) if files + n <= FILES_PER_SANDBOX => {
                files += n;
                g.push(c);
            }
            _ => {
                files = n;
                groups.push(vec![c]);
            }
        }
    }
    groups
}

async fn write_group(sides: &Sides, group: Vec<Copy>, concurrency: usize) -> Vec<Outcome> {
    let files: Vec<&CookbookFile> = group
        .iter()
        .flat_map(|c| c.source.all_file_entries())
        .collect();
    let uploaded = if files.is_empty() {
        Ok(())
    } else {
        // As many transfers as the per-object path has with `concurrency` versions in flight.
        let in_flight = concurrency.max(1) * cookbooks::FILES_IN_FLIGHT;
        cookbooks::upload_missing(sides, "cookbook versions", &files, in_flight).await
    };
    if let Err(e) = uploaded {
        if e.is_unreachable() {
            return group
                .into_iter()
                .map(|c| Outcome {
                    change: c.change,
                    result: Err(e.clone()),
                })
                .collect();
        }
        tracing::debug!(%e, "shared sandbox failed; copying the versions one by one");
        return one_by_one(sides, group.into_iter().map(|c| c.change), concurrency).await;
    }
    let items = group.into_iter().filter_map(|c| {
        let (cookbook, version) = match &c.change.path {
            ObjectPath::CookbookVersion { cookbook, version } => {
                (cookbook.clone(), version.to_string())
            }
            _ => return None,
        };
        let rel = put_path(&cookbook, &version, &c.source);
        let document = serde_json::to_value(without_urls(c.source)).ok();
        Some(Item {
            change: c.change,
            rel,
            document,
        })
    });
    let written = bulk_write::write(sides, items.collect()).await;
    let mut outcomes = Vec::new();
    let mut again = Vec::new();
    for o in written.outcomes {
        // A file the sandbox called present may have been released before the manifest
        // arrived (see `cookbooks::put_with_files`): the version is copied on its own.
        match &o.result {
            Err(ChefError::Rejected { status: 400, .. }) => again.push(o.change),
            _ => outcomes.push(o),
        }
    }
    if written.stopped {
        return outcomes;
    }
    again.extend(written.left.into_iter().map(|i| i.change));
    outcomes.extend(one_by_one(sides, again.into_iter(), concurrency).await);
    outcomes
}

/// The per-object copy of each version.
async fn one_by_one(
    sides: &Sides,
    changes: impl Iterator<Item = Change>,
    concurrency: usize,
) -> Vec<Outcome> {
    futures_util::stream::iter(changes)
        .map(|change| async move {
            let result = match &change.path {
                ObjectPath::CookbookVersion { cookbook, version } => {
                    cookbooks::copy_version(sides, cookbook, &version.to_string(), Some(false))
                        .await
                }
                other => Err(ChefError::Malformed(format!(
                    "{other} is not a cookbook version"
                ))),
            };
            Outcome { change, result }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn copy_with(files: usize) -> Copy {
        let recipes: Vec<_> = (0..files)
            .map(|i| {
                json!({"name": format!("r{i}.rb"), "path": format!("recipes/r{i}.rb"),
                       "checksum": format!("{i:032x}"), "specificity": "default"})
            })
            .collect();
        let source = manifest(
            json!({"name": "c-1.0.0", "cookbook_name": "c",
                   "metadata": {"version": "1.0.0"}, "recipes": recipes}),
            "/cookbooks/c/1.0.0",
        )
        .unwrap();
        Copy {
            change: Change {
                path: "/cookbooks/c/1.0.0".parse().unwrap(),
                action: crate::engine::plan::Action::Write,
                seq: None,
            },
            source,
        }
    }

    #[test]
    fn versions_share_a_sandbox_up_to_its_file_bound() {
        let sizes = |files: &[usize]| -> Vec<Vec<usize>> {
            groups(files.iter().map(|n| copy_with(*n)).collect())
                .iter()
                .map(|g| {
                    g.iter()
                        .map(|c| c.source.all_file_entries().len())
                        .collect()
                })
                .collect()
        };
        assert_eq!(
            sizes(&[300, 300, 300, 200]),
            [vec![300, 300, 300], vec![200]]
        );
        assert_eq!(sizes(&[0, 0, 1000, 1]), [vec![0, 0, 1000], vec![1]]);
        // A version with more files than a sandbox lists is a group of its own.
        assert_eq!(sizes(&[10, 1200, 10]), [vec![10], vec![1200], vec![10]]);
    }
}
