//! Cost of signing and verifying one Chef request per protocol version with a 2048-bit key.

use std::hint::black_box;

use chef_sync_shared::PrivateKey;
use chef_sync_shared::signing::{Body, RequestToSign, SignedRequest, SigningVersion, sign_request};
use criterion::{Criterion, criterion_group, criterion_main};

const KEY: &str = include_str!("../tests/fixtures/fixed-key.pem");
const BODY: &[u8] = br#"{"name":"web","description":"bench","json_class":"Chef::Role","chef_type":"role","run_list":["recipe[nginx]"],"default_attributes":{},"override_attributes":{},"env_run_lists":{}}"#;

fn bench(c: &mut Criterion) {
    let key = match PrivateKey::from_pem(KEY) {
        Ok(k) => k,
        Err(e) => panic!("fixture key: {e}"),
    };
    let public = [key.public_key()];
    let path = "/organizations/demo/roles/web";
    for version in [
        SigningVersion::V1_0,
        SigningVersion::V1_1,
        SigningVersion::V1_3,
    ] {
        let req = RequestToSign {
            version,
            method: "PUT",
            path,
            body: Body::Bytes(BODY),
            user_id: "replicator",
            timestamp: chrono::Utc::now(),
            server_api_version: "1",
        };
        c.bench_function(&format!("sign/{version}"), |b| {
            b.iter(|| sign_request(black_box(&key), black_box(&req)))
        });
        let headers = match sign_request(&key, &req) {
            Ok(h) => h,
            Err(e) => panic!("sign: {e}"),
        };
        c.bench_function(&format!("verify/{version}"), |b| {
            b.iter(|| {
                let parsed = SignedRequest::from_headers(black_box(&headers.0));
                parsed.map(|p| p.verify("PUT", path, Body::Bytes(BODY), &public))
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
