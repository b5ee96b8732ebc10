//! buildx's `semvercmp(version, constraint)`: true when the version satisfies the
//! constraint, with the constraint language of Masterminds/semver v3 (which buildx
//! uses): `=`, `!=`, `>`, `<`, `>=`, `<=`, `~`, `^`, wildcards `x`/`*`, missing parts,
//! hyphen ranges, `,`/space for AND and `||` for OR. A pre-release version only
//! satisfies a comparator that itself names a pre-release.

use std::cmp::Ordering;

use super::text::s;
use super::{failed, p, sig, Body, FnError, Signature, S};
use crate::value::Value;

pub(crate) fn lookup(name: &str) -> Option<(Signature, Body)> {
    Some(match name {
        "semvercmp" => (sig(vec![p("version", S), p("constraint", S)]), semvercmp),
        _ => return None,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<String>,
}

fn cmp_pre(a: &[String], b: &[String]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    for (x, y) in a.iter().zip(b) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(i), Ok(j)) => i.cmp(&j),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            _ => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

impl Version {
    fn cmp(&self, o: &Version) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(o.major, o.minor, o.patch))
            .then_with(|| cmp_pre(&self.pre, &o.pre))
    }
}

/// A version as written in a constraint: parts may be missing or wildcards.
#[derive(Clone, Debug)]
struct Partial {
    v: Version,
    /// How many of major, minor, patch were given as numbers (3 = fully specified).
    given: usize,
}

fn ident_ok(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Masterminds' coercing parser: optional `v`, 1–3 numeric parts (wildcards allowed in
/// constraints), then `-pre` and `+build`.
fn parse_partial(text: &str, wildcards: bool) -> Option<Partial> {
    let t = text.strip_prefix(['v', 'V']).unwrap_or(text);
    let (t, _build) = match t.split_once('+') {
        Some((a, b)) if b.split('.').all(ident_ok) => (a, Some(b)),
        Some(_) => return None,
        None => (t, None),
    };
    let (core, pre) = match t.split_once('-') {
        Some((a, b)) if b.split('.').all(ident_ok) => (a, b.split('.').map(String::from).collect()),
        Some(_) => return None,
        None => (t, Vec::new()),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut nums = [0u64; 3];
    let mut given = 0;
    let mut wild = false;
    for (i, part) in parts.iter().enumerate() {
        if wildcards && matches!(*part, "x" | "X" | "*") {
            wild = true;
            continue;
        }
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !wild {
            nums[i] = part.parse().ok()?;
            given = i + 1;
        }
    }
    let v = Version {
        major: nums[0],
        minor: nums[1],
        patch: nums[2],
        pre,
    };
    Some(Partial { v, given })
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Tilde,
    Caret,
}

/// One comparator, with Masterminds' "dirty" flags: `1` is minor-dirty (`1.0.0` with
/// any minor), `1.2` patch-dirty, `*` dirty with neither flag.
#[derive(Clone, Debug)]
struct Comparator {
    op: Op,
    con: Version,
    dirty: bool,
    minor_dirty: bool,
    patch_dirty: bool,
}

impl Comparator {
    fn new(op: Op, c: Partial) -> Comparator {
        Comparator {
            op,
            con: c.v,
            dirty: c.given < 3,
            minor_dirty: c.given == 1,
            patch_dirty: c.given == 2,
        }
    }

    /// Masterminds/semver v3's constraint functions, rule for rule.
    fn check(&self, v: &Version) -> bool {
        let c = &self.con;
        let cmp = v.cmp(c);
        // A pre-release only satisfies comparators that name one (except a plain `!=`).
        if !v.pre.is_empty() && c.pre.is_empty() && (self.op != Op::Ne || self.dirty) {
            return false;
        }
        match self.op {
            Op::Ne if self.dirty => {
                if c.major != v.major {
                    return true;
                }
                if c.minor != v.minor && !self.minor_dirty {
                    return true;
                }
                if self.minor_dirty {
                    return false;
                }
                if c.patch != v.patch && !self.patch_dirty {
                    return true;
                }
                if self.patch_dirty && (!v.pre.is_empty() || !c.pre.is_empty()) {
                    return cmp_pre(&v.pre, &c.pre) != Ordering::Equal;
                }
                false
            }
            Op::Ne => cmp != Ordering::Equal,
            Op::Gt if !self.dirty => cmp == Ordering::Greater,
            Op::Gt => {
                if v.major != c.major {
                    v.major > c.major
                } else if self.minor_dirty {
                    false
                } else if self.patch_dirty {
                    v.minor > c.minor
                } else {
                    cmp == Ordering::Greater
                }
            }
            Op::Lt => cmp == Ordering::Less,
            Op::Ge => cmp != Ordering::Less,
            Op::Le if !self.dirty => cmp != Ordering::Greater,
            Op::Le => {
                v.major < c.major
                    || (v.major == c.major && (v.minor <= c.minor || self.minor_dirty))
            }
            Op::Eq if !self.dirty => cmp == Ordering::Equal,
            Op::Eq | Op::Tilde => self.tilde(v, cmp),
            Op::Caret => {
                if cmp == Ordering::Less {
                    return false;
                }
                if c.major > 0 || self.minor_dirty {
                    return v.major == c.major;
                }
                if v.major > 0 {
                    return false;
                }
                if c.minor > 0 || self.patch_dirty {
                    return v.minor == c.minor;
                }
                if v.minor > 0 {
                    return false;
                }
                v.patch == c.patch
            }
        }
    }

    fn tilde(&self, v: &Version, cmp: Ordering) -> bool {
        let c = &self.con;
        if cmp == Ordering::Less {
            return false;
        }
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        if v.major != c.major {
            return false;
        }
        v.minor == c.minor || self.minor_dirty
    }
}

fn parse_comparator(text: &str) -> Option<Comparator> {
    let ops: [(&str, Op); 12] = [
        (">=", Op::Ge),
        ("=>", Op::Ge),
        ("<=", Op::Le),
        ("=<", Op::Le),
        ("!=", Op::Ne),
        ("~>", Op::Tilde),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("=", Op::Eq),
        ("~", Op::Tilde),
        ("^", Op::Caret),
        ("", Op::Eq),
    ];
    for (prefix, op) in ops {
        if let Some(rest) = text.strip_prefix(prefix) {
            let c = parse_partial(rest.trim(), true)?;
            return Some(Comparator::new(op, c));
        }
    }
    None
}

/// One `||` alternative: comparators that must all hold.
fn parse_and(group: &str) -> Option<Vec<Comparator>> {
    let mut tokens: Vec<String> = Vec::new();
    // Glue an operator separated from its version by spaces (`>= 1.2`).
    for tok in group.split([',', ' ']).filter(|t| !t.is_empty()) {
        match tokens.last_mut() {
            Some(last) if last.chars().all(|c| "<>=!~^".contains(c)) => last.push_str(tok),
            _ => tokens.push(tok.to_string()),
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens.get(i + 1).map(String::as_str) == Some("-") {
            let lo = parse_partial(&tokens[i], true)?;
            let hi = parse_partial(tokens.get(i + 2)?, true)?;
            out.push(Comparator::new(Op::Ge, lo));
            out.push(Comparator::new(Op::Le, hi));
            i += 3;
            continue;
        }
        out.push(parse_comparator(&tokens[i])?);
        i += 1;
    }
    (!out.is_empty()).then_some(out)
}

fn semvercmp(a: Vec<Value>) -> Result<Value, FnError> {
    let version = parse_partial(s(&a, 0).trim(), false)
        .filter(|p| p.given >= 1)
        .ok_or_else(|| failed("Invalid Semantic Version"))?
        .v;
    let constraint = s(&a, 1);
    let mut any = false;
    for group in constraint.split("||") {
        let comps = parse_and(group.trim())
            .ok_or_else(|| failed(format!("improper constraint: {constraint}")))?;
        if comps.iter().all(|c| c.check(&version)) {
            any = true;
        }
    }
    Ok(Value::Bool(any))
}
