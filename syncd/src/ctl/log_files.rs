//! `sync-log ORG` and `manager-log`: print the last lines and optionally follow the file,
//! across rotations.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::logs::{manager_log_path, org_log_path, tail};
use crate::text::{keep_lines, one_line};

use super::{CtlError, load_replica, require_org};

/// The log file of `org`, or the manager log when `org` is `None`.
pub fn log_path(config_path: &Path, org: Option<&str>) -> Result<PathBuf, CtlError> {
    let command = if org.is_some() {
        "sync-log"
    } else {
        "manager-log"
    };
    let config = load_replica(config_path, command)?;
    let dir = &config.ec_sync_client.log_directory;
    match org {
        Some(org) => {
            require_org(&config, config_path, org)?;
            Ok(org_log_path(dir, org))
        }
        None => Ok(manager_log_path(dir)),
    }
}

/// Prints the last `lines` lines; with `follow`, keeps printing what is appended (until the
/// process is interrupted). Control characters are escaped: the daemon writes none, but a log
/// written by an older version, or by anyone else, may hold what a primary sent.
pub async fn show(
    path: &Path,
    lines: usize,
    follow: bool,
    out: &mut impl Write,
) -> Result<(), CtlError> {
    match tail(path, lines) {
        Ok(text) => {
            for line in text {
                writeln!(out, "{}", one_line(&line)).map_err(CtlError::Output)?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && follow => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CtlError::Failed(format!(
                "no log at {} yet (has chef-syncd run with this configuration?)",
                path.display()
            )));
        }
        Err(e) => return Err(CtlError::Failed(format!("{}: {e}", path.display()))),
    }
    // Flushed now, so that a reader that went away is noticed before following starts.
    out.flush().map_err(CtlError::Output)?;
    if !follow {
        return Ok(());
    }
    let mut offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let Ok(meta) = std::fs::metadata(path) else {
            continue;
        };
        if meta.len() < offset {
            // Rotated: start at the top of the new file.
            offset = 0;
        }
        if meta.len() == offset {
            continue;
        }
        let mut file = std::fs::File::open(path).map_err(|e| CtlError::Failed(e.to_string()))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| CtlError::Failed(e.to_string()))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)
            .map_err(|e| CtlError::Failed(e.to_string()))?;
        // Whole lines only: a line still being written is printed once it is complete.
        let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        offset += complete as u64;
        let text = String::from_utf8_lossy(&buf[..complete]);
        out.write_all(keep_lines(&text).as_bytes())
            .map_err(CtlError::Output)?;
        out.flush().map_err(CtlError::Output)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn follow_prints_appended_lines_across_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync-acme.log");
        std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
        let out = Shared::default();
        let mut writer = out.clone();
        let follower = {
            let path = path.clone();
            tokio::spawn(async move { show(&path, 2, true, &mut writer).await })
        };
        tokio::time::sleep(Duration::from_millis(400)).await;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"four\n")
            .unwrap();
        tokio::time::sleep(Duration::from_millis(800)).await;
        // Rotation: the file is replaced by a shorter one.
        std::fs::rename(&path, dir.path().join("sync-acme.log.1")).unwrap();
        std::fs::write(&path, "five\n").unwrap();
        tokio::time::sleep(Duration::from_millis(800)).await;
        follower.abort();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "two\nthree\nfour\nfive\n");
    }

    #[tokio::test]
    async fn printed_lines_carry_no_control_characters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync-acme.log");
        std::fs::write(&path, "one \u{1b}[2J\rtwo\n").unwrap();
        let out = Shared::default();
        let mut writer = out.clone();
        let follower = {
            let path = path.clone();
            tokio::spawn(async move { show(&path, 5, true, &mut writer).await })
        };
        tokio::time::sleep(Duration::from_millis(400)).await;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all("three \u{9b}31m\n".as_bytes())
            .unwrap();
        tokio::time::sleep(Duration::from_millis(800)).await;
        follower.abort();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "one \\u001b[2J\\rtwo\nthree \\u009b31m\n");
    }

    /// A stdout whose reader went away.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_closed_output_ends_even_a_follow_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync-acme.log");
        std::fs::write(&path, "one\ntwo\n").unwrap();
        for follow in [false, true] {
            match show(&path, 5, follow, &mut ClosedPipe).await {
                Err(CtlError::Output(e)) => assert!(super::super::is_closed_output(&e)),
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_missing_log_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = show(&dir.path().join("nope.log"), 5, false, &mut Vec::new())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no log at"), "{err}");
    }
}
