//! Blobs as files under one directory, two-level fan-out by the key's first two digits.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use axum::body::Body;
use tokio_util::io::ReaderStream;

use super::{BlobError, Upload, is_sha256_key};
use crate::store::Store;

/// The on-disk blob directory.
#[derive(Debug, Clone)]
pub struct FsBlobs {
    root: PathBuf,
}

impl FsBlobs {
    /// Blobs under `root`.
    pub fn new(root: PathBuf) -> Self {
        FsBlobs { root }
    }

    fn path(&self, key: &str) -> PathBuf {
        let key = key.to_ascii_lowercase();
        self.root.join(&key[..2]).join(key)
    }

    pub(super) async fn contains(&self, key: &str) -> Result<bool, BlobError> {
        Ok(tokio::fs::try_exists(self.path(key)).await?)
    }

    /// Stores the upload under its SHA-256 (see [`store_file`]).
    pub(super) async fn insert(&self, upload: Upload) -> Result<(), BlobError> {
        let target = self.path(&upload.sha256);
        tokio::task::spawn_blocking(move || store_file(upload, &target))
            .await
            .map_err(std::io::Error::other)??;
        Ok(())
    }

    pub(super) async fn open(&self, key: &str) -> Result<Option<(Body, u64)>, BlobError> {
        match tokio::fs::File::open(self.path(key)).await {
            Ok(file) => {
                let len = file.metadata().await?.len();
                Ok(Some((Body::from_stream(ReaderStream::new(file)), len)))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the SHA-256-keyed files last stored before `cutoff` that nothing references;
    /// legacy MD5-keyed files are never looked at. Returns how many went.
    pub(super) async fn sweep(&self, store: &Store, cutoff: SystemTime) -> Result<u64, BlobError> {
        let mut removed = 0;
        for dir in subdirectories(&self.root).await? {
            for (key, path) in sha256_files(&dir).await? {
                if remove_if_unreferenced(store, &key, &path, cutoff).await? {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// Renames the fsynced staging file into place and fsyncs the directory, so a stored blob
/// survives a crash whole or not at all. Content already stored is kept and its mtime set to
/// now: the sweep judges a blob's age by it, so the blob cannot be removed from under this
/// upload. Where the mtime cannot be set (a file owned by another user), the identical new
/// copy replaces it instead.
fn store_file(upload: Upload, target: &Path) -> std::io::Result<()> {
    if touch(target).is_ok() {
        return Ok(());
    }
    let Some(dir) = target.parent() else {
        return Ok(());
    };
    std::fs::create_dir_all(dir)?;
    upload.file.persist(target).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

fn touch(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.set_modified(SystemTime::now())
}

/// The fan-out directories (a missing root has none).
async fn subdirectories(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    let mut entries = match tokio::fs::read_dir(root).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(dirs),
        Err(e) => return Err(e),
    };
    while let Some(entry) = entries.next_entry().await? {
        if entry.file_type().await?.is_dir() {
            dirs.push(entry.path());
        }
    }
    Ok(dirs)
}

/// The files of `dir` named by a SHA-256, with their keys.
async fn sha256_files(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        // Another process's sweep may have removed an empty directory; nothing to do then.
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e),
    };
    while let Some(entry) = entries.next_entry().await? {
        if let Some(key) = entry.file_name().to_str().filter(|n| is_sha256_key(n)) {
            files.push((key.to_owned(), entry.path()));
        }
    }
    Ok(files)
}

/// Whether the file at `path` was last stored before `cutoff`; a file already gone is not.
async fn stored_before(path: &Path, cutoff: SystemTime) -> std::io::Result<bool> {
    match tokio::fs::metadata(path).await {
        Ok(meta) => Ok(meta.modified()? < cutoff),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes one blob if it is old and unreferenced. The age is checked again after the
/// database answered, so an upload of the same content that arrived meanwhile (it refreshes
/// the mtime) keeps it; an upload racing the final unlink finds its blob missing at commit
/// and is asked to upload again, never served other bytes.
async fn remove_if_unreferenced(
    store: &Store,
    key: &str,
    path: &Path,
    cutoff: SystemTime,
) -> Result<bool, BlobError> {
    if !stored_before(path, cutoff).await? || store.blob_referenced(key).await? {
        return Ok(false);
    }
    if !stored_before(path, cutoff).await? {
        return Ok(false);
    }
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(true),
        // Removed by another process's sweep: deletes are idempotent.
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}
