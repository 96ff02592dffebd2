//! Mixlib::Authentication header parsing and verification, as the server runs them on every
//! request: input is `METHOD PATH`, header lines, a blank line, the body.
#![no_main]

use std::sync::OnceLock;

use chef_sync_shared::PublicKey;
use chef_sync_shared::signing::{Body, SignedRequest};
use libfuzzer_sys::fuzz_target;

fn key() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| PublicKey::from_pem(include_str!("../keys/public.pem")).expect("fuzz key"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let (method, path) = lines
        .next()
        .and_then(|l| l.split_once(' '))
        .unwrap_or(("GET", "/"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let Ok(signed) = SignedRequest::from_headers(headers.as_slice()) else {
        return;
    };
    let _ = signed.check_clock(signed.timestamp(), std::time::Duration::from_secs(900));
    let keys = std::slice::from_ref(key());
    let _ = signed.verify(method, path, Body::Bytes(body.as_bytes()), keys);
    // Past the content-hash check as well, so the signature decoding and RSA are reached.
    let claimed = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-ops-content-hash"))
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let _ = signed.verify(method, path, Body::Hashed(claimed), keys);
});
