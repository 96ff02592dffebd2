//! The manager log and one log per org under `log_directory`, each rotated by size
//! (`FILE` → `FILE.1` → … → `FILE.N`, the oldest dropped), as `log_rotation` says.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::config::LogRotation;
use crate::text;

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

    /// Appends one timestamped line; the message is made one line and cut (see [`safe_line`]).
    pub fn line(&self, level: &str, message: &str) {
        let text = format!(
            "{} {level:5} {message}\n",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
        // A full disk must not stop replication; the manager log (stderr) still has it.
        let _ = self.append(&safe_line(text.as_bytes()));
    }
}

/// Longest log line written, in bytes (before the newline).
pub const MAX_LOG_LINE: usize = 4096;

/// One log record made safe to write: control characters escaped (so a newline in a path sent
/// by a primary cannot start a line of its own, and an escape sequence cannot reach the
/// terminal of whoever reads the log), cut to [`MAX_LOG_LINE`], and ending in one newline.
pub fn safe_line(record: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(record);
    let body = text.strip_suffix('\n').unwrap_or(&text);
    let escaped = text::one_line(body);
    let mut line = text::bounded(&escaped, MAX_LOG_LINE)
        .into_owned()
        .into_bytes();
    line.push(b'\n');
    line
}

/// A writer for `tracing` that makes each record one safe line (see [`safe_line`]). The fmt
/// layer writes a whole event in one `write_all`, so each call is one record.
#[derive(Debug, Clone)]
pub struct SafeLines<W>(pub W);

impl<W: Write> Write for SafeLines<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(&safe_line(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Stderr for `tracing`, one safe line per record.
pub fn safe_stderr() -> SafeLines<std::io::Stderr> {
    SafeLines(std::io::stderr())
}

/// `tracing` writes the manager log through this.
#[derive(Debug, Clone)]
pub struct LogWriter(pub RotatingFile);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.append(&safe_line(buf))?;
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

    #[test]
    fn a_line_cannot_forge_another_or_reach_the_terminal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync-acme.log");
        let log = RotatingFile::new(path.clone(), LogRotation::default());
        log.line(
            "WARN",
            "parked /roles/x\n2026-01-01T00:00:00Z INFO forged\r\u{1b}[2J",
        );
        log.line("WARN", &format!("parked /roles/{}", "y".repeat(20_000)));
        let mut manager = LogWriter(RotatingFile::new(
            dir.path().join("manager.log"),
            LogRotation::default(),
        ));
        manager
            .write_all(b"2026-05-01T00:00:00Z  WARN parked /roles/z\nforged\x1b[2J\n")
            .unwrap();
        for file in ["sync-acme.log", "manager.log"] {
            let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
            assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text}");
            for line in text.lines() {
                let stamp = line.as_bytes();
                assert!(
                    stamp.len() > 20
                        && stamp[..4].iter().all(u8::is_ascii_digit)
                        && stamp[10] == b'T',
                    "a line that does not start with a timestamp: {line}"
                );
                assert!(line.len() <= MAX_LOG_LINE, "{}", line.len());
                assert!(!line.starts_with("2026-01-01T00:00:00Z INFO forged"));
            }
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("/roles/x\\n2026-01-01T00:00:00Z INFO forged\\r\\u001b[2J"));
    }
}
