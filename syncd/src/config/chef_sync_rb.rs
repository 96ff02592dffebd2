//! The `chef-sync.rb` Chef documented: `NAME VALUE` settings (`role :replica`, `master "…"`)
//! and `NAME['KEY'] = VALUE` hash settings (`ec_sync_client['dir'] = …`, `user['home'] = …`,
//! nested as `NAME['A']['B'] = VALUE`), with Ruby literals (strings, symbols, integers,
//! booleans, nil, arrays, hashes with `=>` or `key:`) and `#` comments. No Ruby is executed;
//! which names are settings is decided by the shared key check.

use std::path::Path;

use serde_json::{Map, Value};

use super::{ConfigError, KeyLines};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Sym(String),
    Label(String),
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    LParen,
    RParen,
    Comma,
    Arrow,
    Assign,
    Newline,
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    line: usize,
}

type Located = (Tok, usize);

fn err(path: &Path, line: usize, message: impl Into<String>) -> ConfigError {
    ConfigError {
        file: path.to_owned(),
        line: Some(line),
        key: None,
        message: message.into(),
    }
}

impl Lexer<'_> {
    fn word(&mut self, first: char) -> String {
        let mut w = String::from(first);
        while let Some(&(_, c)) = self.chars.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                w.push(c);
                self.chars.next();
            } else {
                break;
            }
        }
        w
    }

    fn string(&mut self, quote: char, path: &Path) -> Result<String, ConfigError> {
        let start = self.line;
        let mut s = String::new();
        while let Some((_, c)) = self.chars.next() {
            match c {
                c if c == quote => return Ok(s),
                '\\' => match self.chars.next() {
                    Some((_, 'n')) if quote == '"' => s.push('\n'),
                    Some((_, 't')) if quote == '"' => s.push('\t'),
                    Some((_, e)) => {
                        if quote == '\'' && e != '\'' && e != '\\' {
                            s.push('\\');
                        }
                        s.push(e);
                    }
                    None => break,
                },
                '\n' => {
                    self.line += 1;
                    s.push('\n');
                }
                '#' if quote == '"' && self.chars.peek().is_some_and(|&(_, n)| n == '{') => {
                    return Err(err(
                        path,
                        self.line,
                        "string interpolation is not supported",
                    ));
                }
                c => s.push(c),
            }
        }
        Err(err(path, start, "unterminated string"))
    }

    /// Skips to the end of the line.
    fn skip_comment(&mut self) {
        while let Some(&(_, n)) = self.chars.peek() {
            if n == '\n' {
                break;
            }
            self.chars.next();
        }
    }

    /// An integer literal (`_` separators allowed) starting with `first`.
    fn integer(&mut self, first: char, path: &Path, line: usize) -> Result<Tok, ConfigError> {
        let text = self.word(first);
        let digits: String = text.chars().filter(|&d| d != '_').collect();
        digits
            .parse()
            .map(Tok::Int)
            .map_err(|_| err(path, line, format!("'{text}' is not an integer")))
    }

    /// An identifier, or a `key:` hash label (but not `key::`).
    fn name(&mut self, first: char) -> Tok {
        let w = self.word(first);
        if self.chars.peek().is_some_and(|&(_, n)| n == ':') {
            let mut ahead = self.chars.clone();
            ahead.next();
            if ahead.peek().is_none_or(|&(_, n)| n != ':') {
                self.chars.next();
                return Tok::Label(w);
            }
        }
        Tok::Ident(w)
    }

    fn tokens(mut self, path: &Path) -> Result<Vec<Located>, ConfigError> {
        let mut out = Vec::new();
        let mut depth: Vec<usize> = Vec::new();
        while let Some((_, c)) = self.chars.next() {
            let line = self.line;
            let tok = match c {
                '\n' => {
                    self.line += 1;
                    if depth.is_empty() {
                        Tok::Newline
                    } else {
                        continue;
                    }
                }
                ' ' | '\t' | '\r' => continue,
                '#' => {
                    self.skip_comment();
                    continue;
                }
                '\\' if self.chars.peek().is_some_and(|&(_, n)| n == '\n') => {
                    self.chars.next();
                    self.line += 1;
                    continue;
                }
                '"' | '\'' => Tok::Str(self.string(c, path)?),
                '[' | '{' | '(' => {
                    depth.push(line);
                    opening(c)
                }
                ']' | '}' | ')' => {
                    if depth.pop().is_none() {
                        return Err(err(path, line, format!("unexpected '{c}'")));
                    }
                    closing(c)
                }
                ',' => Tok::Comma,
                '=' if self.chars.peek().is_some_and(|&(_, n)| n == '>') => {
                    self.chars.next();
                    Tok::Arrow
                }
                '=' => Tok::Assign,
                ':' => match self.chars.next() {
                    Some((_, q @ ('"' | '\''))) => Tok::Sym(self.string(q, path)?),
                    Some((_, n)) if n.is_ascii_alphabetic() || n == '_' => Tok::Sym(self.word(n)),
                    _ => return Err(err(path, line, "a symbol needs a name after ':'")),
                },
                '-' | '0'..='9' => self.integer(c, path, line)?,
                c if c.is_ascii_alphabetic() || c == '_' => self.name(c),
                other => return Err(err(path, line, format!("unexpected character '{other}'"))),
            };
            out.push((tok, line));
        }
        if let Some(open) = depth.pop() {
            return Err(err(path, open, "bracket opened here is never closed"));
        }
        Ok(out)
    }
}

/// The token of an opening bracket.
fn opening(c: char) -> Tok {
    match c {
        '[' => Tok::LBracket,
        '{' => Tok::LBrace,
        _ => Tok::LParen,
    }
}

/// The token of a closing bracket.
fn closing(c: char) -> Tok {
    match c {
        ']' => Tok::RBracket,
        '}' => Tok::RBrace,
        _ => Tok::RParen,
    }
}

struct Parser<'a> {
    toks: Vec<Located>,
    pos: usize,
    path: &'a Path,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or_else(|| self.toks.last())
            .map_or(1, |(_, l)| *l)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        t
    }

    fn expect(&mut self, want: &Tok, what: &str) -> Result<(), ConfigError> {
        let line = self.line();
        match self.next() {
            Some(t) if &t == want => Ok(()),
            _ => Err(err(self.path, line, format!("expected {what}"))),
        }
    }

    fn value(&mut self) -> Result<Value, ConfigError> {
        let line = self.line();
        match self.next() {
            Some(Tok::Str(s) | Tok::Sym(s)) => Ok(Value::String(s)),
            Some(Tok::Int(i)) => Ok(Value::from(i)),
            Some(Tok::Ident(w)) if w == "true" => Ok(Value::Bool(true)),
            Some(Tok::Ident(w)) if w == "false" => Ok(Value::Bool(false)),
            Some(Tok::Ident(w)) if w == "nil" => Ok(Value::Null),
            Some(Tok::LBracket) => {
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(&Tok::RBracket) {
                        self.next();
                        return Ok(Value::Array(items));
                    }
                    items.push(self.value()?);
                    match self.next() {
                        Some(Tok::Comma) => {}
                        Some(Tok::RBracket) => return Ok(Value::Array(items)),
                        _ => return Err(err(self.path, line, "expected ',' or ']' in a list")),
                    }
                }
            }
            Some(Tok::LBrace) => {
                let mut map = Map::new();
                loop {
                    if self.peek() == Some(&Tok::RBrace) {
                        self.next();
                        return Ok(Value::Object(map));
                    }
                    let key = match self.next() {
                        Some(Tok::Label(k)) => k,
                        Some(Tok::Str(k) | Tok::Sym(k)) => {
                            self.expect(&Tok::Arrow, "'=>' after a hash key")?;
                            k
                        }
                        _ => return Err(err(self.path, line, "expected a hash key")),
                    };
                    let v = self.value()?;
                    map.insert(key, v);
                    match self.next() {
                        Some(Tok::Comma) => {}
                        Some(Tok::RBrace) => return Ok(Value::Object(map)),
                        _ => return Err(err(self.path, line, "expected ',' or '}' in a hash")),
                    }
                }
            }
            _ => Err(err(self.path, line, "expected a value")),
        }
    }

    /// `ident value`, `ident(value)`, or `ident[KEY]… = value` as omnibus attribute files
    /// write hashes (`ec_sync_client['dir'] = …`, `user['home'] = …`).
    fn statement(
        &mut self,
        top: &mut Map<String, Value>,
        lines: &mut KeyLines,
    ) -> Result<(), ConfigError> {
        let line = self.line();
        let Some(Tok::Ident(name)) = self.next() else {
            return Err(err(self.path, line, "expected a setting name"));
        };
        if self.at_subscript() {
            let mut keys = vec![name];
            while self.at_subscript() {
                self.next();
                match self.next() {
                    Some(Tok::Str(k) | Tok::Sym(k)) => keys.push(k),
                    _ => return Err(err(self.path, line, "expected a key inside […]")),
                }
                self.expect(&Tok::RBracket, "']'")?;
            }
            self.expect(&Tok::Assign, &format!("'=' after {}[…]", keys[0]))?;
            let v = self.value()?;
            lines.entry(keys.join(".")).or_insert(line);
            self.assign(top, &keys, v, line)?;
        } else {
            let v = if self.peek() == Some(&Tok::LParen) {
                self.next();
                let v = self.value()?;
                self.expect(&Tok::RParen, "')'")?;
                v
            } else {
                self.value()?
            };
            lines.entry(name.clone()).or_insert(line);
            top.insert(name, v);
        }
        match self.next() {
            None | Some(Tok::Newline) => Ok(()),
            _ => Err(err(self.path, line, "unexpected text after the setting")),
        }
    }

    /// `[KEY]` followed by `=` or another `[`: a subscript, not a list value such as
    /// `master ["https://a", "https://b"]`.
    fn at_subscript(&self) -> bool {
        let tok = |i: usize| self.toks.get(self.pos + i).map(|(t, _)| t);
        tok(0) == Some(&Tok::LBracket)
            && matches!(tok(1), Some(Tok::Str(_) | Tok::Sym(_)))
            && tok(2) == Some(&Tok::RBracket)
            && matches!(tok(3), Some(Tok::Assign | Tok::LBracket))
    }

    /// Sets `top[keys[0]][keys[1]]… = v`, making the hashes on the way.
    fn assign(
        &self,
        top: &mut Map<String, Value>,
        keys: &[String],
        v: Value,
        line: usize,
    ) -> Result<(), ConfigError> {
        let Some((last, parents)) = keys.split_last() else {
            return Ok(());
        };
        let mut table = top;
        for (depth, key) in parents.iter().enumerate() {
            let slot = table
                .entry(key.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(inner) = slot else {
                return Err(err(
                    self.path,
                    line,
                    format!(
                        "{} is set as a value and also used as a hash",
                        keys[..=depth].join(".")
                    ),
                ));
            };
            table = inner;
        }
        table.insert(last.clone(), v);
        Ok(())
    }
}

pub(super) fn parse(path: &Path, text: &str) -> Result<(Value, KeyLines), ConfigError> {
    let toks = Lexer {
        chars: text.char_indices().peekable(),
        line: 1,
    }
    .tokens(path)?;
    let mut parser = Parser { toks, pos: 0, path };
    let mut top = Map::new();
    let mut lines = KeyLines::new();
    while let Some(t) = parser.peek() {
        if *t == Tok::Newline {
            parser.next();
            continue;
        }
        parser.statement(&mut top, &mut lines)?;
    }
    // Unknown settings are reported by the shared key check, with their line.
    Ok((Value::Object(top), lines))
}
