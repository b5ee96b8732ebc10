//! `--set <pattern>.<key>[.<sub>][+]=<value>` overrides and the CLI shorthands built on them
//! (`--push`, `--load`, `--no-cache`, `--pull`, `--sbom`, `--provenance`), FEATURES §1.13.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::fast_hash::HashMap;
use crate::target::{self, Entry, Target};
use crate::vars::parse_go_bool;

/// Keys whose values from several `--set` accumulate into one list.
const LIST_KEYS: &[&str] = &[
    "output",
    "cache-to",
    "cache-from",
    "tags",
    "platform",
    "secrets",
    "ssh",
    "attest",
    "entitlements",
    "network",
    "annotations",
];

/// One key's collected overrides for one target.
#[derive(Clone, Debug, Default)]
pub(crate) struct Override {
    pub value: String,
    pub list: Vec<String>,
    pub append: bool,
}

/// Overrides per target name; keys in first-seen order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Overrides {
    pub by_target: HashMap<String, Vec<(String, Override)>>,
}

/// Go's `path.Match` (no `/` in bake names, so `*` is any run of characters).
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    fn m(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| m(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && m(&p[1..], &n[1..]),
            Some('[') => {
                let Some(close) = p.iter().skip(1).position(|&c| c == ']').map(|i| i + 1) else {
                    return false;
                };
                let Some(&c) = n.first() else { return false };
                let mut class = &p[1..close];
                let negate = matches!(class.first(), Some('^') | Some('!'));
                if negate {
                    class = &class[1..];
                }
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == c;
                        i += 1;
                    }
                }
                hit != negate && m(&p[close + 1..], &n[1..])
            }
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && m(&p[2..], &n[1..]),
            Some(&c) => n.first() == Some(&c) && m(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    m(&p, &n)
}

pub(crate) fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?', '[', ']'])
}

/// Parses the `--set` list against the known target names.
pub(crate) fn parse(
    sets: &[String],
    target_names: &[String],
    env: &BTreeMap<String, String>,
    env_lookup: bool,
) -> Result<Overrides> {
    let mut out = Overrides::default();
    for s in sets {
        let (lhs, value) = match s.split_once('=') {
            Some((l, v)) => (l, Some(v)),
            None => (s.as_str(), None),
        };
        let (lhs, append) = match lhs.strip_suffix('+') {
            Some(l) => (l, true),
            None => (lhs, false),
        };
        let keys: Vec<&str> = lhs.splitn(3, '.').collect();
        if keys.len() < 2 {
            return Err(Error::msg(format!(
                "invalid override key {lhs}, expected target.name"
            )));
        }
        let pattern = keys[0];
        let key = keys[1..].join(".");
        let names: Vec<&String> = if target_names.iter().any(|n| n == pattern) {
            target_names
                .iter()
                .filter(|n| *n == pattern)
                .take(1)
                .collect()
        } else {
            target_names
                .iter()
                .filter(|n| glob_match(pattern, n))
                .collect()
        };
        if names.is_empty() {
            return Err(Error::msg(format!(
                "could not find any target matching '{pattern}'"
            )));
        }
        for name in names {
            let list = out.by_target.entry(name.clone()).or_default();
            let pos = match list.iter().position(|(k, _)| *k == key) {
                Some(p) => p,
                None => {
                    list.push((key.clone(), Override::default()));
                    list.len() - 1
                }
            };
            let o = &mut list[pos].1;
            if LIST_KEYS.contains(&keys[1]) {
                if let Some(v) = value {
                    o.list.push(v.to_string());
                }
            } else if keys[1] == "args" && value.is_none() {
                if keys.len() != 3 {
                    return Err(Error::msg(format!("invalid key {lhs}, args requires name")));
                }
                if env_lookup {
                    match env.get(keys[2]) {
                        Some(v) => o.value = v.clone(),
                        None => {
                            list.remove(pos);
                            continue;
                        }
                    }
                } else {
                    o.value = String::new();
                }
            } else if let Some(v) = value {
                o.value = v.to_string();
            }
            o.append = append;
        }
    }
    Ok(out)
}

fn require_name<'a>(sub: Option<&'a str>, key: &str) -> Result<&'a str> {
    sub.ok_or_else(|| Error::msg(format!("{key} require name")))
}

fn parse_bool_key(value: &str, key: &str) -> Result<bool> {
    parse_go_bool(value)
        .ok_or_else(|| Error::msg(format!("invalid value {value} for boolean key {key}")))
}

/// Applies one target's overrides, in key order.
pub(crate) fn apply(t: &mut Target, overrides: &[(String, Override)]) -> Result<()> {
    for (key, o) in overrides {
        let (head, sub) = match key.split_once('.') {
            Some((h, s)) => (h, Some(s)),
            None => (key.as_str(), None),
        };
        let value = o.value.clone();
        match head {
            "context" => t.context = Some(value),
            "dockerfile" => t.dockerfile = Some(value),
            "args" => {
                t.args.insert(require_name(sub, "args")?.to_string(), value);
            }
            "contexts" => {
                t.contexts
                    .insert(require_name(sub, "contexts")?.to_string(), value);
            }
            "labels" => {
                t.labels
                    .insert(require_name(sub, "labels")?.to_string(), value);
            }
            "extra-hosts" => {
                t.extra_hosts
                    .insert(require_name(sub, "extra-hosts")?.to_string(), value);
            }
            "tags" => {
                replace_or_append(&mut t.tags, o.list.clone(), o.append);
                t.set.tags = true;
            }
            "platform" => {
                replace_or_append(&mut t.platforms, o.list.clone(), o.append);
                t.set.platforms = true;
            }
            "cache-from" | "cache-to" => {
                let mut entries = Vec::new();
                for v in &o.list {
                    entries.extend(target::parse_cache(v).map_err(Error::msg)?);
                }
                let field = if head == "cache-from" {
                    &mut t.cache_from
                } else {
                    &mut t.cache_to
                };
                replace_or_append(field, entries, o.append);
            }
            "output" => {
                let mut entries = Vec::new();
                for v in &o.list {
                    let e = target::parse_output(v).map_err(Error::msg)?;
                    target::validate_output(&e).map_err(Error::msg)?;
                    entries.push(e);
                }
                replace_or_append(&mut t.outputs, entries, o.append);
                t.set.output = true;
            }
            "secrets" => {
                let parsed = parse_all(&o.list, target::parse_secret)?;
                replace_or_append(&mut t.secrets, parsed, o.append);
                if o.append {
                    t.secrets = target::dedupe_by(std::mem::take(&mut t.secrets), |s| s.id.clone());
                }
            }
            "secret" => {
                let id = require_name(sub, "secret")?;
                if o.append {
                    return Err(Error::msg(format!("secret.{id} does not support append")));
                }
                let Some(s) = t.secrets.iter_mut().find(|s| s.id == id) else {
                    return Err(Error::msg(format!("secret {id} not found")));
                };
                match value.split_once('=') {
                    Some(("env", v)) => {
                        s.env = v.to_string();
                        s.src.clear();
                    }
                    Some(("src" | "source", v)) => {
                        s.src = v.to_string();
                        s.env.clear();
                    }
                    _ => return Err(Error::msg(format!("invalid value {value} for secret.{id}"))),
                }
            }
            "ssh" => {
                let parsed = parse_all(&o.list, target::parse_ssh)?;
                replace_or_append(&mut t.ssh, parsed, o.append);
                if o.append {
                    t.ssh = target::dedupe_by(std::mem::take(&mut t.ssh), |s| s.id.clone());
                }
            }
            "attest" => {
                t.attest.extend(parse_all(&o.list, target::parse_attest)?);
                t.attest = target::dedupe_by(std::mem::take(&mut t.attest), |a| a.kind.clone());
            }
            "entitlements" => t.entitlements.extend(o.list.iter().cloned()),
            "annotations" => t.annotations.extend(o.list.iter().cloned()),
            "no-cache-filter" => t.no_cache_filter = Vec::new(),
            "ulimits" => t.ulimits = Vec::new(),
            "target" => t.target = Some(value),
            "call" => t.call = Some(value),
            "shm-size" => t.shm_size = Some(value),
            "network" => t.network = Some(value),
            "no-cache" => t.no_cache = Some(parse_bool_key(&value, "no-cache")?),
            "pull" => t.pull = Some(parse_bool_key(&value, "pull")?),
            "push" => {
                if parse_bool_key(&value, "push")? {
                    set_push(&mut t.outputs);
                }
            }
            "load" => {
                if parse_bool_key(&value, "load")? {
                    set_load(&mut t.outputs);
                }
            }
            "resources" if o.append => return Err(Error::msg("resources does not support append")),
            other => return Err(Error::msg(format!("unknown key: {other}"))),
        }
    }
    Ok(())
}

/// A list key's `--set`: `=` replaces the target's list, a final `+=` appends to it.
fn replace_or_append<T>(field: &mut Vec<T>, items: Vec<T>, append: bool) {
    if append {
        field.extend(items);
    } else {
        *field = items;
    }
}

/// Parses every collected `--set` value of a key with the file syntax's parser.
fn parse_all<T>(list: &[String], parse: fn(&str) -> Result<T, String>) -> Result<Vec<T>> {
    list.iter()
        .map(|v| parse(v))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::msg)
}

fn set_push(outputs: &mut Vec<Entry>) {
    let mut add = true;
    for e in outputs.iter_mut() {
        if e.kind != "docker" {
            add = false;
        }
        if e.kind == "image" {
            e.attrs.insert("push".into(), "true".into());
        }
    }
    if add {
        outputs.push(Entry {
            kind: "image".into(),
            attrs: BTreeMap::from([("push".into(), "true".into())]),
        });
    }
}

fn set_load(outputs: &mut Vec<Entry>) {
    let mut add = true;
    for e in outputs.iter() {
        match e.kind.as_str() {
            "docker" => {
                if e.attrs.get("dest").is_none_or(|d| d.is_empty()) {
                    add = false;
                }
            }
            "image" | "registry" | "oci" => {}
            _ => add = false,
        }
    }
    if add {
        outputs.push(Entry {
            kind: "docker".into(),
            attrs: BTreeMap::new(),
        });
    }
}

/// `--sbom` / `--provenance` values as attest overrides (`true` → enabled).
pub(crate) fn canonical_attest(kind: &str, value: &str) -> String {
    match parse_go_bool(value) {
        Some(b) => format!("type={kind},disabled={}", !b),
        None => format!("type={kind},{value}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, n, want) in [
            ("svc-*", "svc-api", true),
            ("t??l", "tool", true),
            ("[st]*", "tool", true),
            ("[st]*", "app", false),
            ("a?p", "app", true),
            ("*", "", true),
            ("[!a]x", "bx", true),
        ] {
            assert_eq!(glob_match(p, n), want, "{p} {n}");
        }
    }

    #[test]
    fn list_keys_accumulate_and_last_append_wins() {
        let names = vec!["w".to_string()];
        let sets: Vec<String> = ["w.tags=x", "w.tags+=y"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let o = parse(&sets, &names, &BTreeMap::new(), true).unwrap();
        let mut t = Target {
            tags: vec!["base".into()],
            ..Target::default()
        };
        apply(&mut t, &o.by_target["w"]).unwrap();
        assert_eq!(t.tags, vec!["base", "x", "y"]);

        let sets: Vec<String> = ["w.tags+=x", "w.tags=y"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let o = parse(&sets, &names, &BTreeMap::new(), true).unwrap();
        let mut t = Target {
            tags: vec!["base".into()],
            ..Target::default()
        };
        apply(&mut t, &o.by_target["w"]).unwrap();
        assert_eq!(t.tags, vec!["x", "y"]);
    }

    #[test]
    fn args_without_value_read_env() {
        let names = vec!["w".to_string()];
        let env = BTreeMap::from([("SHA".to_string(), "abc".to_string())]);
        let sets = vec!["w.args.SHA".to_string(), "w.args.MISSING".to_string()];
        let o = parse(&sets, &names, &env, true).unwrap();
        let mut t = Target::default();
        apply(&mut t, &o.by_target["w"]).unwrap();
        assert_eq!(
            t.args,
            BTreeMap::from([("SHA".to_string(), "abc".to_string())])
        );
        let o = parse(&sets, &names, &env, false).unwrap();
        let mut t = Target::default();
        apply(&mut t, &o.by_target["w"]).unwrap();
        assert_eq!(t.args.len(), 2);
    }
}
