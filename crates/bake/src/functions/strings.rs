//! String functions: case, length and slicing by grapheme cluster, join/split, the trim
//! family, plain replace, and buildx's path helpers (`basename`, `dirname`, `sanitize`,
//! `homedir`). Case mapping follows Go's per-rune simple mapping, not Rust's full one.

use unicode_segmentation::UnicodeSegmentation;

use super::support::{grapheme_len, to_int};
use super::text::{s, str_val};
use super::{arg_err, failed, list_of, p, sig, sig_var, Body, FnError, Signature, N, S};
use crate::value::Value;

pub(crate) fn lookup(name: &str) -> Option<(Signature, Body)> {
    let s1 = || sig(vec![p("str", S)]);
    Some(match name {
        "upper" => (s1(), upper),
        "lower" => (s1(), lower),
        "title" => (s1(), title),
        "reverse" => (s1(), reverse),
        "strlen" => (s1(), strlen),
        "substr" => (
            sig(vec![p("str", S), p("offset", N), p("length", N)]),
            substr,
        ),
        "join" => (
            sig_var(vec![p("separator", S)], p("lists", list_of(S))),
            join,
        ),
        "split" => (sig(vec![p("separator", S), p("str", S)]), split),
        "sort" => (sig(vec![p("list", list_of(S))]), sort),
        "chomp" => (s1(), chomp),
        "indent" => (sig(vec![p("spaces", N), p("str", S)]), indent),
        "trimspace" => (s1(), trimspace),
        "trim" => (sig(vec![p("str", S), p("cutset", S)]), trim),
        "trimprefix" => (sig(vec![p("str", S), p("prefix", S)]), trimprefix),
        "trimsuffix" => (sig(vec![p("str", S), p("suffix", S)]), trimsuffix),
        "replace" => (
            sig(vec![p("str", S), p("substr", S), p("replace", S)]),
            replace,
        ),
        "basename" => (sig(vec![p("path", S)]), basename),
        "dirname" => (sig(vec![p("path", S)]), dirname),
        "sanitize" => (sig(vec![p("name", S)]), sanitize),
        "homedir" => (sig(vec![]), homedir),
        _ => return None,
    })
}

/// Output size past which a function refuses instead of exhausting memory (Go would
/// try, and fail less gracefully).
pub(crate) const MAX_OUTPUT: u64 = 1 << 28;

/// Go's `unicode.ToUpper`: a one-to-one mapping; characters whose uppercase is several
/// characters (`ß`) stay as they are.
pub(crate) fn go_upper(c: char) -> char {
    let mut it = c.to_uppercase();
    match (it.next(), it.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// Go's `unicode.ToLower` (only `İ` has a multi-character full lowercase; Go maps it to `i`).
pub(crate) fn go_lower(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

fn upper(a: Vec<Value>) -> Result<Value, FnError> {
    str_val(s(&a, 0).chars().map(go_upper).collect::<String>())
}

fn lower(a: Vec<Value>) -> Result<Value, FnError> {
    str_val(s(&a, 0).chars().map(go_lower).collect::<String>())
}

/// Go's `strings.Title` word-separator rule.
fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if c.is_alphabetic() || c.is_numeric() {
        return false;
    }
    c.is_whitespace()
}

/// Go's `unicode.ToTitle`: the upper case, except for the four Latin digraphs, whose
/// title case is the mixed form (`ǆ` → `ǅ`).
fn go_title(c: char) -> char {
    match c {
        'Ǆ'..='ǆ' => 'ǅ',
        'Ǉ'..='ǉ' => 'ǈ',
        'Ǌ'..='ǌ' => 'ǋ',
        'Ǳ'..='ǳ' => 'ǲ',
        c => go_upper(c),
    }
}

fn title(a: Vec<Value>) -> Result<Value, FnError> {
    let mut prev = ' ';
    let out: String = s(&a, 0)
        .chars()
        .map(|c| {
            let r = if is_separator(prev) { go_title(c) } else { c };
            prev = c;
            r
        })
        .collect();
    str_val(out)
}

/// `reverse` in bake is go-cty's string reverse, by grapheme cluster.
fn reverse(a: Vec<Value>) -> Result<Value, FnError> {
    str_val(s(&a, 0).graphemes(true).rev().collect::<String>())
}

fn strlen(a: Vec<Value>) -> Result<Value, FnError> {
    Ok(Value::number(grapheme_len(s(&a, 0)) as i64))
}

/// go-cty's substr, quirks included: a negative offset counts from the end and then
/// ignores a zero length (taking the rest).
fn substr(a: Vec<Value>) -> Result<Value, FnError> {
    let text = s(&a, 0);
    let mut offset = to_int(a[1].as_number().expect("number")).map_err(failed)?;
    let length = to_int(a[2].as_number().expect("number")).map_err(failed)?;
    if offset < 0 {
        offset += grapheme_len(text) as i64;
    } else if length == 0 {
        return str_val("");
    }
    let clusters: Vec<&str> = text.graphemes(true).collect();
    let mut start = 0usize;
    if offset > 0 {
        if offset as u64 > clusters.len() as u64 {
            return str_val("");
        }
        start = offset as usize;
    }
    let rest = &clusters[start.min(clusters.len())..];
    if length < 0 {
        return str_val(rest.concat());
    }
    let take = if length == 0 {
        rest.len()
    } else {
        (length as u64).min(rest.len() as u64) as usize
    };
    str_val(rest[..take].concat())
}

fn join(a: Vec<Value>) -> Result<Value, FnError> {
    let sep = s(&a, 0).to_string();
    let lists = &a[1..];
    if lists.is_empty() {
        return Err(failed("at least one list is required"));
    }
    let mut items = Vec::new();
    for (ai, list) in lists.iter().enumerate() {
        for (ei, v) in list.as_seq().unwrap_or_default().iter().enumerate() {
            match v {
                Value::String(x) => items.push(x.as_str()),
                _ if lists.len() > 1 => {
                    return Err(arg_err(
                        ai + 1,
                        "lists",
                        format!(
                            "element {ei} of list {} is null; cannot concatenate null values",
                            ai + 1
                        ),
                    ))
                }
                _ => {
                    return Err(arg_err(
                        ai + 1,
                        "lists",
                        format!("element {ei} is null; cannot concatenate null values"),
                    ))
                }
            }
        }
    }
    str_val(items.join(&sep))
}

/// Go's `strings.Split`: an empty separator splits into characters.
pub(crate) fn go_split(text: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return text.chars().map(String::from).collect();
    }
    text.split(sep).map(String::from).collect()
}

fn split(a: Vec<Value>) -> Result<Value, FnError> {
    let parts = go_split(s(&a, 1), s(&a, 0));
    Ok(Value::List(parts.into_iter().map(Value::String).collect()))
}

fn sort(a: Vec<Value>) -> Result<Value, FnError> {
    let items = a[0].as_seq().unwrap_or_default();
    let mut out = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        match v {
            Value::String(x) => out.push(x.clone()),
            _ => {
                return Err(failed(format!(
                    "given list element {i} is null; a null string cannot be sorted"
                )))
            }
        }
    }
    out.sort();
    Ok(Value::List(out.into_iter().map(Value::String).collect()))
}

fn chomp(a: Vec<Value>) -> Result<Value, FnError> {
    str_val(s(&a, 0).trim_end_matches(['\r', '\n']))
}

fn indent(a: Vec<Value>) -> Result<Value, FnError> {
    let n = to_int(a[0].as_number().expect("number")).map_err(failed)?;
    if n < 0 {
        return Err(failed(
            "panic in function implementation: strings: negative Repeat count",
        ));
    }
    let lines = s(&a, 1).matches('\n').count() as u64;
    if (n as u64).saturating_mul(lines) > MAX_OUTPUT {
        return Err(failed(
            "panic in function implementation: strings: Repeat output length overflow",
        ));
    }
    let pad = format!("\n{}", " ".repeat(n as usize));
    str_val(s(&a, 1).replace('\n', &pad))
}

fn trimspace(a: Vec<Value>) -> Result<Value, FnError> {
    str_val(s(&a, 0).trim())
}

fn trim(a: Vec<Value>) -> Result<Value, FnError> {
    let cutset = s(&a, 1);
    str_val(s(&a, 0).trim_matches(|c| cutset.contains(c)))
}

fn trimprefix(a: Vec<Value>) -> Result<Value, FnError> {
    let text = s(&a, 0);
    str_val(text.strip_prefix(s(&a, 1)).unwrap_or(text))
}

fn trimsuffix(a: Vec<Value>) -> Result<Value, FnError> {
    let text = s(&a, 0);
    str_val(text.strip_suffix(s(&a, 1)).unwrap_or(text))
}

/// A plain substring replace: `/re/` is not a regular expression here (F2).
fn replace(a: Vec<Value>) -> Result<Value, FnError> {
    str_val(s(&a, 0).replace(s(&a, 1), s(&a, 2)))
}

/// Go's `path.Base`.
fn basename(a: Vec<Value>) -> Result<Value, FnError> {
    let p = s(&a, 0);
    if p.is_empty() {
        return str_val(".");
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return str_val("/");
    }
    str_val(trimmed.rsplit('/').next().unwrap_or(trimmed))
}

/// Go's `path.Dir`: everything up to the last slash, cleaned.
fn dirname(a: Vec<Value>) -> Result<Value, FnError> {
    let p = s(&a, 0);
    let dir = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    str_val(crate::target::clean_path(dir))
}

/// Every character outside `[A-Za-z0-9_-]` becomes `_` (one per character).
fn sanitize(a: Vec<Value>) -> Result<Value, FnError> {
    let out: String = s(&a, 0)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    str_val(out)
}

/// buildx's `homedir()`: the current user's home directory (Go's `os.UserHomeDir`).
fn homedir(_: Vec<Value>) -> Result<Value, FnError> {
    match std::env::var("HOME") {
        Ok(h) if !h.is_empty() => str_val(h),
        _ => Err(failed("$HOME is not defined")),
    }
}
