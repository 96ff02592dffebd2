//! The `chef-sync.rb` files of Chef's own documentation of chef-sync ("Configure Chef
//! Replication", and its settings table), copied as they are written there, load with the
//! defaults it gives.

use std::path::Path;

use super::{ClientSettings, Config, LOCAL_SERVER, Role};

/// Step 2, on the primary.
const MASTER: &str = "role :master
";

/// Step 7, on each replica: the two snippets of that step, one after the other.
const REPLICA: &str = r#"role :replica
master "https://FQDN_OF_MASTER"
organizations [
                {
                  :destination => "DEST_ORG_NAME",
                  :source => "SOURCE_ORG_NAME"
                }
              ]
"#;

/// Every setting of the settings table, with the default value the table gives it (`role`,
/// `organization` and the client's `master`/`replica` included; the top-level `master` and
/// `replica` have no default there).
const TABLE_RB: &str = r#"bootstrap true
chef_base_path '/opt/opscode'
ec_sync_client['dir'] = '/var/opt/chef-sync/ec_sync_client'
ec_sync_client['enable'] = true
ec_sync_client['ha'] = false
ec_sync_client['log_directory'] = '/var/log/opscode/chef-sync/client'
ec_sync_client['log_rotation'] = { 'file_maxbytes' => 104857600, 'num_to_keep' => 10 }
ec_sync_client['master'] = 'https://127.0.0.1'
ec_sync_client['organizations'] = []
ec_sync_client['replica'] = 'https://127.0.0.1'
ec_sync_client['socket_path'] = '/var/opt/chef-sync/ec_sync_client/ec_sync.sock'
ec_sync_client['sync_key'] = '/etc/chef-sync/ec_sync_user.pem'
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

/// The same settings in TOML.
const TABLE_TOML: &str = r#"bootstrap = true
chef_base_path = "/opt/opscode"
install_path = "/opt/chef-sync"
name = "sync"
organization = []
role = "replica"

[ec_sync_client]
dir = "/var/opt/chef-sync/ec_sync_client"
enable = true
ha = false
log_directory = "/var/log/opscode/chef-sync/client"
log_rotation = { file_maxbytes = 104857600, num_to_keep = 10 }
master = "https://127.0.0.1"
organizations = []
replica = "https://127.0.0.1"
socket_path = "/var/opt/chef-sync/ec_sync_client/ec_sync.sock"
sync_key = "/etc/chef-sync/ec_sync_user.pem"
sync_user = "ec_sync_user"

[ec_sync_server]
auth_skew = "900"
db_pool_size = 10
dir = "/var/opt/chef-sync/ec_sync_server"
enable = true
ha = false
listen = "127.0.0.1"
log_directory = "/var/log/opscode/chef-sync/server"
log_rotation = { file_maxbytes = 104857600, num_to_keep = 10 }
port = 9996
vip = "127.0.0.1"

[user]
home = "/opt/opscode/embedded"
shell = "/bin/sh"
username = "opscode"
"#;

#[test]
fn the_documented_primary_file_loads() {
    let config = Config::parse(Path::new("chef-sync.rb"), MASTER).unwrap();
    assert_eq!(config.role, Role::Master);
    assert_eq!(config.master, [LOCAL_SERVER]);
    assert_eq!(config.replica.as_deref(), Some(LOCAL_SERVER));
    assert!(config.organizations.is_empty());
    assert_eq!(config.ec_sync_client, ClientSettings::default());
    assert!(config.notes.is_empty(), "{:?}", config.notes);
}

#[test]
fn the_documented_replica_file_loads_once_its_placeholders_are_filled_in() {
    // As written, the placeholders are not org names (Chef's are lower case), and that is
    // the only complaint.
    let e = Config::parse(Path::new("chef-sync.rb"), REPLICA).unwrap_err();
    assert_eq!(e.line, Some(3), "{e}");
    assert_eq!(e.key.as_deref(), Some("organizations"), "{e}");
    assert!(
        e.to_string()
            .contains("invalid organization name 'SOURCE_ORG_NAME'"),
        "{e}"
    );

    let filled = REPLICA
        .replace("FQDN_OF_MASTER", "chef-primary.example.com")
        .replace("DEST_ORG_NAME", "acme-copy")
        .replace("SOURCE_ORG_NAME", "acme");
    let config = Config::parse(Path::new("chef-sync.rb"), &filled).unwrap();
    assert_eq!(config.role, Role::Replica);
    assert_eq!(config.master, ["https://chef-primary.example.com"]);
    assert_eq!(config.replica.as_deref(), Some(LOCAL_SERVER));
    assert_eq!(config.organizations.len(), 1);
    assert_eq!(config.organizations[0].source, "acme");
    assert_eq!(config.organizations[0].destination, "acme-copy");
    assert_eq!(config.ec_sync_client, ClientSettings::default());
    assert!(config.notes.is_empty(), "{:?}", config.notes);
    // Without `role`, the documented default makes it the same replica.
    let no_role = filled.replace("role :replica\n", "");
    assert_eq!(
        Config::parse(Path::new("chef-sync.rb"), &no_role).unwrap(),
        config
    );
}

#[test]
fn every_setting_of_the_table_loads_with_its_documented_default() {
    let rb = Config::parse(Path::new("chef-sync.rb"), TABLE_RB).unwrap();
    let toml = Config::parse(Path::new("chef-sync.toml"), TABLE_TOML).unwrap();
    let empty = Config::parse(Path::new("chef-sync.rb"), "").unwrap();
    assert_eq!(rb.ec_sync_client, ClientSettings::default());
    assert_eq!(rb.ec_sync_client, empty.ec_sync_client);
    assert_eq!(rb.role, Role::Replica);
    assert_eq!(rb.replica, empty.replica);
    assert_eq!(rb.master, [LOCAL_SERVER]);
    assert!(rb.organizations.is_empty());
    // 4 top-level settings, 3 user[…], 10 ec_sync_server[…], ec_sync_client enable and ha.
    assert_eq!(rb.notes.len(), 19, "{:#?}", rb.notes);
    for (setting, why) in [
        ("bootstrap", "bootstraps no Chef server"),
        ("user['username']", "system user chef-sync"),
        ("ec_sync_server['port']", "server.toml"),
        ("ec_sync_client['ha']", "one host"),
    ] {
        let note = rb
            .notes
            .iter()
            .find(|n| n.starts_with(&format!("{setting} is not used: ")))
            .unwrap_or_else(|| panic!("no note on {setting}: {:#?}", rb.notes));
        assert!(note.contains(why), "{note}");
    }
    assert_eq!(toml.notes.len(), rb.notes.len(), "{:#?}", toml.notes);
    assert!(
        toml.notes
            .iter()
            .any(|n| n.starts_with("user.username is not used"))
    );
    let (mut rb, mut toml) = (rb, toml);
    rb.notes.clear();
    toml.notes.clear();
    assert_eq!(rb, toml);
}
