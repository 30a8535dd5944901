//! The lvm2 text metadata format (lvm2 `format_text/import-export.c` grammar): nested
//! `name { … }` sections of `key = value` pairs, where a value is an integer, a quoted string
//! or a `[ … ]` list; `#` starts a comment. Depth and size are bounded.

use super::error::{LvmError, corrupt};

/// Deepest section nesting in the metadata text.
const MAX_DEPTH: usize = 16;

/// A value of the text format.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Int(i64),
    Str(String),
    List(Vec<Value>),
    Section(Section),
}

pub(super) type Section = Vec<(String, Value)>;

pub(super) fn get<'a>(s: &'a Section, key: &str) -> Option<&'a Value> {
    s.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

pub(super) fn int(s: &Section, key: &str) -> Option<i64> {
    match get(s, key) {
        Some(Value::Int(i)) => Some(*i),
        _ => None,
    }
}

pub(super) fn string<'a>(s: &'a Section, key: &str) -> Option<&'a str> {
    match get(s, key) {
        Some(Value::Str(v)) => Some(v),
        _ => None,
    }
}

pub(super) fn section<'a>(s: &'a Section, key: &str) -> Option<&'a Section> {
    match get(s, key) {
        Some(Value::Section(v)) => Some(v),
        _ => None,
    }
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip(&mut self) {
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'#' => {
                    while self.i < self.b.len() && self.b[self.i] != b'\n' {
                        self.i += 1;
                    }
                }
                c if c.is_ascii_whitespace() || c == b',' => self.i += 1,
                _ => break,
            }
        }
    }

    fn err(&self, rule: &str) -> LvmError {
        corrupt("metadata text", format!("{rule} at byte {}", self.i))
    }

    fn ident(&mut self) -> Option<String> {
        let s = self.i;
        while self.i < self.b.len()
            && (self.b[self.i].is_ascii_alphanumeric() || b"_.+-".contains(&self.b[self.i]))
        {
            self.i += 1;
        }
        (self.i > s).then(|| String::from_utf8_lossy(&self.b[s..self.i]).into_owned())
    }

    fn section(&mut self, depth: usize, top: bool) -> Result<Section, LvmError> {
        if depth > MAX_DEPTH {
            return Err(self.err("sections nested too deep"));
        }
        let mut out = Vec::new();
        loop {
            self.skip();
            match self.b.get(self.i) {
                None if top => return Ok(out),
                None => return Err(self.err("unterminated section")),
                Some(b'}') if !top => {
                    self.i += 1;
                    return Ok(out);
                }
                _ => {}
            }
            let key = self.ident().ok_or_else(|| self.err("expected a name"))?;
            self.skip();
            match self.b.get(self.i) {
                Some(b'{') => {
                    self.i += 1;
                    out.push((key, Value::Section(self.section(depth + 1, false)?)));
                }
                Some(b'=') => {
                    self.i += 1;
                    self.skip();
                    out.push((key, self.value(depth)?));
                }
                _ => return Err(self.err("expected '{' or '='")),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, LvmError> {
        match self.b.get(self.i) {
            Some(b'"') => {
                self.i += 1;
                let mut s = Vec::new();
                loop {
                    match self.b.get(self.i) {
                        None => return Err(self.err("unterminated string")),
                        Some(b'"') => {
                            self.i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            if let Some(&c) = self.b.get(self.i + 1) {
                                s.push(c);
                            }
                            self.i += 2;
                        }
                        Some(&c) => {
                            s.push(c);
                            self.i += 1;
                        }
                    }
                }
                Ok(Value::Str(String::from_utf8_lossy(&s).into_owned()))
            }
            Some(b'[') => {
                if depth > MAX_DEPTH {
                    return Err(self.err("lists nested too deep"));
                }
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip();
                    match self.b.get(self.i) {
                        None => return Err(self.err("unterminated list")),
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::List(items));
                        }
                        _ => items.push(self.value(depth + 1)?),
                    }
                }
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' => {
                let s = self.i;
                self.i += 1;
                while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
                    self.i += 1;
                }
                std::str::from_utf8(&self.b[s..self.i])
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .map(Value::Int)
                    .ok_or_else(|| self.err("bad number"))
            }
            _ => Err(self.err("expected a value")),
        }
    }
}

pub(super) fn parse(text: &str) -> Result<Section, LvmError> {
    Parser {
        b: text.as_bytes(),
        i: 0,
    }
    .section(0, true)
}
