//! The org-relative object path grammar the feed and the replicator trust: whatever parses
//! prints back to the same text and parses to the same path, and never escapes its shape.
#![no_main]

use chef_sync_shared::ObjectPath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(path) = text.parse::<ObjectPath>() else {
        return;
    };
    let printed = path.to_string();
    // Only a cookbook version is normalised (`05.2` is version 5.2.0, as Chef reads it).
    if !matches!(path, ObjectPath::CookbookVersion { .. }) {
        assert_eq!(printed, text, "a parsed path prints as it came");
    }
    assert_eq!(printed.parse::<ObjectPath>().as_ref(), Ok(&path));
    assert!(
        !printed.split('/').any(|s| s == "." || s == ".."),
        "no dot segment survives: {printed}"
    );
    if let Some(parent) = path.parent() {
        assert!(printed.starts_with(&format!("{parent}/")));
    }
});
