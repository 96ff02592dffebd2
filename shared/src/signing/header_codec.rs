//! Encoding and decoding of the individual `X-Ops-*` header values.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};

use super::{AuthError, DigestAlgorithm, SigningVersion};

/// Longest signature we reassemble: 64 lines of 60 characters is a 23,000-bit key.
const MAX_AUTHORIZATION_LINES: usize = 64;

/// Case-insensitive access to request headers, whatever container holds them.
pub trait HeaderSource {
    /// The value of header `name` (compared ASCII case-insensitively), if present.
    fn header(&self, name: &str) -> Option<&str>;
}

impl HeaderSource for [(String, String)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl HeaderSource for Vec<(String, String)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl HeaderSource for std::collections::BTreeMap<String, String> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl HeaderSource for std::collections::HashMap<String, String> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed `X-Ops-Sign` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignHeader {
    /// The protocol version.
    pub version: SigningVersion,
    /// The digest, explicit or defaulted from the version.
    pub algorithm: DigestAlgorithm,
}

impl SignHeader {
    /// The form mixlib-authentication sends: `algorithm=ALG;version=V;`.
    pub fn to_header_value(self) -> String {
        format!(
            "algorithm={};version={};",
            self.algorithm.as_str(),
            self.version
        )
    }
}

/// Parses every `X-Ops-Sign` spelling seen in the wild: mixlib's `algorithm=sha1;version=1.0;`,
/// pythonchef's `version=1.0`, and go-chef's `algorithm=sha1;version=1.0`. `version` is
/// required; `algorithm`, when given, must be the one the version uses.
pub fn parse_sign_header(value: &str) -> Result<SignHeader, AuthError> {
    let unsupported = || AuthError::UnsupportedVersion(value.to_owned());
    let mut version = None;
    let mut algorithm = None;
    for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, val) = part.split_once('=').ok_or_else(unsupported)?;
        match key.trim() {
            "version" => version = Some(val.trim()),
            "algorithm" => algorithm = Some(val.trim()),
            _ => {}
        }
    }
    let version = version
        .and_then(SigningVersion::parse)
        .ok_or_else(unsupported)?;
    let expected = version.digest();
    match algorithm {
        None => {}
        Some(a) if a.eq_ignore_ascii_case(expected.as_str()) => {}
        Some(_) => return Err(unsupported()),
    }
    Ok(SignHeader {
        version,
        algorithm: expected,
    })
}

/// Formats a timestamp the way Chef signers do: UTC ISO 8601 with whole seconds and `Z`.
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses an `X-Ops-Timestamp` value (RFC 3339; Chef sends `YYYY-MM-DDTHH:MM:SSZ`).
pub fn parse_timestamp(value: &str) -> Result<DateTime<Utc>, AuthError> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| AuthError::BadTimestamp)
}

/// Base64-encodes a signature and cuts it into the 60-character pieces that travel as
/// `X-Ops-Authorization-1..N`.
pub fn split_authorization(signature: &[u8]) -> Vec<String> {
    let encoded = STANDARD.encode(signature);
    encoded
        .as_bytes()
        .chunks(60)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

/// Reassembles and decodes `X-Ops-Authorization-1..N` (up to the first missing number).
/// `None` when there is no first line or the text is not base64.
pub(crate) fn join_authorization<H: HeaderSource + ?Sized>(headers: &H) -> Option<Vec<u8>> {
    let mut joined = String::new();
    for i in 1..=MAX_AUTHORIZATION_LINES {
        match headers.header(&format!("X-Ops-Authorization-{i}")) {
            Some(line) => joined.extend(line.chars().filter(|c| !c.is_ascii_whitespace())),
            None => break,
        }
    }
    if joined.is_empty() {
        return None;
    }
    STANDARD.decode(joined.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_three_sign_spellings() {
        for s in [
            "algorithm=sha1;version=1.0;",
            "version=1.0",
            "algorithm=sha1;version=1.0",
        ] {
            let h = parse_sign_header(s).unwrap();
            assert_eq!(h.version, SigningVersion::V1_0, "{s}");
            assert_eq!(h.algorithm, DigestAlgorithm::Sha1);
        }
        let h = parse_sign_header("algorithm=sha256;version=1.3;").unwrap();
        assert_eq!(h.version, SigningVersion::V1_3);
        assert_eq!(
            parse_sign_header("version=1.3").unwrap().algorithm,
            DigestAlgorithm::Sha256
        );
        assert_eq!(
            parse_sign_header("version=1.2").unwrap().version,
            SigningVersion::V1_2
        );
    }

    #[test]
    fn refuses_unknown_or_mismatched_versions() {
        for s in [
            "",
            "version=2.0",
            "algorithm=sha256;version=1.0",
            "algorithm=md5;version=1.3",
            "garbage",
            "algorithm=sha1",
        ] {
            assert!(
                matches!(parse_sign_header(s), Err(AuthError::UnsupportedVersion(_))),
                "{s}"
            );
        }
    }

    #[test]
    fn header_value_matches_mixlib() {
        let h = parse_sign_header("version=1.3").unwrap();
        assert_eq!(h.to_header_value(), "algorithm=sha256;version=1.3;");
    }

    #[test]
    fn timestamps_round_trip() {
        let t = parse_timestamp("2024-01-02T03:04:05Z").unwrap();
        assert_eq!(format_timestamp(t), "2024-01-02T03:04:05Z");
        assert_eq!(parse_timestamp("2024-01-02T04:04:05+01:00").unwrap(), t);
        for bad in [
            "",
            "yesterday",
            "2024-01-02 03:04:05",
            "2024-13-02T03:04:05Z",
        ] {
            assert_eq!(parse_timestamp(bad), Err(AuthError::BadTimestamp), "{bad}");
        }
    }

    #[test]
    fn authorization_split_is_60_characters() {
        let sig = vec![7u8; 256];
        let lines = split_authorization(&sig);
        assert_eq!(lines.len(), 6);
        assert!(lines[..5].iter().all(|l| l.len() == 60));
        assert_eq!(lines[5].len(), 44);
        let headers: Vec<(String, String)> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("x-ops-authorization-{}", i + 1), l.clone()))
            .collect();
        assert_eq!(join_authorization(&headers).unwrap(), sig);
    }

    #[test]
    fn authorization_needs_first_line_and_base64() {
        let none: Vec<(String, String)> = vec![("X-Ops-Authorization-2".into(), "AAAA".into())];
        assert!(join_authorization(&none).is_none());
        let bad: Vec<(String, String)> = vec![("X-Ops-Authorization-1".into(), "!!!".into())];
        assert!(join_authorization(&bad).is_none());
    }
}
