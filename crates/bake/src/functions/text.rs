//! The value conversions the function families share (argument text, JSON text, Go's
//! quoting): a leaf, so the families can use it and each other without a circle.

use super::FnError;
use crate::print::write_str;
use crate::value::Value;

/// The string argument at `i` (conversion already made it a string).
pub(crate) fn s(args: &[Value], i: usize) -> &str {
    args[i].as_str().unwrap_or_default()
}

pub(crate) fn str_val(s: impl Into<String>) -> Result<Value, FnError> {
    Ok(Value::String(s.into()))
}

fn push_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_str(out, s),
        Value::List(items) | Value::Tuple(items) | Value::Set(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json(out, item);
            }
            out.push(']');
        }
        Value::Map(m) | Value::Object(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                push_json(out, item);
            }
            out.push('}');
        }
    }
}

/// cty's JSON text of a value (compact, keys sorted).
pub(crate) fn json_text(v: &Value) -> Option<String> {
    let mut out = String::new();
    push_json(&mut out, v);
    Some(out)
}

/// Go's `strconv.Quote` (used for `%q` in error messages).
pub(crate) fn go_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        push_go_escaped(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// Go's `%q` of a rune: `'x'`.
pub(crate) fn go_quote_rune(c: char) -> String {
    let mut out = String::from("'");
    push_go_escaped(&mut out, c, '\'');
    out.push('\'');
    out
}

fn push_go_escaped(out: &mut String, c: char, quote: char) {
    match c {
        c if c == quote || c == '\\' => {
            out.push('\\');
            out.push(c);
        }
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if c.is_control() => {
            if (c as u32) < 0x10000 {
                out.push_str(&format!("\\u{:04x}", c as u32))
            } else {
                out.push_str(&format!("\\U{:08x}", c as u32))
            }
        }
        c => out.push(c),
    }
}
