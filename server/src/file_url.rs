//! Pre-signed, expiring file URLs (bookshelf's model): the server hands out
//! `PATH?expires=T&signature=S` and later accepts it without a Chef signature, so chef-client
//! can download cookbook files and knife can upload them. `S` is an HMAC-SHA256 over the method,
//! the path and the expiry, keyed by a secret shared through the database, so any server
//! process over the same database accepts URLs made by any other.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{ApiError, ApiResult};

/// Signs and checks file URLs.
#[derive(Clone)]
pub struct UrlSigner {
    keyed: Hmac<Sha256>,
    ttl: Duration,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("UrlSigner").field("ttl", &self.ttl).finish()
    }
}

impl UrlSigner {
    /// A signer with `key` whose URLs live for `ttl`.
    pub fn new(key: &[u8], ttl: Duration) -> Result<Self, hmac::digest::InvalidLength> {
        Ok(UrlSigner {
            keyed: Hmac::<Sha256>::new_from_slice(key)?,
            ttl,
        })
    }

    fn mac(&self, method: &str, path: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(method.as_bytes());
        mac.update(b"\n");
        mac.update(path.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// `path?expires=…&signature=…`, valid for `method` until now + ttl.
    pub fn sign(&self, method: &str, path: &str, now: i64) -> String {
        let expires = now + i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let signature = hex::encode(self.mac(method, path, expires).finalize().into_bytes());
        format!("{path}?expires={expires}&signature={signature}")
    }

    /// Accepts the URL if the signature matches and it has not expired (403 otherwise, as
    /// bookshelf answers).
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        expires: Option<&str>,
        signature: Option<&str>,
        now: i64,
    ) -> ApiResult<()> {
        let denied = |why: &str| ApiError::Forbidden(format!("file URL refused: {why}"));
        let (Some(expires), Some(signature)) = (expires, signature) else {
            return Err(denied("expires and signature are required"));
        };
        let expires: i64 = expires.parse().map_err(|_| denied("bad expires"))?;
        let signature = hex::decode(signature).map_err(|_| denied("bad signature"))?;
        self.mac(method, path, expires)
            .verify_slice(&signature)
            .map_err(|_| denied("bad signature"))?;
        if now >= expires {
            return Err(denied("the URL has expired"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (String, String, String) {
        let (path, query) = url.split_once('?').unwrap();
        let mut expires = String::new();
        let mut signature = String::new();
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap();
            match k {
                "expires" => expires = v.into(),
                "signature" => signature = v.into(),
                _ => {}
            }
        }
        (path.into(), expires, signature)
    }

    #[test]
    fn signed_urls_verify_until_they_expire() {
        let signer = UrlSigner::new(b"k", Duration::from_secs(900)).unwrap();
        let url = signer.sign("GET", "/file_store/a", 1000);
        let (path, expires, sig) = parts(&url);
        assert_eq!(expires, "1900");
        assert!(
            signer
                .verify("GET", &path, Some(&expires), Some(&sig), 1899)
                .is_ok()
        );
        assert!(
            signer
                .verify("GET", &path, Some(&expires), Some(&sig), 1900)
                .is_err()
        );
        assert!(
            signer
                .verify("PUT", &path, Some(&expires), Some(&sig), 1000)
                .is_err()
        );
        assert!(
            signer
                .verify("GET", "/file_store/b", Some(&expires), Some(&sig), 1000)
                .is_err()
        );
        assert!(
            signer
                .verify("GET", &path, Some("99999"), Some(&sig), 1000)
                .is_err()
        );
        let other = UrlSigner::new(b"other", Duration::from_secs(900)).unwrap();
        assert!(
            other
                .verify("GET", &path, Some(&expires), Some(&sig), 1000)
                .is_err()
        );
        assert!(signer.verify("GET", &path, None, Some(&sig), 1000).is_err());
    }
}
