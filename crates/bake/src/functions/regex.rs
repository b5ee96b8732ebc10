//! `regex`, `regexall` and `regex_replace` with Go RE2 semantics on Rust's `regex`
//! crate. The two engines share RE2's syntax; the differences that matter are that
//! Go's `\d`, `\w`, `\s` and `\b` are ASCII-only, so patterns are rewritten to say so,
//! and the error texts, which are mapped back to Go's wording.

use std::collections::BTreeMap;

use regex::Regex;
use regex_syntax::ast::ErrorKind;

use super::text::{s, str_val};
use super::{arg_err, failed, p, sig, Body, FnError, Signature, S};
use crate::value::Value;

pub(crate) fn lookup(name: &str) -> Option<(Signature, Body)> {
    Some(match name {
        "regex" => (sig(vec![p("pattern", S), p("string", S)]), regex),
        "regexall" => (sig(vec![p("pattern", S), p("string", S)]), regexall),
        "regex_replace" => (
            sig(vec![p("str", S), p("substr", S), p("replace", S)]),
            regex_replace,
        ),
        _ => return None,
    })
}

/// A Go regexp syntax error: `code` is Go's error code text, `expr` the offending part.
pub(crate) struct GoRegexError {
    pub code: String,
    pub expr: String,
}

impl GoRegexError {
    /// Go's `(*syntax.Error).Error()`.
    pub fn go_text(&self) -> String {
        format!("error parsing regexp: {}: `{}`", self.code, self.expr)
    }
}

/// Compiles a Go pattern.
pub(crate) fn compile(pattern: &str) -> Result<Regex, GoRegexError> {
    if let Err(e) = regex_syntax::ast::parse::Parser::new().parse(pattern) {
        return Err(go_error(pattern, &e));
    }
    Regex::new(&ascii_classes(pattern)).map_err(|e| GoRegexError {
        code: "invalid or unsupported Perl syntax".into(),
        expr: e.to_string().lines().last().unwrap_or_default().to_string(),
    })
}

fn go_error(pattern: &str, e: &regex_syntax::ast::Error) -> GoRegexError {
    let span = e.span();
    let at = pattern
        .get(span.start.offset..span.end.offset)
        .unwrap_or_default();
    let from = pattern.get(span.start.offset..).unwrap_or_default();
    let (code, expr) = match e.kind() {
        ErrorKind::GroupUnclosed => ("missing closing )", pattern),
        ErrorKind::GroupUnopened => ("unexpected )", pattern),
        ErrorKind::ClassUnclosed => ("missing closing ]", from),
        ErrorKind::ClassRangeInvalid => ("invalid character class range", at),
        ErrorKind::ClassEscapeInvalid | ErrorKind::EscapeUnrecognized => {
            ("invalid escape sequence", at)
        }
        ErrorKind::EscapeUnexpectedEof => ("trailing backslash at end of expression", ""),
        ErrorKind::RepetitionMissing => ("missing argument to repetition operator", at),
        ErrorKind::RepetitionCountInvalid
        | ErrorKind::RepetitionCountUnclosed
        | ErrorKind::RepetitionCountDecimalEmpty => ("invalid repeat count", at),
        ErrorKind::GroupNameInvalid
        | ErrorKind::GroupNameEmpty
        | ErrorKind::GroupNameDuplicate { .. }
        | ErrorKind::GroupNameUnexpectedEof => ("invalid named capture", at),
        ErrorKind::NestLimitExceeded(_) => ("expression nests too deeply", pattern),
        _ => ("invalid or unsupported Perl syntax", at),
    };
    GoRegexError {
        code: code.into(),
        expr: expr.into(),
    }
}

/// Rewrites Perl classes to Go's ASCII meaning (`\d` is `[0-9]` in Go, Unicode in Rust).
fn ascii_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let (outside, inside) = match n {
                    'd' => ("[0-9]", "0-9"),
                    'D' => ("[^0-9]", "[^0-9]"),
                    'w' => ("[0-9A-Za-z_]", "0-9A-Za-z_"),
                    'W' => ("[^0-9A-Za-z_]", "[^0-9A-Za-z_]"),
                    's' => ("[\\t\\n\\f\\r ]", "\\t\\n\\f\\r "),
                    'S' => ("[^\\t\\n\\f\\r ]", "[^\\t\\n\\f\\r ]"),
                    'b' if in_class == 0 => ("(?-u:\\b)", ""),
                    'B' if in_class == 0 => ("(?-u:\\B)", ""),
                    _ => {
                        out.push('\\');
                        out.push(n);
                        continue;
                    }
                };
                out.push_str(if in_class > 0 { inside } else { outside });
            }
            '[' => {
                out.push('[');
                if in_class > 0 && chars.peek() == Some(&':') {
                    // A POSIX class `[:alpha:]` inside a bracket: copy it whole.
                    for d in chars.by_ref() {
                        out.push(d);
                        if d == ']' {
                            break;
                        }
                    }
                    continue;
                }
                in_class += 1;
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().unwrap_or('^'));
                }
                if chars.peek() == Some(&']') {
                    out.push_str("\\]");
                    chars.next();
                }
            }
            ']' if in_class > 0 => {
                in_class -= 1;
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out
}

/// What a match returns: the whole match with no groups, a tuple for unnamed groups,
/// an object for named groups; mixing the two is an error.
enum Shape {
    Whole,
    Unnamed(usize),
    Named(Vec<String>),
}

fn shape(re: &Regex) -> Result<Shape, String> {
    let names: Vec<Option<&str>> = re.capture_names().skip(1).collect();
    let unnamed = names.iter().filter(|n| n.is_none()).count();
    let named: Vec<String> = names.iter().flatten().map(|n| n.to_string()).collect();
    match (unnamed, named.len()) {
        (0, 0) => Ok(Shape::Whole),
        (u, 0) => Ok(Shape::Unnamed(u)),
        (0, _) => Ok(Shape::Named(named)),
        _ => Err("invalid regexp pattern: cannot mix both named and unnamed capture groups".into()),
    }
}

fn pattern_arg(a: &[Value]) -> Result<(Regex, Shape), FnError> {
    let re = compile(s(a, 0)).map_err(|e| {
        arg_err(
            0,
            "pattern",
            format!("invalid regexp pattern: {} in {}", e.code, e.expr),
        )
    })?;
    let shape = shape(&re).map_err(|m| arg_err(0, "pattern", m))?;
    Ok((re, shape))
}

fn capture_value(re: &Regex, shape: &Shape, caps: &regex::Captures) -> Value {
    let group = |i: usize| {
        caps.get(i)
            .map_or(Value::Null, |m| Value::string(m.as_str()))
    };
    match shape {
        Shape::Whole => group(0),
        Shape::Unnamed(n) => Value::Tuple((1..=*n).map(group).collect()),
        Shape::Named(names) => {
            let mut m = BTreeMap::new();
            for (i, name) in re.capture_names().enumerate().skip(1) {
                if let Some(name) = name {
                    m.insert(name.to_string(), group(i));
                }
            }
            debug_assert_eq!(m.len(), names.len());
            Value::Object(m)
        }
    }
}

fn regex(a: Vec<Value>) -> Result<Value, FnError> {
    let (re, shape) = pattern_arg(&a)?;
    let caps = re
        .captures(s(&a, 1))
        .ok_or_else(|| failed("pattern did not match any part of the given string"))?;
    Ok(capture_value(&re, &shape, &caps))
}

fn regexall(a: Vec<Value>) -> Result<Value, FnError> {
    let (re, shape) = pattern_arg(&a)?;
    let all = re
        .captures_iter(s(&a, 1))
        .map(|c| capture_value(&re, &shape, &c))
        .collect();
    Ok(Value::List(all))
}

/// Go's `ReplaceAllString`: `$1`, `${1}`, `$name` and `$$` in the replacement, which is
/// also what Rust's `replace_all` understands.
fn regex_replace(a: Vec<Value>) -> Result<Value, FnError> {
    let re = compile(s(&a, 1)).map_err(|e| failed(e.go_text()))?;
    str_val(re.replace_all(s(&a, 0), s(&a, 2)).into_owned())
}
