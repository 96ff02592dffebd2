//! Blobs as files under one directory, two-level fan-out by the checksum's first two digits.

use std::path::PathBuf;

use axum::body::Body;
use tokio_util::io::ReaderStream;

use super::{BlobError, Upload};

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

    fn path(&self, checksum: &str) -> PathBuf {
        let checksum = checksum.to_ascii_lowercase();
        self.root.join(&checksum[..2]).join(checksum)
    }

    pub(super) async fn contains(&self, checksum: &str) -> Result<bool, BlobError> {
        Ok(tokio::fs::try_exists(self.path(checksum)).await?)
    }

    /// Renames the fsynced staging file into place and fsyncs the directory, so a stored blob
    /// survives a crash whole or not at all.
    pub(super) async fn insert(&self, upload: Upload) -> Result<(), BlobError> {
        let target = self.path(&upload.checksum);
        if tokio::fs::try_exists(&target).await? {
            return Ok(());
        }
        let Some(dir) = target.parent().map(PathBuf::from) else {
            return Ok(());
        };
        tokio::fs::create_dir_all(&dir).await?;
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            upload.file.persist(&target).map_err(|e| e.error)?;
            std::fs::File::open(&dir)?.sync_all()
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(())
    }

    pub(super) async fn open(&self, checksum: &str) -> Result<Option<(Body, u64)>, BlobError> {
        match tokio::fs::File::open(self.path(checksum)).await {
            Ok(file) => {
                let len = file.metadata().await?.len();
                Ok(Some((Body::from_stream(ReaderStream::new(file)), len)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
