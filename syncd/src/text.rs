//! Text that came from a Chef server (paths, actions, error messages) on its way into the
//! state database, the logs and an operator's terminal: bounded in size, and with control
//! characters escaped so that it can neither start a forged log line nor drive the terminal.

use std::borrow::Cow;

/// Whether `c` is escaped: the C0 controls, DEL and the C1 controls. A terminal acts on any of
/// them (C1's CSI, U+009B, is a one-character ESC `[`), and a newline or carriage return in a
/// log line would start a line of the sender's choosing.
fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// The escape of one control character. The forms are JSON's (`\n`, `\r`, `\t`, `\u001b`),
/// so escaping JSON text again leaves it valid JSON meaning the same string.
fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => out.push_str(&format!("\\u{:04x}", u32::from(c))),
    }
}

fn escape(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    let escaped = |c: char| is_control(c) && !(keep_newlines && c == '\n');
    if !s.chars().any(escaped) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if escaped(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` on one line: every control character escaped, newlines included.
pub fn one_line(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// `s` with its line breaks kept and every other control character escaped (for multi-line
/// output whose lines were made safe one by one, and for JSON, which has no raw controls but
/// may carry raw C1 characters).
pub fn keep_lines(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// `s` cut to at most `max` bytes (at a character boundary), ending in a marker with the
/// original length when it was cut. Text already within `max` is returned as it is, so cutting
/// twice changes nothing. `max` must leave room for the marker (about 30 bytes).
pub fn bounded(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let marker = format!("… [{} bytes, truncated]", s.len());
    let mut end = max.saturating_sub(marker.len());
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{marker}", &s[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_the_rest_is_kept() {
        assert_eq!(
            one_line("a\n2026-01-01T00:00:00Z INFO forged"),
            "a\\n2026-01-01T00:00:00Z INFO forged"
        );
        assert_eq!(
            one_line("\x1b[2J\r\t\u{9b}1m\u{7f}"),
            "\\u001b[2J\\r\\t\\u009b1m\\u007f"
        );
        assert_eq!(one_line("/roles/web ünïcode"), "/roles/web ünïcode");
        assert!(matches!(one_line("/roles/web"), Cow::Borrowed(_)));
        assert_eq!(keep_lines("a\nb\x1bc\n"), "a\nb\\u001bc\n");
        // JSON stays JSON: a raw C1 character becomes the JSON escape of itself.
        let json = serde_json::to_string(&"x\u{9b}y\u{1b}").unwrap();
        let escaped = keep_lines(&json);
        assert!(!escaped.contains('\u{9b}'), "{escaped}");
        let back: String = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, "x\u{9b}y\u{1b}");
    }

    #[test]
    fn long_text_is_cut_with_a_marker_within_the_bound() {
        let long = "é".repeat(10_000);
        let cut = bounded(&long, 1024);
        assert!(cut.len() <= 1024, "{}", cut.len());
        assert!(cut.ends_with("… [20000 bytes, truncated]"), "{cut}");
        assert!(cut.starts_with("éé"));
        assert_eq!(bounded(&cut, 1024), cut, "cutting twice changes nothing");
        assert_eq!(bounded("short", 1024), "short");
    }
}
