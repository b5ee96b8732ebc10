//! Encoding, hashing and identifier functions: JSON (Go's `encoding/json` text, keys
//! sorted, HTML-safe), CSV (Go's `encoding/csv` rules and errors), base64, URL query
//! escaping, md5/sha*, bcrypt, UUIDs, and the byte-buffer functions bake cannot feed.

use std::collections::BTreeMap;

use base64::Engine;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::support::to_int;
use super::text::{json_text, s, str_val};
use super::{arg_err, failed, p, p_null, sig, sig_var, Body, FnError, Signature, ANY, N, S};
use crate::value::Value;

pub(crate) fn lookup(name: &str) -> Option<(Signature, Body)> {
    let s1 = || sig(vec![p("str", S)]);
    Some(match name {
        "jsonencode" => (sig(vec![p_null("val", ANY)]), jsonencode),
        "jsondecode" => (s1(), jsondecode),
        "csvdecode" => (s1(), csvdecode),
        "base64encode" => (s1(), base64encode),
        "base64decode" => (s1(), base64decode),
        "urlencode" => (s1(), urlencode),
        "md5" => (s1(), |a| hex_digest::<Md5>(a)),
        "sha1" => (s1(), |a| hex_digest::<Sha1>(a)),
        "sha256" => (s1(), |a| hex_digest::<Sha256>(a)),
        "sha512" => (s1(), |a| hex_digest::<Sha512>(a)),
        "bcrypt" => (sig_var(vec![p("str", S)], p("cost", N)), bcrypt),
        "uuidv4" => (sig(vec![]), uuidv4),
        "uuidv5" => (sig(vec![p("namespace", S), p("name", S)]), uuidv5),
        "byteslen" => (sig(vec![p("buf", ANY)]), bytes_required),
        "bytesslice" => (
            sig(vec![p("buf", ANY), p("offset", N), p("length", N)]),
            bytes_required,
        ),
        "rsadecrypt" => (
            sig(vec![p("ciphertext", S), p("privatekey", S)]),
            rsadecrypt,
        ),
        _ => return None,
    })
}

fn jsonencode(a: Vec<Value>) -> Result<Value, FnError> {
    str_val(json_text(&a[0]).unwrap_or_default())
}

fn jsondecode(a: Vec<Value>) -> Result<Value, FnError> {
    super::json::decode(s(&a, 0)).map_err(failed)
}

/// One CSV parse failure: the line and Go's error text.
struct CsvError {
    line: usize,
    msg: &'static str,
}

/// Go `encoding/csv` reader over the whole text: quoted fields, `""` escapes, CRLF,
/// skipped empty lines, no lazy quotes.
struct CsvReader<'a> {
    rest: &'a str,
    line: usize,
}

impl<'a> CsvReader<'a> {
    fn next_line(&mut self) -> Option<String> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = match self.rest.find('\n') {
            Some(i) => (&self.rest[..=i], &self.rest[i + 1..]),
            None => (self.rest, ""),
        };
        self.rest = rest;
        self.line += 1;
        let mut l = line.to_string();
        if l.ends_with("\r\n") {
            l.truncate(l.len() - 2);
            l.push('\n');
        }
        Some(l)
    }

    fn read(&mut self) -> Result<Option<(usize, Vec<String>)>, CsvError> {
        let mut line = loop {
            match self.next_line() {
                None => return Ok(None),
                Some(l) if l == "\n" => continue,
                Some(l) => break l,
            }
        };
        let start_line = self.line;
        let mut fields = Vec::new();
        let mut pos = 0usize;
        loop {
            let rest = &line[pos..];
            if !rest.starts_with('"') {
                let end = rest.find(',').unwrap_or(rest.len());
                let mut field = &rest[..end];
                if end == rest.len() {
                    field = field.strip_suffix('\n').unwrap_or(field);
                }
                if field.contains('"') {
                    return Err(CsvError {
                        line: self.line,
                        msg: "bare \" in non-quoted-field",
                    });
                }
                fields.push(field.to_string());
                if end == rest.len() {
                    return Ok(Some((start_line, fields)));
                }
                pos += end + 1;
                continue;
            }
            // Quoted field, possibly spanning lines.
            let mut field = String::new();
            pos += 1;
            loop {
                let rest = &line[pos..];
                match rest.find('"') {
                    Some(i) => {
                        field.push_str(&rest[..i]);
                        let after = &rest[i + 1..];
                        if after.starts_with('"') {
                            field.push('"');
                            pos += i + 2;
                        } else if after.starts_with(',') {
                            pos += i + 2;
                            fields.push(std::mem::take(&mut field));
                            break;
                        } else if after.is_empty() || after == "\n" {
                            fields.push(std::mem::take(&mut field));
                            return Ok(Some((start_line, fields)));
                        } else {
                            return Err(CsvError {
                                line: self.line,
                                msg: "extraneous or missing \" in quoted-field",
                            });
                        }
                    }
                    None => {
                        field.push_str(rest);
                        match self.next_line() {
                            Some(l) => {
                                line = l;
                                pos = 0;
                            }
                            None => {
                                return Err(CsvError {
                                    line: self.line,
                                    msg: "extraneous or missing \" in quoted-field",
                                })
                            }
                        }
                    }
                }
            }
        }
    }
}

fn csv_err(e: CsvError) -> FnError {
    failed(format!("CSV parse error on line {}: {}", e.line, e.msg))
}

fn csvdecode(a: Vec<Value>) -> Result<Value, FnError> {
    let mut r = CsvReader {
        rest: s(&a, 0),
        line: 0,
    };
    let Some((_, headers)) = r.read().map_err(csv_err)? else {
        return Err(failed("missing header line"));
    };
    for (i, h) in headers.iter().enumerate() {
        if headers[..i].contains(h) {
            return Err(failed(format!(
                "duplicate column name {}",
                super::text::go_quote(h)
            )));
        }
    }
    let mut rows = Vec::new();
    while let Some((line, cols)) = r.read().map_err(csv_err)? {
        if cols.len() != headers.len() {
            return Err(failed(format!(
                "CSV parse error on line {line}: wrong number of fields"
            )));
        }
        let row: BTreeMap<String, Value> = headers
            .iter()
            .cloned()
            .zip(cols.into_iter().map(Value::String))
            .collect();
        rows.push(Value::Object(row));
    }
    Ok(Value::List(rows))
}

fn base64encode(a: Vec<Value>) -> Result<Value, FnError> {
    str_val(base64::engine::general_purpose::STANDARD.encode(s(&a, 0)))
}

fn base64decode(a: Vec<Value>) -> Result<Value, FnError> {
    let text = s(&a, 0);
    // Go's decoder skips CR and LF and tolerates non-zero trailing bits.
    let cleaned: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let bytes = engine
        .decode(cleaned)
        .map_err(|_| failed(format!("failed to decode base64 data '{text}'")))?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| failed("the result of decoding the the provided string is not valid UTF-8"))
}

/// Go's `url.QueryEscape`: unreserved characters stay, space becomes `+`.
fn urlencode(a: Vec<Value>) -> Result<Value, FnError> {
    let mut out = String::new();
    for b in s(&a, 0).bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    str_val(out)
}

fn hex_digest<D: Digest>(a: Vec<Value>) -> Result<Value, FnError> {
    let digest = D::digest(s(&a, 0).as_bytes());
    str_val(
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    )
}

/// A salted hash, so never the same twice (as in bake).
fn bcrypt(a: Vec<Value>) -> Result<Value, FnError> {
    let mut cost = 10i64;
    if let Some(c) = a.get(1) {
        cost = to_int(c.as_number().expect("number")).map_err(failed)?;
    }
    if a.len() > 2 {
        return Err(failed("bcrypt() takes no more than two arguments"));
    }
    if cost < 4 {
        cost = 10;
    }
    if (21..=31).contains(&cost) {
        // Go would spend minutes to hours; a bake file evaluation should not.
        return Err(failed(format!(
            "bcrypt cost {cost} is above the limit kiln allows (20)"
        )));
    }
    if cost > 31 {
        return Err(failed(format!(
            "error occured generating password crypto/bcrypt: cost {cost} is outside allowed inclusive range 4..31"
        )));
    }
    let input = s(&a, 0);
    if input.len() > 72 {
        return Err(failed(
            "error occured generating password bcrypt: password length exceeds 72 bytes",
        ));
    }
    let parts = ::bcrypt::hash_with_result(input, cost as u32)
        .map_err(|e| failed(format!("error occured generating password {e}")))?;
    str_val(parts.format_for_version(::bcrypt::Version::TwoA))
}

fn uuidv4(_: Vec<Value>) -> Result<Value, FnError> {
    str_val(uuid::Uuid::new_v4().to_string())
}

/// Go's `uuid.Parse`: the plain, braced, `urn:uuid:` and 32-hex-digit forms.
fn parse_uuid(text: &str) -> Result<uuid::Uuid, String> {
    match text.len() {
        36 | 38 | 45 | 32 => uuid::Uuid::parse_str(text).map_err(|_| "invalid UUID format".into()),
        n => Err(format!("invalid UUID length: {n}")),
    }
}

fn uuidv5(a: Vec<Value>) -> Result<Value, FnError> {
    let ns_text = s(&a, 0);
    let ns = match ns_text {
        "dns" => uuid::Uuid::NAMESPACE_DNS,
        "url" => uuid::Uuid::NAMESPACE_URL,
        "oid" => uuid::Uuid::NAMESPACE_OID,
        "x500" => uuid::Uuid::NAMESPACE_X500,
        other => parse_uuid(other)
            .map_err(|e| failed(format!("uuidv5() doesn't support namespace {other} ({e})")))?,
    };
    str_val(uuid::Uuid::new_v5(&ns, s(&a, 1).as_bytes()).to_string())
}

/// `byteslen` and `bytesslice` take cty's bytes capsule, which no bake expression can
/// produce, so every call fails the way cty's conversion does.
fn bytes_required(_: Vec<Value>) -> Result<Value, FnError> {
    Err(arg_err(0, "buf", "bytes required"))
}

fn rsadecrypt(_: Vec<Value>) -> Result<Value, FnError> {
    Err(failed("rsadecrypt is not supported by kiln"))
}
