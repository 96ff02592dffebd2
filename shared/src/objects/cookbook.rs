//! Cookbook version manifests, in the API v0/v1 segment form and the API v2 `all_files` form.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{JsonMap, ObjectError};

/// The segments of the v0/v1 form, in the order Chef lists them.
pub const SEGMENTS: [&str; 9] = [
    "attributes",
    "definitions",
    "files",
    "libraries",
    "providers",
    "recipes",
    "resources",
    "root_files",
    "templates",
];

const ROOT_FILES: &str = "root_files";

/// One file of a cookbook version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CookbookFile {
    /// File name (segment form) or `segment/name` (all_files form).
    pub name: String,
    /// Path inside the cookbook, e.g. `templates/default/foo.erb`.
    pub path: String,
    /// MD5 of the content, 32 hex digits.
    pub checksum: String,
    /// Specificity, usually `default`.
    pub specificity: String,
    /// Download URL, present in server responses only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Fields this type does not model.
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// The file list in one of its two shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookbookFiles {
    /// API v0/v1: files grouped by segment. Only the segments present in the JSON are kept.
    Segments(BTreeMap<String, Vec<CookbookFile>>),
    /// API v2: one list whose names are `segment/filename`.
    AllFiles(Vec<CookbookFile>),
}

/// A cookbook version manifest (`/cookbooks/NAME/VERSION`).
#[derive(Debug, Clone, PartialEq)]
pub struct CookbookVersion {
    /// `NAME-VERSION`.
    pub name: String,
    /// The cookbook's name.
    pub cookbook_name: String,
    /// Top-level `version`, when sent (the authoritative one is `metadata.version`).
    pub version: Option<String>,
    /// Always `Chef::CookbookVersion`.
    pub json_class: String,
    /// Always `cookbook_version`.
    pub chef_type: String,
    /// `frozen?`.
    pub frozen: bool,
    /// The metadata object (name, version, dependencies, …).
    pub metadata: JsonMap,
    /// The files.
    pub files: CookbookFiles,
    /// Top-level fields this type does not model.
    pub extra: JsonMap,
}

fn take_string(map: &mut JsonMap, field: &str) -> Result<Option<String>, ObjectError> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ObjectError::Field {
            field: field.into(),
            problem: "must be a string",
        }),
    }
}

fn take_files(map: &mut JsonMap, field: &str) -> Result<Option<Vec<CookbookFile>>, ObjectError> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Array(_)) => {
            let files: Vec<CookbookFile> =
                serde_json::from_value(v).map_err(|e| ObjectError::Field {
                    field: field.into(),
                    problem: if e.to_string().contains("missing field") {
                        "has a file entry without name, path, checksum or specificity"
                    } else {
                        "must be a list of file entries with string name, path, checksum and specificity"
                    },
                })?;
            // An empty name or path names no file; in the all_files form it would also turn a
            // segment prefix into a name of its own (found by fuzzing).
            if files.iter().any(|f| f.name.is_empty() || f.path.is_empty()) {
                return Err(ObjectError::Field {
                    field: field.into(),
                    problem: "has a file entry with an empty name or path",
                });
            }
            Ok(Some(files))
        }
        Some(_) => Err(ObjectError::Field {
            field: field.into(),
            problem: "must be a list",
        }),
    }
}

impl TryFrom<JsonMap> for CookbookVersion {
    type Error = ObjectError;

    fn try_from(mut map: JsonMap) -> Result<Self, ObjectError> {
        let name = take_string(&mut map, "name")?.unwrap_or_default();
        let cookbook_name = take_string(&mut map, "cookbook_name")?.unwrap_or_default();
        let version = take_string(&mut map, "version")?;
        let json_class =
            take_string(&mut map, "json_class")?.unwrap_or_else(|| "Chef::CookbookVersion".into());
        let chef_type =
            take_string(&mut map, "chef_type")?.unwrap_or_else(|| "cookbook_version".into());
        let frozen = match map.remove("frozen?") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(_) => {
                return Err(ObjectError::Field {
                    field: "frozen?".into(),
                    problem: "must be true or false",
                });
            }
        };
        let metadata = match map.remove("metadata") {
            None | Some(Value::Null) => JsonMap::new(),
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(ObjectError::Field {
                    field: "metadata".into(),
                    problem: "must be an object",
                });
            }
        };
        let all_files = take_files(&mut map, "all_files")?;
        let mut segments = BTreeMap::new();
        for segment in SEGMENTS {
            if let Some(files) = take_files(&mut map, segment)? {
                segments.insert(segment.to_owned(), files);
            }
        }
        let files = match all_files {
            Some(all) if segments.is_empty() => CookbookFiles::AllFiles(all),
            Some(_) => {
                return Err(ObjectError::Field {
                    field: "all_files".into(),
                    problem: "cannot be combined with segment lists (recipes, files, …)",
                });
            }
            None => CookbookFiles::Segments(segments),
        };
        Ok(CookbookVersion {
            name,
            cookbook_name,
            version,
            json_class,
            chef_type,
            frozen,
            metadata,
            files,
            extra: map,
        })
    }
}

impl From<CookbookVersion> for JsonMap {
    fn from(cb: CookbookVersion) -> JsonMap {
        let mut map = JsonMap::new();
        map.insert("name".into(), Value::String(cb.name));
        map.insert("cookbook_name".into(), Value::String(cb.cookbook_name));
        if let Some(v) = cb.version {
            map.insert("version".into(), Value::String(v));
        }
        map.insert("json_class".into(), Value::String(cb.json_class));
        map.insert("chef_type".into(), Value::String(cb.chef_type));
        map.insert("frozen?".into(), Value::Bool(cb.frozen));
        map.insert("metadata".into(), Value::Object(cb.metadata));
        let files_value = |files: Vec<CookbookFile>| {
            Value::Array(
                files
                    .into_iter()
                    .map(|f| serde_json::to_value(f).unwrap_or(Value::Null))
                    .collect(),
            )
        };
        match cb.files {
            CookbookFiles::AllFiles(files) => {
                map.insert("all_files".into(), files_value(files));
            }
            CookbookFiles::Segments(segments) => {
                for (segment, files) in segments {
                    map.insert(segment, files_value(files));
                }
            }
        }
        map.extend(cb.extra);
        map
    }
}

impl Serialize for CookbookVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        JsonMap::from(self.clone()).serialize(s)
    }
}

impl<'de> Deserialize<'de> for CookbookVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = JsonMap::deserialize(d)?;
        CookbookVersion::try_from(map).map_err(serde::de::Error::custom)
    }
}

impl CookbookVersion {
    /// `metadata.version`, the version the manifest claims.
    pub fn metadata_version(&self) -> Option<&str> {
        self.metadata.get("version").and_then(Value::as_str)
    }

    /// Every file, whatever the form.
    pub fn all_file_entries(&self) -> Vec<&CookbookFile> {
        match &self.files {
            CookbookFiles::AllFiles(files) => files.iter().collect(),
            CookbookFiles::Segments(segments) => segments.values().flatten().collect(),
        }
    }

    /// The distinct checksums of all files.
    pub fn checksums(&self) -> BTreeSet<String> {
        self.all_file_entries()
            .into_iter()
            .map(|f| f.checksum.to_ascii_lowercase())
            .collect()
    }

    /// Removes the server-specific download URLs (they must not be sent back in a PUT).
    pub fn strip_urls(&mut self) {
        let strip = |files: &mut Vec<CookbookFile>| files.iter_mut().for_each(|f| f.url = None);
        match &mut self.files {
            CookbookFiles::AllFiles(files) => strip(files),
            CookbookFiles::Segments(segments) => segments.values_mut().for_each(strip),
        }
    }

    /// Writes every checksum in lower case, the form files are stored under.
    pub fn lowercase_checksums(&mut self) {
        let lower = |files: &mut Vec<CookbookFile>| {
            files
                .iter_mut()
                .for_each(|f| f.checksum = f.checksum.to_ascii_lowercase())
        };
        match &mut self.files {
            CookbookFiles::AllFiles(files) => lower(files),
            CookbookFiles::Segments(segments) => segments.values_mut().for_each(lower),
        }
    }

    /// The same manifest in the API v2 `all_files` form.
    pub fn to_all_files(&self) -> CookbookVersion {
        let files = match &self.files {
            CookbookFiles::AllFiles(files) => files.clone(),
            CookbookFiles::Segments(segments) => SEGMENTS
                .iter()
                .filter_map(|s| segments.get(*s).map(|files| (s, files)))
                .flat_map(|(segment, files)| {
                    files.iter().map(move |f| CookbookFile {
                        name: format!("{segment}/{}", f.name),
                        ..f.clone()
                    })
                })
                .collect(),
        };
        CookbookVersion {
            files: CookbookFiles::AllFiles(files),
            ..self.clone()
        }
    }

    /// The same manifest in the API v0/v1 segment form, as Chef converts it: a segment-form
    /// manifest stays as it is (only the segments it has), an `all_files` one gets all nine
    /// segments. An `all_files` name whose prefix is not a segment goes to `root_files`
    /// unchanged.
    pub fn to_segments(&self) -> CookbookVersion {
        let mut segments: BTreeMap<String, Vec<CookbookFile>> = SEGMENTS
            .iter()
            .map(|s| ((*s).to_owned(), Vec::new()))
            .collect();
        match &self.files {
            CookbookFiles::Segments(_) => return self.clone(),
            CookbookFiles::AllFiles(files) => {
                for f in files {
                    let (segment, name) = match f.name.split_once('/') {
                        Some((prefix, rest)) if SEGMENTS.contains(&prefix) && !rest.is_empty() => {
                            (prefix, rest)
                        }
                        _ => (ROOT_FILES, f.name.as_str()),
                    };
                    segments
                        .entry(segment.to_owned())
                        .or_default()
                        .push(CookbookFile {
                            name: name.to_owned(),
                            ..f.clone()
                        });
                }
            }
        }
        CookbookVersion {
            files: CookbookFiles::Segments(segments),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn segment_form() -> Value {
        json!({
            "name": "nginx-1.2.3",
            "cookbook_name": "nginx",
            "version": "1.2.3",
            "json_class": "Chef::CookbookVersion",
            "chef_type": "cookbook_version",
            "frozen?": true,
            "metadata": {"name": "nginx", "version": "1.2.3", "dependencies": {"apt": ">= 0.0.0"}},
            "attributes": [],
            "definitions": [],
            "files": [],
            "libraries": [],
            "providers": [],
            "recipes": [{"name": "default.rb", "path": "recipes/default.rb", "checksum": "0123456789abcdef0123456789abcdef", "specificity": "default", "url": "http://x/a"}],
            "resources": [],
            "root_files": [{"name": "metadata.rb", "path": "metadata.rb", "checksum": "fedcba9876543210fedcba9876543210", "specificity": "default"}],
            "templates": [{"name": "site.erb", "path": "templates/default/site.erb", "checksum": "00000000000000000000000000000000", "specificity": "default", "x_extra": 1}],
            "x_top": "kept"
        })
    }

    #[test]
    fn segment_form_round_trips() {
        let cb: CookbookVersion = serde_json::from_value(segment_form()).unwrap();
        assert!(cb.frozen);
        assert_eq!(cb.metadata_version(), Some("1.2.3"));
        assert_eq!(cb.checksums().len(), 3);
        assert_eq!(serde_json::to_value(&cb).unwrap(), segment_form());
    }

    #[test]
    fn converts_between_forms() {
        let cb: CookbookVersion = serde_json::from_value(segment_form()).unwrap();
        let v2 = cb.to_all_files();
        let CookbookFiles::AllFiles(files) = &v2.files else {
            panic!("not all_files")
        };
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "recipes/default.rb",
                "root_files/metadata.rb",
                "templates/site.erb"
            ]
        );
        let json = serde_json::to_value(&v2).unwrap();
        assert!(json.get("recipes").is_none());
        assert_eq!(json["x_top"], "kept");
        assert_eq!(v2.to_segments(), cb);
    }

    #[test]
    fn all_files_without_known_prefix_goes_to_root_files() {
        let cb: CookbookVersion = serde_json::from_value(json!({
            "name": "a-1.0.0", "cookbook_name": "a", "metadata": {"version": "1.0.0"},
            "all_files": [
                {"name": "README.md", "path": "README.md", "checksum": "0123456789abcdef0123456789abcdef", "specificity": "default"},
                {"name": "spec/x_spec.rb", "path": "spec/x_spec.rb", "checksum": "0123456789abcdef0123456789abcdee", "specificity": "default"}
            ]
        }))
        .unwrap();
        let CookbookFiles::Segments(segments) = cb.to_segments().files else {
            panic!()
        };
        let root: Vec<&str> = segments["root_files"]
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(root, ["README.md", "spec/x_spec.rb"]);
        assert_eq!(segments.len(), 9);
    }

    #[test]
    fn strips_urls() {
        let mut cb: CookbookVersion = serde_json::from_value(segment_form()).unwrap();
        cb.strip_urls();
        assert!(cb.all_file_entries().iter().all(|f| f.url.is_none()));
    }

    #[test]
    fn rejects_malformed_manifests() {
        let bad = [
            json!({"name": "a-1", "all_files": [], "recipes": []}),
            json!({"name": "a-1", "recipes": [{"name": "x"}]}),
            json!({"name": "a-1", "recipes": "x"}),
            json!({"name": "a-1", "frozen?": "yes"}),
            json!({"name": "a-1", "metadata": []}),
            json!({"name": 1}),
            json!({"name": "a-1", "root_files": [{"name": "", "path": "README.md", "checksum": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "specificity": "default"}]}),
            json!({"name": "a-1", "all_files": [{"name": "recipes/a.rb", "path": "", "checksum": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "specificity": "default"}]}),
        ];
        for b in bad {
            assert!(
                serde_json::from_value::<CookbookVersion>(b.clone()).is_err(),
                "{b}"
            );
        }
    }
}
