//! Target selection and resolution (FEATURES §2.2): requested names and patterns, groups,
//! `inherits`, `--set` overrides, `target:` links, SOURCE_DATE_EPOCH and context cleaning.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{Instance, Session};
use crate::error::{Error, Result};
use crate::fast_hash::HashMap;
use crate::overrides::{self, glob_match, is_pattern, Overrides};
use crate::target::{self, clean_path, Entry, Target};
use crate::{Group, Resolved};

pub(crate) struct Resolver<'s> {
    /// Own value per target name (all blocks of that name merged in order).
    own: HashMap<String, Target>,
    /// Target names in definition order.
    target_names: Vec<String>,
    groups: Vec<(String, String, Vec<String>)>,
    overrides: Overrides,
    _session: std::marker::PhantomData<&'s ()>,
}

impl<'s> Resolver<'s> {
    pub fn new(
        session: &'s Session<'s>,
        sets: &[String],
        env: &BTreeMap<String, String>,
        env_lookup: bool,
    ) -> Result<Resolver<'s>> {
        session.check_variables()?;
        let (instances, matrix_groups) = session.instances()?;
        let mut own: HashMap<String, Target> = HashMap::default();
        let mut target_names = Vec::new();
        for mut inst in instances {
            let t = session.own_target(&mut inst)?;
            let Instance { name, .. } = inst;
            match own.get_mut(&name) {
                Some(existing) => existing.merge(&t),
                None => {
                    target_names.push(name.clone());
                    own.insert(name, t);
                }
            }
        }
        let mut groups: Vec<(String, String, Vec<String>)> = matrix_groups
            .into_iter()
            .map(|(n, t)| (n, String::new(), t))
            .collect();
        for g in session.groups()? {
            groups.retain(|(n, _, _)| *n != g.0);
            groups.push(g);
        }
        let overrides = overrides::parse(sets, &target_names, env, env_lookup)?;
        Ok(Resolver {
            own,
            target_names,
            groups,
            overrides,
            _session: std::marker::PhantomData,
        })
    }

    fn group(&self, name: &str) -> Option<&(String, String, Vec<String>)> {
        self.groups.iter().find(|(n, _, _)| n == name)
    }

    /// Resolves `name`: parents first (skipping any already in `chain`), then its own value,
    /// then its overrides, then normalization.
    fn target(&self, name: &str, chain: &mut Vec<String>) -> Result<Target> {
        let Some(own) = self.own.get(name) else {
            return Err(Error::msg(format!("failed to find target {name}")));
        };
        chain.push(name.to_string());
        let mut acc = Target::default();
        for parent in &own.inherits {
            if chain.contains(parent) {
                continue;
            }
            let p = self.target(parent, chain)?;
            acc.merge(&p);
        }
        acc.merge(own);
        acc.inherits.clear();
        acc.name = name.to_string();
        if let Some(o) = self.overrides.by_target.get(name) {
            overrides::apply(&mut acc, o)?;
        }
        acc.normalize();
        chain.pop();
        Ok(acc)
    }

    fn expand(
        &self,
        name: &str,
        visiting: &mut Vec<String>,
        leafs: &mut Vec<String>,
        groups: &mut BTreeMap<String, Group>,
    ) -> Result<()> {
        if let Some((gname, desc, members)) = self
            .group(name)
            .filter(|_| !visiting.iter().any(|v| v == name))
        {
            groups.insert(
                gname.clone(),
                Group {
                    name: gname.clone(),
                    description: desc.clone(),
                    targets: target::dedupe_strings(members.clone()),
                },
            );
            visiting.push(name.to_string());
            for m in members {
                self.expand(m, visiting, leafs, groups)?;
            }
            visiting.pop();
            return Ok(());
        }
        if !self.own.contains_key(name) {
            return Err(Error::msg(format!("failed to find target {name}")));
        }
        if !leafs.iter().any(|l| l == name) {
            leafs.push(name.to_string());
        }
        Ok(())
    }

    pub fn resolve(
        &self,
        requested: &[String],
        env: &BTreeMap<String, String>,
        cwd: Option<&Path>,
    ) -> Result<Resolved> {
        let mut names: Vec<String> = Vec::new();
        let raw: Vec<String> = if requested.is_empty() {
            vec!["default".into()]
        } else {
            requested.iter().map(|n| n.replace('.', "_")).collect()
        };
        for n in raw {
            if is_pattern(&n) {
                let mut matched: Vec<String> = self
                    .groups
                    .iter()
                    .map(|g| &g.0)
                    .filter(|g| glob_match(&n, g))
                    .cloned()
                    .collect();
                matched.extend(
                    self.target_names
                        .iter()
                        .filter(|t| glob_match(&n, t))
                        .cloned(),
                );
                if matched.is_empty() {
                    return Err(Error::msg(format!(
                        "could not find any target matching \"{n}\""
                    )));
                }
                names.extend(matched);
            } else {
                names.push(n);
            }
        }
        let names = target::dedupe_strings(names);

        let mut leafs = Vec::new();
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        let mut out: BTreeMap<String, Target> = BTreeMap::new();
        for n in &names {
            let mut these = Vec::new();
            self.expand(n, &mut Vec::new(), &mut these, &mut groups)?;
            for t in these {
                if !out.contains_key(&t) {
                    let resolved = self.target(&t, &mut Vec::new())?;
                    out.insert(t.clone(), resolved);
                }
                if !leafs.contains(&t) {
                    leafs.push(t);
                }
            }
        }

        let default_group = self
            .group("default")
            .filter(|_| names.iter().any(|n| n == "default"));
        let mut default_targets: Vec<String> =
            default_group.map(|g| g.2.clone()).unwrap_or_default();
        default_targets.extend(
            names
                .iter()
                .filter(|n| default_group.is_none() || *n != "default")
                .cloned(),
        );
        let mut default_targets = target::dedupe_strings(default_targets);
        default_targets.sort();
        groups.insert(
            "default".into(),
            Group {
                name: "default".into(),
                description: default_group.map(|g| g.1.clone()).unwrap_or_default(),
                targets: default_targets,
            },
        );

        let names_now: Vec<String> = out.keys().cloned().collect();
        for n in names_now {
            self.load_links(&n, &mut out, &leafs, &mut Vec::new())?;
        }

        let epoch = env.get("SOURCE_DATE_EPOCH").filter(|v| !v.is_empty());
        for t in out.values_mut() {
            if let Some(e) = epoch {
                t.args
                    .entry("SOURCE_DATE_EPOCH".into())
                    .or_insert_with(|| e.clone());
            }
            let ctx = t.context.clone().unwrap_or_else(|| ".".into());
            t.context = Some(if let Some(rest) = ctx.strip_prefix("cwd://") {
                clean_path(rest)
            } else if target::is_remote_context(&ctx) {
                ctx
            } else {
                clean_path(&ctx)
            });
            if t.dockerfile.is_none() {
                t.dockerfile = Some("Dockerfile".into());
            }
            if let Some(v) = &t.shm_size {
                if !is_mem_bytes(v) {
                    return Err(Error::msg(format!(
                        "invalid value {v} for membytes key shm-size"
                    )));
                }
            }
            for u in &t.ulimits {
                check_ulimit(u)?;
            }
            for s in &t.secrets {
                if !s.src.is_empty() {
                    check_secret_file(cwd, &s.src)?;
                }
            }
        }
        Ok(Resolved {
            groups,
            targets: out,
        })
    }

    fn load_links(
        &self,
        name: &str,
        out: &mut BTreeMap<String, Target>,
        requested: &[String],
        visited: &mut Vec<String>,
    ) -> Result<()> {
        visited.push(name.to_string());
        let links: Vec<String> = out[name].linked_targets().map(str::to_string).collect();
        for link in links {
            if link == name {
                return Err(Error::msg(format!("target {link} cannot link to itself")));
            }
            if visited.contains(&link) {
                return Err(Error::msg(format!("infinite loop from {name} to {link}")));
            }
            if !out.contains_key(&link) {
                let mut t2 = self.target(&link, &mut Vec::new())?;
                if !requested.contains(&link) {
                    t2.outputs = vec![Entry {
                        kind: "cacheonly".into(),
                        attrs: BTreeMap::new(),
                    }];
                }
                out.insert(link.clone(), t2);
            }
            self.load_links(&link, out, requested, visited)?;
            let linked = out[&link].clone();
            let t = out.get_mut(name).expect("present");
            for e in &linked.entitlements {
                if !t.entitlements.contains(e) {
                    t.entitlements.push(e.clone());
                }
            }
            if t.platforms.len() > 1
                && linked.platforms.len() > 1
                && !t.platforms.iter().all(|p| linked.platforms.contains(p))
            {
                return Err(Error::msg(format!(
                    "target {link} can't be used by {name} because its platforms [{}] are not a subset of [{}]",
                    t.platforms.join(" "),
                    linked.platforms.join(" ")
                )));
            }
        }
        visited.pop();
        Ok(())
    }
}

fn check_secret_file(cwd: Option<&Path>, src: &str) -> Result<()> {
    let path = match cwd {
        Some(c) => c.join(src),
        None => Path::new(src).to_path_buf(),
    };
    match std::fs::metadata(&path) {
        Ok(_) => Ok(()),
        Err(e) => {
            let reason = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                _ => e.to_string(),
            };
            Err(Error::msg(format!(
                "failed to stat {src}: stat {src}: {reason}"
            )))
        }
    }
}

/// Go's `units.RAMInBytes` syntax: `1024`, `512m`, `1.5GB`, `2 GiB`.
fn is_mem_bytes(s: &str) -> bool {
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(digits_end);
    let num_ok = !num.is_empty()
        && num
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut chars = rest.chars().peekable();
    if chars.peek().is_some_and(|c| "kKmMgGtTpP".contains(*c)) {
        chars.next();
    }
    if chars.peek().is_some_and(|c| *c == 'i' || *c == 'I') {
        chars.next();
    }
    if chars.peek().is_some_and(|c| *c == 'b' || *c == 'B') {
        chars.next();
    }
    num_ok && chars.next().is_none()
}

/// Go's `units.ParseUlimit`: `name=soft[:hard]`.
fn check_ulimit(u: &str) -> Result<()> {
    const NAMES: [&str; 15] = [
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    let bad = || Error::msg(format!("invalid ulimit argument: {u}"));
    let (name, limits) = u.split_once('=').ok_or_else(bad)?;
    if !NAMES.contains(&name) {
        return Err(Error::msg(format!("invalid ulimit type: {name}")));
    }
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (s, Some(h)),
        None => (limits, None),
    };
    let soft: i64 = soft.parse().map_err(|_| bad())?;
    if let Some(h) = hard {
        let hard: i64 = h.parse().map_err(|_| bad())?;
        if soft > hard {
            return Err(Error::msg(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_bytes_and_ulimits() {
        for (v, ok) in [
            ("1g", true),
            ("512m", true),
            ("1024", true),
            ("1.5GB", true),
            ("2 GiB", true),
            ("abc", false),
            ("", false),
            ("1x", false),
        ] {
            assert_eq!(is_mem_bytes(v), ok, "{v}");
        }
        assert!(check_ulimit("nofile=1024:2048").is_ok());
        assert!(check_ulimit("nproc=64").is_ok());
        assert!(check_ulimit("nofile").is_err());
        assert!(check_ulimit("bogus=1").is_err());
    }
}
