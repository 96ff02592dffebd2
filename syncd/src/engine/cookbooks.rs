//! Copying a cookbook version: the replica's sandbox says which files it lacks; only those are
//! streamed from the primary's file URL to the replica's upload URL (never a whole file, let
//! alone a whole cookbook, in memory, and each file's MD5 checked on the way); then the sandbox
//! is committed and the manifest PUT with `force`, keeping the primary's `frozen?`.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use base64::Engine;
use chef_sync_shared::ObjectPath;
use chef_sync_shared::objects::{CookbookFile, CookbookVersion};
use futures_util::{Stream, StreamExt};
use md5::{Digest, Md5};
use serde_json::{Map, Value, json};

use super::sides::{Applied, Sides};
use crate::chef_client::ChefError;

/// Files transferred at once within one cookbook version.
pub(super) const FILES_IN_FLIGHT: usize = 4;

pub(super) fn manifest(value: Value, rel: &str) -> Result<CookbookVersion, ChefError> {
    let Value::Object(map) = value else {
        return Err(ChefError::Malformed(format!(
            "{rel}: manifest is not an object"
        )));
    };
    CookbookVersion::try_from(map).map_err(|e| ChefError::Malformed(format!("{rel}: {e}")))
}

/// The manifest as it should be written: no server-specific URLs.
pub(super) fn without_urls(mut cb: CookbookVersion) -> CookbookVersion {
    cb.strip_urls();
    cb
}

/// What decides whether the replica already has this version: everything but the file URLs,
/// the file order, and metadata fields servers fill in empty when the upload had none
/// (goiardi adds `long_description: ""`; Chef Infra Server and chef-sync-server always answer
/// `attributes`, `dependencies` and `long_description`): an empty value counts as absent.
pub(super) fn comparable(cb: CookbookVersion) -> CookbookVersion {
    let mut cb = without_urls(cb).to_all_files();
    cb.metadata
        .retain(|_, v| v.as_str() != Some("") && v.as_object().is_none_or(|m| !m.is_empty()));
    if let chef_sync_shared::objects::CookbookFiles::AllFiles(files) = &mut cb.files {
        files.sort_by(|a, b| a.path.cmp(&b.path).then(a.name.cmp(&b.name)));
    }
    cb
}

/// A manifest answer in the form [`comparable`] compares.
pub fn comparable_manifest(value: Value, rel: &str) -> Result<CookbookVersion, ChefError> {
    manifest(value, rel).map(comparable)
}

/// Copies `/cookbooks/NAME/VERSION` from the primary to the replica.
pub async fn copy_version(
    sides: &Sides,
    cookbook: &str,
    version: &str,
    replica_has: Option<bool>,
) -> Result<Applied, ChefError> {
    let rel = format!("/cookbooks/{cookbook}/{version}");
    let Some(source) = sides.primary_get(&rel).await? else {
        return sides.replica_delete(&rel).await;
    };
    let source = manifest(source, &rel)?;
    let wanted = comparable(source.clone());
    if replica_has != Some(false)
        && let Some(current) = sides.replica_get(&rel).await?
        && let Ok(current) = manifest(current, &rel)
        && comparable(current) == wanted
    {
        return Ok(Applied::Unchanged);
    }
    let files: Vec<&CookbookFile> = source.all_file_entries();
    let body = serde_json::to_value(without_urls(source.clone()))
        .map_err(|e| ChefError::Malformed(e.to_string()))?;
    let put = format!("{}?force=true", put_path(cookbook, version, &source));
    put_with_files(sides, &rel, &put, &body, &files).await?;
    Ok(Applied::Written)
}

/// Gives the replica the files of `files` it lacks, then PUTs `body` (a cookbook version's or
/// artifact's manifest) at `put`.
pub(super) async fn put_with_files(
    sides: &Sides,
    rel: &str,
    put: &str,
    body: &Value,
    files: &[&CookbookFile],
) -> Result<(), ChefError> {
    for file in files {
        if !is_md5(&file.checksum) {
            return Err(ChefError::Malformed(format!(
                "{rel}: file {} has checksum '{}'",
                file.path, file.checksum
            )));
        }
    }
    if !files.is_empty() {
        upload_missing(sides, rel, files, FILES_IN_FLIGHT).await?;
    }
    match sides.replica.put(put, body).await {
        // A Chef server releases files nothing references any more (deleting or replacing
        // the last version or artifact that had them): one the sandbox called present may
        // have gone before the manifest arrived, and the server refuses the manifest with a
        // 400 (worded differently across Chef versions, so no wording is relied on). The
        // sandbox is asked again: it has what is missing now uploaded, and a manifest refused
        // for another reason is refused again, as it was.
        Err(ChefError::Rejected { status: 400, .. }) if !files.is_empty() => {
            upload_missing(sides, rel, files, FILES_IN_FLIGHT).await?;
            sides.replica.put(put, body).await?;
        }
        other => {
            other?;
        }
    }
    Ok(())
}

/// Where the manifest is PUT: Chef checks `name` = `COOKBOOK-VERSION` against the URL's
/// version as written, so a version uploaded as `1` or `1.2` (listed as `1.0.0`, `1.2.0`) goes
/// back under the `metadata.version` it was written with, when that names the same version.
pub(super) fn put_path(cookbook: &str, version: &str, source: &CookbookVersion) -> String {
    let listed = ObjectPath::cookbook_version(cookbook, version);
    match source.metadata_version() {
        Some(written)
            if written != version
                && listed.is_ok()
                && ObjectPath::cookbook_version(cookbook, written).ok() == listed.clone().ok() =>
        {
            format!("/cookbooks/{cookbook}/{written}")
        }
        _ => format!("/cookbooks/{cookbook}/{version}"),
    }
}

pub(super) fn is_md5(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Sandbox → transfer what the replica needs → commit.
pub(super) async fn upload_missing(
    sides: &Sides,
    rel: &str,
    files: &[&CookbookFile],
    in_flight: usize,
) -> Result<(), ChefError> {
    let mut by_checksum: Map<String, Value> = Map::new();
    let mut urls = BTreeMap::new();
    for f in files {
        let checksum = f.checksum.to_ascii_lowercase();
        by_checksum.insert(checksum.clone(), Value::Null);
        if let Some(url) = &f.url {
            urls.insert(checksum, url.clone());
        }
    }
    let request = json!({ "checksums": by_checksum });
    let sandbox = sides.replica.post("/sandboxes", &request).await?;
    let id = sandbox
        .get("sandbox_id")
        .and_then(Value::as_str)
        .ok_or_else(|| ChefError::Malformed(format!("{rel}: sandbox answer without sandbox_id")))?
        .to_owned();
    let transfers = wanted(rel, &sandbox, &urls)?;
    let results: Vec<Result<(), ChefError>> = futures_util::stream::iter(transfers)
        .map(|(checksum, from, to)| async move {
            // One file's download and upload retried together, as the replica's operation.
            sides
                .replica
                .retrying(|| transfer(sides, &checksum, &from, &to))
                .await
        })
        .buffer_unordered(in_flight.max(1))
        .collect()
        .await;
    for r in results {
        r?;
    }
    let commit = format!("/sandboxes/{id}");
    // Bookshelf may take a moment to see a file: a 503 commit is retried.
    let completed = json!({ "is_completed": true });
    sides.replica.put(&commit, &completed).await?;
    Ok(())
}

/// The files a sandbox answer asks for: `(checksum, primary's download URL, replica's upload
/// URL)` each.
fn wanted(
    rel: &str,
    sandbox: &Value,
    urls: &BTreeMap<String, String>,
) -> Result<Vec<(String, String, String)>, ChefError> {
    let answers = sandbox.get("checksums").and_then(Value::as_object);
    let mut transfers = Vec::new();
    for (checksum, answer) in answers.into_iter().flatten() {
        if answer.get("needs_upload").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let upload_url = answer
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| ChefError::Malformed(format!("{rel}: no upload URL for {checksum}")))?
            .to_owned();
        let download_url = urls
            .get(&checksum.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| {
                ChefError::Malformed(format!("{rel}: the primary gave no URL for {checksum}"))
            })?;
        transfers.push((checksum.clone(), download_url, upload_url));
    }
    Ok(transfers)
}

/// A byte stream that computes MD5 as it goes and fails if the content does not match the
/// expected checksum, so a corrupt file is never committed on the replica. With a known length
/// the check happens before the last chunk is passed on: an HTTP client stops reading once it
/// has sent Content-Length bytes, and the wrong bytes must not all reach the replica.
struct Verified<S> {
    inner: S,
    hasher: Option<Md5>,
    expected: String,
    length: Option<u64>,
    seen: u64,
    /// Set when the content did not match, so the failed upload is reported as what it is.
    mismatch: Arc<Mutex<Option<String>>>,
}

impl<S> Verified<S> {
    /// Compares the digest once; an error when it differs.
    fn check(&mut self) -> Option<std::io::Error> {
        let digest = hex::encode(self.hasher.take()?.finalize());
        if digest == self.expected {
            return None;
        }
        let why = format!(
            "the primary's file has MD5 {digest}, its manifest says {}",
            self.expected
        );
        if let Ok(mut m) = self.mismatch.lock() {
            *m = Some(why.clone());
        }
        Some(std::io::Error::other(why))
    }
}

impl<S> Stream for Verified<S>
where
    S: Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Unpin,
{
    type Item = Result<bytes::Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(h) = self.hasher.as_mut() {
                    h.update(&chunk);
                }
                self.seen += chunk.len() as u64;
                if self.length == Some(self.seen)
                    && let Some(e) = self.check()
                {
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(std::io::Error::other(e)))),
            Poll::Ready(None) => Poll::Ready(self.check().map(Err)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Streams one file from the primary to the replica.
async fn transfer(sides: &Sides, checksum: &str, from: &str, to: &str) -> Result<(), ChefError> {
    let response = sides.primary.download(from).await?;
    let length = response.content_length();
    let expected = checksum.to_ascii_lowercase();
    let raw = hex::decode(&expected).map_err(|e| ChefError::Malformed(e.to_string()))?;
    let content_md5 = base64::engine::general_purpose::STANDARD.encode(raw);
    let mismatch = Arc::new(Mutex::new(None));
    let stream = Verified {
        inner: Box::pin(response.bytes_stream()),
        hasher: Some(Md5::new()),
        expected,
        length,
        seen: 0,
        mismatch: mismatch.clone(),
    };
    let uploaded = sides
        .replica
        .upload(to, reqwest::Body::wrap_stream(stream), &content_md5, length)
        .await;
    // Wrong bytes stay wrong however often they are fetched: not worth an immediate retry.
    match mismatch.lock().ok().and_then(|mut m| m.take()) {
        Some(why) if uploaded.is_err() => Err(ChefError::Malformed(why)),
        _ => {
            if uploaded.is_ok() {
                sides.progress.add_bytes(length.unwrap_or(0));
            }
            uploaded
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_a_server_fills_in_empty_compares_as_absent() {
        let sent = json!({"name": "a-1.0.0", "cookbook_name": "a",
            "metadata": {"name": "a", "version": "1.0.0", "dependencies": {"b": "> 1.0"}}});
        let mut answered = sent.clone();
        answered["metadata"]["attributes"] = json!({});
        answered["metadata"]["long_description"] = json!("");
        let cmp = |v: &Value| comparable_manifest(v.clone(), "/cookbooks/a/1.0.0").unwrap();
        assert_eq!(cmp(&sent), cmp(&answered));
        let mut changed = answered.clone();
        changed["metadata"]["dependencies"] = json!({});
        assert_ne!(
            cmp(&sent),
            cmp(&changed),
            "dependencies removed is a change"
        );
    }

    #[test]
    fn a_short_version_goes_back_under_the_version_it_was_written_with() {
        let source = |written: &str| {
            manifest(
                json!({"name": format!("apt-{written}"), "cookbook_name": "apt",
                       "metadata": {"version": written}}),
                "/cookbooks/apt/1.0.0",
            )
            .unwrap()
        };
        assert_eq!(put_path("apt", "1.0.0", &source("1")), "/cookbooks/apt/1");
        assert_eq!(
            put_path("apt", "1.2.0", &source("1.2")),
            "/cookbooks/apt/1.2"
        );
        assert_eq!(
            put_path("apt", "1.0.0", &source("1.0.0")),
            "/cookbooks/apt/1.0.0"
        );
        // A metadata version naming another version (or no version) is not followed.
        assert_eq!(
            put_path("apt", "1.0.0", &source("2")),
            "/cookbooks/apt/1.0.0"
        );
        assert_eq!(
            put_path("apt", "1.0.0", &source("../x")),
            "/cookbooks/apt/1.0.0"
        );
    }
}
