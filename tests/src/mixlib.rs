//! Driving Ruby's mixlib-authentication (the reference Chef signer and verifier) through
//! `interop/mixlib_oracle.rb`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::Peer;

const ORACLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/mixlib_oracle.rb");

/// Debian's ruby with ruby-mixlib-authentication.
pub const PEER: Peer = Peer {
    name: "Ruby mixlib-authentication",
    install_hint: "apt-get install -y ruby ruby-mixlib-authentication",
};

/// True when ruby and mixlib-authentication load (see [`Peer::require`] for the CI rule).
pub fn available() -> bool {
    PEER.require(Command::new("ruby").args([
        "-e",
        "require 'openssl'; require 'mixlib/authentication/signatureverification'",
    ]))
}

/// A request for mixlib to sign.
#[derive(Debug, Clone, Serialize)]
pub struct ToSign {
    /// HTTP method.
    pub method: String,
    /// Path (no query string: mixlib signs `URI#path`).
    pub path: String,
    /// Body text.
    pub body: String,
    /// Actor.
    pub user_id: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub timestamp: String,
    /// `1.0`, `1.1` or `1.3`.
    pub version: String,
    /// `X-Ops-Server-API-Version`.
    pub server_api_version: String,
}

/// A signed request for mixlib to verify.
#[derive(Debug, Clone, Serialize)]
pub struct ToVerify {
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Body text.
    pub body: String,
    /// All request headers.
    pub headers: BTreeMap<String, String>,
}

/// mixlib's verdict on one request.
#[derive(Debug, Clone, Deserialize)]
pub struct Verdict {
    /// Whether `authenticate_user_request` accepted it.
    pub valid: bool,
    /// mixlib's error message when it did not.
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Signed {
    headers: BTreeMap<String, String>,
}

fn run<T: Serialize, R: for<'de> Deserialize<'de>>(mode: &str, input: &T) -> Vec<R> {
    let mut child = Command::new("ruby")
        .args([ORACLE, mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ruby");
    let payload = serde_json::to_vec(input).unwrap();
    child.stdin.take().unwrap().write_all(&payload).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "mixlib_oracle.rb {mode} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Signs each request with mixlib using `private_key_pem`; returns the headers it produced
/// (plus `X-Ops-Server-API-Version`).
pub fn sign(private_key_pem: &str, requests: &[ToSign]) -> Vec<BTreeMap<String, String>> {
    #[derive(Serialize)]
    struct Input<'a> {
        key_pem: &'a str,
        skew: u64,
        requests: &'a [ToSign],
    }
    let out: Vec<Signed> = run(
        "sign",
        &Input {
            key_pem: private_key_pem,
            skew: 0,
            requests,
        },
    );
    out.into_iter().map(|s| s.headers).collect()
}

/// Verifies each request with mixlib's `SignatureVerification` against `public_key_pem`,
/// allowing `skew_secs` of clock difference.
pub fn verify(public_key_pem: &str, skew_secs: u64, requests: &[ToVerify]) -> Vec<Verdict> {
    #[derive(Serialize)]
    struct Input<'a> {
        key_pem: &'a str,
        skew: u64,
        requests: &'a [ToVerify],
    }
    run(
        "verify",
        &Input {
            key_pem: public_key_pem,
            skew: skew_secs,
            requests,
        },
    )
}
