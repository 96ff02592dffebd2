//! Chef's (Lucene) query language as Chef Infra Server answers it: `*:*`, `field:value` with
//! `*` and `?` wildcards (in the value or the field name), quoted phrases, ranges
//! `field:[a TO b]` / `field:{a TO b}` (`*` for an open end), `AND` / `OR` / `NOT` (also `&&`,
//! `||`, `!`), `+` (required) and `-` (prohibited) clauses, terms side by side (OR, Lucene's
//! default operator), parentheses, `field:(a OR b)`, and boosts (`^2`, accepted and ignored:
//! answers come sorted by name). Fuzzy terms (`~`) and bare terms outside a field group are
//! refused with a message naming them.
//!
//! Every input is bounded before any work is done: [`MAX_QUERY_BYTES`], [`MAX_DEPTH`] of
//! groups and negations, [`MAX_CLAUSES`] terms, [`MAX_INDEXED_BYTES`] per term. The parser
//! recurses only through groups and negations, so the depth limit is what bounds the stack;
//! `AND`/`OR` chains are flat lists, never deep trees.

use std::cmp::Ordering;
use std::ops::Bound;

use regex::{Regex, RegexBuilder};

use super::fields::{MAX_INDEXED_BYTES, Terms};

/// Longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// Deepest nesting of parentheses and negations.
pub const MAX_DEPTH: usize = 32;
/// Most terms in one query (Lucene's own default clause limit).
pub const MAX_CLAUSES: usize = 1024;

/// A parsed query.
#[derive(Debug, Clone)]
pub enum Query {
    /// `*:*`.
    All,
    /// `field:value`.
    Term {
        /// Which fields.
        field: FieldName,
        /// What their value must be.
        value: ValueMatch,
    },
    /// Every one.
    And(Vec<Query>),
    /// Any one.
    Or(Vec<Query>),
    /// Not the inner query.
    Not(Box<Query>),
}

/// A field name, or a pattern over field names (`*_port`, or `*` for every field).
#[derive(Debug, Clone)]
pub enum FieldName {
    /// One name (a key path or a key).
    Exact(String),
    /// A wildcard pattern over names.
    Pattern(Glob),
}

/// What a value must be.
#[derive(Debug, Clone)]
pub enum ValueMatch {
    /// Exactly this text.
    Exact(String),
    /// Starting with this text (`web*`; empty: any value).
    Prefix(String),
    /// A general wildcard pattern.
    Pattern(Glob),
    /// Between two bounds, in byte order (as the index sorts).
    Range(Bound<String>, Bound<String>),
}

/// A compiled wildcard pattern: `*` any run of characters, `?` one character.
#[derive(Debug, Clone)]
pub struct Glob {
    /// The literal text before the first wildcard (narrows an index scan).
    pub prefix: String,
    regex: Regex,
}

impl Glob {
    /// Whether `text` matches. The regex engine runs in time linear in `text` (no
    /// backtracking), and indexed text is at most [`MAX_INDEXED_BYTES`].
    pub fn matches(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

impl ValueMatch {
    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            ValueMatch::Exact(v) => value == v,
            ValueMatch::Prefix(p) => value.starts_with(p.as_str()),
            ValueMatch::Pattern(g) => g.matches(value),
            ValueMatch::Range(low, high) => in_range(value, low, high),
        }
    }
}

impl FieldName {
    /// Whether a field with this key path and innermost key is meant.
    pub fn matches(&self, path: &str, leaf: &str) -> bool {
        match self {
            FieldName::Exact(name) => path == name || leaf == name,
            FieldName::Pattern(g) => g.matches(path) || g.matches(leaf),
        }
    }
}

fn in_range(value: &str, low: &Bound<String>, high: &Bound<String>) -> bool {
    let above = match low {
        Bound::Included(l) => value.cmp(l.as_str()) != Ordering::Less,
        Bound::Excluded(l) => value.cmp(l.as_str()) == Ordering::Greater,
        Bound::Unbounded => true,
    };
    let below = match high {
        Bound::Included(h) => value.cmp(h.as_str()) != Ordering::Greater,
        Bound::Excluded(h) => value.cmp(h.as_str()) == Ordering::Less,
        Bound::Unbounded => true,
    };
    above && below
}

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid search query '{query}': {why}")]
pub struct QueryError {
    query: String,
    why: String,
}

impl Query {
    /// Parses `text`; an empty query means `*:*`, as in Chef.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let fail = |why: String| QueryError {
            query: shown(text),
            why,
        };
        if text.len() > MAX_QUERY_BYTES {
            return Err(fail(format!(
                "the query is {} bytes long; the limit is {MAX_QUERY_BYTES}",
                text.len()
            )));
        }
        let tokens = tokenize(text).map_err(fail)?;
        if tokens.is_empty() {
            return Ok(Query::All);
        }
        let mut parser = Parser {
            tokens,
            at: 0,
            depth: 0,
            clauses: 0,
        };
        let query = parser.clauses(None).map_err(fail)?;
        match parser.tokens.get(parser.at) {
            None => Ok(query),
            Some(Token::Close) => Err(fail("unbalanced ')'".into())),
            Some(t) => Err(fail(format!("unexpected {}", describe(t)))),
        }
    }

    /// Whether this query is `*:*`.
    pub fn is_all(&self) -> bool {
        matches!(self, Query::All)
    }

    /// Whether a document with these terms matches (built-in documents, tests).
    pub fn matches(&self, terms: &Terms) -> bool {
        match self {
            Query::All => true,
            Query::Term { field, value } => terms
                .iter()
                .any(|t| field.matches(&t.path, &t.leaf) && value.matches(&t.value)),
            Query::And(all) => all.iter().all(|q| q.matches(terms)),
            Query::Or(any) => any.iter().any(|q| q.matches(terms)),
            Query::Not(q) => !q.matches(terms),
        }
    }
}

/// The query as quoted back in an error: long ones cut, so an error body stays small.
fn shown(text: &str) -> String {
    const SHOWN: usize = 200;
    if text.len() <= SHOWN {
        return text.to_owned();
    }
    let mut end = SHOWN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// One character of a word: escaped characters never act as wildcards.
type Piece = (char, bool);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Not,
    Required,
    Prohibited,
    /// `name:`, the name's pieces.
    Field(Vec<Piece>),
    Word(Vec<Piece>),
    Phrase(String),
    Range {
        low: String,
        low_inclusive: bool,
        high: String,
        high_inclusive: bool,
    },
}

fn describe(t: &Token) -> String {
    match t {
        Token::Open => "'('".into(),
        Token::Close => "')'".into(),
        Token::And => "AND".into(),
        Token::Or => "OR".into(),
        Token::Not => "NOT".into(),
        Token::Required => "'+'".into(),
        Token::Prohibited => "'-'".into(),
        Token::Field(name) => format!("'{}:'", shown(&text_of(name))),
        Token::Word(word) => format!("'{}'", shown(&text_of(word))),
        Token::Phrase(p) => format!("'\"{}\"'", shown(p)),
        Token::Range { .. } => "a range".into(),
    }
}

fn text_of(pieces: &[Piece]) -> String {
    pieces.iter().map(|(c, _)| c).collect()
}

/// How a clause takes part in its list (Lucene's occurs).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Occur {
    Should,
    Must,
    MustNot,
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
    clauses: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "groups and negations are nested more than {MAX_DEPTH} deep"
            ));
        }
        Ok(())
    }

    /// A list of clauses up to `)` or the end: `AND` binds tighter than `OR`; clauses side by
    /// side are OR'd, unless some are required (`+`), then only those must match; prohibited
    /// ones (`-`, `NOT`) exclude.
    fn clauses(&mut self, field: Option<&FieldName>) -> Result<Query, String> {
        let mut groups: Vec<(Occur, Query)> = Vec::new();
        loop {
            match self.peek() {
                None | Some(Token::Close) => break,
                Some(Token::Or) if !groups.is_empty() => {
                    self.at += 1;
                    continue;
                }
                _ => {}
            }
            let first = self.clause(field)?;
            let mut conj = vec![first];
            while self.peek() == Some(&Token::And) {
                self.at += 1;
                if matches!(self.peek(), None | Some(Token::Close)) {
                    return Err("the query ends where a term is expected".into());
                }
                conj.push(self.clause(field)?);
            }
            if conj.len() == 1 {
                groups.push(conj.remove(0));
            } else {
                // In `a AND -b`, the `-` means NOT.
                let all = conj
                    .into_iter()
                    .map(|(occur, q)| match occur {
                        Occur::MustNot => Query::Not(Box::new(q)),
                        _ => q,
                    })
                    .collect();
                groups.push((Occur::Must, Query::And(all)));
            }
            if self.peek() == Some(&Token::Or) {
                self.at += 1;
                if matches!(self.peek(), None | Some(Token::Close)) {
                    return Err("the query ends where a term is expected".into());
                }
                // `a AND b OR c`: the AND group is one option among others.
                if let Some(last) = groups.last_mut()
                    && last.0 == Occur::Must
                    && matches!(last.1, Query::And(_))
                {
                    last.0 = Occur::Should;
                }
            }
        }
        if groups.is_empty() {
            return Err("the query ends where a term is expected".into());
        }
        Ok(combine(groups))
    }

    /// One clause with its occur marker.
    fn clause(&mut self, field: Option<&FieldName>) -> Result<(Occur, Query), String> {
        match self.peek() {
            Some(Token::Required) => {
                self.at += 1;
                Ok((Occur::Must, self.unary(field)?))
            }
            Some(Token::Prohibited) | Some(Token::Not) => {
                self.at += 1;
                self.enter()?;
                let inner = self.unary(field)?;
                self.depth -= 1;
                Ok((Occur::MustNot, inner))
            }
            _ => Ok((Occur::Should, self.unary(field)?)),
        }
    }

    fn unary(&mut self, field: Option<&FieldName>) -> Result<Query, String> {
        match self.peek().cloned() {
            Some(Token::Not) | Some(Token::Prohibited) => {
                self.at += 1;
                self.enter()?;
                let inner = self.unary(field)?;
                self.depth -= 1;
                Ok(Query::Not(Box::new(inner)))
            }
            Some(Token::Required) => {
                self.at += 1;
                self.enter()?;
                let inner = self.unary(field)?;
                self.depth -= 1;
                Ok(inner)
            }
            Some(Token::Open) => {
                self.at += 1;
                self.group(field)
            }
            Some(Token::Field(name)) => {
                self.at += 1;
                let named = field_name(&name)?;
                match self.peek().cloned() {
                    Some(Token::Open) => {
                        self.at += 1;
                        self.group(Some(&named))
                    }
                    Some(Token::Word(word)) if is_star(&name) && is_star(&word) => {
                        self.at += 1;
                        self.count()?;
                        Ok(Query::All)
                    }
                    Some(value @ (Token::Word(_) | Token::Phrase(_) | Token::Range { .. })) => {
                        self.at += 1;
                        self.term(named, value)
                    }
                    _ => Err(format!("'{}:' needs a value", shown(&text_of(&name)))),
                }
            }
            Some(value @ (Token::Word(_) | Token::Phrase(_) | Token::Range { .. })) => {
                let Some(field) = field else {
                    return Err(format!(
                        "{} needs a field name, as in 'name:{}' (searching all fields is written '*:value')",
                        describe(&value),
                        match &value {
                            Token::Word(w) => shown(&text_of(w)),
                            _ => "value".into(),
                        }
                    ));
                };
                self.at += 1;
                self.term(field.clone(), value)
            }
            Some(t) => Err(format!("expected a term, found {}", describe(&t))),
            None => Err("the query ends where a term is expected".into()),
        }
    }

    fn group(&mut self, field: Option<&FieldName>) -> Result<Query, String> {
        self.enter()?;
        let inner = self.clauses(field)?;
        if self.peek() != Some(&Token::Close) {
            return Err("missing ')'".into());
        }
        self.at += 1;
        self.depth -= 1;
        Ok(inner)
    }

    fn count(&mut self) -> Result<(), String> {
        self.clauses += 1;
        if self.clauses > MAX_CLAUSES {
            return Err(format!("the query has more than {MAX_CLAUSES} terms"));
        }
        Ok(())
    }

    fn term(&mut self, field: FieldName, value: Token) -> Result<Query, String> {
        self.count()?;
        let value = match value {
            Token::Word(word) => value_match(&word)?,
            Token::Phrase(text) => ValueMatch::Exact(bounded(text)?),
            Token::Range {
                low,
                low_inclusive,
                high,
                high_inclusive,
            } => {
                let end = |text: String, inclusive: bool| -> Result<Bound<String>, String> {
                    Ok(match (text.as_str(), inclusive) {
                        ("*", _) => Bound::Unbounded,
                        (_, true) => Bound::Included(bounded(text)?),
                        (_, false) => Bound::Excluded(bounded(text)?),
                    })
                };
                ValueMatch::Range(end(low, low_inclusive)?, end(high, high_inclusive)?)
            }
            other => return Err(format!("expected a value, found {}", describe(&other))),
        };
        Ok(Query::Term { field, value })
    }
}

/// Builds one list's query from its clauses.
fn combine(groups: Vec<(Occur, Query)>) -> Query {
    let mut must = Vec::new();
    let mut should = Vec::new();
    let mut must_not = Vec::new();
    for (occur, q) in groups {
        match occur {
            Occur::Must => must.push(q),
            Occur::Should => should.push(q),
            Occur::MustNot => must_not.push(q),
        }
    }
    let positive = if !must.is_empty() {
        one_or(must, Query::And)
    } else if !should.is_empty() {
        one_or(should, Query::Or)
    } else {
        // Only exclusions: everything else (as Solr answers a purely negative query).
        Query::All
    };
    if must_not.is_empty() {
        return positive;
    }
    let excluded = Query::Not(Box::new(one_or(must_not, Query::Or)));
    match positive {
        Query::All => excluded,
        Query::And(mut all) => {
            all.push(excluded);
            Query::And(all)
        }
        other => Query::And(vec![other, excluded]),
    }
}

fn one_or(mut list: Vec<Query>, many: fn(Vec<Query>) -> Query) -> Query {
    if list.len() == 1 {
        list.remove(0)
    } else {
        many(list)
    }
}

fn is_star(pieces: &[Piece]) -> bool {
    pieces == [('*', false)]
}

fn bounded(text: String) -> Result<String, String> {
    if text.len() > MAX_INDEXED_BYTES {
        return Err(format!(
            "a term is {} bytes long; values are indexed by their first {MAX_INDEXED_BYTES} bytes",
            text.len()
        ));
    }
    Ok(text)
}

fn has_wildcard(pieces: &[Piece]) -> bool {
    pieces
        .iter()
        .any(|&(c, escaped)| !escaped && (c == '*' || c == '?'))
}

fn field_name(pieces: &[Piece]) -> Result<FieldName, String> {
    if has_wildcard(pieces) {
        return Ok(FieldName::Pattern(glob(pieces)?));
    }
    Ok(FieldName::Exact(bounded(text_of(pieces))?))
}

fn value_match(pieces: &[Piece]) -> Result<ValueMatch, String> {
    bounded(text_of(pieces))?;
    if !has_wildcard(pieces) {
        return Ok(ValueMatch::Exact(text_of(pieces)));
    }
    if let Some((&('*', false), literal)) = pieces.split_last()
        && !has_wildcard(literal)
    {
        return Ok(ValueMatch::Prefix(text_of(literal)));
    }
    Ok(ValueMatch::Pattern(glob(pieces)?))
}

fn glob(pieces: &[Piece]) -> Result<Glob, String> {
    bounded(text_of(pieces))?;
    let mut source = String::from("(?s)^");
    let mut prefix = String::new();
    let mut in_prefix = true;
    for &(c, escaped) in pieces {
        match (c, escaped) {
            ('*', false) => {
                in_prefix = false;
                source.push_str(".*");
            }
            ('?', false) => {
                in_prefix = false;
                source.push('.');
            }
            _ => {
                if in_prefix {
                    prefix.push(c);
                }
                source.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
            }
        }
    }
    source.push('$');
    let regex = RegexBuilder::new(&source)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("the wildcard pattern is too complex: {e}"))?;
    Ok(Glob { prefix, regex })
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
            '!' => {
                tokens.push(Token::Not);
                i += 1;
            }
            '-' => {
                tokens.push(Token::Prohibited);
                i += 1;
            }
            '+' => {
                tokens.push(Token::Required);
                i += 1;
            }
            '"' => {
                let (phrase, next) = read_phrase(&chars, i + 1)?;
                tokens.push(Token::Phrase(phrase));
                i = skip_boost(&chars, next)?;
            }
            '[' | '{' => {
                let (range, next) = read_range(&chars, i)?;
                tokens.push(range);
                i = skip_boost(&chars, next)?;
            }
            _ => {
                let (word, next) = read_word(&chars, i)?;
                if chars.get(next) == Some(&':') {
                    tokens.push(Token::Field(word));
                    i = next + 1;
                    continue;
                }
                i = skip_boost(&chars, next)?;
                let keyword = |k: &str| word.iter().all(|&(_, e)| !e) && text_of(&word) == k;
                tokens.push(if keyword("AND") {
                    Token::And
                } else if keyword("OR") {
                    Token::Or
                } else if keyword("NOT") {
                    Token::Not
                } else {
                    Token::Word(word)
                });
            }
        }
    }
    Ok(tokens)
}

fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | ':' | '"' | '^' | '~')
}

/// Reads up to whitespace, a parenthesis, a colon, a quote or a boost; `\` escapes the next
/// character.
fn read_word(chars: &[char], mut i: usize) -> Result<(Vec<Piece>, usize), String> {
    let mut word = Vec::new();
    while let Some(&c) = chars.get(i) {
        if c == '\\' {
            let Some(&escaped) = chars.get(i + 1) else {
                return Err("a trailing '\\' escapes nothing".into());
            };
            word.push((escaped, true));
            i += 2;
            continue;
        }
        if ends_word(c) {
            break;
        }
        if matches!(c, '[' | ']' | '{' | '}') {
            return Err(format!(
                "'{c}' outside a range: escape it ('\\{c}') or write a range as field:[a TO b]"
            ));
        }
        word.push((c, false));
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

/// A quoted value, read literally (wildcards inside quotes are plain characters).
fn read_phrase(chars: &[char], mut i: usize) -> Result<(String, usize), String> {
    let mut value = String::new();
    loop {
        match chars.get(i) {
            None => return Err("an unclosed '\"'".into()),
            Some('"') => return Ok((value, i + 1)),
            Some('\\') => {
                let Some(&escaped) = chars.get(i + 1) else {
                    return Err("an unclosed '\"'".into());
                };
                value.push(escaped);
                i += 2;
            }
            Some(&c) => {
                value.push(c);
                i += 1;
            }
        }
    }
}

/// `[a TO b]`, `{a TO b}` or a mix, starting at the opening bracket.
fn read_range(chars: &[char], start: usize) -> Result<(Token, usize), String> {
    let low_inclusive = chars[start] == '[';
    let mut i = start + 1;
    let mut parts: Vec<String> = Vec::new();
    let mut current = String::new();
    loop {
        let Some(&c) = chars.get(i) else {
            return Err("a range needs its closing ']' or '}'".into());
        };
        match c {
            ']' | '}' => {
                if !current.is_empty() {
                    parts.push(std::mem::take(&mut current));
                }
                i += 1;
                let [low, to, high] = <[String; 3]>::try_from(parts)
                    .map_err(|_| "a range is written [low TO high]".to_owned())?;
                if to != "TO" {
                    return Err("a range is written [low TO high]".into());
                }
                let token = Token::Range {
                    low,
                    low_inclusive,
                    high,
                    high_inclusive: c == ']',
                };
                return Ok((token, i));
            }
            '\\' => {
                let Some(&escaped) = chars.get(i + 1) else {
                    return Err("a trailing '\\' escapes nothing".into());
                };
                current.push(escaped);
                i += 2;
            }
            c if c.is_whitespace() => {
                if !current.is_empty() {
                    parts.push(std::mem::take(&mut current));
                }
                i += 1;
            }
            '"' => {
                let (quoted, next) = read_phrase(chars, i + 1)?;
                current.push_str(&quoted);
                i = next;
            }
            _ => {
                current.push(c);
                i += 1;
            }
        }
        if parts.len() > 3 {
            return Err("a range is written [low TO high]".into());
        }
    }
}

/// Skips a boost (`^2`, `^0.5`); refuses fuzzy terms.
fn skip_boost(chars: &[char], mut i: usize) -> Result<usize, String> {
    match chars.get(i) {
        Some('^') => {
            i += 1;
            let digits = i;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_digit() || *c == '.')
            {
                i += 1;
            }
            if i == digits {
                return Err("'^' needs a number (a boost)".into());
            }
            Ok(i)
        }
        Some('~') => Err("'~' (fuzzy and proximity queries) is not supported".into()),
        _ => Ok(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hit(query: &str, doc: serde_json::Value) -> bool {
        let terms = Terms::of(&doc);
        Query::parse(query)
            .unwrap_or_else(|e| panic!("{query}: {e}"))
            .matches(&terms)
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
        assert!(!hit("missing:*", doc.clone()));
        assert!(hit("*:web-frontend", doc.clone()));
        assert!(hit("desc*:the\\ Web\\ tier", doc.clone()));
        assert!(hit("name:web\\-frontend^2", doc));
    }

    #[test]
    fn boolean_operators_and_grouping() {
        let doc = json!({"id": "alice", "group": "ops", "shell": "/bin/zsh"});
        assert!(hit("id:alice AND group:ops", doc.clone()));
        assert!(!hit("id:alice AND group:dev", doc.clone()));
        assert!(hit("id:bob OR group:ops", doc.clone()));
        assert!(hit("group:ops && NOT id:bob", doc.clone()));
        assert!(!hit("-id:alice", doc.clone()));
        assert!(hit("-id:bob", doc.clone()));
        assert!(hit(
            "(id:bob OR id:alice) AND shell:\\/bin\\/zsh",
            doc.clone()
        ));
        assert!(!hit("!(id:alice || id:bob)", doc.clone()));
        // Side by side: OR, unless some are required.
        assert!(hit("id:bob group:ops", doc.clone()));
        assert!(!hit("+id:bob group:ops", doc.clone()));
        assert!(hit("+id:alice group:dev", doc.clone()));
        assert!(!hit("id:alice -group:ops", doc.clone()));
        assert!(hit("id:(bob OR alice)", doc.clone()));
        assert!(!hit("id:(bob carol)", doc.clone()));
        assert!(hit("id:bob AND group:dev OR shell:*zsh", doc));
    }

    #[test]
    fn ranges_compare_in_byte_order() {
        let doc = json!({"name": "m", "port": "8080"});
        assert!(hit("name:[a TO z]", doc.clone()));
        assert!(hit("name:[m TO m]", doc.clone()));
        assert!(!hit("name:{m TO z]", doc.clone()));
        assert!(hit("name:[* TO n}", doc.clone()));
        assert!(!hit("name:[n TO *]", doc.clone()));
        assert!(hit("port:[8000 TO 8100]", doc));
    }

    #[test]
    fn unsupported_syntax_is_refused_with_its_reason() {
        for (query, why) in [
            ("alice", "needs a field name"),
            ("id:alice~", "fuzzy"),
            ("(id:alice", "missing ')'"),
            ("id:alice)", "unbalanced"),
            ("id:\"alice", "unclosed"),
            ("id:alice AND", "ends where a term"),
            ("id:", "needs a value"),
            ("id:[a TO]", "[low TO high]"),
            ("id:a]", "outside a range"),
        ] {
            let err = Query::parse(query).unwrap_err().to_string();
            assert!(err.contains(why), "{query}: {err}");
            assert!(err.contains(query), "{query}: {err}");
        }
    }

    #[test]
    fn every_input_is_bounded() {
        let dashes = format!("{}name:web", "-".repeat(5_000));
        let pluses = format!("{}name:web", "+".repeat(5_000));
        assert!(Query::parse(&pluses).is_err());
        let err = Query::parse(&dashes).unwrap_err().to_string();
        assert!(err.contains("nested more than 32"), "{err}");
        assert!(err.len() < 400, "{err}");
        let parens = format!("{}name:web{}", "(".repeat(3_000), ")".repeat(3_000));
        assert!(
            Query::parse(&parens)
                .unwrap_err()
                .to_string()
                .contains("nested")
        );
        let long = format!("name:{}", "a".repeat(MAX_QUERY_BYTES));
        assert!(
            Query::parse(&long)
                .unwrap_err()
                .to_string()
                .contains("limit is 8192")
        );
        let many = vec!["name:a"; MAX_CLAUSES + 1].join(" OR ");
        assert!(Query::parse(&many).is_err());
        let fine = vec!["name:a"; 700].join(" AND ");
        assert!(Query::parse(&fine).is_ok());
        let term = format!("name:{}", "b".repeat(MAX_INDEXED_BYTES + 1));
        assert!(
            Query::parse(&term)
                .unwrap_err()
                .to_string()
                .contains("first 512 bytes")
        );
        // A long field-less word is quoted cut, not whole (the fuzz target found messages of
        // twice the query's length).
        let word = "w".repeat(MAX_QUERY_BYTES - 10);
        assert!(Query::parse(&word).unwrap_err().to_string().len() < 1_000);
        let field = format!("{}:", "f".repeat(MAX_QUERY_BYTES - 10));
        assert!(Query::parse(&field).unwrap_err().to_string().len() < 1_000);
        let deep = format!("{}name:a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(Query::parse(&deep).is_ok());
    }

    #[test]
    fn wildcard_matching_is_linear() {
        let text = "a".repeat(MAX_INDEXED_BYTES);
        let stars = format!("*{}b", "a*".repeat(200));
        let q = Query::parse(&format!("v:{stars}")).unwrap();
        // A backtracking matcher would not finish this within the test run.
        for _ in 0..100 {
            assert!(!q.matches(&Terms::of(&json!({ "v": text }))));
        }
        assert!(hit("v:caf?", json!({"v": "café"})));
    }
}
