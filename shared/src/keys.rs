//! RSA keys as Chef stores and exchanges them: PEM in PKCS#1 (`BEGIN RSA PRIVATE KEY`,
//! `BEGIN RSA PUBLIC KEY`) or PKCS#8/SPKI (`BEGIN PRIVATE KEY`, `BEGIN PUBLIC KEY`).

use std::sync::Arc;

use ring::signature::RsaKeyPair;
use rsa::pkcs1::{
    DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPrivateKey, EncodeRsaPublicKey,
};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};

/// Smallest key size we generate or accept for new keys; Chef's own keys are 2048 bits.
pub const MIN_GENERATED_BITS: usize = 2048;

/// Why a key could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The text is not a PEM block of a kind we read.
    #[error(
        "not an RSA key in PEM form (expected BEGIN RSA PRIVATE KEY, BEGIN PRIVATE KEY, BEGIN PUBLIC KEY or BEGIN RSA PUBLIC KEY)"
    )]
    NotPem,
    /// The PEM block was recognised but its contents do not decode.
    #[error("malformed {kind} PEM: {detail}")]
    Malformed {
        /// Which PEM type was being decoded.
        kind: &'static str,
        /// What the decoder said.
        detail: String,
    },
    /// Key generation failed.
    #[error("could not generate an RSA key: {0}")]
    Generate(String),
    /// Private key material where only a public key belongs: storing it would hand it to
    /// everyone who may read the public key.
    #[error(
        "a private key was sent where a public key belongs; send only the public half (openssl rsa -in KEY -pubout)"
    )]
    PrivateGiven,
    /// More than one PEM block, or text around the block.
    #[error("expected exactly one PEM public key block and nothing else")]
    NotOneBlock,
    /// Smaller than the configured minimum.
    #[error("a {bits}-bit RSA key is below the minimum of {min} bits")]
    TooWeak {
        /// The key's modulus size.
        bits: usize,
        /// The smallest size accepted.
        min: usize,
    },
    /// The key cannot hold the message a protocol version needs it to sign.
    #[error(
        "a {bits}-bit key cannot sign Chef protocol {version} requests: the canonical request is {needed} bytes but this key can sign at most {capacity}; use a key of at least 2048 bits or protocol 1.3"
    )]
    TooSmall {
        /// The key's modulus size.
        bits: usize,
        /// The signing protocol version that was attempted.
        version: &'static str,
        /// Length of the canonical request in bytes.
        needed: usize,
        /// Largest message the key can sign with PKCS#1 v1.5 padding.
        capacity: usize,
    },
}

/// An RSA private key used to sign Chef requests.
#[derive(Clone)]
pub struct PrivateKey {
    inner: RsaPrivateKey,
    /// The same key for ring, which signs the standard PKCS#1 v1.5 signatures several times
    /// faster; `None` for keys ring does not take (under 2048 bits).
    fast: Option<Arc<RsaKeyPair>>,
}

fn fast_pair(inner: &RsaPrivateKey) -> Option<Arc<RsaKeyPair>> {
    let der = inner.to_pkcs1_der().ok()?;
    RsaKeyPair::from_der(der.as_bytes()).ok().map(Arc::new)
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "PrivateKey({} bits)", self.bits())
    }
}

impl PrivateKey {
    /// Reads a PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8 (`BEGIN PRIVATE KEY`) PEM.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let inner = if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
            RsaPrivateKey::from_pkcs1_pem(pem).map_err(|e| KeyError::Malformed {
                kind: "PKCS#1 private key",
                detail: e.to_string(),
            })?
        } else if pem.contains("-----BEGIN PRIVATE KEY-----") {
            RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| KeyError::Malformed {
                kind: "PKCS#8 private key",
                detail: e.to_string(),
            })?
        } else {
            return Err(KeyError::NotPem);
        };
        Ok(PrivateKey::wrap(inner))
    }

    fn wrap(inner: RsaPrivateKey) -> PrivateKey {
        let fast = fast_pair(&inner);
        PrivateKey { inner, fast }
    }

    /// Generates a new key of `bits` bits (at least [`MIN_GENERATED_BITS`]).
    pub fn generate(bits: usize) -> Result<Self, KeyError> {
        if bits < MIN_GENERATED_BITS {
            return Err(KeyError::Generate(format!(
                "{bits} bits is below the minimum of {MIN_GENERATED_BITS}"
            )));
        }
        let inner = RsaPrivateKey::new(&mut rand::thread_rng(), bits)
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        Ok(PrivateKey::wrap(inner))
    }

    /// The key as PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`), the form Chef writes `.pem` files in.
    pub fn to_pkcs1_pem(&self) -> Result<String, KeyError> {
        self.inner
            .to_pkcs1_pem(LineEnding::LF)
            .map(|z| z.to_string())
            .map_err(|e| KeyError::Malformed {
                kind: "PKCS#1 private key",
                detail: e.to_string(),
            })
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::wrap(self.inner.to_public_key())
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.inner.size() * 8
    }

    /// Modulus size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.inner.size()
    }

    pub(crate) fn rsa(&self) -> &RsaPrivateKey {
        &self.inner
    }

    pub(crate) fn ring(&self) -> Option<&RsaKeyPair> {
        self.fast.as_deref()
    }
}

/// An RSA public key used to verify Chef requests.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    inner: RsaPublicKey,
    /// PKCS#1 `RSAPublicKey` DER, the form ring verifies with (empty if it cannot be encoded).
    der: Vec<u8>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({} bits)", self.inner.size() * 8)
    }
}

impl PublicKey {
    /// Reads an SPKI (`BEGIN PUBLIC KEY`) or PKCS#1 (`BEGIN RSA PUBLIC KEY`) PEM. A private key
    /// PEM is accepted too and reduced to its public half, as Chef tools do.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let inner = if pem.contains("-----BEGIN PUBLIC KEY-----") {
            RsaPublicKey::from_public_key_pem(pem).map_err(|e| KeyError::Malformed {
                kind: "SPKI public key",
                detail: e.to_string(),
            })?
        } else if pem.contains("-----BEGIN RSA PUBLIC KEY-----") {
            RsaPublicKey::from_pkcs1_pem(pem).map_err(|e| KeyError::Malformed {
                kind: "PKCS#1 public key",
                detail: e.to_string(),
            })?
        } else {
            return PrivateKey::from_pem(pem).map(|k| k.public_key());
        };
        Ok(PublicKey::wrap(inner))
    }

    /// Reads a public key submitted to be stored (a client's or user's new key): one PEM
    /// block of a public kind, nothing else, of at least `min_bits` bits. Unlike
    /// [`PublicKey::from_pem`], a private key is refused instead of being reduced, since the
    /// submitted text is what gets stored and handed out.
    pub fn from_submitted_pem(pem: &str, min_bits: usize) -> Result<Self, KeyError> {
        if pem.contains("PRIVATE KEY") {
            return Err(KeyError::PrivateGiven);
        }
        let text = pem.trim();
        if text.matches("-----BEGIN ").count() != 1
            || !text.starts_with("-----BEGIN ")
            || !text.ends_with("-----")
        {
            return Err(KeyError::NotOneBlock);
        }
        let key = PublicKey::from_pem(text)?;
        if key.bits() < min_bits {
            return Err(KeyError::TooWeak {
                bits: key.bits(),
                min: min_bits,
            });
        }
        Ok(key)
    }

    fn wrap(inner: RsaPublicKey) -> PublicKey {
        let der = inner
            .to_pkcs1_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        PublicKey { inner, der }
    }

    /// The key as SPKI PEM (`BEGIN PUBLIC KEY`), the form Chef's API returns.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.inner
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::Malformed {
                kind: "SPKI public key",
                detail: e.to_string(),
            })
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.inner.size() * 8
    }

    /// Modulus size in bytes: the length of every PKCS#1 v1.5 signature the key makes.
    pub fn size(&self) -> usize {
        self.inner.size()
    }

    pub(crate) fn rsa(&self) -> &RsaPublicKey {
        &self.inner
    }

    /// The DER ring verifies with, for keys of at least 2048 bits (ring's lower bound).
    pub(crate) fn ring_der(&self) -> Option<&[u8]> {
        (self.bits() >= 2048 && !self.der.is_empty()).then_some(self.der.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PKCS1: &str = include_str!("../tests/fixtures/fixed-key.pem");
    const SPKI: &str = include_str!("../tests/fixtures/fixed-key.pub.pem");

    #[test]
    fn reads_pkcs1_private_and_spki_public() {
        let key = PrivateKey::from_pem(PKCS1).unwrap();
        assert_eq!(key.bits(), 2048);
        let public = PublicKey::from_pem(SPKI).unwrap();
        assert_eq!(key.public_key(), public);
        assert_eq!(PublicKey::from_pem(PKCS1).unwrap(), public);
    }

    #[test]
    fn reads_pkcs8_and_pkcs1_public_forms() {
        use rsa::pkcs1::EncodeRsaPublicKey;
        use rsa::pkcs8::EncodePrivateKey;
        let key = PrivateKey::from_pem(PKCS1).unwrap();
        let pkcs8 = key.rsa().to_pkcs8_pem(LineEnding::LF).unwrap();
        assert_eq!(
            PrivateKey::from_pem(&pkcs8).unwrap().public_key(),
            key.public_key()
        );
        let pkcs1_pub = key.public_key().rsa().to_pkcs1_pem(LineEnding::LF).unwrap();
        assert!(pkcs1_pub.contains("BEGIN RSA PUBLIC KEY"));
        assert_eq!(PublicKey::from_pem(&pkcs1_pub).unwrap(), key.public_key());
    }

    #[test]
    fn round_trips_through_pem() {
        let key = PrivateKey::from_pem(PKCS1).unwrap();
        let again = PrivateKey::from_pem(&key.to_pkcs1_pem().unwrap()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let public = PublicKey::from_pem(&key.public_key().to_pem().unwrap()).unwrap();
        assert_eq!(public, key.public_key());
    }

    #[test]
    fn rejects_garbage_with_clear_errors() {
        assert_eq!(PrivateKey::from_pem("hello").unwrap_err(), KeyError::NotPem);
        assert_eq!(PublicKey::from_pem("").unwrap_err(), KeyError::NotPem);
        let broken = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        let err = PrivateKey::from_pem(broken).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("malformed PKCS#1 private key PEM"),
            "{err}"
        );
    }

    #[test]
    fn small_keys_fall_back_to_the_portable_backend() {
        use crate::signing::{Body, RequestToSign, SignedRequest, SigningVersion, sign_request};
        let small = RsaPrivateKey::new(&mut rand::thread_rng(), 1536).unwrap();
        let key = PrivateKey::wrap(small);
        assert!(key.ring().is_none());
        assert!(key.public_key().ring_der().is_none());
        let full = PrivateKey::from_pem(PKCS1).unwrap();
        assert!(full.ring().is_some());
        assert!(full.public_key().ring_der().is_some());
        for version in [SigningVersion::V1_1, SigningVersion::V1_3] {
            let headers = sign_request(
                &key,
                &RequestToSign {
                    version,
                    method: "GET",
                    path: "/roles",
                    body: Body::Bytes(b""),
                    user_id: "u",
                    timestamp: chrono::Utc::now(),
                    server_api_version: "1",
                },
            )
            .unwrap();
            let signed = SignedRequest::from_headers(&headers).unwrap();
            signed
                .verify("GET", "/roles", Body::Bytes(b""), &[key.public_key()])
                .unwrap();
        }
    }

    #[test]
    fn submitted_public_keys_are_public_single_and_strong_enough() {
        let spki = PublicKey::from_submitted_pem(SPKI, 2048).unwrap();
        assert_eq!(spki, PrivateKey::from_pem(PKCS1).unwrap().public_key());
        assert_eq!(
            PublicKey::from_submitted_pem(PKCS1, 2048).unwrap_err(),
            KeyError::PrivateGiven
        );
        let smuggled = format!("{SPKI}{PKCS1}");
        assert_eq!(
            PublicKey::from_submitted_pem(&smuggled, 2048).unwrap_err(),
            KeyError::PrivateGiven
        );
        let twice = format!("{SPKI}{SPKI}");
        assert_eq!(
            PublicKey::from_submitted_pem(&twice, 2048).unwrap_err(),
            KeyError::NotOneBlock
        );
        assert_eq!(
            PublicKey::from_submitted_pem(&format!("hello\n{SPKI}"), 2048).unwrap_err(),
            KeyError::NotOneBlock
        );
        assert_eq!(
            PublicKey::from_submitted_pem(SPKI, 4096).unwrap_err(),
            KeyError::TooWeak {
                bits: 2048,
                min: 4096
            }
        );
        let small = PrivateKey::wrap(RsaPrivateKey::new(&mut rand::thread_rng(), 1024).unwrap())
            .public_key()
            .to_pem()
            .unwrap();
        assert!(matches!(
            PublicKey::from_submitted_pem(&small, 2048),
            Err(KeyError::TooWeak { bits: 1024, .. })
        ));
        assert!(PublicKey::from_submitted_pem(&small, 1024).is_ok());
    }

    #[test]
    fn refuses_to_generate_small_keys() {
        assert!(matches!(
            PrivateKey::generate(1024),
            Err(KeyError::Generate(_))
        ));
    }
}
