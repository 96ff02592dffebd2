//! Cookbook version manifests as received from a primary or a knife upload: parsing never
//! panics, no conversion loses a file, and the segment form is exact through every trip.
#![no_main]

use chef_sync_shared::objects::{CookbookFiles, CookbookVersion, SEGMENTS};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fn sorted(mut cookbook: CookbookVersion) -> CookbookVersion {
    if let CookbookFiles::AllFiles(files) = &mut cookbook.files {
        files.sort_by(|a, b| (&a.name, &a.path, &a.checksum).cmp(&(&b.name, &b.path, &b.checksum)));
    }
    cookbook
}

fuzz_target!(|data: &[u8]| {
    let Ok(map) = serde_json::from_slice::<Map<String, Value>>(data) else {
        return;
    };
    let Ok(cookbook) = CookbookVersion::try_from(map) else {
        return;
    };
    let files = cookbook.all_file_entries().len();
    let all = cookbook.to_all_files();
    let segments = cookbook.to_segments();
    assert_eq!(all.all_file_entries().len(), files);
    assert_eq!(segments.all_file_entries().len(), files);
    assert_eq!(cookbook.checksums(), all.checksums());
    // The segment form (what chef-syncd reads and writes, API v1) survives a trip through
    // all_files unchanged, so a replica serves the same v1 manifest as its primary.
    assert_eq!(segments.to_all_files().to_segments(), segments);
    // all_files names that start with a segment (what knife sends) survive the other trip.
    if let CookbookFiles::AllFiles(list) = &cookbook.files
        && list.iter().all(|f| {
            f.name
                .split_once('/')
                .is_some_and(|(seg, rest)| SEGMENTS.contains(&seg) && !rest.is_empty())
        })
    {
        // all_files order is not significant (Chef lists them by segment).
        assert_eq!(sorted(segments.to_all_files()), sorted(all));
    }
    // What we would send back parses again as the same manifest.
    let sent = serde_json::to_value(&segments).expect("serialize");
    let Value::Object(map) = sent else {
        panic!("a manifest serializes to an object");
    };
    assert_eq!(CookbookVersion::try_from(map).ok(), Some(segments));
});
