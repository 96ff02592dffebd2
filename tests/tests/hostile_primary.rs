//! chef-syncd and chef-sync-ctl against a hostile primary (the scripted mock, which verifies
//! every signature) and hosts it names: the sync user's signature never leaves the servers
//! configured, redirects are not followed, a flood of bad feed entries cannot fill the disk or
//! forge log lines or reach the operator's terminal, `/readyz` floods do not become request
//! floods, and a sync key others can read stops the daemon.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use chef_sync_shared::PrivateKey;
use chef_sync_tests::chef::Chef;
use chef_sync_tests::mock_primary::{Feed, MockPrimary, push_entry};
use chef_sync_tests::process::{ChefSyncServer, Process, bin, ctl, syncd};
use md5::{Digest, Md5};
use serde_json::{Value, json};

/// One request a [`Recorder`] received: method, path and header names.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<String>,
}

/// A listener on 127.0.0.1 that records every request and answers 200 with `body`.
#[derive(Debug, Clone)]
struct Recorder {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    async fn start(body: &'static [u8]) -> Recorder {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            log.lock().unwrap().push(Seen {
                method: req.method().to_string(),
                path: req.uri().path().to_owned(),
                headers: req.headers().keys().map(|k| k.to_string()).collect(),
            });
            async move { body }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Recorder { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Writes a private key with `mode`.
fn write_key(path: &Path, mode: u32) -> PrivateKey {
    let key = PrivateKey::generate(2048).unwrap();
    std::fs::write(path, key.to_pkcs1_pem().unwrap()).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    key
}

fn run_ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The mock primary, a real replica server and chef-syncd syncing `src` into `dst`.
struct Rig {
    _dir: tempfile::TempDir,
    state: PathBuf,
    mock: MockPrimary,
    replica: Chef,
    config: PathBuf,
    _server: ChefSyncServer,
    daemon: Process,
}

impl Rig {
    async fn start(extra: &str) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let key = write_key(&dir.path().join("sync.pem"), 0o600);
        let mock = MockPrimary::start(key.public_key()).await;
        mock.put("/roles/base", role("base"));
        let server = ChefSyncServer::start(&dir.path().join("replica"));
        let v = dir.path().join("v.pem");
        server.admin(&[
            "org-create",
            "dst",
            "Dst",
            "--filename",
            v.to_str().unwrap(),
        ]);
        let state = dir.path().join("syncd");
        let config = dir.path().join("chef-sync.toml");
        std::fs::write(
            &config,
            format!(
                "role = \"replica\"\nmaster = \"{}\"\nreplica = \"{}\"\n\
                 [[organizations]]\nsource = \"src\"\ndestination = \"dst\"\n\
                 [ec_sync_client]\ndir = \"{s}\"\nlog_directory = \"{s}/log\"\n\
                 socket_path = \"{s}/sock\"\nsync_key = \"{k}\"\npoll_interval = 1\n\
                 request_timeout = 2\n{extra}\n",
                mock.url,
                server.url,
                s = state.display(),
                k = dir.path().join("sync.pem").display(),
            ),
        )
        .unwrap();
        let pivotal = server.pivotal_key();
        run_ok(&ctl(
            &config,
            &[
                "prepare-org",
                "dst",
                "--server",
                &server.url,
                "--superuser-key",
                pivotal.to_str().unwrap(),
                "--replica",
            ],
        ));
        run_ok(&ctl(&config, &["sync-start", "dst"]));
        let daemon = syncd(&config);
        let replica = Chef::new(
            &format!("{}/organizations/dst", server.url),
            "pivotal",
            Chef::key_file(&pivotal),
        );
        let rig = Rig {
            _dir: dir,
            state,
            mock,
            replica,
            config,
            _server: server,
            daemon,
        };
        rig.wait_for("bootstrap", async |r| r.replica_has("/roles/base").await)
            .await;
        rig
    }

    async fn wait_for(&self, what: &str, mut check: impl AsyncFnMut(&Rig) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !check(self).await {
            assert!(
                Instant::now() < deadline,
                "{what} did not happen; status {}",
                String::from_utf8_lossy(&ctl(&self.config, &["sync-status", "--json"]).stdout),
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn replica_has(&self, rel: &str) -> bool {
        self.replica.call("GET", rel, None).await.0 == 200
    }

    fn status(&self) -> Value {
        let out = run_ok(&ctl(&self.config, &["sync-status", "--json"]));
        serde_json::from_str::<Value>(&out).unwrap()[0].clone()
    }

    fn unsynced(&self) -> Vec<Value> {
        let out = run_ok(&ctl(&self.config, &["unsynced-objects", "dst", "--json"]));
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// The error of the parked object at `path`, once it is parked.
    async fn parked_error(&self, path: &str) -> String {
        self.wait_for(&format!("{path} parked"), async |r| {
            r.unsynced().iter().any(|e| e["path"] == path)
        })
        .await;
        let rows = self.unsynced();
        let row = rows.iter().find(|e| e["path"] == path).unwrap();
        row["error"].as_str().unwrap_or_default().to_owned()
    }

    fn finish(mut self) {
        assert_eq!(self.mock.read(|s| s.bad_signatures), 0);
        assert!(self.daemon.terminate(Duration::from_secs(30)).success());
    }
}

fn role(name: &str) -> Value {
    json!({"name": name, "description": "", "json_class": "Chef::Role", "chef_type": "role",
           "default_attributes": {}, "override_attributes": {}, "run_list": [], "env_run_lists": {}})
}

/// A cookbook version whose one recipe has `content` and is served at `url`.
fn cookbook(name: &str, content: &[u8], url: &str) -> Value {
    json!({
        "name": format!("{name}-1.0.0"), "cookbook_name": name, "version": "1.0.0",
        "json_class": "Chef::CookbookVersion", "chef_type": "cookbook_version", "frozen?": false,
        "metadata": {"name": name, "version": "1.0.0"},
        "recipes": [{"name": "default.rb", "path": "recipes/default.rb",
                     "checksum": hex::encode(Md5::digest(content)), "specificity": "default",
                     "url": url}]
    })
}

fn chef_headers(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .flat_map(|s| s.headers.iter())
        .filter(|h| h.starts_with("x-ops-") || *h == "x-chef-version")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_users_signature_never_leaves_the_servers_configured() {
    let content: &'static [u8] = b"package 'nginx'\n";
    // Another host the primary names as a file URL (as Chef Infra Server names S3), and a
    // third one it redirects to.
    let other = Recorder::start(content).await;
    let third = Recorder::start(content).await;
    let rig = Rig::start("").await;
    let elsewhere = format!("{}/organizations/secretorg/data/creds/db", other.url);
    let own_file = format!("{}/organizations/src/files/bounce.rb", rig.mock.url);
    rig.mock.edit(|s| {
        s.objects.insert(
            "/cookbooks/leak/1.0.0".into(),
            cookbook("leak", content, &elsewhere),
        );
        push_entry(s, "create", "/cookbooks/leak/1.0.0");
        s.objects.insert(
            "/cookbooks/bounce/1.0.0".into(),
            cookbook("bounce", content, &own_file),
        );
        s.redirects
            .insert("/files/bounce.rb".into(), format!("{}/steal", third.url));
        push_entry(s, "create", "/cookbooks/bounce/1.0.0");
        s.objects.insert("/roles/moved".into(), role("moved"));
        s.redirects.insert(
            "/roles/moved".into(),
            format!("{}/organizations/src/roles/moved", third.url),
        );
        push_entry(s, "create", "/roles/moved");
    });
    // A file elsewhere is fetched as an S3-style pre-signed URL is: plainly. It is copied.
    rig.wait_for("the cookbook from elsewhere", async |r| {
        r.replica_has("/cookbooks/leak/1.0.0").await
    })
    .await;
    let fetched = other.seen();
    assert!(
        fetched
            .iter()
            .any(|s| s.method == "GET" && s.path == "/organizations/secretorg/data/creds/db"),
        "{fetched:?}"
    );
    assert_eq!(chef_headers(&fetched), Vec::<String>::new(), "{fetched:?}");
    // Redirects, of a signed file request and of a signed API request, are not followed:
    // both objects park, and the third host hears nothing.
    let file_error = rig.parked_error("/cookbooks/bounce/1.0.0").await;
    assert!(file_error.contains("redirect"), "{file_error}");
    let role_error = rig.parked_error("/roles/moved").await;
    assert!(role_error.contains("redirect"), "{role_error}");
    assert!(!rig.replica_has("/cookbooks/bounce/1.0.0").await);
    assert!(!rig.replica_has("/roles/moved").await);
    assert!(third.seen().is_empty(), "{:?}", third.seen());
    rig.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_org_follows_no_redirect_with_the_superusers_signature() {
    let third = Recorder::start(b"{}").await;
    let target = third.url.clone();
    let app = axum::Router::new().fallback(move |req: Request| {
        let location = format!("{target}{}", req.uri().path());
        async move { (axum::http::StatusCode::FOUND, [("location", location)], "") }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let pivotal = dir.path().join("pivotal.pem");
    write_key(&pivotal, 0o600);
    let out = ctl(
        &dir.path().join("none.toml"),
        &[
            "prepare-org",
            "acme",
            "--server",
            &server,
            "--superuser-key",
            pivotal.to_str().unwrap(),
            "--sync-key",
            dir.path().join("sync.pem").to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("redirect"), "{stderr}");
    assert!(third.seen().is_empty(), "{:?}", third.seen());
}

/// A feed entry a hostile primary might send: 15 KB paths, some with a line of their own or an
/// escape sequence in them.
fn hostile_entry(i: usize) -> Value {
    let filler = "x".repeat(15_000);
    let path = match i % 3 {
        0 => format!("/roles/evil{i}-{filler}"),
        1 => format!("/roles/evil{i}\n2026-01-01T00:00:00Z INFO forged {filler}"),
        _ => format!("/roles/\u{1b}[2Jevil{i}{filler}"),
    };
    json!({"action": "update", "id": i + 100, "path": path})
}

fn starts_with_timestamp(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 20 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b'T'
}

/// Every line of a log holds no control character and starts with a timestamp of its own.
fn assert_clean_log(name: &str, text: &str) {
    assert!(!text.contains('\u{1b}'), "{name} holds an ESC");
    assert!(!text.contains('\r'), "{name} holds a CR");
    for line in text.lines() {
        assert!(starts_with_timestamp(line), "{name}: {line:.200}");
        assert!(
            !line.starts_with("2026-01-01T00:00:00Z INFO forged"),
            "{name}"
        );
    }
}

async fn parked_table(db: &Path) -> (i64, i64, i64) {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let row: (i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), MAX(length(CAST(path AS BLOB)) + length(CAST(action AS BLOB)) + \
         length(CAST(error AS BLOB))), COALESCE(SUM(length(CAST(path AS BLOB)) + \
         length(CAST(action AS BLOB)) + length(CAST(error AS BLOB))), 0) FROM parked",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    row
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_feed_can_neither_fill_the_disk_nor_forge_log_lines() {
    let rig = Rig::start("").await;
    // Three pages of 1,000 entries with 15 KB paths, then a good one.
    rig.mock.edit(|s| {
        if let Feed::Entries(entries) = &mut s.feed {
            entries.extend((entries.len() + 1..=3000).map(hostile_entry));
        }
    });
    rig.mock.put("/roles/after", role("after"));
    let head = rig.mock.read(|s| match &s.feed {
        Feed::Entries(e) => e.last().and_then(|e| e["id"].as_i64()).unwrap(),
        _ => 0,
    });
    rig.wait_for("the good role after the flood", async |r| {
        r.replica_has("/roles/after").await && r.status()["applied_seq"] == head
    })
    .await;

    // The state database: 1,000 entries stored, each cut, the rest counted in one row.
    let db = rig.state.join("state.db");
    let (rows, widest, total) = parked_table(&db).await;
    assert_eq!(rows, 1001, "UNAPPLIABLE_KEPT rows and the counting row");
    assert!(
        widest <= 600 + 64 + 1024,
        "a parked row holds {widest} bytes"
    );
    assert!(total < 2 << 20, "the parked rows hold {total} bytes");
    let files = ["state.db", "state.db-wal", "state.db-shm"];
    let on_disk: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(rig.state.join(f)).ok())
        .map(|m| m.len())
        .sum();
    assert!(
        on_disk < 16 << 20,
        "state.db and its WAL hold {on_disk} bytes"
    );
    let unsynced = rig.unsynced();
    let counted = unsynced
        .iter()
        .find(|e| e["path"] == "(more unappliable feed entries)")
        .unwrap_or_else(|| panic!("no counting row"));
    assert_eq!(counted["attempts"], 1999, "{counted}");
    let last_error = rig.status()["last_error"].as_str().unwrap().to_owned();
    assert!(
        last_error.contains("1999 more feed entries"),
        "{last_error}"
    );

    // The logs: every line its own, with a timestamp, no control character; small.
    let logs = rig.state.join("log");
    let mut log_bytes = 0;
    for name in ["sync-dst.log", "manager.log"] {
        let text = std::fs::read_to_string(logs.join(name)).unwrap();
        log_bytes += text.len();
        assert_clean_log(name, &text);
    }
    assert!(log_bytes < 1 << 20, "the logs hold {log_bytes} bytes");

    // What chef-sync-ctl prints.
    for args in [
        &["sync-log", "dst", "-n", "5000"][..],
        &["manager-log", "-n", "5000"],
        &["unsynced-objects", "dst"],
        &["unsynced-objects", "dst", "--json"],
        &["sync-status"],
        &["sync-status", "--json"],
    ] {
        let out = run_ok(&ctl(&rig.config, args));
        assert!(!out.contains('\u{1b}'), "{args:?} printed an ESC");
        assert!(!out.contains('\r'), "{args:?} printed a CR");
        for line in out.lines() {
            assert!(
                !line.starts_with("2026-01-01T00:00:00Z INFO forged"),
                "{args:?}"
            );
        }
    }
    let table = run_ok(&ctl(&rig.config, &["unsynced-objects", "dst"]));
    assert_eq!(
        table.lines().count(),
        unsynced.len() + 1,
        "one line per row"
    );
    rig.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_readyz_is_not_a_flood_of_signed_requests() {
    let mut rig = Rig::start("metrics_listen = \"127.0.0.1:0\"").await;
    let line = rig.daemon.wait_for_line(
        "metrics and health checks listening",
        Duration::from_secs(30),
    );
    let address = line.split("address=").nth(1).unwrap();
    let readyz = format!(
        "http://{}/readyz",
        address.split_whitespace().next().unwrap()
    );
    rig.wait_for("synced", async |r| r.status()["status"] == "synced")
        .await;
    // The worker waits in a long-poll meanwhile, so every request for the org itself is a
    // probe.
    rig.mock.edit(|s| {
        s.delays
            .push(("/updated_since".into(), Duration::from_secs(20), 100));
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let probes = |mock: &MockPrimary| {
        mock.read(|s| {
            s.seen
                .iter()
                .filter(|p| *p == "GET /organizations/src")
                .count()
        })
    };
    let before = probes(&rig.mock);
    let client = reqwest::Client::new();
    let started = Instant::now();
    let answers = futures_util::future::join_all((0..50).map(|_| client.get(&readyz).send())).await;
    for answer in answers {
        assert_eq!(answer.unwrap().status(), 200);
    }
    let took = started.elapsed();
    let asked = probes(&rig.mock) - before;
    assert!(
        asked <= 2,
        "50 /readyz in {took:?} made {asked} signed requests to the primary"
    );
    rig.finish();
}

/// chef-syncd with `extra` in `[ec_sync_client]` and a sync key of `mode`.
fn daemon_with_key(dir: &Path, mode: u32, extra: &str) -> (Process, PathBuf) {
    let key = dir.join("sync.pem");
    if !key.exists() {
        write_key(&key, mode);
    }
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
    let config = dir.join("chef-sync.toml");
    let d = dir.display();
    std::fs::write(
        &config,
        format!(
            "role = \"replica\"\nmaster = \"http://127.0.0.1:9\"\nreplica = \"http://127.0.0.1:9\"\n\
             [[organizations]]\nsource = \"acme\"\ndestination = \"acme\"\n[ec_sync_client]\n\
             dir = \"{d}/state\"\nsocket_path = \"{d}/sock\"\nlog_directory = \"{d}/log\"\n\
             sync_key = \"{}\"\n{extra}\n",
            key.display()
        ),
    )
    .unwrap();
    let mut command = Command::new(bin("chef-syncd"));
    command.arg("--config").arg(&config);
    (Process::spawn(command), key)
}

/// Waits for `daemon` to exit; `None` if it is still running after `limit`.
fn exit_within(daemon: &mut Process, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = daemon.exited() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn a_sync_key_others_can_read_stops_the_daemon_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, key) = daemon_with_key(dir.path(), 0o644, "");
    let status = exit_within(&mut daemon, Duration::from_secs(30));
    let output = daemon.output();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{output}");
    let lines: Vec<&str> = output.lines().filter(|l| !l.is_empty()).collect();
    let error = lines.last().copied().unwrap_or_default();
    assert!(
        error.starts_with("chef-syncd: sync_key ")
            && error.contains(&format!("chmod 600 {}", key.display())),
        "{output}"
    );

    // Told to, it starts, and says why it should not have to.
    let (mut daemon, _) = daemon_with_key(dir.path(), 0o640, "insecure_key_permissions = true");
    let warning = daemon.wait_for_line("insecure_key_permissions", Duration::from_secs(30));
    assert!(warning.contains("mode 640"), "{warning}");
    daemon.wait_for_line("chef-syncd started", Duration::from_secs(30));
    assert!(daemon.terminate(Duration::from_secs(30)).success());

    // Fixed as the message says, it starts without being told.
    let (mut daemon, _) = daemon_with_key(dir.path(), 0o600, "");
    daemon.wait_for_line("chef-syncd started", Duration::from_secs(30));
    assert!(daemon.terminate(Duration::from_secs(30)).success());
}
