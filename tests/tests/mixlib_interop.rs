//! Live interop with Ruby's mixlib-authentication: fresh random requests signed by us are
//! accepted by mixlib's verifier, and requests signed by mixlib are accepted by ours, for
//! protocol versions 1.0, 1.1 and 1.3. RSA PKCS#1 v1.5 is deterministic, so both signers must
//! also produce identical headers for identical inputs.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use chef_sync_shared::PrivateKey;
use chef_sync_shared::signing::{
    Body, DEFAULT_SKEW, RequestToSign, SignedRequest, SigningVersion, format_timestamp,
    sign_request,
};
use chef_sync_tests::mixlib::{self, ToSign, ToVerify};
use chrono::{DurationRound, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const VERSIONS: [SigningVersion; 3] = [
    SigningVersion::V1_0,
    SigningVersion::V1_1,
    SigningVersion::V1_3,
];
const PER_VERSION: usize = 12;

fn seeded_rng() -> StdRng {
    let seed = std::env::var("CHEF_SYNC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().r#gen::<u64>());
    eprintln!("random requests from seed {seed} (set CHEF_SYNC_TEST_SEED={seed} to repeat)");
    StdRng::seed_from_u64(seed)
}

fn random_name(rng: &mut StdRng, max: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_-";
    let len = rng.gen_range(1..=max);
    (0..len)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

fn random_path(rng: &mut StdRng) -> String {
    let mut path = String::new();
    if rng.gen_bool(0.8) {
        path.push_str("/organizations/");
        path.push_str(&random_name(rng, 12));
    }
    let kind = [
        "roles",
        "environments",
        "data",
        "cookbooks",
        "updated_since",
        "sandboxes",
    ][rng.gen_range(0..6)];
    path.push('/');
    path.push_str(kind);
    for _ in 0..rng.gen_range(0..3) {
        path.push_str(if rng.gen_bool(0.2) { "//" } else { "/" });
        path.push_str(&random_name(rng, 10));
    }
    if rng.gen_bool(0.2) {
        path.push('/');
    }
    path
}

fn random_body(rng: &mut StdRng, method: &str) -> String {
    if method == "GET" || method == "DELETE" {
        return String::new();
    }
    let len = rng.gen_range(0..400);
    (0..len)
        .map(|_| match rng.gen_range(0..10) {
            0 => char::from_u32(rng.gen_range(0xA0..0x2FFF)).unwrap_or('x'),
            1 => '\n',
            _ => rng.gen_range(' '..='~'),
        })
        .collect()
}

fn random_requests(rng: &mut StdRng, now: &str) -> Vec<ToSign> {
    let mut out = Vec::new();
    for version in VERSIONS {
        for _ in 0..PER_VERSION {
            let method = ["GET", "PUT", "POST", "DELETE"][rng.gen_range(0..4)].to_owned();
            out.push(ToSign {
                body: random_body(rng, &method),
                method,
                path: random_path(rng),
                user_id: random_name(rng, 40),
                timestamp: now.to_owned(),
                version: version.to_string(),
                server_api_version: rng.gen_range(0..=2).to_string(),
            });
        }
    }
    out
}

fn our_headers(key: &PrivateKey, r: &ToSign) -> BTreeMap<String, String> {
    let req = RequestToSign {
        version: r.version.parse().unwrap(),
        method: &r.method,
        path: &r.path,
        body: Body::Bytes(r.body.as_bytes()),
        user_id: &r.user_id,
        timestamp: chrono::DateTime::parse_from_rfc3339(&r.timestamp)
            .unwrap()
            .with_timezone(&Utc),
        server_api_version: &r.server_api_version,
    };
    sign_request(key, &req).unwrap().0.into_iter().collect()
}

#[test]
fn mixlib_and_chef_sync_accept_each_others_signatures() {
    if !mixlib::available() {
        return;
    }
    let mut rng = seeded_rng();
    let key = PrivateKey::generate(2048).unwrap();
    let private_pem = key.to_pkcs1_pem().unwrap();
    let public_pem = key.public_key().to_pem().unwrap();
    let now = format_timestamp(
        Utc::now()
            .duration_trunc(chrono::Duration::seconds(1))
            .unwrap(),
    );
    let requests = random_requests(&mut rng, &now);

    // Ours → mixlib's SignatureVerification.
    let ours: Vec<BTreeMap<String, String>> =
        requests.iter().map(|r| our_headers(&key, r)).collect();
    let to_verify: Vec<ToVerify> = requests
        .iter()
        .zip(&ours)
        .map(|(r, h)| ToVerify {
            method: r.method.clone(),
            path: r.path.clone(),
            body: r.body.clone(),
            headers: h.clone(),
        })
        .collect();
    for ((r, verdict), h) in requests
        .iter()
        .zip(mixlib::verify(&public_pem, 900, &to_verify))
        .zip(&ours)
    {
        assert!(
            verdict.valid,
            "mixlib rejected our {} {} {}: {:?} headers {h:?}",
            r.version, r.method, r.path, verdict.error
        );
    }

    // mixlib → our verifier, and the two signers agree byte for byte.
    let theirs = mixlib::sign(&private_pem, &requests);
    assert_eq!(theirs.len(), requests.len());
    let public = [key.public_key()];
    for ((r, h), mine) in requests.iter().zip(&theirs).zip(&ours) {
        let headers: Vec<(String, String)> =
            h.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let parsed = SignedRequest::from_headers(&headers).unwrap();
        assert_eq!(parsed.version().to_string(), r.version);
        parsed.check_clock(Utc::now(), DEFAULT_SKEW).unwrap();
        parsed
            .verify(&r.method, &r.path, Body::Bytes(r.body.as_bytes()), &public)
            .unwrap_or_else(|e| {
                panic!(
                    "we rejected mixlib's {} {} {}: {e}",
                    r.version, r.method, r.path
                )
            });
        assert_eq!(
            h, mine,
            "signers disagree on {} {} {}",
            r.version, r.method, r.path
        );
    }
}

#[test]
fn mixlib_rejects_tampered_and_stale_requests_we_sign() {
    if !mixlib::available() {
        return;
    }
    let mut rng = seeded_rng();
    let key = PrivateKey::generate(2048).unwrap();
    let public_pem = key.public_key().to_pem().unwrap();
    let stale = format_timestamp(Utc::now() - chrono::Duration::seconds(3600));
    let now = format_timestamp(Utc::now());
    let mut cases = Vec::new();
    for r in random_requests(&mut rng, &now).into_iter().step_by(4) {
        let h = our_headers(&key, &r);
        cases.push(ToVerify {
            method: r.method.clone(),
            path: r.path.clone(),
            body: format!("{}x", r.body),
            headers: h.clone(),
        });
        cases.push(ToVerify {
            method: r.method.clone(),
            path: format!("{}/other", r.path),
            body: r.body.clone(),
            headers: h.clone(),
        });
        let stale_req = ToSign {
            timestamp: stale.clone(),
            ..r.clone()
        };
        cases.push(ToVerify {
            method: r.method.clone(),
            path: r.path.clone(),
            body: r.body.clone(),
            headers: our_headers(&key, &stale_req),
        });
    }
    for (case, verdict) in cases.iter().zip(mixlib::verify(&public_pem, 900, &cases)) {
        assert!(
            !verdict.valid,
            "mixlib accepted a tampered or stale request: {case:?}"
        );
    }
}
