//! chef-sync.rb as Chef documented the original chef-sync, run by the real binaries: the
//! documented replica file runs chef-syncd with the documented defaults, every setting of the
//! documented table loads (and the unused ones are said once), a mistyped key is refused with
//! the key meant, a `chef-sync.toml` written beside a `chef-sync.rb` while chef-syncd runs
//! does not send chef-sync-ctl to another socket and state database, and the packaged example
//! agrees with the packaged server.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use chef_sync_shared::PrivateKey;
use chef_sync_tests::process::{Process, bin, ctl, syncd};
use serde_json::Value;

/// Chef's step 7 for a replica, the two snippets as written one after the other.
const REPLICA: &str = r#"role :replica
master "https://FQDN_OF_MASTER"
organizations [
                {
                  :destination => "DEST_ORG_NAME",
                  :source => "SOURCE_ORG_NAME"
                }
              ]
"#;

/// The documented settings table, every setting at the default the table gives.
const TABLE: &str = r#"bootstrap true
chef_base_path '/opt/opscode'
ec_sync_client['enable'] = true
ec_sync_client['ha'] = false
ec_sync_client['log_rotation'] = { 'file_maxbytes' => 104857600, 'num_to_keep' => 10 }
ec_sync_client['master'] = 'https://127.0.0.1'
ec_sync_client['organizations'] = []
ec_sync_client['replica'] = 'https://127.0.0.1'
ec_sync_client['sync_user'] = 'ec_sync_user'
ec_sync_server['auth_skew'] = '900'
ec_sync_server['db_pool_size'] = 10
ec_sync_server['dir'] = '/var/opt/chef-sync/ec_sync_server'
ec_sync_server['enable'] = true
ec_sync_server['ha'] = false
ec_sync_server['listen'] = '127.0.0.1'
ec_sync_server['log_directory'] = '/var/log/opscode/chef-sync/server'
ec_sync_server['log_rotation'] = { 'file_maxbytes' => 104857600, 'num_to_keep' => 10 }
ec_sync_server['port'] = 9996
ec_sync_server['vip'] = '127.0.0.1'
install_path '/opt/chef-sync'
name 'sync'
organization []
role :replica
user['home'] = '/opt/opscode/embedded'
user['shell'] = '/bin/sh'
user['username'] = 'opscode'
"#;

/// A replica's `/etc/chef-sync` and the sync key in it.
struct Etc {
    _root: tempfile::TempDir,
    dir: PathBuf,
}

impl Etc {
    fn new() -> Etc {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("etc");
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("ec_sync_user.pem");
        std::fs::write(
            &key,
            PrivateKey::generate(2048).unwrap().to_pkcs1_pem().unwrap(),
        )
        .unwrap();
        // chef-syncd refuses a sync key that others may read.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        Etc { _root: root, dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// chef-sync.rb lines putting the state, logs and socket under `state` (the documented
    /// defaults are the original's system paths) and naming the key.
    fn rb_paths(&self, state: &str) -> String {
        let s = self.dir.join(state);
        format!(
            "ec_sync_client['dir'] = '{s}'\nec_sync_client['log_directory'] = '{s}/log'\n\
             ec_sync_client['socket_path'] = '{s}/sock'\nec_sync_client['sync_key'] = '{k}'\n",
            s = s.display(),
            k = self.file("ec_sync_user.pem").display()
        )
    }

    /// The same as a TOML table.
    fn toml_paths(&self, state: &str) -> String {
        let s = self.dir.join(state);
        format!(
            "[ec_sync_client]\ndir = '{s}'\nlog_directory = '{s}/log'\nsocket_path = '{s}/sock'\n\
             sync_key = '{k}'\n",
            s = s.display(),
            k = self.file("ec_sync_user.pem").display()
        )
    }
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The destination orgs `sync-status` reports (which configuration's state it read).
fn status_orgs(config: &Path) -> Vec<String> {
    let rows: Vec<Value> =
        serde_json::from_str(&stdout(&ctl(config, &["sync-status", "--json"]))).unwrap();
    rows.iter()
        .map(|r| r["organization"].as_str().unwrap().to_owned())
        .collect()
}

fn lines_containing(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn the_documented_replica_file_runs_chef_syncd_with_the_documented_defaults() {
    let etc = Etc::new();
    let rb = etc.file("chef-sync.rb");
    // A primary that refuses at once: the org stays stopped, nothing is fetched.
    let documented = REPLICA
        .replace("https://FQDN_OF_MASTER", "https://127.0.0.1:1")
        .replace("DEST_ORG_NAME", "acme-copy")
        .replace("SOURCE_ORG_NAME", "acme");
    std::fs::write(&rb, format!("{documented}{}", etc.rb_paths("state"))).unwrap();

    let shown = stdout(&ctl(&etc.dir, &["show-config"]));
    assert!(
        shown.starts_with(&format!("# configuration read from {}\n", rb.display())),
        "{shown}"
    );
    assert!(shown.contains("\nrole = \"replica\"\n"), "{shown}");
    assert!(
        shown.contains("\nreplica = \"https://127.0.0.1\"\n"),
        "{shown}"
    );
    // `role` left out: the documented default, the same configuration.
    std::fs::write(
        &rb,
        std::fs::read_to_string(&rb)
            .unwrap()
            .replace("role :replica\n", ""),
    )
    .unwrap();
    assert_eq!(stdout(&ctl(&etc.dir, &["show-config"])), shown);

    let mut daemon = syncd(&etc.dir);
    let output = daemon.output();
    assert_eq!(
        lines_containing(
            &output,
            &format!("configuration read from {}", rb.display())
        ),
        1,
        "{output}"
    );
    assert_eq!(status_orgs(&etc.dir), ["acme-copy"]);
    assert!(daemon.terminate(Duration::from_secs(30)).success());
}

#[test]
fn every_documented_setting_loads_the_unused_are_said_and_typos_are_refused() {
    let etc = Etc::new();
    let rb = etc.file("chef-sync.rb");
    std::fs::write(&rb, format!("{TABLE}{}", etc.rb_paths("state"))).unwrap();
    let mut daemon = syncd(&etc.dir);
    let output = daemon.output();
    assert_eq!(
        lines_containing(&output, &rb.display().to_string()),
        1,
        "{output}"
    );
    for setting in [
        "bootstrap",
        "chef_base_path",
        "install_path",
        "name",
        "user['shell']",
        "ec_sync_client['ha']",
        "ec_sync_server['vip']",
    ] {
        assert_eq!(
            lines_containing(&output, &format!("{setting} is not used: ")),
            1,
            "{setting}: {output}"
        );
    }
    assert!(daemon.terminate(Duration::from_secs(30)).success());

    // A mistyped key: both programs refuse it, name it once and suggest the key meant.
    std::fs::write(
        &rb,
        format!(
            "{TABLE}{}ec_sync_client['sync_usr'] = 'x'\n",
            etc.rb_paths("state")
        ),
    )
    .unwrap();
    let want = format!(
        "{}:31: unknown key ec_sync_client.sync_usr; did you mean sync_user?",
        rb.display()
    );
    let out = ctl(&etc.dir, &["show-config"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).trim(), format!("chef-sync-ctl: {want}"));
    let out = Command::new(bin("chef-syncd"))
        .arg("--config")
        .arg(&etc.dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).trim(), format!("chef-syncd: {want}"));
}

#[test]
fn a_chef_sync_toml_written_beside_a_running_chef_sync_rb_takes_over_at_restart_only() {
    let etc = Etc::new();
    let (rb, toml) = (etc.file("chef-sync.rb"), etc.file("chef-sync.toml"));
    std::fs::write(
        &rb,
        format!(
            "master 'http://127.0.0.1:1'\norganizations [{{:source => 'acme', :destination => 'acme'}}]\n{}",
            etc.rb_paths("rb-state")
        ),
    )
    .unwrap();
    let mut daemon = syncd(&etc.dir);
    let started = stdout(&ctl(&etc.dir, &["sync-start", "acme"]));
    assert_eq!(started.trim(), "sync started for acme");

    // Written while chef-syncd runs, with a state database, socket and org of its own.
    std::fs::write(
        &toml,
        format!(
            "master = 'http://127.0.0.1:1'\n[[organizations]]\nsource = 'other'\ndestination = 'other'\n{}",
            etc.toml_paths("toml-state")
        ),
    )
    .unwrap();
    let out = ctl(&etc.dir, &["reconfigure"]);
    assert_eq!(
        stdout(&out).trim(),
        format!("chef-syncd reloaded {}", rb.display())
    );
    let warning = format!(
        "chef-sync-ctl: warning: chef-syncd is running with {}, read when it started; {} takes \
         its place when chef-syncd restarts (systemctl restart chef-syncd)",
        rb.display(),
        toml.display()
    );
    assert_eq!(stderr(&out).trim(), warning);
    assert_eq!(status_orgs(&etc.dir), ["acme"]);
    let shown = stdout(&ctl(&etc.dir, &["show-config"]));
    assert!(
        shown.starts_with(&format!(
            "# configuration read from {}\n# {}\n",
            rb.display(),
            warning.trim_start_matches("chef-sync-ctl: warning: ")
        )),
        "{shown}"
    );

    // Restarted, chef-syncd reads the file that takes precedence, and so does every command.
    assert!(daemon.terminate(Duration::from_secs(30)).success());
    let shown = stdout(&ctl(&etc.dir, &["show-config"]));
    let ignored = format!(
        "{} ignored: chef-sync.toml takes precedence when a directory holds both",
        rb.display()
    );
    assert!(
        shown.starts_with(&format!(
            "# configuration read from {}\n# {ignored}\n",
            toml.display()
        )),
        "{shown}"
    );
    let mut daemon: Process = syncd(&etc.dir);
    let output = daemon.output();
    assert_eq!(lines_containing(&output, &ignored), 1, "{output}");
    let out = ctl(&etc.dir, &["reconfigure"]);
    assert_eq!(
        stdout(&out).trim(),
        format!("chef-syncd reloaded {}", toml.display())
    );
    assert_eq!(stderr(&out), "");
    assert_eq!(status_orgs(&etc.dir), ["other"]);
    assert!(daemon.terminate(Duration::from_secs(30)).success());
}

#[test]
fn the_packaged_example_reaches_the_packaged_servers_tls_listener() {
    let packaging = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging");
    let shown = stdout(&ctl(
        &packaging.join("chef-sync.toml"),
        &["show-config", "--json"],
    ));
    let config: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(config["role"], "replica");
    // https://127.0.0.1 is port 443 of this host: where the packaged server listens with TLS.
    assert_eq!(config["replica"], "https://127.0.0.1");
    let server = std::fs::read_to_string(packaging.join("server.toml")).unwrap();
    assert!(
        server
            .lines()
            .any(|l| l.trim() == "tls_listen = \"127.0.0.1:443\""),
        "{server}"
    );
    let example = std::fs::read_to_string(packaging.join("chef-sync.toml")).unwrap();
    assert!(
        example.contains("tls_listen = \"127.0.0.1:443\""),
        "{example}"
    );
}
