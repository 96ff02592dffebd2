//! A small signed Chef API client for tests (independent of chef-syncd's own client), plus
//! the knife-style cookbook upload and a full, exact snapshot of an org for comparisons.

use std::collections::BTreeMap;

use base64::Engine;
use chef_sync_shared::PrivateKey;
use chef_sync_shared::signing::{self, RequestToSign, SigningVersion, sign_request};
use md5::{Digest, Md5};
use serde_json::{Value, json};

/// Signs requests as one actor against one org URL.
#[derive(Debug, Clone)]
pub struct Chef {
    /// `http://host/organizations/ORG`.
    pub org_url: String,
    /// Actor name.
    pub user: String,
    key: std::sync::Arc<PrivateKey>,
    http: reqwest::Client,
    version: SigningVersion,
}

impl Chef {
    /// A client for `org_url` signing as `user`.
    pub fn new(org_url: &str, user: &str, key: PrivateKey) -> Chef {
        Chef {
            org_url: org_url.trim_end_matches('/').to_owned(),
            user: user.to_owned(),
            key: std::sync::Arc::new(key),
            http: reqwest::Client::new(),
            version: SigningVersion::V1_1,
        }
    }

    /// The same client signing with `version` (1.1 by default, as knife does; the benchmarks
    /// sign with 1.3 like chef-syncd, so a load costs the generator what it costs the daemon).
    pub fn signing(mut self, version: SigningVersion) -> Chef {
        self.version = version;
        self
    }

    /// Reads a PEM key file.
    pub fn key_file(path: &std::path::Path) -> PrivateKey {
        PrivateKey::from_pem(&std::fs::read_to_string(path).expect("key file")).expect("key")
    }

    /// A signed request to `org_url + rel` (or to `rel` itself when it is absolute).
    pub async fn call(&self, method: &str, rel: &str, body: Option<&Value>) -> (u16, Value) {
        match self.try_call(method, rel, body).await {
            Ok(answer) => answer,
            Err(e) => panic!("{method} {rel}: {e}"),
        }
    }

    /// Like [`Chef::call`], but a connection error (a server being killed) is an `Err`.
    pub async fn try_call(
        &self,
        method: &str,
        rel: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let url = if rel.starts_with("http") {
            rel.to_owned()
        } else {
            format!("{}{rel}", self.org_url)
        };
        let parsed = reqwest::Url::parse(&url).expect("url");
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let headers = sign_request(
            &self.key,
            &RequestToSign {
                version: self.version,
                method,
                path: parsed.path(),
                body: signing::Body::Bytes(bytes.as_bytes()),
                user_id: &self.user,
                timestamp: chrono::Utc::now(),
                server_api_version: "1",
            },
        )
        .expect("sign");
        let mut req = self
            .http
            .request(method.parse().expect("method"), parsed)
            .header("content-type", "application/json")
            .body(bytes);
        for (k, v) in headers.iter() {
            req = req.header(k, v);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// GET that must succeed.
    pub async fn get(&self, rel: &str) -> Value {
        let (status, body) = self.call("GET", rel, None).await;
        assert_eq!(status, 200, "GET {rel}: {body}");
        body
    }

    /// A write that must answer `expected`.
    pub async fn must(&self, method: &str, rel: &str, body: Value, expected: u16) -> Value {
        let (status, reply) = self.call(method, rel, Some(&body)).await;
        assert_eq!(status, expected, "{method} {rel}: {reply}");
        reply
    }

    /// Uploads a cookbook version the way knife does: sandbox, file PUTs with Content-MD5,
    /// commit, manifest PUT.
    pub async fn upload_cookbook(
        &self,
        name: &str,
        version: &str,
        files: &[(&str, &[u8])],
        frozen: bool,
    ) {
        let bytes: Vec<&[u8]> = files.iter().map(|(_, b)| *b).collect();
        self.upload_files(&bytes).await;
        let mut manifest = json!({
            "name": format!("{name}-{version}"), "cookbook_name": name, "version": version,
            "json_class": "Chef::CookbookVersion", "chef_type": "cookbook_version", "frozen?": frozen,
            "metadata": {"name": name, "version": version, "dependencies": {}},
        });
        add_segments(&mut manifest, files);
        let (status, reply) = self
            .call(
                "PUT",
                &format!("/cookbooks/{name}/{version}"),
                Some(&manifest),
            )
            .await;
        assert!(
            status == 200 || status == 201,
            "cookbook PUT: {status} {reply}"
        );
    }

    /// Uploads file contents through a sandbox (what the server lacks) and commits it.
    pub async fn upload_files(&self, files: &[&[u8]]) {
        let md5 = |b: &[u8]| hex::encode(Md5::digest(b));
        let checksums: serde_json::Map<String, Value> =
            files.iter().map(|b| (md5(b), Value::Null)).collect();
        let sandbox = self
            .must("POST", "/sandboxes", json!({ "checksums": checksums }), 201)
            .await;
        for bytes in files {
            let entry = &sandbox["checksums"][md5(bytes)];
            if entry["needs_upload"] == true {
                let url = entry["url"].as_str().expect("upload url");
                let resp = self
                    .http
                    .put(url)
                    .header("content-type", "application/x-binary")
                    .header(
                        "content-md5",
                        base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes)),
                    )
                    .body(bytes.to_vec())
                    .send()
                    .await
                    .expect("upload");
                assert!(resp.status().is_success(), "upload: {}", resp.status());
            }
        }
        let id = sandbox["sandbox_id"].as_str().expect("sandbox id");
        self.must(
            "PUT",
            &format!("/sandboxes/{id}"),
            json!({"is_completed": true}),
            200,
        )
        .await;
    }

    /// What `chef push GROUP` does: uploads the artifacts the server lacks (files through a
    /// sandbox, then the artifact), then assigns `revision` of `policy` to `group`.
    pub async fn push_policy(
        &self,
        group: &str,
        policy: &str,
        revision: &str,
        artifacts: &[Artifact<'_>],
    ) {
        let mut locks = serde_json::Map::new();
        for a in artifacts {
            let rel = format!("/cookbook_artifacts/{}/{}", a.name, a.identifier);
            if self.call("GET", &rel, None).await.0 == 404 {
                let bytes: Vec<&[u8]> = a.files.iter().map(|(_, b)| *b).collect();
                self.upload_files(&bytes).await;
                let mut manifest = json!({
                    "name": a.name, "identifier": a.identifier, "version": a.version,
                    "chef_type": "cookbook_version", "frozen?": false,
                    "metadata": {"name": a.name, "version": a.version,
                                 "providing": {format!("{}::default", a.name): ">= 0.0.0"}},
                });
                add_segments(&mut manifest, a.files);
                self.must("PUT", &rel, manifest, 201).await;
            }
            locks.insert(
                a.name.to_owned(),
                json!({"identifier": a.identifier, "version": a.version,
                       "dotted_decimal_identifier": "1.2.3", "source_options": {"path": "."},
                       "cache_key": null}),
            );
        }
        let run_list: Vec<String> = artifacts
            .iter()
            .map(|a| format!("recipe[{}::default]", a.name))
            .collect();
        let document = json!({
            "revision_id": revision, "name": policy, "run_list": run_list,
            "named_run_lists": {}, "cookbook_locks": locks,
            "default_attributes": {}, "override_attributes": {"pushed_to": group},
            "solution_dependencies": {"Policyfile": [], "dependencies": {}},
        });
        let (status, reply) = self
            .call(
                "PUT",
                &format!("/policy_groups/{group}/policies/{policy}"),
                Some(&document),
            )
            .await;
        assert!(status == 200 || status == 201, "push: {status} {reply}");
    }

    async fn names(&self, rel: &str) -> Vec<String> {
        self.get(rel)
            .await
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every replicated object's JSON (cookbook manifests without URLs) and every cookbook
    /// file's bytes, keyed by path.
    pub async fn snapshot(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        for role in self.names("/roles").await {
            out.insert(
                format!("/roles/{role}"),
                self.get(&format!("/roles/{role}")).await,
            );
        }
        for env in self.names("/environments").await {
            out.insert(
                format!("/environments/{env}"),
                self.get(&format!("/environments/{env}")).await,
            );
        }
        for bag in self.names("/data").await {
            out.insert(format!("/data/{bag}"), json!("bag"));
            for item in self.names(&format!("/data/{bag}")).await {
                let rel = format!("/data/{bag}/{item}");
                out.insert(rel.clone(), self.get(&rel).await);
            }
        }
        let cookbooks = self.get("/cookbooks?num_versions=all").await;
        for (name, entry) in cookbooks.as_object().cloned().unwrap_or_default() {
            for v in entry["versions"].as_array().cloned().unwrap_or_default() {
                let version = v["version"].as_str().unwrap_or_default().to_owned();
                let rel = format!("/cookbooks/{name}/{version}");
                let mut manifest = self.get(&rel).await;
                self.take_files(&rel, &mut manifest, &mut out).await;
                out.insert(rel, manifest);
            }
        }
        self.snapshot_policyfiles(&mut out).await;
        out
    }

    /// Moves a manifest's file URLs into `out` as the files' bytes, keyed `REL#SEGMENT/PATH`.
    async fn take_files(&self, rel: &str, manifest: &mut Value, out: &mut BTreeMap<String, Value>) {
        for (segment, files) in manifest.as_object_mut().into_iter().flatten() {
            let Some(files) = files.as_array_mut() else {
                continue;
            };
            for file in files {
                let url = file["url"].as_str().unwrap_or_default().to_owned();
                let bytes = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .expect("download")
                    .bytes()
                    .await
                    .expect("bytes");
                out.insert(
                    format!(
                        "{rel}#{segment}/{}",
                        file["path"].as_str().unwrap_or_default()
                    ),
                    // Exact bytes: a lossy text form would hide binary differences.
                    json!(base64::engine::general_purpose::STANDARD.encode(&bytes)),
                );
                file.as_object_mut().map(|f| f.remove("url"));
            }
        }
    }

    /// Policies' revisions, groups with their assignments and what each serves, cookbook
    /// artifacts with their files; nothing from a server without Policyfile endpoints.
    async fn snapshot_policyfiles(&self, out: &mut BTreeMap<String, Value>) {
        let listing = |rel: &'static str| async move {
            match self.call("GET", rel, None).await {
                (200, Value::Object(map)) => map,
                _ => serde_json::Map::new(),
            }
        };
        for (policy, entry) in listing("/policies").await {
            for revision in entry["revisions"].as_object().into_iter().flatten() {
                let rel = format!("/policies/{policy}/revisions/{}", revision.0);
                let mut doc = self.get(&rel).await;
                // Groups in the order they were last assigned: the replica's assignments
                // of one batch run concurrently, so only the set is compared.
                if let Some(groups) = doc["policy_group_list"].as_array_mut() {
                    groups.sort_by_key(|g| g.to_string());
                }
                out.insert(rel, doc);
            }
        }
        for (group, entry) in listing("/policy_groups").await {
            out.insert(format!("/policy_groups/{group}"), entry["policies"].clone());
            for policy in entry["policies"].as_object().into_iter().flatten() {
                let rel = format!("/policy_groups/{group}/policies/{}", policy.0);
                out.insert(rel.clone(), self.get(&rel).await);
            }
        }
        for (name, entry) in listing("/cookbook_artifacts").await {
            for version in entry["versions"].as_array().into_iter().flatten() {
                let id = version["identifier"].as_str().unwrap_or_default();
                let rel = format!("/cookbook_artifacts/{name}/{id}");
                let mut manifest = self.get(&rel).await;
                self.take_files(&rel, &mut manifest, out).await;
                out.insert(rel, manifest);
            }
        }
    }
}

/// One cookbook artifact of a `chef push`: files as `(path, bytes)`.
#[derive(Debug, Clone, Copy)]
pub struct Artifact<'a> {
    /// Cookbook name.
    pub name: &'a str,
    /// Content identifier.
    pub identifier: &'a str,
    /// Cookbook version.
    pub version: &'a str,
    /// Its files.
    pub files: &'a [(&'a str, &'a [u8])],
}

/// Puts `files` into `manifest` as segment lists (`recipes/x.rb` under `recipes`, …).
fn add_segments(manifest: &mut Value, files: &[(&str, &[u8])]) {
    let md5 = |b: &[u8]| hex::encode(Md5::digest(b));
    let mut segments: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (path, bytes) in files {
        let (segment, file) = match path.split_once('/') {
            Some((s, f))
                if ["recipes", "templates", "files", "attributes", "libraries"].contains(&s) =>
            {
                (s, f)
            }
            _ => ("root_files", *path),
        };
        segments.entry(segment.to_owned()).or_default().push(json!({
            "name": file.rsplit('/').next().unwrap_or(file), "path": path,
            "checksum": md5(bytes), "specificity": "default",
        }));
    }
    for (segment, list) in segments {
        manifest[segment] = Value::Array(list);
    }
}

/// Waits until `replica`'s snapshot equals `primary`'s (every object's JSON, every cookbook
/// file's bytes), polling until `within` has passed; then panics naming the paths that differ
/// on each side and what `context` says (the daemon's status, say).
pub async fn converge(
    primary: &Chef,
    replica: &Chef,
    what: &str,
    within: std::time::Duration,
    context: impl Fn() -> String,
) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let p = primary.snapshot().await;
        let q = replica.snapshot().await;
        if p == q {
            let files = p.keys().filter(|k| k.contains('#')).count();
            eprintln!(
                "{what}: exact copy, {} objects and {files} cookbook files compared",
                p.len() - files
            );
            return;
        }
        if std::time::Instant::now() > deadline {
            let differing = |a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>| {
                a.iter()
                    .filter(|(k, v)| b.get(*k) != Some(v))
                    .map(|(k, _)| k.clone())
                    .collect::<Vec<_>>()
            };
            panic!(
                "{what}: replica did not converge; differing on primary side {:?}, replica side {:?}; {}",
                differing(&p, &q),
                differing(&q, &p),
                context()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
