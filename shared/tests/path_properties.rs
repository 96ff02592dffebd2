//! Property tests for request-path canonicalisation and the object path grammar.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use chef_sync_shared::ObjectPath;
use chef_sync_shared::path::{NameKind, validate_name};
use chef_sync_shared::signing::canonical_path;
use proptest::prelude::*;

fn name(colon: bool) -> impl Strategy<Value = String> {
    let class = if colon {
        "[A-Za-z0-9._:-]{1,40}"
    } else {
        "[A-Za-z0-9._-]{1,40}"
    };
    proptest::string::string_regex(class)
        .unwrap()
        .prop_filter("dot segments", |s| s != "." && s != "..")
}

fn version() -> impl Strategy<Value = String> {
    proptest::collection::vec(0u64..=i64::MAX as u64, 1..=3).prop_map(|parts| {
        parts
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".")
    })
}

fn object_path() -> impl Strategy<Value = String> {
    prop_oneof![
        name(true).prop_map(|n| format!("/roles/{n}")),
        name(false).prop_map(|n| format!("/environments/{n}")),
        name(true).prop_map(|n| format!("/data/{n}")),
        (name(true), name(true)).prop_map(|(b, i)| format!("/data/{b}/{i}")),
        (name(false), version()).prop_map(|(c, v)| format!("/cookbooks/{c}/{v}")),
    ]
}

proptest! {
    #[test]
    fn canonical_path_is_idempotent_and_clean(path in "[/a-z?=&.]{0,40}") {
        let once = canonical_path(&path);
        prop_assert_eq!(canonical_path(&once), once.clone());
        prop_assert!(once.starts_with('/') || !path.split('?').next().unwrap_or("").starts_with('/'));
        prop_assert!(!once.contains("//"));
        prop_assert!(once == "/" || !once.ends_with('/'));
        prop_assert!(!once.contains('?'));
    }

    #[test]
    fn canonical_path_ignores_extra_slashes(segments in proptest::collection::vec("[a-z0-9]{1,8}", 1..6), extra in 1usize..4) {
        let plain = format!("/{}", segments.join("/"));
        let sep = "/".repeat(extra);
        let noisy = format!("{sep}{}{sep}", segments.join(&sep));
        prop_assert_eq!(canonical_path(&noisy), plain);
    }

    #[test]
    fn valid_paths_round_trip(path in object_path()) {
        let parsed: ObjectPath = path.parse().unwrap();
        let shown = parsed.to_string();
        // Cookbook versions are normalised to x.y.z; everything else is shown as written.
        let reparsed: ObjectPath = shown.parse().unwrap();
        prop_assert_eq!(&reparsed, &parsed);
        if !path.starts_with("/cookbooks/") {
            prop_assert_eq!(shown, path);
        }
    }

    #[test]
    fn inserting_a_bad_character_breaks_any_path(path in object_path(), bad in "[ %#?\u{e9}\u{0}\n]", at in 1usize..1000) {
        // Insert the character somewhere inside the last segment. (A "/" could form another valid
        // path, e.g. a bag name becoming bag/item, so it is covered by the unit tests instead.)
        let last_start = path.rfind('/').unwrap() + 1;
        let pos = last_start + at % (path.len() - last_start + 1);
        let mut broken = path.clone();
        broken.insert_str(pos, &bad);
        prop_assert!(broken.parse::<ObjectPath>().is_err(), "{} parsed", broken);
    }

    #[test]
    fn environment_and_cookbook_names_never_contain_colons(n in name(true)) {
        let has_colon = n.contains(':');
        prop_assert_eq!(validate_name(NameKind::Environment, &n).is_err(), has_colon);
        prop_assert_eq!(validate_name(NameKind::Cookbook, &n).is_err(), has_colon);
        prop_assert!(validate_name(NameKind::Role, &n).is_ok());
    }

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,60}") {
        let _ = s.parse::<ObjectPath>();
        let _ = canonical_path(&s);
    }

    #[test]
    fn out_of_range_versions_are_rejected(big in (i64::MAX as u64 + 1)..=u64::MAX) {
        let path = format!("/cookbooks/x/1.{big}");
        prop_assert!(path.parse::<ObjectPath>().is_err());
    }
}
