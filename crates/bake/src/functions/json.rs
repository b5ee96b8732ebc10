//! JSON decoding for `jsondecode`, after cty's `json.ImpliedType` over Go's streaming
//! decoder: numbers stay exact (cty keeps them at 512 bits, f64 would not), arrays
//! become tuples, objects objects, duplicate keys are an error, and failures read as
//! Go's (`invalid character 'x' looking for beginning of value`, `unexpected EOF`).

use std::collections::BTreeMap;

use crate::value::{Number, Value};

/// Decodes one JSON document.
pub fn decode(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        b: text.as_bytes(),
        text,
        i: 0,
        depth: 0,
    };
    p.ws();
    if p.i == p.b.len() {
        return Err("EOF".into());
    }
    let v = p.value()?;
    p.ws();
    if p.i < p.b.len() && !matches!(p.b[p.i], b']' | b'}') {
        return Err("extraneous data after JSON object".into());
    }
    Ok(v)
}

struct Parser<'a> {
    b: &'a [u8],
    text: &'a str,
    i: usize,
    depth: usize,
}

/// Nesting beyond this is refused (Go refuses beyond 10000; Rust's stack is smaller).
const MAX_DEPTH: usize = 1000;

/// Go's `quoteChar` for syntax errors.
fn quote_char(c: char) -> String {
    match c {
        '\'' => "'\\''".into(),
        '"' => "'\"'".into(),
        c => {
            let q = super::text::go_quote(&c.to_string());
            format!("'{}'", &q[1..q.len() - 1])
        }
    }
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Result<u8, String> {
        self.b
            .get(self.i)
            .copied()
            .ok_or_else(|| "unexpected EOF".to_string())
    }

    fn bad(&self, context: &str) -> String {
        let c = self.text[self.i..].chars().next().unwrap_or('\u{fffd}');
        format!("invalid character {} {context}", quote_char(c))
    }

    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        let c = self.peek()?;
        if matches!(c, b'{' | b'[') {
            if self.depth >= MAX_DEPTH {
                return Err("exceeded max depth".into());
            }
            self.depth += 1;
            let v = if c == b'{' {
                self.object()
            } else {
                self.array()
            };
            self.depth -= 1;
            return v;
        }
        match c {
            b'"' => self.string().map(Value::String),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal("true", Value::Bool(true)),
            b'f' => self.literal("false", Value::Bool(false)),
            b'n' => self.literal("null", Value::Null),
            _ => Err(self.bad("looking for beginning of value")),
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value, String> {
        for expect in word.bytes() {
            if self.peek()? != expect {
                return Err(self.bad(&format!(
                    "in literal {word} (expecting '{}')",
                    expect as char
                )));
            }
            self.i += 1;
        }
        Ok(v)
    }

    fn object(&mut self) -> Result<Value, String> {
        self.i += 1;
        let mut m = BTreeMap::new();
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Ok(Value::Object(m));
        }
        loop {
            self.ws();
            if self.peek()? != b'"' {
                return Err(self.bad("looking for beginning of object key string"));
            }
            let key = self.string()?;
            self.ws();
            if self.peek()? != b':' {
                return Err(self.bad("after object key"));
            }
            self.i += 1;
            let v = self.value()?;
            if m.contains_key(&key) {
                return Err(format!(
                    "duplicate {} property in JSON object",
                    super::text::go_quote(&key)
                ));
            }
            m.insert(key, v);
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Ok(Value::Object(m));
                }
                _ => return Err(self.bad("after object key:value pair")),
            }
        }
    }

    fn array(&mut self) -> Result<Value, String> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
            return Ok(Value::Tuple(items));
        }
        loop {
            items.push(self.value()?);
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Ok(Value::Tuple(items));
                }
                _ => return Err(self.bad("after array element")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let mut n = 0u32;
        for _ in 0..4 {
            let c = self.peek()?;
            let d = (c as char)
                .to_digit(16)
                .ok_or_else(|| self.bad("in \\u hexadecimal character escape"))?;
            n = n * 16 + d;
            self.i += 1;
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let c = self.peek()?;
            match c {
                b'"' => {
                    self.i += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.i += 1;
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let ch = if (0xd800..0xdc00).contains(&hi)
                                && self.b.get(self.i..self.i + 2) == Some(b"\\u")
                            {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00))
                                } else {
                                    self.i = save;
                                    None
                                }
                            } else {
                                char::from_u32(hi)
                            };
                            out.push(ch.unwrap_or('\u{fffd}'));
                        }
                        _ => {
                            self.i -= 1;
                            return Err(self.bad("in string escape code"));
                        }
                    }
                }
                c if c < 0x20 => return Err(self.bad("in string literal")),
                _ => {
                    let ch = self.text[self.i..].chars().next().unwrap_or('\u{fffd}');
                    out.push(ch);
                    self.i += ch.len_utf8();
                }
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.i < self.b.len() && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        if self.b[self.i] == b'-' {
            self.i += 1;
            if !self.peek()?.is_ascii_digit() {
                return Err(self.bad("in numeric literal"));
            }
        }
        if self.peek()? == b'0' {
            self.i += 1;
        } else {
            self.digits();
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if !self.peek()?.is_ascii_digit() {
                return Err(self.bad("after decimal point in numeric literal"));
            }
            self.digits();
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !self.peek()?.is_ascii_digit() {
                return Err(self.bad("in exponent of numeric literal"));
            }
            self.digits();
        }
        let text = &self.text[start..self.i];
        Number::parse(text)
            .map(Value::Number)
            .ok_or_else(|| format!("invalid number {text}"))
    }
}
