//! The chef-sync.rb reader (a Ruby-literal subset, never executed) and the config checks after
//! it: any text gives a Config or a located error, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

/// syncd's config module, the very source chef-syncd is built from (see Cargo.toml for why it
/// is not reached through the chef-sync-syncd crate).
#[path = "../../syncd/src"]
#[allow(dead_code, unused_imports)]
mod syncd {
    pub mod config;
}

use syncd::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(Path::new("chef-sync.rb"), text) {
        Ok(config) => {
            // What parsed can be shown, as show-config does.
            let _ = serde_json::to_string(&config);
        }
        Err(e) => {
            let message = e.to_string();
            assert!(message.starts_with("chef-sync.rb"), "{message}");
        }
    }
});
