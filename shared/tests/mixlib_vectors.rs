//! The 20 reference vectors produced by Ruby's mixlib-authentication 3.0.6 (fixture copied from
//! the team's peer notes): our signer must reproduce every header byte for byte, and our
//! verifier must accept each vector and reject it once any signed input is altered.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use chef_sync_shared::signing::{
    Body, CanonicalRequest, RequestToSign, SignedRequest, SigningVersion, content_hash,
    sign_request,
};
use chef_sync_shared::{AuthError, PrivateKey, PublicKey};
use chrono::{DateTime, Utc};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Fixture {
    public_key_pem: String,
    vectors: Vec<Vector>,
}

#[derive(Debug, Clone, Deserialize)]
struct Vector {
    name: String,
    method: String,
    path: String,
    body: String,
    timestamp: String,
    user_id: String,
    proto_version: String,
    server_api_version: String,
    canonical_request: String,
    headers: BTreeMap<String, String>,
    extra_request_headers: BTreeMap<String, String>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("fixtures/mixlib-vectors.json")).unwrap()
}

fn key() -> PrivateKey {
    PrivateKey::from_pem(include_str!("fixtures/fixed-key.pem")).unwrap()
}

fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The headers a request carries: what mixlib's sign() returned plus the extra headers.
fn request_headers(v: &Vector) -> Vec<(String, String)> {
    v.headers
        .iter()
        .chain(&v.extra_request_headers)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn there_are_twenty_vectors_over_three_versions() {
    let f = fixture();
    assert_eq!(f.vectors.len(), 20);
    for version in ["1.0", "1.1", "1.3"] {
        assert!(f.vectors.iter().any(|v| v.proto_version == version));
    }
}

#[test]
fn canonical_requests_match_mixlib() {
    for v in fixture().vectors {
        let version: SigningVersion = v.proto_version.parse().unwrap();
        let text = CanonicalRequest {
            version,
            method: &v.method,
            path: &v.path,
            content_hash: &content_hash(version, v.body.as_bytes()),
            timestamp: &v.timestamp,
            user_id: &v.user_id,
            server_api_version: &v.server_api_version,
        }
        .to_text();
        assert_eq!(text, v.canonical_request, "{}", v.name);
    }
}

#[test]
fn signer_reproduces_every_header_byte_for_byte() {
    let key = key();
    for v in fixture().vectors {
        let req = RequestToSign {
            version: v.proto_version.parse().unwrap(),
            method: &v.method,
            path: &v.path,
            body: Body::Bytes(v.body.as_bytes()),
            user_id: &v.user_id,
            timestamp: time(&v.timestamp),
            server_api_version: &v.server_api_version,
        };
        let ours = sign_request(&key, &req).unwrap();
        let mut ours: BTreeMap<String, String> = ours.0.into_iter().collect();
        // mixlib's sign() does not return the API version header; the request carries it
        // separately (or mixlib assumes "0"). Ours always sends it.
        let api = ours.remove("X-Ops-Server-API-Version").unwrap();
        assert_eq!(api, v.server_api_version, "{}", v.name);
        assert_eq!(ours, v.headers, "{}", v.name);
    }
}

#[test]
fn verifier_accepts_every_vector_with_the_clock_ignored() {
    let f = fixture();
    let public = [PublicKey::from_pem(&f.public_key_pem).unwrap()];
    for v in &f.vectors {
        let headers = request_headers(v);
        let req = SignedRequest::from_headers(&headers).unwrap();
        req.verify(&v.method, &v.path, Body::Bytes(v.body.as_bytes()), &public)
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        // With Chef's default 15 minute window these 2024 vectors are stale.
        assert_eq!(
            req.check_clock(Utc::now(), std::time::Duration::from_secs(900)),
            Err(AuthError::ClockSkew {
                user_id: v.user_id.clone()
            }),
            "{}",
            v.name
        );
    }
}

fn assert_rejected(
    v: &Vector,
    what: &str,
    method: &str,
    path: &str,
    body: &str,
    headers: Vec<(String, String)>,
) {
    let public = [key().public_key()];
    let req = SignedRequest::from_headers(&headers).unwrap();
    let err = req
        .verify(method, path, Body::Bytes(body.as_bytes()), &public)
        .expect_err(&format!("{}: altered {what} still verified", v.name));
    assert!(
        matches!(err, AuthError::InvalidSignature { .. }),
        "{}: {what}: {err:?}",
        v.name
    );
}

fn with_header(v: &Vector, name: &str, value: &str) -> Vec<(String, String)> {
    request_headers(v)
        .into_iter()
        .map(|(k, old)| {
            if k == name {
                (k, value.to_owned())
            } else {
                (k, old)
            }
        })
        .collect()
}

#[test]
fn verifier_rejects_altered_vectors() {
    for v in fixture().vectors {
        let other_method = if v.method == "GET" { "DELETE" } else { "GET" };
        assert_rejected(
            &v,
            "method",
            other_method,
            &v.path,
            &v.body,
            request_headers(&v),
        );
        assert_rejected(
            &v,
            "path",
            &v.method,
            "/organizations/demo/roles/db",
            &v.body,
            request_headers(&v),
        );
        assert_rejected(
            &v,
            "body",
            &v.method,
            &v.path,
            &format!("{} ", v.body),
            request_headers(&v),
        );
        assert_rejected(
            &v,
            "user id",
            &v.method,
            &v.path,
            &v.body,
            with_header(&v, "X-Ops-Userid", "pivotal"),
        );
        assert_rejected(
            &v,
            "timestamp",
            &v.method,
            &v.path,
            &v.body,
            with_header(&v, "X-Ops-Timestamp", "2024-01-02T03:04:06Z"),
        );
        if v.proto_version == "1.3" {
            assert_rejected(
                &v,
                "server API version",
                &v.method,
                &v.path,
                &v.body,
                with_header(&v, "X-Ops-Server-API-Version", "2")
                    .into_iter()
                    .chain(
                        v.extra_request_headers
                            .is_empty()
                            .then(|| ("X-Ops-Server-API-Version".to_owned(), "2".to_owned())),
                    )
                    .collect(),
            );
        }
    }
}
