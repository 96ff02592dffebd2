//! Receiving a file upload: streamed to a staging file while its MD5 and SHA-256 are computed,
//! so a file is never held in memory and nothing reaches the store before its content is
//! verified. The MD5 is what Chef names the file by and checks; the SHA-256 is what the store
//! keys it by, because an MD5 match says nothing about the bytes.

use std::path::{Path, PathBuf};

use axum::body::Body;
use futures_util::StreamExt;
use md5::{Digest, Md5};
use sha2::Sha256;
use tempfile::TempPath;
use tokio::io::AsyncWriteExt;

/// Why an upload was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Larger than the configured maximum.
    #[error("file larger than {0} bytes")]
    TooLarge(u64),
    /// The bytes received do not hash to the expected checksum.
    #[error("uploaded content has MD5 {actual}, expected {expected}")]
    Mismatch {
        /// The URL's checksum.
        expected: String,
        /// What arrived.
        actual: String,
    },
    /// The client went away or the staging disk failed.
    #[error("upload failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A fully received and verified upload in the staging directory; the file is removed when
/// this is dropped unless the store took it.
#[derive(Debug)]
pub struct Upload {
    /// Lowercase MD5 hex of the content.
    pub checksum: String,
    /// Lowercase SHA-256 hex of the content: the key it is stored under.
    pub sha256: String,
    /// Its size.
    pub size: u64,
    pub(super) file: TempPath,
}

impl Upload {
    /// The staged file.
    pub fn path(&self) -> &Path {
        &self.file
    }
}

/// Streams `body` into `staging` (created if missing), checking size and MD5. On any failure
/// the staging file is removed (it is a `TempPath` until the store takes it).
pub async fn receive(
    body: Body,
    staging: PathBuf,
    expected: &str,
    max_size: u64,
) -> Result<Upload, UploadError> {
    tokio::fs::create_dir_all(&staging).await?;
    let (std_file, path) = tokio::task::spawn_blocking(move || {
        tempfile::NamedTempFile::new_in(staging).map(|f| f.into_parts())
    })
    .await
    .map_err(std::io::Error::other)??;
    let mut file = tokio::fs::File::from_std(std_file);
    let mut md5 = Md5::new();
    let mut sha256 = Sha256::new();
    let mut size: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(std::io::Error::other)?;
        size += chunk.len() as u64;
        if size > max_size {
            return Err(UploadError::TooLarge(max_size));
        }
        md5.update(&chunk);
        sha256.update(&chunk);
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    file.sync_all().await?;
    let actual = hex::encode(md5.finalize());
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(UploadError::Mismatch {
            expected: expected.to_ascii_lowercase(),
            actual,
        });
    }
    Ok(Upload {
        checksum: actual,
        sha256: hex::encode(sha256.finalize()),
        size,
        file: path,
    })
}
