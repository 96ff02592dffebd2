//! The manager log and one log per org under `log_directory`, each rotated by size
//! (`FILE` → `FILE.1` → … → `FILE.N`, the oldest dropped), as `log_rotation` says.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::config::LogRotation;

/// A log file that rotates itself when it grows past `file_maxbytes`.
#[derive(Debug, Clone)]
pub struct RotatingFile {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    rotation: LogRotation,
}

impl Inner {
    fn open(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.size = file.metadata()?.len();
            self.file = Some(file);
        }
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("log file not open"))
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        let keep = self.rotation.num_to_keep;
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if keep == 0 {
            std::fs::remove_file(&self.path).or_else(ignore_missing)?;
        } else {
            std::fs::remove_file(numbered(keep)).or_else(ignore_missing)?;
            for n in (1..keep).rev() {
                std::fs::rename(numbered(n), numbered(n + 1)).or_else(ignore_missing)?;
            }
            std::fs::rename(&self.path, numbered(1)).or_else(ignore_missing)?;
        }
        self.size = 0;
        Ok(())
    }
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

impl RotatingFile {
    /// A log at `path` (opened on first write).
    pub fn new(path: PathBuf, rotation: LogRotation) -> RotatingFile {
        RotatingFile {
            inner: Arc::new(Mutex::new(Inner {
                path,
                file: None,
                size: 0,
                rotation,
            })),
        }
    }

    /// Appends bytes, rotating first if they would not fit.
    pub fn append(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| std::io::Error::other("log lock poisoned"))?;
        inner.open()?;
        if inner.size > 0 && inner.size + bytes.len() as u64 > inner.rotation.file_maxbytes {
            inner.rotate()?;
        }
        let file = inner.open()?;
        file.write_all(bytes)?;
        inner.size += bytes.len() as u64;
        Ok(())
    }

    /// Appends one timestamped line.
    pub fn line(&self, level: &str, message: &str) {
        let text = format!(
            "{} {level:5} {message}\n",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
        // A full disk must not stop replication; the manager log (stderr) still has it.
        let _ = self.append(text.as_bytes());
    }
}

/// `tracing` writes the manager log through this.
#[derive(Debug, Clone)]
pub struct LogWriter(pub RotatingFile);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.append(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RotatingFile {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter(self.clone())
    }
}

/// `log_directory/manager.log`.
pub fn manager_log_path(dir: &Path) -> PathBuf {
    dir.join("manager.log")
}

/// `log_directory/sync-ORG.log`.
pub fn org_log_path(dir: &Path, org: &str) -> PathBuf {
    dir.join(format!("sync-{org}.log"))
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> std::io::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)?;
    let lines: Vec<&str> = text.lines().collect();
    Ok(lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_n() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/x.log");
        let log = RotatingFile::new(
            path.clone(),
            LogRotation {
                file_maxbytes: 100,
                num_to_keep: 2,
            },
        );
        for i in 0..20 {
            log.append(format!("line {i:02} padding padding\n").as_bytes())
                .unwrap();
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 100);
        assert!(dir.path().join("logs/x.log.1").exists());
        assert!(dir.path().join("logs/x.log.2").exists());
        assert!(!dir.path().join("logs/x.log.3").exists());
        let last = tail(&path, 1).unwrap();
        assert_eq!(last, vec!["line 19 padding padding".to_owned()]);
    }
}
