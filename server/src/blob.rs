//! Content-addressed storage of cookbook files, keyed by MD5 hex. The bytes are shared by all
//! orgs; which org may see which checksum is recorded in the database (`org_checksums`).
//!
//! Two backends: files under DATA_DIR (the embedded default; written to a temp file, fsynced,
//! then renamed into place) and the database itself (so several server processes over one
//! PostgreSQL see the same files, as Chef's bookshelf does with its SQL backend).

mod filesystem;
mod upload;

pub use upload::{Upload, UploadError, receive};

use std::path::PathBuf;

use axum::body::Body;

use crate::config::{BlobStoreKind, Config};
use crate::store::{Store, StoreError};

/// Blob storage failures.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// File system trouble.
    #[error("file store: {0}")]
    Io(#[from] std::io::Error),
    /// Database trouble.
    #[error("file store: {0}")]
    Store(#[from] StoreError),
}

/// Where file contents live.
#[derive(Debug, Clone)]
pub enum BlobStore {
    /// `DATA_DIR/blobs/ab/abcdef…`.
    Filesystem(filesystem::FsBlobs),
    /// The `blobs` table.
    Database(Store),
}

impl BlobStore {
    /// The backend the configuration asks for.
    pub fn from_config(config: &Config, store: &Store) -> BlobStore {
        match config.blob_store {
            BlobStoreKind::Filesystem => {
                BlobStore::Filesystem(filesystem::FsBlobs::new(config.data_dir.join("blobs")))
            }
            BlobStoreKind::Database => BlobStore::Database(store.clone()),
        }
    }

    /// Where uploads are staged before they are verified and stored.
    pub fn staging_dir(config: &Config) -> PathBuf {
        config.data_dir.join("tmp")
    }

    /// Whether the content of `checksum` is stored.
    pub async fn contains(&self, checksum: &str) -> Result<bool, BlobError> {
        if !is_checksum(checksum) {
            return Ok(false);
        }
        match self {
            BlobStore::Filesystem(fs) => fs.contains(checksum).await,
            BlobStore::Database(store) => Ok(store.blob_exists(checksum).await?),
        }
    }

    /// Stores a verified upload under its checksum (a no-op if the content is already there).
    pub async fn insert(&self, upload: Upload) -> Result<(), BlobError> {
        match self {
            BlobStore::Filesystem(fs) => fs.insert(upload).await,
            BlobStore::Database(store) => {
                if !store.blob_exists(&upload.checksum).await? {
                    let bytes = tokio::fs::read(upload.path()).await?;
                    store.put_blob(&upload.checksum, &bytes).await?;
                }
                Ok(())
            }
        }
    }

    /// The content of `checksum` as a streaming body, if stored.
    pub async fn open(&self, checksum: &str) -> Result<Option<(Body, u64)>, BlobError> {
        if !is_checksum(checksum) {
            return Ok(None);
        }
        match self {
            BlobStore::Filesystem(fs) => fs.open(checksum).await,
            BlobStore::Database(store) => Ok(store.blob(checksum).await?.map(|bytes| {
                let len = bytes.len() as u64;
                (Body::from(bytes), len)
            })),
        }
    }
}

/// True for 32 hex digits (Chef accepts either case; the store keys on lowercase).
pub fn is_checksum(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}
