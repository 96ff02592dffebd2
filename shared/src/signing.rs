//! Chef's signed-header request authentication (Mixlib::Authentication), protocol versions 1.0,
//! 1.1 and 1.3 for signing and verifying, and 1.2 (chef_authn's RSA-SHA1 variant) as well.
//!
//! A signer produces the `X-Ops-*` headers for a request; a verifier parses them back
//! ([`SignedRequest::from_headers`]), checks the clock ([`SignedRequest::check_clock`]) and the
//! signature against one or more public keys ([`SignedRequest::verify`]). Errors are limited to
//! what a server may tell a client: which headers are missing, that the protocol or timestamp is
//! unusable, that the clock is off, or that the signature is invalid — never why it is invalid.

mod canonical;
mod header_codec;
mod sign;
mod verify;

pub use canonical::{CanonicalRequest, ContentHasher, canonical_path, content_hash};
pub use header_codec::{
    HeaderSource, SignHeader, format_timestamp, parse_sign_header, parse_timestamp,
    split_authorization,
};
pub use sign::{Body, RequestToSign, SignedHeaders, sign_request};
pub use verify::{DEFAULT_SKEW, SignedRequest, constant_time_eq};

/// A Mixlib::Authentication protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningVersion {
    /// SHA-1 hashes, raw RSA private-encrypt of the canonical request.
    V1_0,
    /// As 1.0, with the user id hashed in the canonical request.
    V1_1,
    /// chef_authn only: the 1.1 canonical request with an RSA-SHA1 signature.
    V1_2,
    /// SHA-256 hashes and an RSA-SHA256 signature; signs the server API version too.
    V1_3,
}

/// The digest a protocol version hashes bodies, paths and user ids with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// SHA-1 (versions 1.0, 1.1, 1.2).
    Sha1,
    /// SHA-256 (version 1.3).
    Sha256,
}

impl DigestAlgorithm {
    /// The name used in the `X-Ops-Sign` header.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha1 => "sha1",
            DigestAlgorithm::Sha256 => "sha256",
        }
    }
}

impl SigningVersion {
    /// Every version, oldest first.
    pub const ALL: [SigningVersion; 4] = [
        SigningVersion::V1_0,
        SigningVersion::V1_1,
        SigningVersion::V1_2,
        SigningVersion::V1_3,
    ];

    /// The version as written in `X-Ops-Sign`.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningVersion::V1_0 => "1.0",
            SigningVersion::V1_1 => "1.1",
            SigningVersion::V1_2 => "1.2",
            SigningVersion::V1_3 => "1.3",
        }
    }

    /// Parses `"1.0"`, `"1.1"`, `"1.2"` or `"1.3"`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The digest this version uses.
    pub fn digest(self) -> DigestAlgorithm {
        match self {
            SigningVersion::V1_3 => DigestAlgorithm::Sha256,
            _ => DigestAlgorithm::Sha1,
        }
    }
}

impl std::fmt::Display for SigningVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SigningVersion {
    type Err = SignError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| SignError::UnknownVersion(s.to_owned()))
    }
}

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    /// The key is too small for the canonical request (versions 1.0 and 1.1).
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    /// The version string is not one of 1.0, 1.1, 1.2, 1.3.
    #[error("unknown Chef signing protocol version '{0}' (expected 1.0, 1.1 or 1.3)")]
    UnknownVersion(String),
    /// A value that goes into a header contains characters a header cannot carry.
    #[error("{0} contains a line break or control character and cannot be signed")]
    InvalidHeaderValue(&'static str),
    /// The RSA operation itself failed.
    #[error("RSA signing failed: {0}")]
    Rsa(String),
}

/// Why a signed request was refused. Deliberately coarse: an invalid signature, a wrong content
/// hash, an undecodable signature and a wrong key all give [`AuthError::InvalidSignature`].
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// Required authentication headers are absent.
    #[error("missing required authentication header(s) {}", .0.join(", "))]
    MissingHeaders(Vec<&'static str>),
    /// `X-Ops-Sign` names a version or algorithm we do not accept.
    #[error("Unsupported authentication protocol version")]
    UnsupportedVersion(String),
    /// `X-Ops-Timestamp` does not parse.
    #[error("bad header(s) X-Ops-Timestamp")]
    BadTimestamp,
    /// The timestamp is outside the allowed clock skew.
    #[error("Failed to authenticate as {user_id}. Synchronize the clock on your host.")]
    ClockSkew {
        /// The actor named in `X-Ops-Userid`.
        user_id: String,
    },
    /// The signature does not verify with any of the actor's keys.
    #[error("Invalid signature for user or client '{user_id}'")]
    InvalidSignature {
        /// The actor named in `X-Ops-Userid`.
        user_id: String,
    },
}

impl AuthError {
    /// The HTTP status a Chef server answers with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::MissingHeaders(_) | AuthError::UnsupportedVersion(_) => 400,
            AuthError::BadTimestamp
            | AuthError::ClockSkew { .. }
            | AuthError::InvalidSignature { .. } => 401,
        }
    }
}
