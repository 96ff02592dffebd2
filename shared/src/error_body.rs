//! Chef's error body: `{"error": ["message", …]}`, and the plain-string form
//! (`{"error": "message"}`) that some Chef endpoints send.

use serde::{Deserialize, Serialize};

/// An API error body as Chef servers send it. Always serialised in the array form; parsed from
/// either form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The messages, most important first.
    #[serde(deserialize_with = "one_or_many")]
    pub error: Vec<String>,
}

impl ErrorBody {
    /// A body with a single message.
    pub fn new(message: impl Into<String>) -> Self {
        ErrorBody {
            error: vec![message.into()],
        }
    }

    /// Parses an error body from raw response bytes; `None` when they are not a Chef error body.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// All messages joined with `"; "`, for logs and one-line CLI output.
    pub fn message(&self) -> String {
        self.error.join("; ")
    }
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_array() {
        let body = ErrorBody::new("Cannot load role web");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":["Cannot load role web"]}"#
        );
    }

    #[test]
    fn parses_both_forms() {
        let arr = ErrorBody::parse(br#"{"error":["a","b"]}"#).unwrap();
        assert_eq!(arr.error, vec!["a", "b"]);
        assert_eq!(arr.message(), "a; b");
        let plain =
            ErrorBody::parse(br#"{"error":"JSON must be no more than 1000000 bytes."}"#).unwrap();
        assert_eq!(
            plain.error,
            vec!["JSON must be no more than 1000000 bytes."]
        );
    }

    #[test]
    fn rejects_other_bodies() {
        assert!(ErrorBody::parse(b"").is_none());
        assert!(ErrorBody::parse(b"[]").is_none());
        assert!(ErrorBody::parse(br#"{"message":"x"}"#).is_none());
        assert!(ErrorBody::parse(br#"{"error":42}"#).is_none());
    }
}
