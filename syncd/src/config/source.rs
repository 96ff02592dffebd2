//! Which file `--config PATH` means, and how chef-sync-ctl keeps to the file a running
//! chef-syncd read.
//!
//! The rule: a file is itself; a directory means its `chef-sync.toml` when that exists, else
//! its `chef-sync.rb`. chef-syncd applies it once, when it starts, and records the file it read
//! in its state directory ([`RECORD`]) for as long as it runs. chef-sync-ctl applies the same
//! rule, except that when a chef-syncd answering on its control socket read the directory's
//! other file, it reads that one too and says so: a file written into the directory since the
//! daemon started must not send commands to another socket and state database.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError};

/// The file in chef-syncd's state directory (`ec_sync_client.dir`) naming the configuration it
/// runs with.
pub const RECORD: &str = "chef-syncd.config";

/// The two file names a configuration directory may hold, in order of precedence.
const NAMES: [&str; 2] = ["chef-sync.toml", "chef-sync.rb"];

/// Which file was read for a `--config PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The file read.
    pub file: PathBuf,
    /// The directory's other file, which exists and was not read.
    pub ignored: Option<PathBuf>,
    /// `file` is read because a running chef-syncd read it when it started, although
    /// `ignored` now takes precedence.
    pub held_by_daemon: bool,
}

impl Source {
    /// One line per fact: the file read, and why the other one was not.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!("configuration read from {}", self.file.display())];
        if let Some(warning) = self.warning() {
            lines.push(warning);
        } else if let Some(ignored) = &self.ignored {
            lines.push(format!(
                "{} ignored: {} takes precedence when a directory holds both",
                ignored.display(),
                name(&self.file)
            ));
        }
        lines
    }

    /// What an operator must be told on every command: the running daemon holds a file that
    /// is no longer the directory's choice.
    pub fn warning(&self) -> Option<String> {
        let ignored = self.ignored.as_ref().filter(|_| self.held_by_daemon)?;
        Some(format!(
            "chef-syncd is running with {}, read when it started; {} takes its place when \
             chef-syncd restarts (systemctl restart chef-syncd)",
            self.file.display(),
            ignored.display()
        ))
    }
}

fn name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}

/// The rule alone (what chef-syncd applies when it starts).
pub fn choose(path: &Path) -> Source {
    if !path.is_dir() {
        return Source {
            file: path.to_owned(),
            ignored: None,
            held_by_daemon: false,
        };
    }
    let [first, second] = NAMES.map(|n| path.join(n));
    let (file, ignored) = match (first.exists(), second.exists()) {
        (true, true) => (first, Some(second)),
        (false, true) => (second, None),
        _ => (first, None),
    };
    Source {
        file,
        ignored,
        held_by_daemon: false,
    }
}

/// The rule, or the directory's file a running chef-syncd read (what chef-sync-ctl reads).
/// Fails when that daemon's file is gone: nothing then says where its state and socket are.
pub fn resolve(path: &Path) -> Result<Source, ConfigError> {
    let chosen = choose(path);
    if !path.is_dir() {
        return Ok(chosen);
    }
    let Some(running) = running_daemon(path) else {
        return Ok(chosen);
    };
    if same_file(&running.config, &chosen.file) {
        return Ok(chosen);
    }
    if !running.config.exists() {
        return Err(ConfigError {
            file: running.config.clone(),
            line: None,
            key: None,
            message: format!(
                "chef-syncd is running with this file, which no longer exists; restart \
                 chef-syncd (systemctl restart chef-syncd) to read {}",
                chosen.file.display()
            ),
        });
    }
    Ok(Source {
        file: running.config,
        ignored: Some(chosen.file),
        held_by_daemon: true,
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// What chef-syncd writes into [`RECORD`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The configuration file it read (absolute).
    pub config: PathBuf,
    /// Its control socket: the record counts only while something answers there.
    pub socket: PathBuf,
    /// Its process id.
    pub pid: u32,
}

impl Record {
    /// The record for this process, which read `file`.
    pub fn new(file: &Path, config: &Config) -> Record {
        Record {
            config: file.canonicalize().unwrap_or_else(|_| file.to_owned()),
            socket: config.ec_sync_client.socket_path.clone(),
            pid: std::process::id(),
        }
    }

    /// Writes it into the state directory (replacing an old one at once, never half-written).
    pub fn write(&self, state_dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        let staged = state_dir.join(format!(".{RECORD}.{}", self.pid));
        std::fs::write(&staged, text + "\n")?;
        std::fs::rename(&staged, state_dir.join(RECORD))
    }

    /// Removes the record of this process from the state directory (not a newer daemon's).
    pub fn remove(&self, state_dir: &Path) {
        if Record::read(state_dir).is_some_and(|r| r.pid == self.pid) {
            let _ = std::fs::remove_file(state_dir.join(RECORD));
        }
    }

    /// The record in a state directory, if any can be read.
    pub fn read(state_dir: &Path) -> Option<Record> {
        let text = std::fs::read_to_string(state_dir.join(RECORD)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Whether a daemon answers on its socket (a record left by a killed daemon does not count).
    pub fn alive(&self) -> bool {
        std::os::unix::net::UnixStream::connect(&self.socket).is_ok()
    }
}

/// A live chef-syncd's record that names one of `dir`'s two files, found in the state
/// directory of either file (each may name its own).
fn running_daemon(dir: &Path) -> Option<Record> {
    let here = dir.canonicalize().ok()?;
    NAMES
        .iter()
        .map(|n| dir.join(n))
        .filter(|file| file.exists())
        .filter_map(|file| {
            let text = std::fs::read_to_string(&file).ok()?;
            Config::parse(&file, &text).ok()
        })
        .filter_map(|config| Record::read(&config.ec_sync_client.dir))
        .find(|record| {
            let names_a_candidate = record.config.parent() == Some(here.as_path())
                && record
                    .config
                    .file_name()
                    .is_some_and(|n| NAMES.iter().any(|c| n == *c));
            names_a_candidate && record.alive()
        })
}

/// The file `--config PATH` means for chef-sync-ctl (see [`resolve`]); the rule's choice when
/// that fails (loading it then reports why).
pub fn locate(path: &Path) -> PathBuf {
    resolve(path).map_or_else(|_| choose(path).file, |s| s.file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config file for `dir`'s state in `state` (socket `state/sock`).
    fn write(file: &Path, state: &Path) {
        let text = if file.extension().is_some_and(|e| e == "rb") {
            format!(
                "ec_sync_client['dir'] = '{0}'\nec_sync_client['socket_path'] = '{0}/sock'\n",
                state.display()
            )
        } else {
            format!(
                "[ec_sync_client]\ndir = '{0}'\nsocket_path = '{0}/sock'\n",
                state.display()
            )
        };
        std::fs::write(file, text).unwrap();
    }

    /// Stands in for chef-syncd: its record, and a listener on its socket.
    fn running(file: &Path) -> (Record, std::os::unix::net::UnixListener) {
        let config = Config::read(file).unwrap();
        std::fs::create_dir_all(&config.ec_sync_client.dir).unwrap();
        let record = Record::new(file, &config);
        record.write(&config.ec_sync_client.dir).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(&record.socket).unwrap();
        (record, listener)
    }

    #[test]
    fn a_directory_means_its_toml_and_says_the_rb_was_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let (toml, rb) = (dir.path().join(NAMES[0]), dir.path().join(NAMES[1]));
        assert_eq!(choose(dir.path()).file, toml);
        write(&rb, &dir.path().join("s"));
        assert_eq!(choose(dir.path()).file, rb);
        assert_eq!(choose(dir.path()).ignored, None);
        write(&toml, &dir.path().join("s"));
        let both = resolve(dir.path()).unwrap();
        assert_eq!((&both.file, both.ignored.as_ref()), (&toml, Some(&rb)));
        assert_eq!(
            both.describe(),
            [
                format!("configuration read from {}", toml.display()),
                format!(
                    "{} ignored: chef-sync.toml takes precedence when a directory holds both",
                    rb.display()
                )
            ]
        );
        assert_eq!(both.warning(), None);
        // A file named is that file.
        assert_eq!(resolve(&rb).unwrap(), choose(&rb));
        assert_eq!(locate(&rb), rb);
    }

    #[test]
    fn a_file_added_while_the_daemon_runs_does_not_take_commands_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let (toml, rb) = (dir.path().join(NAMES[0]), dir.path().join(NAMES[1]));
        write(&rb, &dir.path().join("rb-state"));
        let (record, listener) = running(&rb);
        // Written since: it would win, with a state directory and socket of its own.
        write(&toml, &dir.path().join("toml-state"));
        let held = resolve(dir.path()).unwrap();
        assert_eq!(
            held.file.canonicalize().unwrap(),
            rb.canonicalize().unwrap()
        );
        assert!(held.held_by_daemon);
        assert_eq!(held.ignored.as_ref(), Some(&toml));
        let warning = held.warning().unwrap();
        assert!(
            warning.starts_with("chef-syncd is running with "),
            "{warning}"
        );
        assert!(
            warning.contains("takes its place when chef-syncd restarts"),
            "{warning}"
        );
        assert!(held.describe().contains(&warning));
        assert_eq!(
            Config::load(dir.path()).unwrap().ec_sync_client.dir,
            dir.path().join("rb-state")
        );
        // Once it stopped, the rule decides again (a record left behind does not count).
        drop(listener);
        std::fs::remove_file(&record.socket).unwrap();
        assert_eq!(resolve(dir.path()).unwrap().file, toml);
        assert_eq!(locate(dir.path()), toml);
    }

    #[test]
    fn a_daemon_whose_file_is_gone_is_named_not_guessed_around() {
        let dir = tempfile::tempdir().unwrap();
        let (toml, rb) = (dir.path().join(NAMES[0]), dir.path().join(NAMES[1]));
        let state = dir.path().join("state");
        write(&rb, &state);
        let (record, _listener) = running(&rb);
        std::fs::remove_file(&rb).unwrap();
        write(&toml, &state);
        let e = resolve(dir.path()).unwrap_err();
        assert!(e.to_string().contains("which no longer exists"), "{e}");
        assert!(e.to_string().contains("chef-sync.toml"), "{e}");
        assert_eq!(locate(dir.path()), toml);
        // The record belongs to the process that wrote it.
        let other = Record {
            pid: record.pid + 1,
            ..record.clone()
        };
        other.remove(&state);
        assert!(Record::read(&state).is_some());
        record.remove(&state);
        assert!(Record::read(&state).is_none());
    }
}
