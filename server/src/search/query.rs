//! The part of Chef's (Lucene) search syntax this server answers: `*:*`, `field:value` terms
//! whose value may hold `*` and `?` wildcards or be quoted, `AND` / `OR` / `NOT` (also `&&`,
//! `||`, `!`, a leading `-`), and parentheses. Anything else (ranges, fuzzy or boosted terms,
//! two terms with no operator between them) is refused with a message naming it, rather than
//! answered with a guess.

use super::fields::Fields;

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `*:*`.
    All,
    /// `field:pattern`.
    Term { field: String, pattern: String },
    /// Both sides.
    And(Box<Query>, Box<Query>),
    /// Either side.
    Or(Box<Query>, Box<Query>),
    /// Not the inner query.
    Not(Box<Query>),
}

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid search query '{query}': {why}")]
pub struct QueryError {
    query: String,
    why: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Not,
    /// `field:value`, already unescaped.
    Term(String, String),
}

impl Query {
    /// Parses `text`; an empty query means `*:*`, as in Chef.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let fail = |why: String| QueryError {
            query: text.to_owned(),
            why,
        };
        let tokens = tokenize(text).map_err(fail)?;
        if tokens.is_empty() {
            return Ok(Query::All);
        }
        let mut parser = Parser { tokens, at: 0 };
        let query = parser.or().map_err(fail)?;
        match parser.tokens.get(parser.at) {
            None => Ok(query),
            Some(Token::Close) => Err(fail("unbalanced ')'".into())),
            Some(t) => Err(fail(format!(
                "put AND or OR before {}; terms without an operator between them are not supported",
                describe(t)
            ))),
        }
    }

    /// Whether this query is `*:*` (answered straight from the store, page by page).
    pub fn is_all(&self) -> bool {
        matches!(self, Query::All)
    }

    /// Whether an object with these indexed fields matches.
    pub fn matches(&self, fields: &Fields) -> bool {
        match self {
            Query::All => true,
            Query::Term { field, pattern } => fields
                .values(field)
                .any(|value| glob_matches(pattern.as_bytes(), value.as_bytes())),
            Query::And(a, b) => a.matches(fields) && b.matches(fields),
            Query::Or(a, b) => a.matches(fields) || b.matches(fields),
            Query::Not(q) => !q.matches(fields),
        }
    }
}

fn describe(t: &Token) -> String {
    match t {
        Token::Open => "'('".into(),
        Token::Close => "')'".into(),
        Token::And => "AND".into(),
        Token::Or => "OR".into(),
        Token::Not => "NOT".into(),
        Token::Term(f, v) => format!("'{f}:{v}'"),
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn or(&mut self) -> Result<Query, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            left = Query::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Query, String> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            left = Query::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Query, String> {
        match self.tokens.get(self.at).cloned() {
            Some(Token::Not) => {
                self.at += 1;
                Ok(Query::Not(Box::new(self.unary()?)))
            }
            Some(Token::Open) => {
                self.at += 1;
                let inner = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return Err("missing ')'".into());
                }
                self.at += 1;
                Ok(inner)
            }
            Some(Token::Term(field, pattern)) => {
                self.at += 1;
                Ok(if field == "*" && pattern == "*" {
                    Query::All
                } else {
                    Query::Term { field, pattern }
                })
            }
            Some(t) => Err(format!("expected a term, found {}", describe(&t))),
            None => Err("the query ends where a term is expected".into()),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            '&' | '|' if chars.get(i + 1) == Some(&c) => {
                tokens.push(if c == '&' { Token::And } else { Token::Or });
                i += 2;
            }
            '!' | '-' => {
                tokens.push(Token::Not);
                i += 1;
            }
            // A required term is the default here.
            '+' => i += 1,
            _ => {
                let (word, next) = read_word(&chars, i)?;
                i = next;
                match word.as_str() {
                    "AND" => tokens.push(Token::And),
                    "OR" => tokens.push(Token::Or),
                    "NOT" => tokens.push(Token::Not),
                    _ => tokens.push(term(&word, &chars, &mut i)?),
                }
            }
        }
    }
    Ok(tokens)
}

fn is_special(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | ':' | '"')
}

/// Reads up to whitespace, a parenthesis, a colon or a quote; `\` escapes the next character.
fn read_word(chars: &[char], mut i: usize) -> Result<(String, usize), String> {
    let mut word = String::new();
    while let Some(&c) = chars.get(i) {
        if c == '\\' {
            let Some(&escaped) = chars.get(i + 1) else {
                return Err("a trailing '\\' escapes nothing".into());
            };
            word.push(escaped);
            i += 2;
            continue;
        }
        if is_special(c) {
            break;
        }
        if matches!(c, '[' | ']' | '{' | '}' | '~' | '^') {
            return Err(format!(
                "'{c}' (range, fuzzy or boosted queries) is not supported"
            ));
        }
        word.push(c);
        i += 1;
    }
    if word.is_empty() {
        return Err(format!(
            "unexpected '{}'",
            chars.get(i).copied().unwrap_or(' ')
        ));
    }
    Ok((word, i))
}

/// The value after `field:` (bare or quoted).
fn term(field: &str, chars: &[char], i: &mut usize) -> Result<Token, String> {
    if chars.get(*i) != Some(&':') {
        return Err(format!(
            "'{field}' needs a field name, as in 'name:{field}' (searching all fields is not supported)"
        ));
    }
    *i += 1;
    if chars.get(*i) == Some(&'"') {
        let mut value = String::new();
        *i += 1;
        loop {
            match chars.get(*i) {
                None => return Err("an unclosed '\"'".into()),
                Some('"') => {
                    *i += 1;
                    break;
                }
                Some('\\') => {
                    let Some(&escaped) = chars.get(*i + 1) else {
                        return Err("an unclosed '\"'".into());
                    };
                    // A quoted value is matched literally: keep wildcards out of it.
                    value.push(escaped);
                    *i += 2;
                }
                Some(&c) => {
                    value.push(c);
                    *i += 1;
                }
            }
        }
        return Ok(Token::Term(field.to_owned(), escape_wildcards(&value)));
    }
    let (value, next) = read_word(chars, *i).map_err(|e| format!("after '{field}:': {e}"))?;
    *i = next;
    Ok(Token::Term(field.to_owned(), value))
}

/// Marks `*` and `?` in a quoted value as literal (a `\` before them, read by the matcher).
fn escape_wildcards(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '*' | '?' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `*` matches any run of bytes, `?` one character, `\x` the character x.
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative matcher with one backtrack point: linear in practice, never exponential.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some(b'?') => {
                p += 1;
                t += utf8_len(text[t]);
                continue;
            }
            Some(b'\\') if pattern.get(p + 1) == Some(&text[t]) => {
                p += 2;
                t += 1;
                continue;
            }
            Some(&c) if c != b'\\' && c == text[t] => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hit(query: &str, doc: serde_json::Value) -> bool {
        let fields = Fields::of(&doc);
        Query::parse(query).unwrap().matches(&fields)
    }

    #[test]
    fn everything_and_empty_queries_match_all() {
        assert!(Query::parse("*:*").unwrap().is_all());
        assert!(Query::parse("  ").unwrap().is_all());
        assert!(hit("*:*", json!({})));
    }

    #[test]
    fn terms_match_exactly_or_by_wildcard() {
        let doc = json!({"name": "web-frontend", "description": "the Web tier"});
        assert!(hit("name:web-frontend", doc.clone()));
        assert!(!hit("name:web", doc.clone()));
        assert!(hit("name:web*", doc.clone()));
        assert!(hit("name:*front*", doc.clone()));
        assert!(hit("name:web-fr?ntend", doc.clone()));
        assert!(hit("description:\"the Web tier\"", doc.clone()));
        assert!(!hit("description:\"the*\"", doc.clone()));
        assert!(hit("name:*", doc.clone()));
        assert!(!hit("missing:*", doc));
    }

    #[test]
    fn boolean_operators_and_grouping() {
        let doc = json!({"id": "alice", "group": "ops", "shell": "/bin/zsh"});
        assert!(hit("id:alice AND group:ops", doc.clone()));
        assert!(!hit("id:alice AND group:dev", doc.clone()));
        assert!(hit("id:bob OR group:ops", doc.clone()));
        assert!(hit("group:ops && NOT id:bob", doc.clone()));
        assert!(!hit("-id:alice", doc.clone()));
        assert!(hit(
            "(id:bob OR id:alice) AND shell:\\/bin\\/zsh",
            doc.clone()
        ));
        assert!(!hit("!(id:alice || id:bob)", doc));
    }

    #[test]
    fn unsupported_syntax_is_refused_with_its_reason() {
        for (query, why) in [
            ("id:alice group:ops", "put AND or OR"),
            ("alice", "needs a field name"),
            ("id:[a TO c]", "range"),
            ("id:alice~", "fuzzy"),
            ("(id:alice", "missing ')'"),
            ("id:alice)", "unbalanced"),
            ("id:\"alice", "unclosed"),
            ("id:alice AND", "ends where a term"),
            ("id:", "after 'id:'"),
        ] {
            let err = Query::parse(query).unwrap_err().to_string();
            assert!(err.contains(why), "{query}: {err}");
            assert!(err.contains(query), "{query}: {err}");
        }
    }

    #[test]
    fn wildcard_matching_does_not_blow_up() {
        let text = "a".repeat(10_000);
        assert!(!glob_matches("*a*a*a*a*a*a*b".as_bytes(), text.as_bytes()));
        assert!(glob_matches("*a*a*a*a*a*a*".as_bytes(), text.as_bytes()));
        assert!(glob_matches("caf?".as_bytes(), "café".as_bytes()));
    }
}
