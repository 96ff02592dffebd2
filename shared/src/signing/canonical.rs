//! The canonical request string that a Chef signature covers, and its ingredients.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};
use sha2::Sha256;

use super::{DigestAlgorithm, SigningVersion};

/// The path as both Chef signers and verifiers hash it: any query string removed, every run of
/// `/` collapsed to one, and a trailing `/` removed unless the path is just `/`.
pub fn canonical_path(path: &str) -> String {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    if out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

fn digest_b64(algorithm: DigestAlgorithm, data: &[u8]) -> String {
    match algorithm {
        DigestAlgorithm::Sha1 => STANDARD.encode(Sha1::digest(data)),
        DigestAlgorithm::Sha256 => STANDARD.encode(Sha256::digest(data)),
    }
}

/// `X-Ops-Content-Hash` for a body: base64 of its SHA-1 (1.0–1.2) or SHA-256 (1.3).
pub fn content_hash(version: SigningVersion, body: &[u8]) -> String {
    digest_b64(version.digest(), body)
}

/// Computes a content hash incrementally, for bodies streamed rather than held in memory.
#[derive(Debug, Clone)]
pub enum ContentHasher {
    /// Versions 1.0–1.2.
    Sha1(Sha1),
    /// Version 1.3.
    Sha256(Sha256),
}

impl ContentHasher {
    /// A hasher for the digest `version` uses.
    pub fn new(version: SigningVersion) -> Self {
        match version.digest() {
            DigestAlgorithm::Sha1 => ContentHasher::Sha1(Sha1::new()),
            DigestAlgorithm::Sha256 => ContentHasher::Sha256(Sha256::new()),
        }
    }

    /// Feeds more body bytes.
    pub fn update(&mut self, chunk: &[u8]) {
        match self {
            ContentHasher::Sha1(h) => h.update(chunk),
            ContentHasher::Sha256(h) => h.update(chunk),
        }
    }

    /// The base64 content hash of everything fed so far.
    pub fn finish(self) -> String {
        match self {
            ContentHasher::Sha1(h) => STANDARD.encode(h.finalize()),
            ContentHasher::Sha256(h) => STANDARD.encode(h.finalize()),
        }
    }
}

/// Everything the canonical request is built from.
#[derive(Debug, Clone, Copy)]
pub struct CanonicalRequest<'a> {
    /// Protocol version; decides the layout.
    pub version: SigningVersion,
    /// HTTP method in any case; upper-cased in the string.
    pub method: &'a str,
    /// Request path (a query string, if present, is ignored).
    pub path: &'a str,
    /// The `X-Ops-Content-Hash` value.
    pub content_hash: &'a str,
    /// The `X-Ops-Timestamp` value exactly as sent.
    pub timestamp: &'a str,
    /// The actor name from `X-Ops-Userid`.
    pub user_id: &'a str,
    /// The `X-Ops-Server-API-Version` value (only signed by 1.3).
    pub server_api_version: &'a str,
}

impl CanonicalRequest<'_> {
    /// The newline-joined canonical string, without a trailing newline.
    pub fn to_text(&self) -> String {
        let method = self.method.to_ascii_uppercase();
        let path = canonical_path(self.path);
        let digest = self.version.digest();
        match self.version {
            SigningVersion::V1_0 | SigningVersion::V1_1 | SigningVersion::V1_2 => {
                let user = if self.version == SigningVersion::V1_0 {
                    self.user_id.to_owned()
                } else {
                    digest_b64(digest, self.user_id.as_bytes())
                };
                format!(
                    "Method:{method}\nHashed Path:{}\nX-Ops-Content-Hash:{}\nX-Ops-Timestamp:{}\nX-Ops-UserId:{user}",
                    digest_b64(digest, path.as_bytes()),
                    self.content_hash,
                    self.timestamp,
                )
            }
            SigningVersion::V1_3 => format!(
                "Method:{method}\nPath:{path}\nX-Ops-Content-Hash:{}\nX-Ops-Sign:version=1.3\nX-Ops-Timestamp:{}\nX-Ops-UserId:{}\nX-Ops-Server-API-Version:{}",
                self.content_hash, self.timestamp, self.user_id, self.server_api_version,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_path_collapses_and_trims() {
        assert_eq!(
            canonical_path("//organizations//demo/roles/web/"),
            "/organizations/demo/roles/web"
        );
        assert_eq!(canonical_path("/"), "/");
        assert_eq!(canonical_path("///"), "/");
        assert_eq!(canonical_path(""), "/");
        assert_eq!(canonical_path("/roles?num=1"), "/roles");
        assert_eq!(canonical_path("/a/b"), "/a/b");
    }

    #[test]
    fn empty_body_hashes_match_chef() {
        assert_eq!(
            content_hash(SigningVersion::V1_0, b""),
            "2jmj7l5rSw0yVb/vlWAYkK/YBwk="
        );
        assert_eq!(
            content_hash(SigningVersion::V1_3, b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn published_intermediate_values() {
        // chef-protocol.md §1.6: the mixlib-authentication spec inputs.
        assert_eq!(
            content_hash(SigningVersion::V1_1, b"Spec Body"),
            "DFteJZPVv6WKdQmMqZUQUumUyRs="
        );
        assert_eq!(
            content_hash(SigningVersion::V1_3, b"Spec Body"),
            "hDlKNZhIhgso3Fs0S0pZwJ0xyBWtR1RBaeHs1DrzOho="
        );
        let req = CanonicalRequest {
            version: SigningVersion::V1_1,
            method: "post",
            path: "/organizations/clownco",
            content_hash: "DFteJZPVv6WKdQmMqZUQUumUyRs=",
            timestamp: "2009-01-01T12:00:00Z",
            user_id: "spec-user",
            server_api_version: "1",
        };
        let text = req.to_text();
        assert!(
            text.contains("Hashed Path:YtBWDn1blGGuFIuKksdwXzHU9oE="),
            "{text}"
        );
        assert!(
            text.ends_with("X-Ops-UserId:EAF7Wv/hbAudWV5ZkwKz40Z/lO0="),
            "{text}"
        );
        assert_eq!(text.len(), 179);
        let v10 = CanonicalRequest {
            version: SigningVersion::V1_0,
            ..req
        }
        .to_text();
        assert_eq!(v10.len(), 160);
        let v13 = CanonicalRequest {
            version: SigningVersion::V1_3,
            content_hash: "hDlKNZhIhgso3Fs0S0pZwJ0xyBWtR1RBaeHs1DrzOho=",
            ..req
        }
        .to_text();
        assert_eq!(v13.len(), 213);
    }

    #[test]
    fn streaming_hash_equals_one_shot() {
        for v in SigningVersion::ALL {
            let mut h = ContentHasher::new(v);
            h.update(b"Spec ");
            h.update(b"Body");
            assert_eq!(h.finish(), content_hash(v, b"Spec Body"));
        }
    }
}
