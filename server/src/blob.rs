//! Content-addressed storage of cookbook files, keyed by SHA-256 hex. Chef names files by MD5,
//! which anyone can collide, so an MD5 never leads to bytes by itself: each org's row in
//! `org_checksums` names the SHA-256 of what that org uploaded, and identical bytes are still
//! stored once. Blobs stored before the upgrade stay under their MD5 (32 hex digits) and are
//! read through rows whose `sha256` is NULL; the two key lengths never meet.
//!
//! Content nothing references any more (uploads into sandboxes never committed) is removed by
//! [`sweep`].
//!
//! Two backends: files under DATA_DIR (the embedded default; written to a temp file, fsynced,
//! then renamed into place) and the database itself (so several server processes over one
//! PostgreSQL see the same files, as Chef's bookshelf does with its SQL backend).

mod filesystem;
mod sweep;
mod upload;

pub use sweep::{Swept, sweep, sweep_forever, sweep_period};
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
    /// `DATA_DIR/blobs/ab/abcdef…` (64 hex digits; 32 for blobs from before the upgrade).
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

    /// Whether the blob `key` (a SHA-256, or a legacy MD5) is stored.
    pub async fn contains(&self, key: &str) -> Result<bool, BlobError> {
        if !is_blob_key(key) {
            return Ok(false);
        }
        match self {
            BlobStore::Filesystem(fs) => fs.contains(key).await,
            BlobStore::Database(store) => Ok(store.blob_exists(key).await?),
        }
    }

    /// Stores a verified upload under its SHA-256. When that content is already stored it is
    /// kept and only counts as stored now, so the sweep does not remove it under this upload.
    pub async fn insert(&self, upload: Upload) -> Result<(), BlobError> {
        match self {
            BlobStore::Filesystem(fs) => fs.insert(upload).await,
            BlobStore::Database(store) => {
                if !store.touch_blob(&upload.sha256).await? {
                    let bytes = tokio::fs::read(upload.path()).await?;
                    store.put_blob(&upload.sha256, &bytes).await?;
                }
                Ok(())
            }
        }
    }

    /// The content of blob `key` as a streaming body, if stored.
    pub async fn open(&self, key: &str) -> Result<Option<(Body, u64)>, BlobError> {
        if !is_blob_key(key) {
            return Ok(None);
        }
        match self {
            BlobStore::Filesystem(fs) => fs.open(key).await,
            BlobStore::Database(store) => Ok(store.blob(key).await?.map(|bytes| {
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

/// True for a SHA-256 key: 64 lowercase hex digits.
fn is_sha256_key(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// True for a key a blob can be stored under: a SHA-256, or the MD5 of a legacy blob.
fn is_blob_key(text: &str) -> bool {
    is_sha256_key(text) || is_checksum(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_keys_are_sha256_or_legacy_md5() {
        assert!(is_blob_key("d41d8cd98f00b204e9800998ecf8427e"));
        assert!(is_blob_key(
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ));
        assert!(!is_sha256_key("d41d8cd98f00b204e9800998ecf8427e"));
        assert!(!is_sha256_key(
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
        ));
        for bad in [
            "",
            "../../etc/passwd",
            "d41d8cd98f00b204e9800998ecf8427",
            "zz",
        ] {
            assert!(!is_blob_key(bad), "{bad}");
        }
    }
}
