//! TOML configuration: parsed into a generic value plus the line of every key.

use std::path::Path;

use super::{ConfigError, KeyLines, Locator};

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Where each `key = value` and `[table]` was written, as `table.key`.
fn key_lines(text: &str) -> KeyLines {
    let mut lines = KeyLines::new();
    let mut table = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(name) = line
            .strip_prefix("[[")
            .and_then(|l| l.split("]]").next())
            .or_else(|| line.strip_prefix('[').and_then(|l| l.split(']').next()))
        {
            table = name.trim().to_owned();
            lines.entry(table.clone()).or_insert(i + 1);
            continue;
        }
        if let Some((key, _)) = line.split_once('=')
            && !line.starts_with('#')
        {
            let key = key.trim().trim_matches('"').trim_matches('\'');
            let full = if table.is_empty() {
                key.to_owned()
            } else {
                format!("{table}.{key}")
            };
            lines.entry(full).or_insert(i + 1);
        }
    }
    lines
}

pub(super) fn parse(path: &Path, text: &str) -> Result<(serde_json::Value, KeyLines), ConfigError> {
    let lines = key_lines(text);
    let at = Locator {
        file: path,
        lines: &lines,
    };
    let value: toml::Value = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_at(text, s.start));
        at.syntax(line, e.message().to_owned())
    })?;
    let json =
        serde_json::to_value(value).map_err(|e| at.syntax(None, format!("unusable value: {e}")))?;
    Ok((json, lines))
}
