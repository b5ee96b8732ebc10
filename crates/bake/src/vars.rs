//! Turning an environment or `--var` text into a variable value (FEATURES §2.1, A6–A9):
//! Go's `ParseBool`/`ParseFloat` for primitives, a CSV row for lists, sets, tuples and maps,
//! JSON for `X_JSON`.

use crate::value::{convert, make_set, Number, Type, Value};

/// Splits one CSV record the way Go's `encoding/csv` reads a line (quotes allowed).
pub(crate) fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut at_start = true;
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    quoted = false;
                    match chars.peek() {
                        None | Some(',') => {}
                        Some(_) => return Err("extraneous or missing \" in quoted-field".into()),
                    }
                }
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            ',' => {
                fields.push(std::mem::take(&mut cur));
                at_start = true;
            }
            '"' => return Err("bare \" in non-quoted-field".into()),
            _ => {
                cur.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err("extraneous or missing \" in quoted-field".into());
    }
    fields.push(cur);
    Ok(fields)
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn bool_err(name: &str, s: &str) -> String {
    format!(
        "failed to parse {name} as bool: strconv.ParseBool: parsing {}: invalid syntax",
        go_quote(s)
    )
}

fn number_err(name: &str, s: &str) -> String {
    format!(
        "failed to parse {name} as number: strconv.ParseFloat: parsing {}: invalid syntax",
        go_quote(s)
    )
}

/// Go's `%q` for the plain texts that appear in these messages.
pub(crate) fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn parse_primitive(name: &str, text: &str, ty: &Type) -> Result<Value, String> {
    match ty {
        Type::Bool => parse_go_bool(text)
            .map(Value::Bool)
            .ok_or_else(|| bool_err(name, text)),
        Type::Number => Number::parse(text)
            .map(Value::Number)
            .ok_or_else(|| number_err(name, text)),
        _ => Ok(Value::String(text.to_string())),
    }
}

/// The value an override text gives variable `name`.
/// `ty` is the declared type; `default` the (converted) default, if any.
pub(crate) fn override_value(
    name: &str,
    text: &str,
    is_json: bool,
    ty: Option<&Type>,
    default: Option<&Value>,
) -> Result<Value, String> {
    match ty {
        Some(t) if is_json => {
            let j: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| format!("failed to parse {name} as JSON: {e}"))?;
            convert(Value::from_json(&j), t).map_err(|e| format!("failed to convert {name}: {e}"))
        }
        Some(t @ (Type::List(_) | Type::Set(_) | Type::Tuple(_) | Type::Map(_))) => {
            if text.is_empty() {
                return Err(format!("failed to parse {name} as CSV: EOF"));
            }
            let fields =
                csv_fields(text).map_err(|e| format!("failed to parse {name} as CSV: {e}"))?;
            match t {
                Type::List(e) => Ok(Value::List(
                    fields
                        .iter()
                        .map(|f| parse_primitive(name, f, e))
                        .collect::<Result<_, _>>()?,
                )),
                Type::Set(e) => Ok(make_set(
                    fields
                        .iter()
                        .map(|f| parse_primitive(name, f, e))
                        .collect::<Result<_, _>>()?,
                )),
                Type::Tuple(types) => {
                    if fields.len() != types.len() {
                        return Err(format!(
                            "expected {} elements for {name}, got {}",
                            types.len(),
                            fields.len()
                        ));
                    }
                    Ok(Value::Tuple(
                        fields
                            .iter()
                            .zip(types)
                            .map(|(f, t)| parse_primitive(name, f, t))
                            .collect::<Result<_, _>>()?,
                    ))
                }
                Type::Map(e) => {
                    let mut m = std::collections::BTreeMap::new();
                    for f in &fields {
                        let (k, v) = f.split_once(':').ok_or_else(|| {
                            format!("invalid map entry {} for {name}", go_quote(f))
                        })?;
                        m.insert(k.to_string(), parse_primitive(name, v, e)?);
                    }
                    Ok(Value::Map(m))
                }
                _ => unreachable!("matched above"),
            }
        }
        Some(t) if t.is_primitive() => parse_primitive(name, text, t),
        Some(Type::Any) => Ok(Value::String(text.to_string())),
        Some(t) => Err(format!("unsupported type {}", short_type(t))),
        None => match default {
            None | Some(Value::Null) => Ok(Value::String(text.to_string())),
            Some(Value::Bool(_)) => parse_primitive(name, text, &Type::Bool),
            Some(Value::Number(_)) => parse_primitive(name, text, &Type::Number),
            Some(Value::String(_)) => Ok(Value::String(text.to_string())),
            Some(other) => Err(format!("unsupported type {}", other.kind_name())),
        },
    }
}

fn short_type(t: &Type) -> &'static str {
    match t {
        Type::Object(_) => "object",
        Type::Tuple(_) => "tuple",
        Type::List(_) => "list",
        Type::Set(_) => "set",
        Type::Map(_) => "map",
        _ => "primitive",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::string(x)
    }

    #[test]
    fn env_typing_table() {
        let list_s = Type::List(Box::new(Type::String));
        let set_s = Type::Set(Box::new(Type::String));
        let list_n = Type::List(Box::new(Type::Number));
        type Case<'a> = (
            &'a str,
            bool,
            Option<Type>,
            Option<Value>,
            Result<Value, &'a str>,
        );
        let cases: Vec<Case> = vec![
            ("x", false, None, Some(s("d")), Ok(s("x"))),
            ("true", false, None, Some(Value::Bool(false)), Ok(Value::Bool(true))),
            ("1e2", false, None, Some(Value::number(1)), Ok(Value::number(100))),
            (
                "yes",
                false,
                None,
                Some(Value::Bool(false)),
                Err("failed to parse X as bool: strconv.ParseBool: parsing \"yes\": invalid syntax"),
            ),
            (
                "0x10",
                false,
                Some(Type::Number),
                None,
                Err("failed to parse X as number: strconv.ParseFloat: parsing \"0x10\": invalid syntax"),
            ),
            (
                "a,b",
                false,
                Some(list_s.clone()),
                None,
                Ok(Value::List(vec![s("a"), s("b")])),
            ),
            (
                "zeta,alpha,zeta",
                false,
                Some(set_s),
                None,
                Ok(Value::Set(vec![s("alpha"), s("zeta")])),
            ),
            (
                "1,2",
                false,
                Some(list_n),
                None,
                Ok(Value::List(vec![Value::number(1), Value::number(2)])),
            ),
            (
                "",
                false,
                Some(list_s.clone()),
                None,
                Err("failed to parse X as CSV: EOF"),
            ),
            ("[\"q\"]", true, Some(list_s), None, Ok(Value::List(vec![s("q")]))),
            (
                "x",
                false,
                None,
                Some(Value::Tuple(vec![])),
                Err("unsupported type tuple"),
            ),
            ("x", false, None, Some(Value::Null), Ok(s("x"))),
        ];
        for (text, json, ty, def, want) in cases {
            let got = override_value("X", text, json, ty.as_ref(), def.as_ref());
            match (got, want) {
                (Ok(g), Ok(w)) => assert!(g.equals(&w), "{text}: {g:?} != {w:?}"),
                (Err(g), Err(w)) => assert_eq!(g, w),
                (g, w) => panic!("{text}: {g:?} vs {w:?}"),
            }
        }
    }
}
