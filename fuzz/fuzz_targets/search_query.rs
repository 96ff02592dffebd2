//! Chef search queries (from any client with a key): any text gives a query or a short 400
//! message, never a panic or a stack overflow; a parsed query evaluates against a document.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The server's search module, the very source chef-sync-server is built from (compiled here
/// alone, as chef_sync_rb compiles syncd's config, to keep the instrumented build small).
#[path = "../../server/src"]
#[allow(dead_code, unused_imports)]
mod server {
    pub mod search;
}

use server::search::{IndexKind, Query};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Query::parse(text) {
        Ok(query) => {
            let doc = serde_json::json!({
                "name": "web-1",
                "run_list": ["recipe[nginx]", "role[web]"],
                "automatic": {"platform": "ubuntu", "kernel": {"release": "6.1", "modules": ["a", "b"]}},
                "normal": {"tags": [], "empty": null, "port": 8080},
            });
            let _ = query.matches(&IndexKind::Node.terms(&doc));
        }
        Err(e) => {
            // The error quotes at most 200 characters of the query.
            let message = e.to_string();
            assert!(message.len() < 2_000, "{} bytes", message.len());
        }
    }
});
