//! buildx's `semvercmp(version, constraint)`: true when the version satisfies the
//! constraint, with the constraint language of Masterminds/semver v3 (which buildx
//! uses): `=`, `!=`, `>`, `<`, `>=`, `<=`, `~`, `^`, wildcards `x`/`*`, missing parts,
//! hyphen ranges, `,`/space for AND and `||` for OR. A pre-release version only
//! satisfies a comparator that itself names a pre-release.

use std::cmp::Ordering;

use super::strings::s;
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
        if wild || part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        nums[i] = part.parse().ok()?;
        given = i + 1;
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

#[derive(Clone, Debug)]
struct Comparator {
    op: Op,
    c: Partial,
}

fn bump(v: &Version, part: usize) -> Version {
    match part {
        0 => Version {
            major: v.major.saturating_add(1),
            minor: 0,
            patch: 0,
            pre: Vec::new(),
        },
        1 => Version {
            major: v.major,
            minor: v.minor.saturating_add(1),
            patch: 0,
            pre: Vec::new(),
        },
        _ => Version {
            major: v.major,
            minor: v.minor,
            patch: v.patch.saturating_add(1),
            pre: Vec::new(),
        },
    }
}

impl Comparator {
    fn check(&self, v: &Version) -> bool {
        let c = &self.c.v;
        if !v.pre.is_empty() && c.pre.is_empty() {
            return false;
        }
        let lt = |x: &Version| v.cmp(x) == Ordering::Less;
        let ge = |x: &Version| v.cmp(x) != Ordering::Less;
        let dirty = self.c.given < 3;
        match self.op {
            Op::Eq if dirty => self.within_wildcard(v),
            Op::Eq => v.cmp(c) == Ordering::Equal,
            Op::Ne if dirty => !self.within_wildcard(v),
            Op::Ne => v.cmp(c) != Ordering::Equal,
            Op::Gt if dirty => {
                let next = bump(c, self.c.given.saturating_sub(1));
                self.c.given > 0 && ge(&next)
            }
            Op::Gt => v.cmp(c) == Ordering::Greater,
            Op::Ge => ge(c),
            Op::Lt => lt(c),
            Op::Le if dirty => self.c.given == 0 || lt(&bump(c, self.c.given - 1)),
            Op::Le => v.cmp(c) != Ordering::Greater,
            Op::Tilde => {
                let upper = if self.c.given <= 1 {
                    bump(c, 0)
                } else {
                    bump(c, 1)
                };
                ge(c) && (self.c.given == 0 || lt(&upper))
            }
            Op::Caret => {
                let upper = if c.major > 0 || self.c.given <= 1 {
                    bump(c, 0)
                } else if c.minor > 0 || self.c.given == 2 {
                    bump(c, 1)
                } else {
                    bump(c, 2)
                };
                ge(c) && (self.c.given == 0 || lt(&upper))
            }
        }
    }

    /// `1.2` or `1.2.x` as "any 1.2.*".
    fn within_wildcard(&self, v: &Version) -> bool {
        let c = &self.c.v;
        let parts = [(v.major, c.major), (v.minor, c.minor), (v.patch, c.patch)];
        parts.iter().take(self.c.given).all(|(a, b)| a == b)
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
            return Some(Comparator { op, c });
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
            out.push(Comparator { op: Op::Ge, c: lo });
            out.push(Comparator { op: Op::Le, c: hi });
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
