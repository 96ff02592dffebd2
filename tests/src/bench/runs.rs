//! chef-client runs against one server (issue #15): each run is what a converge asks of the
//! server once its client is registered: its node (GET), the dependency solver for a run list
//! of 15 cookbooks over a universe of 200 cookbooks × 10 versions, 40 cookbook files, and the
//! node saved again (PUT of ~100 KB). 8 clients run at once; the figures are runs per second
//! and the solver's latency among everything else.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::load::{self, CONNECTIONS, Prepared};
use super::report::Report;
use crate::chef::Chef;
use crate::process::ChefSyncServer;

const APPS: usize = 150;
const LIBS: usize = 50;
const VERSIONS: usize = 10;
const RUN_LIST: usize = 15;
const FILES_PER_RUN: usize = 40;

fn cookbook_name(i: usize) -> String {
    if i < APPS {
        format!("app{i}")
    } else {
        format!("lib{}", i - APPS)
    }
}

/// Dependencies of version `v` of cookbook `i`: each app needs two libraries, a library the
/// next one in its group of five; some constraints leave out the newest versions, so the
/// solver has to choose.
fn dependencies(i: usize, v: usize) -> Value {
    let mut deps = serde_json::Map::new();
    if i < APPS {
        deps.insert(format!("lib{}", i % LIBS), json!(">= 1.2"));
        deps.insert(format!("lib{}", (i * 7 + 3) % LIBS), json!("~> 1.0"));
    } else {
        let j = i - APPS;
        if j % 5 != 4 {
            let constraint = if v.is_multiple_of(3) {
                "< 1.8"
            } else {
                ">= 1.0"
            };
            deps.insert(format!("lib{}", j + 1), json!(constraint));
        }
    }
    Value::Object(deps)
}

/// The two files of every version of cookbook `i` (the same bytes in each version).
fn files(i: usize) -> Vec<(String, Vec<u8>)> {
    let name = cookbook_name(i);
    vec![
        (
            "recipes/default.rb".into(),
            format!("# {name}\npackage '{name}'\n").into_bytes(),
        ),
        (
            "templates/default/app.conf.erb".into(),
            format!("# {name} <%= node['fqdn'] %>\n{}\n", "x".repeat(2000)).into_bytes(),
        ),
    ]
}

async fn load_universe(chef: &Chef) {
    for i in 0..APPS + LIBS {
        let name = cookbook_name(i);
        let files = files(i);
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_slice()))
            .collect();
        // Commits the files (and makes 1.0.0, without dependencies, replaced below).
        chef.upload_cookbook(&name, "1.0.0", &refs, false).await;
        let manifest_1 = chef.get(&format!("/cookbooks/{name}/1.0.0")).await;
        let futures: Vec<_> = (0..VERSIONS)
            .map(|v| {
                let mut manifest = manifest_1.clone();
                let version = format!("1.{v}.0");
                manifest["name"] = json!(format!("{name}-{version}"));
                manifest["version"] = json!(version);
                manifest["metadata"]["version"] = json!(version);
                manifest["metadata"]["dependencies"] = dependencies(i, v);
                for segment in ["recipes", "templates"] {
                    if let Some(list) = manifest[segment].as_array_mut() {
                        for file in list {
                            if let Some(f) = file.as_object_mut() {
                                f.remove("url");
                            }
                        }
                    }
                }
                let chef = chef.clone();
                let name = name.clone();
                async move {
                    let (status, reply) = chef
                        .call(
                            "PUT",
                            &format!("/cookbooks/{name}/{version}"),
                            Some(&manifest),
                        )
                        .await;
                    assert!(
                        status == 200 || status == 201,
                        "{name} {version}: {status} {reply}"
                    );
                }
            })
            .collect();
        futures_util::future::join_all(futures).await;
    }
}

/// A node of about 100 KB.
fn node(name: &str, run_list: &[String]) -> Value {
    let padding: serde_json::Map<String, Value> = (0..900)
        .map(|k| (format!("attribute_{k:04}"), json!("v".repeat(90))))
        .collect();
    json!({
        "name": name, "chef_environment": "_default", "json_class": "Chef::Node",
        "chef_type": "node", "run_list": run_list,
        "normal": {"tags": []}, "default": {}, "override": {},
        "automatic": {"fqdn": format!("{name}.example.com"), "platform": "ubuntu", "ohai": padding},
    })
}

pub async fn run(report: &mut Report, dir: &Path, seconds: u64) {
    let server = ChefSyncServer::start(&dir.join("runs-sqlite"));
    let org = server.org_with_admin("bench", "bench");
    let key = Chef::key_file(&org.key);
    eprintln!(
        "runs bench: uploading {} cookbook versions",
        (APPS + LIBS) * VERSIONS
    );
    load_universe(&org.chef).await;

    let mut per_connection: Vec<Vec<(usize, Prepared)>> = Vec::new();
    for c in 0..CONNECTIONS {
        let name = format!("node-{c}");
        let run_list: Vec<String> = (0..RUN_LIST)
            .map(|k| format!("recipe[app{}]", (k * 10 + c) % APPS))
            .collect();
        let body = node(&name, &run_list);
        org.chef.must("POST", "/nodes", body.clone(), 201).await;
        let solve_body = json!({"run_list": run_list.iter()
            .map(|r| r.trim_start_matches("recipe[").trim_end_matches(']').to_owned())
            .collect::<Vec<_>>()});
        let solution = org
            .chef
            .must(
                "POST",
                "/environments/_default/cookbook_versions",
                solve_body.clone(),
                200,
            )
            .await;
        let urls: Vec<String> = solution
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
            .flat_map(|cb| ["recipes", "templates"].map(|s| cb[s].clone()))
            .flat_map(|list| list.as_array().cloned().unwrap_or_default())
            .filter_map(|f| f["url"].as_str().map(str::to_owned))
            .take(FILES_PER_RUN)
            .collect();
        assert_eq!(urls.len(), FILES_PER_RUN, "the run list needs enough files");
        let node_url = format!("{}/nodes/{name}", org.org_url);
        let solve_url = format!("{}/environments/_default/cookbook_versions", org.org_url);
        let mut requests = vec![
            (0, load::prepare(&key, "bench", "GET", &node_url, b"")),
            (
                1,
                load::prepare(
                    &key,
                    "bench",
                    "POST",
                    &solve_url,
                    solve_body.to_string().as_bytes(),
                ),
            ),
        ];
        for url in urls {
            requests.push((2, load::unsigned("GET", &url)));
        }
        requests.push((
            3,
            load::prepare(&key, "bench", "PUT", &node_url, body.to_string().as_bytes()),
        ));
        per_connection.push(requests);
    }
    let per_run = per_connection[0].len() as f64;
    let (all, kinds) = load::run_kinds(per_connection, Duration::from_secs(seconds), 4).await;
    let runs = all.requests as f64 / per_run / all.seconds;
    let [get, solve, file, put] = [&kinds[0], &kinds[1], &kinds[2], &kinds[3]];
    println!(
        "runs ours/sqlite: {runs:.1} runs/s ({:.0} requests/s, {} errors); depsolver p50 {:.1} ms p99 {:.1} ms; node GET p99 {:.1} ms, file p99 {:.1} ms, node PUT p99 {:.1} ms",
        all.rps, all.errors, solve.p50_ms, solve.p99_ms, get.p99_ms, file.p99_ms, put.p99_ms
    );
    report.add(
        "runs",
        "ours/sqlite chef-client runs (node GET, solve 15 of 200×10 cookbooks, 40 files, node PUT 100 KB), 8 clients",
        json!({"runs_per_s": runs, "requests_per_s": all.rps, "errors": all.errors,
               "depsolver_p50_ms": solve.p50_ms, "depsolver_p99_ms": solve.p99_ms,
               "node_get_p99_ms": get.p99_ms, "file_p99_ms": file.p99_ms, "node_put_p99_ms": put.p99_ms}),
        Some(("≥ 100 runs/s; depsolver p99 ≤ 20 ms", runs >= 100.0 && solve.p99_ms <= 20.0)),
    );
}
