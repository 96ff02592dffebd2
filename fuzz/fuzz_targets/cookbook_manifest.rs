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

/// The manifest without its empty segment lists: Chef answers an all_files upload in the
/// segment form with all nine segments and a segment upload with those it was sent; the files
/// are the same either way.
fn without_empty_segments(mut cookbook: CookbookVersion) -> CookbookVersion {
    if let CookbookFiles::Segments(segments) = &mut cookbook.files {
        segments.retain(|_, files| !files.is_empty());
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
    // The segment form (API v1) survives a trip through all_files with the same files in the
    // same segments (empty segments may appear, as in Chef's answers).
    assert_eq!(
        without_empty_segments(segments.to_all_files().to_segments()),
        without_empty_segments(segments.clone())
    );
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
