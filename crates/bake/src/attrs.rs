//! A `target` block's attributes: which ones bake knows, and each one's value decoded
//! into the [`Target`] field it sets, with buildx's errors for a value of the wrong type.

use std::collections::BTreeMap;

use crate::ast::Attribute;
use crate::error::{Error, Result};
use crate::target::{self, Attest, Entry, Ssh, Target};
use crate::value::{Type, Value};

pub(crate) const KNOWN_ATTRS: &[&str] = &[
    "description",
    "annotations",
    "attest",
    "context",
    "contexts",
    "dockerfile",
    "dockerfile-inline",
    "args",
    "labels",
    "tags",
    "cache-from",
    "cache-to",
    "target",
    "secret",
    "ssh",
    "platforms",
    "output",
    "pull",
    "no-cache",
    "network",
    "no-cache-filter",
    "shm-size",
    "ulimits",
    "call",
    "entitlements",
    "extra-hosts",
    "inherits",
];

/// `target.<name>.<attr>` reads the attribute back from buildx's Go struct, so it has the
/// field's type: `args` is a map of string (`length` works on it), `tags` a list of string,
/// `pull` a bool. A value that does not convert stays as written (decoding reports it).
pub(crate) fn as_field_type(attr: &str, v: Value) -> Value {
    let string = || Box::new(Type::String);
    let ty = match attr {
        "args" | "labels" | "contexts" | "extra-hosts" => Type::Map(string()),
        "pull" | "no-cache" => Type::Bool,
        "description" | "context" | "dockerfile" | "dockerfile-inline" | "target" | "call"
        | "network" | "shm-size" => Type::String,
        "inherits" | "annotations" | "attest" | "tags" | "cache-from" | "cache-to" | "secret"
        | "ssh" | "platforms" | "output" | "no-cache-filter" | "ulimits" | "entitlements" => {
            Type::List(string())
        }
        _ => return v,
    };
    crate::value::convert(v.clone(), &ty).unwrap_or(v)
}

fn unsuitable(attr: &Attribute, required: &str, v: &Value) -> Error {
    Error::diag(
        attr.expr.span,
        "Unsuitable value type",
        format!(
            "Unsuitable value: {required} required, but have {}",
            v.kind_name()
        ),
    )
}

pub(crate) fn string_scalar(v: Value, attr: &Attribute) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        other => match other.to_template_string() {
            Some(s) => Ok(Some(s)),
            None => Err(unsuitable(attr, "string", &other)),
        },
    }
}

pub(crate) fn string_list(v: &Value, attr: &Attribute) -> Result<Vec<String>> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::List(x) | Value::Tuple(x) | Value::Set(x) => x
            .iter()
            .filter(|i| !i.is_null())
            .map(|i| {
                i.to_template_string()
                    .ok_or_else(|| unsuitable(attr, "list of string", v))
            })
            .collect(),
        other => Err(unsuitable(attr, "list of string", other)),
    }
}

fn string_map(v: &Value, attr: &Attribute) -> Result<BTreeMap<String, String>> {
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Map(m) | Value::Object(m) => {
            let mut out = BTreeMap::new();
            for (k, item) in m {
                if item.is_null() {
                    continue;
                }
                match item.to_template_string() {
                    Some(s) => {
                        out.insert(k.clone(), s);
                    }
                    None => return Err(unsuitable(attr, "map of string", v)),
                }
            }
            Ok(out)
        }
        other => Err(unsuitable(attr, "map of string", other)),
    }
}

fn bool_scalar(v: Value, attr: &Attribute) -> Result<Option<bool>> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        Value::String(ref s) => match s.as_str() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(unsuitable(attr, "bool", &v)),
        },
        other => Err(unsuitable(attr, "bool", &other)),
    }
}

/// Items of a list attribute whose entries are strings or objects.
fn entry_items<'v>(v: &'v Value, attr: &Attribute) -> Result<Vec<&'v Value>> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::List(x) | Value::Tuple(x) | Value::Set(x) => {
            Ok(x.iter().filter(|i| !i.is_null()).collect())
        }
        other => Err(unsuitable(attr, "list", other)),
    }
}

fn object_strings(v: &Value) -> Option<BTreeMap<String, String>> {
    let m = v.as_entries()?;
    let mut out = BTreeMap::new();
    for (k, item) in m {
        if item.is_null() {
            continue;
        }
        out.insert(k.clone(), item.to_template_string()?);
    }
    Some(out)
}

fn entry_error(attr: &Attribute, msg: String) -> Error {
    Error::diag(attr.expr.span, "Invalid attribute", msg)
}

pub(crate) fn decode_attr(t: &mut Target, attr: &Attribute, v: Value) -> Result<()> {
    match attr.name.as_str() {
        "description" => t.description = string_scalar(v, attr)?.unwrap_or_default(),
        "context" => t.context = string_scalar(v, attr)?,
        "dockerfile" => t.dockerfile = string_scalar(v, attr)?,
        "dockerfile-inline" => t.dockerfile_inline = string_scalar(v, attr)?,
        "target" => t.target = string_scalar(v, attr)?,
        "call" => t.call = string_scalar(v, attr)?,
        "network" => t.network = string_scalar(v, attr)?,
        "shm-size" => t.shm_size = string_scalar(v, attr)?,
        "pull" => t.pull = bool_scalar(v, attr)?,
        "no-cache" => t.no_cache = bool_scalar(v, attr)?,
        "args" => t.args = string_map(&v, attr)?,
        "labels" => t.labels = string_map(&v, attr)?,
        "extra-hosts" => t.extra_hosts = string_map(&v, attr)?,
        "contexts" => t.contexts = string_map(&v, attr)?,
        "inherits" => t.inherits = string_list(&v, attr)?,
        "annotations" => t.annotations = string_list(&v, attr)?,
        "no-cache-filter" => t.no_cache_filter = string_list(&v, attr)?,
        "ulimits" => t.ulimits = string_list(&v, attr)?,
        "entitlements" => t.entitlements = string_list(&v, attr)?,
        "tags" if !v.is_null() => {
            t.tags = string_list(&v, attr)?;
            t.set.tags = true;
        }
        "platforms" if !v.is_null() => {
            t.platforms = string_list(&v, attr)?;
            t.set.platforms = true;
        }
        "cache-from" | "cache-to" => {
            if v.is_null() {
                return Ok(());
            }
            let mut entries = Vec::new();
            for item in entry_items(&v, attr)? {
                if let Some(s) = item.to_template_string() {
                    entries.extend(target::parse_cache(&s).map_err(|m| entry_error(attr, m))?);
                } else if let Some(mut m) = object_strings(item) {
                    let kind = m.remove("type").unwrap_or_default();
                    entries.push(Entry { kind, attrs: m });
                } else {
                    return Err(unsuitable(attr, "list of string", &v));
                }
            }
            if attr.name == "cache-from" {
                t.cache_from = entries;
            } else {
                t.cache_to = entries;
                t.set.cache_to = true;
            }
        }
        "output" => {
            if v.is_null() {
                return Ok(());
            }
            let mut entries = Vec::new();
            for item in entry_items(&v, attr)? {
                let e = if let Some(s) = item.to_template_string() {
                    target::parse_output(&s).map_err(|m| entry_error(attr, m))?
                } else if let Some(mut m) = object_strings(item) {
                    let kind = m.remove("type").unwrap_or_default();
                    Entry { kind, attrs: m }
                } else {
                    return Err(unsuitable(attr, "list of string", &v));
                };
                target::validate_output(&e).map_err(Error::msg)?;
                entries.push(e);
            }
            t.outputs = entries;
            t.set.output = true;
        }
        "attest" => {
            for item in entry_items(&v, attr)? {
                let a = if let Some(s) = item.to_template_string() {
                    target::parse_attest(&s).map_err(|m| entry_error(attr, m))?
                } else if let Some(m) = object_strings(item) {
                    let mut a = Attest::default();
                    for (k, val) in m {
                        target::set_attest_attr(&mut a, k, val)
                            .map_err(|m| entry_error(attr, m))?;
                    }
                    a
                } else {
                    return Err(unsuitable(attr, "list of string", &v));
                };
                t.attest.push(a);
            }
        }
        "secret" => {
            for item in entry_items(&v, attr)? {
                let s = if let Some(s) = item.to_template_string() {
                    target::parse_secret(&s).map_err(|m| entry_error(attr, m))?
                } else if let Some(m) = object_strings(item) {
                    let mut text = Vec::new();
                    for (k, val) in m {
                        text.push(format!("{k}={val}"));
                    }
                    target::parse_secret(&text.join(",")).map_err(|m| entry_error(attr, m))?
                } else {
                    return Err(unsuitable(attr, "list of string", &v));
                };
                t.secrets.push(s);
            }
        }
        "ssh" => {
            for item in entry_items(&v, attr)? {
                let s = if let Some(s) = item.to_template_string() {
                    target::parse_ssh(&s).map_err(|m| entry_error(attr, m))?
                } else if let Some(m) = item.as_entries() {
                    let id = m
                        .get("id")
                        .and_then(Value::to_template_string)
                        .unwrap_or_default();
                    let paths = m
                        .get("paths")
                        .and_then(Value::as_seq)
                        .map(|p| p.iter().filter_map(Value::to_template_string).collect())
                        .unwrap_or_default();
                    Ssh { id, paths }
                } else {
                    return Err(unsuitable(attr, "list of string", &v));
                };
                t.ssh.push(s);
            }
        }
        _ => {}
    }
    Ok(())
}
