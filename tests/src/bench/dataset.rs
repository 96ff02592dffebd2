//! The bootstrap data set, generated deterministically and written through the API.

use serde_json::json;

use crate::chef::Chef;

/// Deterministic bytes for a cookbook file (a small linear congruential generator).
pub fn file_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            b'a' + ((x >> 33) % 26) as u8
        })
        .collect()
}

/// The data set, scaled: roles, environments, bags × items, cookbook versions × files.
#[derive(Debug)]
pub struct DataSet {
    /// Roles.
    pub roles: usize,
    /// Environments besides `_default`.
    pub environments: usize,
    /// Data bags.
    pub bags: usize,
    /// Items in each bag.
    pub items_per_bag: usize,
    /// Cookbook versions (ten per cookbook name).
    pub cookbook_versions: usize,
    /// Files in each version, all different.
    pub files_per_version: usize,
    /// Bytes of each file.
    pub file_bytes: usize,
}

impl DataSet {
    /// `scale` of the set (1.0: 10,000 roles, 2,000 environments, …).
    pub fn scaled(scale: f64) -> DataSet {
        let n = |full: f64| ((full * scale).round() as usize).max(1);
        DataSet {
            roles: n(10_000.0),
            environments: n(2_000.0),
            bags: n(100.0),
            items_per_bag: 50,
            cookbook_versions: n(200.0),
            files_per_version: 20,
            file_bytes: 2_500,
        }
    }

    /// Objects a full copy writes (bags and items counted, files not).
    pub fn objects(&self) -> usize {
        self.roles
            + self.environments
            + self.bags * (1 + self.items_per_bag)
            + self.cookbook_versions
    }

    /// Writes the data set through the API, 8 requests at a time.
    pub async fn load(&self, chef: &Chef) {
        use futures_util::StreamExt;
        let mut writes: Vec<(String, serde_json::Value)> = Vec::new();
        for i in 0..self.roles {
            writes.push(("/roles".into(), json!({"name": format!("role{i:05}"), "run_list": ["recipe[base]"], "default_attributes": {"i": i}})));
        }
        for i in 0..self.environments {
            writes.push((
                "/environments".into(),
                json!({"name": format!("env{i:05}"), "cookbook_versions": {"base": ">= 1.0"}}),
            ));
        }
        for b in 0..self.bags {
            writes.push(("/data".into(), json!({"name": format!("bag{b:03}")})));
        }
        futures_util::stream::iter(writes)
            .for_each_concurrent(8, |(rel, body)| async move {
                chef.must("POST", &rel, body, 201).await;
            })
            .await;
        let mut items = Vec::new();
        for b in 0..self.bags {
            for i in 0..self.items_per_bag {
                items.push((format!("/data/bag{b:03}"), json!({"id": format!("item{i:03}"), "value": i, "secret": {"encrypted_data": "x", "iv": "y", "version": 3}})));
            }
        }
        futures_util::stream::iter(items)
            .for_each_concurrent(8, |(rel, body)| async move {
                chef.must("POST", &rel, body, 201).await;
            })
            .await;
        let versions: Vec<usize> = (0..self.cookbook_versions).collect();
        futures_util::stream::iter(versions)
            .for_each_concurrent(4, |v| async move {
                let files: Vec<(String, Vec<u8>)> = (0..self.files_per_version)
                    .map(|f| {
                        (
                            format!("files/default/f{f:02}.txt"),
                            file_bytes((v * 1000 + f) as u64, self.file_bytes),
                        )
                    })
                    .collect();
                let refs: Vec<(&str, &[u8])> = files
                    .iter()
                    .map(|(p, b)| (p.as_str(), b.as_slice()))
                    .collect();
                chef.upload_cookbook(
                    &format!("cb{:02}", v / 10),
                    &format!("1.0.{}", v % 10),
                    &refs,
                    false,
                )
                .await;
            })
            .await;
    }
}
