//! End to end: the built `chef-sync-server` binary, its admin commands, and its HTTP API over a
//! real socket on 127.0.0.1 (port picked by the OS), on SQLite and PostgreSQL. Every server
//! process started here is killed when the test ends, pass or fail.

#![allow(clippy::unwrap_used)]

#[path = "support/harness.rs"]
mod harness;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use chef_sync_shared::PrivateKey;
use chef_sync_shared::signing::{self, RequestToSign, SigningVersion, sign_request};
use harness::{drop_database, fresh_database};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_chef-sync-server");

/// Kills the server when dropped.
struct Server {
    child: Child,
    url: String,
    log: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(data_dir: &Path, database: &str) -> Server {
        Server::start_with(data_dir, database, &[])
    }

    /// Starts with extra arguments (`--config FILE`); stderr is a pipe, not a terminal.
    fn start_with(data_dir: &Path, database: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "chef_sync_server=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            url: String::new(),
            log: rx,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while server.url.is_empty() {
            let line = server
                .log
                .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
                .expect("server did not report its address");
            if let Some(addr) = line
                .split("addr=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
            {
                server.url = format!("http://{addr}");
            }
        }
        server
    }

    /// Log lines written so far.
    fn drain_log(&self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(line) = self.log.recv_timeout(Duration::from_millis(200)) {
            lines.push(line);
        }
        lines
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "no graceful exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn admin(args: &[&str], data_dir: &Path, database: &str) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .args(["--database", database])
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap()
}

async fn call(
    server: &Server,
    user: &str,
    key: &PrivateKey,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    call_at(&client, &server.url, user, key, (method, path), body).await
}

/// A signed request to `base` (an `http` or `https` listener) through `client`.
async fn call_at(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    key: &PrivateKey,
    (method, path): (&str, &str),
    body: Option<Value>,
) -> (u16, Value) {
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let headers = sign_request(
        key,
        &RequestToSign {
            version: SigningVersion::V1_3,
            method,
            path: path.split('?').next().unwrap(),
            body: signing::Body::Bytes(bytes.as_bytes()),
            user_id: user,
            timestamp: chrono::Utc::now(),
            server_api_version: "1",
        },
    )
    .unwrap();
    let mut req = client
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(bytes);
    for (k, v) in headers.iter() {
        req = req.header(k, v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn read_key(path: &PathBuf) -> PrivateKey {
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} must be private", path.display());
    PrivateKey::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn end_to_end(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let Some((database, pg_db)) = fresh_database(backend, dir.path()).await else {
        return;
    };
    let data = dir.path().join("data");

    // Admin commands work before the server ever ran (they apply migrations themselves).
    let alice_pem = dir.path().join("alice.pem");
    let out = admin(
        &[
            "user-create",
            "alice",
            "Alice",
            "Smith",
            "alice@example.com",
            "secret",
            "--filename",
            alice_pem.to_str().unwrap(),
        ],
        &data,
        &database,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A password on the command line is visible in `ps`; it is not used, and said so.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("password is not used") && stderr.contains("process list"),
        "{stderr}"
    );
    let bob_pem = dir.path().join("bob.pem");
    let out = admin(
        &[
            "user-create",
            "bob",
            "Bob",
            "Jones",
            "bob@example.com",
            "--filename",
            bob_pem.to_str().unwrap(),
        ],
        &data,
        &database,
    );
    assert!(
        out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("password"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(read_key(&bob_pem).bits() >= 2048);
    let validator_pem = dir.path().join("acme-validator.pem");
    let out = admin(
        &[
            "org-create",
            "acme",
            "Acme Inc.",
            "--association_user",
            "alice",
            "--filename",
            validator_pem.to_str().unwrap(),
        ],
        &data,
        &database,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = admin(
        &[
            "org-create",
            "acme",
            "Again",
            "--filename",
            validator_pem.to_str().unwrap(),
        ],
        &data,
        &database,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("already exists"), "{stderr}");

    let mut server = Server::start(&data, &database);
    let alice = read_key(&alice_pem);
    let pivotal = read_key(&data.join("pivotal.pem"));
    let validator = read_key(&validator_pem);

    let status = reqwest::get(format!("{}/_status", server.url))
        .await
        .unwrap();
    assert_eq!(status.status().as_u16(), 200);
    let (status, body) = call(&server, "pivotal", &pivotal, "GET", "/users", None).await;
    assert_eq!(status, 200);
    assert!(body.get("alice").is_some(), "{body}");
    let (status, body) = call(
        &server,
        "alice",
        &alice,
        "POST",
        "/organizations/acme/roles",
        Some(json!({"name": "web", "run_list": ["nginx"]})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = call(
        &server,
        "alice",
        &alice,
        "PUT",
        "/organizations/acme/roles/web",
        Some(json!({"description": "front"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(
        &server,
        "acme-validator",
        &validator,
        "POST",
        "/organizations/acme/clients",
        Some(json!({"name": "node1"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        &server,
        "alice",
        &alice,
        "GET",
        "/organizations/acme/roles/web",
        None,
    )
    .await;
    assert_eq!(status, 200);
    // PUT replaces the whole role, as Chef does.
    assert_eq!(body["description"], "front");
    assert_eq!(body["run_list"], json!([]));

    // prune-log against the live server's database: entry 1 is superseded by entry 2.
    let out = admin(&["prune-log", "acme", "--keep-days", "0"], &data, &database);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("pruned 1 "));
    let (status, _) = call(
        &server,
        "alice",
        &alice,
        "GET",
        "/organizations/acme/updated_since?seq=0",
        None,
    )
    .await;
    assert_eq!(status, 410);
    let (status, body) = call(
        &server,
        "alice",
        &alice,
        "GET",
        "/organizations/acme/updated_since?seq=1",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([{"action": "update", "id": 2, "path": "/roles/web"}])
    );
    let out = admin(&["prune-log", "nope", "--keep-days", "1"], &data, &database);
    assert_eq!(out.status.code(), Some(1));

    // One span per request with route, org, actor, status and latency; no keys, no bodies.
    let log = server.drain_log().join("\n");
    assert!(log.contains("route=/organizations/{org}/roles"), "{log}");
    assert!(log.contains("org=acme"), "{log}");
    assert!(log.contains("actor=alice"), "{log}");
    assert!(log.contains("status=201"), "{log}");
    assert!(log.contains("latency_ms="), "{log}");
    assert!(
        !log.contains("PRIVATE KEY") && !log.contains("PUBLIC KEY"),
        "{log}"
    );
    assert!(!log.contains("front"), "request bodies must not be logged");

    // SIGTERM: graceful exit with status 0.
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    drop(server);
    if let Some(db) = pg_db {
        drop_database(&db).await;
    }
}

#[tokio::test]
async fn sqlite_end_to_end() {
    end_to_end("sqlite").await;
}

#[tokio::test]
async fn postgres_end_to_end() {
    end_to_end("postgres").await;
}

#[test]
fn a_bad_config_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:1\"\nsurprise = 1\n").unwrap();
    let out = Command::new(BIN)
        .args(["migrate", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("surprise"), "{stderr}");
}

fn ok_lines(out: &std::process::Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The operator's commands beyond create: list and delete users, orgs and clients, rotate a
/// key, and move an org between replica and writable, each against a running server.
#[tokio::test]
async fn admin_commands_list_delete_rotate_and_promote() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let database = format!("sqlite://{}", dir.path().join("t.db").display());
    let run = |args: &[&str]| admin(args, &data, &database);
    let pem = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    for user in ["alice", "bob"] {
        let email = format!("{user}@example.com");
        let key = pem(&format!("{user}.pem"));
        ok_lines(&run(&[
            "user-create",
            user,
            user,
            "X",
            &email,
            "--filename",
            &key,
        ]));
    }
    let v = pem("v.pem");
    let args = ["org-create", "acme", "Acme", "--association_user", "alice"];
    ok_lines(&run(&[&args[..], &["--filename", &v]].concat()));
    ok_lines(&run(&[
        "org-create",
        "gone",
        "Gone",
        "--filename",
        &pem("g.pem"),
    ]));
    let server = Server::start(&data, &database);
    let alice = read_key(&PathBuf::from(pem("alice.pem")));
    let (status, body) = call(
        &server,
        "alice",
        &alice,
        "POST",
        "/organizations/acme/clients",
        Some(json!({"name": "node1", "create_key": true})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let node = PrivateKey::from_pem(body["chef_key"]["private_key"].as_str().unwrap()).unwrap();

    assert_eq!(ok_lines(&run(&["user-list"])), ["alice", "bob", "pivotal"]);
    assert_eq!(ok_lines(&run(&["org-list"])), ["acme", "gone"]);
    assert_eq!(
        ok_lines(&run(&["client-list", "acme"])),
        ["acme-validator", "node1"]
    );

    // Rotation: the old key stops authenticating (within the server's 1 s actor cache).
    let new_pem = pem("node1-new.pem");
    let lines = ok_lines(&run(&[
        "client-key-rotate",
        "acme",
        "node1",
        "--filename",
        &new_pem,
    ]));
    assert!(lines[0].contains("node1-new.pem"), "{lines:?}");
    let rotated = read_key(&PathBuf::from(&new_pem));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, _) = call(
        &server,
        "node1",
        &node,
        "GET",
        "/organizations/acme/roles",
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = call(
        &server,
        "node1",
        &rotated,
        "GET",
        "/organizations/acme/roles",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let new_alice = pem("alice-new.pem");
    ok_lines(&run(&[
        "user-key-rotate",
        "alice",
        "--filename",
        &new_alice,
    ]));
    let alice = read_key(&PathBuf::from(&new_alice));

    // A replica org refuses its admin; made writable, it takes the write, with the warnings.
    ok_lines(&run(&["org-replica", "acme", "--sync-user", "bob"]));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let role = json!({"name": "web"});
    let (status, _) = call(
        &server,
        "alice",
        &alice,
        "POST",
        "/organizations/acme/roles",
        Some(role.clone()),
    )
    .await;
    assert_eq!(status, 403);
    let lines = ok_lines(&run(&["org-writable", "acme"])).join("\n");
    assert!(
        lines.contains("sync-stop acme") && lines.contains("not a disaster-recovery tool"),
        "{lines}"
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, _) = call(
        &server,
        "alice",
        &alice,
        "POST",
        "/organizations/acme/roles",
        Some(role),
    )
    .await;
    assert_eq!(status, 201);
    let out = run(&["org-replica", "acme", "--sync-user", "nobody"]);
    assert_eq!(out.status.code(), Some(1));

    // Deletes.
    ok_lines(&run(&["client-delete", "acme", "node1"]));
    ok_lines(&run(&["org-delete", "gone"]));
    ok_lines(&run(&["user-delete", "bob"]));
    assert_eq!(ok_lines(&run(&["org-list"])), ["acme"]);
    assert_eq!(ok_lines(&run(&["user-list"])), ["alice", "pivotal"]);
    assert_eq!(ok_lines(&run(&["client-list", "acme"])), ["acme-validator"]);
    for refused in [
        &["user-delete", "pivotal"][..],
        &["user-delete", "nobody"],
        &["org-delete", "nothing"],
        &["client-delete", "acme", "node1"],
    ] {
        let out = run(refused);
        assert_eq!(out.status.code(), Some(1), "{refused:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{refused:?}: {stderr}");
    }
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, _) = call(
        &server,
        "node1",
        &rotated,
        "GET",
        "/organizations/acme/roles",
        None,
    )
    .await;
    assert_eq!(status, 401);
}

/// `tls_listen`: HTTPS beside the plain listener, on a self-signed certificate made at first
/// start (as the original chef-sync's replica default `https://127.0.0.1` expects); the log
/// has no colour codes when stderr is not a terminal.
#[tokio::test]
async fn tls_listener_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let database = format!("sqlite://{}", dir.path().join("t.db").display());
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "tls_listen = \"127.0.0.1:0\"\n").unwrap();
    let server = Server::start_with(&data, &database, &["--config", config.to_str().unwrap()]);
    let mut log = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let tls_addr = loop {
        log.extend(server.drain_log());
        if let Some(addr) = log
            .iter()
            .find(|l| l.contains("TLS listening"))
            .and_then(|l| l.split("addr=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
        {
            break addr.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no TLS listener: {log:?}"
        );
    };
    assert!(log.iter().any(|l| l.contains("self-signed")), "{log:?}");
    assert!(
        !log.iter().any(|l| l.contains('\u{1b}')),
        "colour codes: {log:?}"
    );
    let key = data.join("tls/server.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let resp = client
        .get(format!("https://{tls_addr}/_status"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Signed requests work the same over TLS.
    let pivotal = read_key(&data.join("pivotal.pem"));
    let base = format!("https://{tls_addr}");
    let (status, body) =
        call_at(&client, &base, "pivotal", &pivotal, ("GET", "/users"), None).await;
    assert_eq!(status, 200, "{body}");
    // A client that never finishes its handshake holds up nobody.
    let _silent = tokio::net::TcpStream::connect(&tls_addr).await.unwrap();
    let resp = client
        .get(format!("https://{tls_addr}/_status"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// Two fresh server processes over one new PostgreSQL database, started at the same moment:
/// both come up (one creates pivotal, the other finds it), as a load balancer's pool does.
#[tokio::test]
async fn two_fresh_processes_over_one_postgresql_start_together() {
    let dir = tempfile::tempdir().unwrap();
    let Some((url, db)) = fresh_database("postgres", dir.path()).await else {
        return;
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let (first, second) = std::thread::scope(|s| {
        let one = s.spawn(|| Server::start(&a, &url));
        let two = s.spawn(|| Server::start(&b, &url));
        (one.join().unwrap(), two.join().unwrap())
    });
    for server in [&first, &second] {
        let resp = reqwest::get(format!("{}/_status", server.url))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    // Exactly one of them wrote pivotal's key, and it is the one both accept.
    let keys: Vec<PathBuf> = [&a, &b]
        .iter()
        .map(|d| d.join("pivotal.pem"))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let pivotal = read_key(&keys[0]);
    for server in [&first, &second] {
        let (status, _) = call(server, "pivotal", &pivotal, "GET", "/users", None).await;
        assert_eq!(status, 200);
    }
    drop((first, second));
    drop_database(&db.unwrap()).await;
}
