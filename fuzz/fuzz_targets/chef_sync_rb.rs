//! The chef-sync.rb reader (a Ruby-literal subset, never executed) and the config checks after
//! it: any text gives a Config or a located error, never a panic.
#![no_main]

use std::path::Path;

use chef_sync_syncd::config::Config;
use libfuzzer_sys::fuzz_target;

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
