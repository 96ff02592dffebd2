//! Producing the `X-Ops-*` headers for an outgoing request.

use chrono::{DateTime, Utc};
use rsa::Pkcs1v15Sign;
use sha1::{Digest, Sha1};
use sha2::Sha256;

use super::canonical::{CanonicalRequest, content_hash};
use super::header_codec::{HeaderSource, SignHeader, format_timestamp, split_authorization};
use super::{SignError, SigningVersion};
use crate::keys::{KeyError, PrivateKey};

/// Bytes of PKCS#1 v1.5 padding overhead: a message may be at most `k - 11` bytes long.
const PKCS1_OVERHEAD: usize = 11;

/// The request body, or its content hash when the body is streamed and hashed by the caller
/// (with a [`super::ContentHasher`] of the same version).
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// The exact bytes that will be sent.
    Bytes(&'a [u8]),
    /// A precomputed `X-Ops-Content-Hash` value.
    Hashed(&'a str),
}

impl Body<'_> {
    pub(crate) fn content_hash(&self, version: SigningVersion) -> String {
        match self {
            Body::Bytes(b) => content_hash(version, b),
            Body::Hashed(h) => (*h).to_owned(),
        }
    }
}

/// What is needed to sign one request.
#[derive(Debug, Clone, Copy)]
pub struct RequestToSign<'a> {
    /// Protocol version to sign with.
    pub version: SigningVersion,
    /// HTTP method.
    pub method: &'a str,
    /// Request path; a query string is allowed and not signed.
    pub path: &'a str,
    /// The body or its hash.
    pub body: Body<'a>,
    /// The actor (user or client name).
    pub user_id: &'a str,
    /// Signing time; sent with whole-second precision.
    pub timestamp: DateTime<Utc>,
    /// `X-Ops-Server-API-Version` to send (always sent: goiardi rejects 1.3 without it).
    pub server_api_version: &'a str,
}

/// The headers to attach to a signed request, in the order mixlib produces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders(pub Vec<(String, String)>);

impl SignedHeaders {
    /// Iterates over `(name, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl HeaderSource for SignedHeaders {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.header(name)
    }
}

fn check_header_value(name: &'static str, value: &str) -> Result<(), SignError> {
    if value.is_empty() || value.chars().any(|c| c.is_control()) {
        return Err(SignError::InvalidHeaderValue(name));
    }
    Ok(())
}

/// Signs a request and returns its authentication headers.
pub fn sign_request(key: &PrivateKey, req: &RequestToSign<'_>) -> Result<SignedHeaders, SignError> {
    check_header_value("user id", req.user_id)?;
    check_header_value("method", req.method)?;
    check_header_value("server API version", req.server_api_version)?;
    let version = req.version;
    let timestamp = format_timestamp(req.timestamp);
    let hash = req.body.content_hash(version);
    check_header_value("content hash", &hash)?;
    let text = CanonicalRequest {
        version,
        method: req.method,
        path: req.path,
        content_hash: &hash,
        timestamp: &timestamp,
        user_id: req.user_id,
        server_api_version: req.server_api_version,
    }
    .to_text();
    let signature = rsa_sign(key, version, text.as_bytes())?;

    let sign = SignHeader {
        version,
        algorithm: version.digest(),
    };
    let mut headers = vec![
        ("X-Ops-Sign".to_owned(), sign.to_header_value()),
        ("X-Ops-Userid".to_owned(), req.user_id.to_owned()),
        ("X-Ops-Timestamp".to_owned(), timestamp),
        ("X-Ops-Content-Hash".to_owned(), hash),
    ];
    for (i, line) in split_authorization(&signature).into_iter().enumerate() {
        headers.push((format!("X-Ops-Authorization-{}", i + 1), line));
    }
    headers.push((
        "X-Ops-Server-API-Version".to_owned(),
        req.server_api_version.to_owned(),
    ));
    Ok(SignedHeaders(headers))
}

fn rsa_sign(key: &PrivateKey, version: SigningVersion, text: &[u8]) -> Result<Vec<u8>, SignError> {
    let mut rng = rand::thread_rng();
    // Blinded signing (sign_with_rng) so the private operation's timing does not depend on the key.
    let result = match version {
        SigningVersion::V1_0 | SigningVersion::V1_1 => {
            let capacity = key.size().saturating_sub(PKCS1_OVERHEAD);
            if text.len() > capacity {
                return Err(KeyError::TooSmall {
                    bits: key.bits(),
                    version: version.as_str(),
                    needed: text.len(),
                    capacity,
                }
                .into());
            }
            key.rsa()
                .sign_with_rng(&mut rng, Pkcs1v15Sign::new_unprefixed(), text)
        }
        SigningVersion::V1_2 => {
            key.rsa()
                .sign_with_rng(&mut rng, Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(text))
        }
        SigningVersion::V1_3 => match key.ring() {
            // Same deterministic PKCS#1 v1.5 signature, computed by ring (blinded as well).
            Some(pair) => return ring_sign(pair, &ring::signature::RSA_PKCS1_SHA256, text),
            None => key.rsa().sign_with_rng(
                &mut rng,
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(text),
            ),
        },
    };
    result.map_err(|e| SignError::Rsa(e.to_string()))
}

fn ring_sign(
    pair: &ring::signature::RsaKeyPair,
    padding: &'static dyn ring::signature::RsaEncoding,
    text: &[u8],
) -> Result<Vec<u8>, SignError> {
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(
        padding,
        &ring::rand::SystemRandom::new(),
        text,
        &mut signature,
    )
    .map_err(|e| SignError::Rsa(e.to_string()))?;
    Ok(signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PrivateKey {
        PrivateKey::from_pem(include_str!("../../tests/fixtures/fixed-key.pem")).unwrap()
    }

    #[test]
    fn both_backends_produce_the_same_signature() {
        let key = key();
        let text = b"Method:GET\nPath:/roles";
        let ring = ring_sign(
            key.ring().unwrap(),
            &ring::signature::RSA_PKCS1_SHA256,
            text,
        )
        .unwrap();
        let portable = key
            .rsa()
            .sign_with_rng(
                &mut rand::thread_rng(),
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(text),
            )
            .unwrap();
        assert_eq!(ring, portable);
    }

    fn request(version: SigningVersion, user_id: &str) -> RequestToSign<'_> {
        RequestToSign {
            version,
            method: "POST",
            path: "/organizations/clownco",
            body: Body::Bytes(b"Spec Body"),
            user_id,
            timestamp: chrono::DateTime::parse_from_rfc3339("2009-01-01T12:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            server_api_version: "1",
        }
    }

    #[test]
    fn always_sends_server_api_version() {
        for v in SigningVersion::ALL {
            let h = sign_request(&key(), &request(v, "spec-user")).unwrap();
            assert_eq!(h.header("x-ops-server-api-version"), Some("1"));
            assert_eq!(h.header("X-Ops-Userid"), Some("spec-user"));
        }
    }

    #[test]
    fn long_user_ids_fail_under_1_0_but_not_1_1() {
        // mixlib's own spec: a 200-character user cannot sign 1.0 with a 2048-bit key.
        let long = "a".repeat(200);
        let err = sign_request(&key(), &request(SigningVersion::V1_0, &long)).unwrap_err();
        assert!(
            matches!(err, SignError::Key(KeyError::TooSmall { bits: 2048, .. })),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("use a key of at least 2048 bits or protocol 1.3")
        );
        sign_request(&key(), &request(SigningVersion::V1_1, &long)).unwrap();
        sign_request(&key(), &request(SigningVersion::V1_3, &long)).unwrap();
    }

    #[test]
    fn refuses_header_injection() {
        let err = sign_request(
            &key(),
            &request(SigningVersion::V1_3, "evil\nX-Ops-UserId:pivotal"),
        )
        .unwrap_err();
        assert_eq!(err, SignError::InvalidHeaderValue("user id"));
        assert_eq!(
            sign_request(&key(), &request(SigningVersion::V1_3, "")).unwrap_err(),
            SignError::InvalidHeaderValue("user id")
        );
    }
}
