//! Checking the `X-Ops-*` headers of an incoming request.

use chrono::{DateTime, Utc};
use rsa::Pkcs1v15Sign;
use sha1::{Digest, Sha1};
use sha2::Sha256;

use super::canonical::CanonicalRequest;
use super::header_codec::{HeaderSource, join_authorization, parse_sign_header, parse_timestamp};
use super::sign::Body;
use super::{AuthError, SigningVersion};
use crate::keys::PublicKey;

/// Chef's default allowed clock skew (`auth_skew`): 900 seconds.
pub const DEFAULT_SKEW: std::time::Duration = std::time::Duration::from_secs(900);

/// The authentication headers of a request, parsed but not yet trusted.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    user_id: String,
    version: SigningVersion,
    timestamp_raw: String,
    timestamp: DateTime<Utc>,
    content_hash: String,
    server_api_version: String,
    /// `None` when the authorization headers are absent or not base64; verification then fails
    /// with the same error as a wrong signature.
    signature: Option<Vec<u8>>,
}

impl SignedRequest {
    /// Parses the authentication headers. Fails on missing required headers (all of them are
    /// named), an unsupported `X-Ops-Sign`, or an unparseable timestamp.
    pub fn from_headers<H: HeaderSource + ?Sized>(headers: &H) -> Result<Self, AuthError> {
        const REQUIRED: [&str; 4] = [
            "X-Ops-UserId",
            "X-Ops-Timestamp",
            "X-Ops-Sign",
            "X-Ops-Content-Hash",
        ];
        let missing: Vec<&'static str> = REQUIRED
            .into_iter()
            .filter(|h| headers.header(h).is_none_or(|v| v.trim().is_empty()))
            .collect();
        if !missing.is_empty() {
            return Err(AuthError::MissingHeaders(missing));
        }
        let get = |name: &str| headers.header(name).unwrap_or_default().trim().to_owned();
        let sign = parse_sign_header(&get("X-Ops-Sign"))?;
        let timestamp_raw = get("X-Ops-Timestamp");
        let timestamp = parse_timestamp(&timestamp_raw)?;
        // mixlib signs "0" when the header is absent; use the raw value otherwise, as it does.
        let server_api_version = headers
            .header("X-Ops-Server-API-Version")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "0".to_owned());
        Ok(SignedRequest {
            user_id: get("X-Ops-UserId"),
            version: sign.version,
            timestamp_raw,
            timestamp,
            content_hash: get("X-Ops-Content-Hash"),
            server_api_version,
            signature: join_authorization(headers),
        })
    }

    /// The actor the request claims to come from.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The protocol version the request was signed with.
    pub fn version(&self) -> SigningVersion {
        self.version
    }

    /// The signing time the request claims.
    pub fn timestamp(&self) -> DateTime<Utc> {
        self.timestamp
    }

    /// Accepts the request only if `|now - timestamp| < skew` (strictly).
    pub fn check_clock(
        &self,
        now: DateTime<Utc>,
        skew: std::time::Duration,
    ) -> Result<(), AuthError> {
        let delta = (now - self.timestamp).abs();
        let within = delta.to_std().map(|d| d < skew).unwrap_or(false);
        if within {
            Ok(())
        } else {
            Err(AuthError::ClockSkew {
                user_id: self.user_id.clone(),
            })
        }
    }

    /// Verifies the body hash and the signature against each of `keys` in turn (an actor may
    /// have several valid keys during rotation); succeeds if any key verifies.
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        body: Body<'_>,
        keys: &[PublicKey],
    ) -> Result<(), AuthError> {
        let invalid = || AuthError::InvalidSignature {
            user_id: self.user_id.clone(),
        };
        let actual_hash = body.content_hash(self.version);
        if !constant_time_eq(actual_hash.as_bytes(), self.content_hash.as_bytes()) {
            return Err(invalid());
        }
        let signature = self.signature.as_deref().ok_or_else(invalid)?;
        let text = CanonicalRequest {
            version: self.version,
            method,
            path,
            content_hash: &self.content_hash,
            timestamp: &self.timestamp_raw,
            user_id: &self.user_id,
            server_api_version: &self.server_api_version,
        }
        .to_text();
        // A PKCS#1 v1.5 signature is exactly as long as its key's modulus, so keys of another
        // size cannot have made it and are not tried.
        if keys
            .iter()
            .filter(|key| key.size() == signature.len())
            .any(|key| rsa_verify(key, self.version, text.as_bytes(), signature))
        {
            Ok(())
        } else {
            Err(invalid())
        }
    }
}

fn rsa_verify(key: &PublicKey, version: SigningVersion, text: &[u8], signature: &[u8]) -> bool {
    use ring::signature::{
        RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey,
    };
    // ring verifies the standard signatures several times faster; rsa does the raw 1.0/1.1
    // operation and keys under 2048 bits.
    if let Some(der) = key.ring_der() {
        match version {
            SigningVersion::V1_2 => {
                return UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, der)
                    .verify(text, signature)
                    .is_ok();
            }
            SigningVersion::V1_3 => {
                return UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der)
                    .verify(text, signature)
                    .is_ok();
            }
            SigningVersion::V1_0 | SigningVersion::V1_1 => {}
        }
    }
    let rsa = key.rsa();
    match version {
        SigningVersion::V1_0 | SigningVersion::V1_1 => rsa
            .verify(Pkcs1v15Sign::new_unprefixed(), text, signature)
            .is_ok(),
        SigningVersion::V1_2 => rsa
            .verify(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(text), signature)
            .is_ok(),
        SigningVersion::V1_3 => rsa
            .verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(text),
                signature,
            )
            .is_ok(),
    }
}

/// Compares without an early exit, so response timing does not reveal how much of a hash (or a
/// token) matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;
    use crate::signing::{RequestToSign, sign_request};

    fn key() -> PrivateKey {
        PrivateKey::from_pem(include_str!("../../tests/fixtures/fixed-key.pem")).unwrap()
    }

    fn signed(version: SigningVersion, now: DateTime<Utc>) -> Vec<(String, String)> {
        let req = RequestToSign {
            version,
            method: "PUT",
            path: "/organizations/demo/roles/web",
            body: Body::Bytes(b"{}"),
            user_id: "replicator",
            timestamp: now,
            server_api_version: "1",
        };
        sign_request(&key(), &req).unwrap().0
    }

    #[test]
    fn round_trip_every_version() {
        let now = Utc::now();
        let public = key().public_key();
        for v in SigningVersion::ALL {
            let h = signed(v, now);
            let req = SignedRequest::from_headers(&h).unwrap();
            assert_eq!(req.version(), v);
            assert_eq!(req.user_id(), "replicator");
            req.check_clock(now, DEFAULT_SKEW).unwrap();
            req.verify(
                "PUT",
                "/organizations/demo/roles/web/",
                Body::Bytes(b"{}"),
                std::slice::from_ref(&public),
            )
            .unwrap();
        }
    }

    #[test]
    fn any_of_several_keys_verifies() {
        let now = Utc::now();
        let other = PrivateKey::from_pem(include_str!("../../tests/fixtures/other-key.pem"))
            .unwrap()
            .public_key();
        let h = signed(SigningVersion::V1_3, now);
        let req = SignedRequest::from_headers(&h).unwrap();
        let path = "/organizations/demo/roles/web";
        assert!(
            req.verify(
                "PUT",
                path,
                Body::Bytes(b"{}"),
                std::slice::from_ref(&other)
            )
            .is_err()
        );
        assert!(req.verify("PUT", path, Body::Bytes(b"{}"), &[]).is_err());
        req.verify(
            "PUT",
            path,
            Body::Bytes(b"{}"),
            &[other, key().public_key()],
        )
        .unwrap();
    }

    #[test]
    fn skew_window_is_strict() {
        let now = Utc::now();
        let req = SignedRequest::from_headers(&signed(SigningVersion::V1_3, now)).unwrap();
        let ts = req.timestamp();
        let skew = std::time::Duration::from_secs(900);
        req.check_clock(ts + chrono::Duration::seconds(899), skew)
            .unwrap();
        req.check_clock(ts - chrono::Duration::seconds(899), skew)
            .unwrap();
        for delta in [900, -900, 3600] {
            assert_eq!(
                req.check_clock(ts + chrono::Duration::seconds(delta), skew),
                Err(AuthError::ClockSkew {
                    user_id: "replicator".into()
                })
            );
        }
    }

    #[test]
    fn names_every_missing_header() {
        let err = SignedRequest::from_headers(&Vec::<(String, String)>::new()).unwrap_err();
        assert_eq!(
            err,
            AuthError::MissingHeaders(vec![
                "X-Ops-UserId",
                "X-Ops-Timestamp",
                "X-Ops-Sign",
                "X-Ops-Content-Hash"
            ])
        );
        assert_eq!(err.http_status(), 400);
        assert_eq!(
            err.to_string(),
            "missing required authentication header(s) X-Ops-UserId, X-Ops-Timestamp, X-Ops-Sign, X-Ops-Content-Hash"
        );
    }

    #[test]
    fn bad_timestamp_and_protocol_are_distinct() {
        let now = Utc::now();
        let mut h = signed(SigningVersion::V1_3, now);
        for (k, v) in h.iter_mut() {
            if k == "X-Ops-Timestamp" {
                *v = "not a time".into();
            }
        }
        assert_eq!(
            SignedRequest::from_headers(&h).unwrap_err(),
            AuthError::BadTimestamp
        );
        let mut h = signed(SigningVersion::V1_3, now);
        for (k, v) in h.iter_mut() {
            if k == "X-Ops-Sign" {
                *v = "version=9.9".into();
            }
        }
        let err = SignedRequest::from_headers(&h).unwrap_err();
        assert!(matches!(err, AuthError::UnsupportedVersion(_)));
        assert_eq!(err.http_status(), 400);
    }

    #[test]
    fn tampering_gives_one_error_kind() {
        let now = Utc::now();
        let public = [key().public_key()];
        let path = "/organizations/demo/roles/web";
        let invalid = AuthError::InvalidSignature {
            user_id: "replicator".into(),
        };
        let h = signed(SigningVersion::V1_1, now);
        let req = SignedRequest::from_headers(&h).unwrap();
        assert_eq!(
            req.verify("PUT", path, Body::Bytes(b"{ }"), &public),
            Err(invalid.clone())
        );
        assert_eq!(
            req.verify("GET", path, Body::Bytes(b"{}"), &public),
            Err(invalid.clone())
        );
        assert_eq!(
            req.verify("PUT", "/x", Body::Bytes(b"{}"), &public),
            Err(invalid.clone())
        );
        // Garbage and missing signatures are indistinguishable from wrong ones.
        let mut garbage = h.clone();
        garbage.retain(|(k, _)| !k.starts_with("X-Ops-Authorization"));
        garbage.push(("X-Ops-Authorization-1".into(), "not base64!".into()));
        let req = SignedRequest::from_headers(&garbage).unwrap();
        assert_eq!(
            req.verify("PUT", path, Body::Bytes(b"{}"), &public),
            Err(invalid.clone())
        );
        garbage.retain(|(k, _)| !k.starts_with("X-Ops-Authorization"));
        let req = SignedRequest::from_headers(&garbage).unwrap();
        assert_eq!(
            req.verify("PUT", path, Body::Bytes(b"{}"), &public),
            Err(invalid.clone())
        );
        assert_eq!(invalid.http_status(), 401);
    }
}
