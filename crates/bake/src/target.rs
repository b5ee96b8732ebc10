//! A resolved bake target, its structured entries (cache, output, attest, secret, ssh),
//! and the merge and normalization rules of `inherits` (FEATURES §1.8, §1.9).

use std::collections::BTreeMap;

use crate::vars::csv_fields;

/// A `cache-from`, `cache-to` or `output` entry: its `type` plus the other attributes.
/// For outputs, `dest` sits in `attrs` (printed only when non-empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub kind: String,
    pub attrs: BTreeMap<String, String>,
}

/// An `attest` entry: `type`, attributes, and whether it is disabled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attest {
    pub kind: String,
    pub attrs: BTreeMap<String, String>,
    pub disabled: bool,
}

/// A build secret: read from a file (`src`) or an environment variable (`env`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Secret {
    pub id: String,
    pub src: String,
    pub env: String,
}

/// An ssh agent socket or key forwarded to the build.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ssh {
    pub id: String,
    pub paths: Vec<String>,
}

/// Which replace-on-set list attributes a block (or an ancestor) set, even to `[]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ListsSet {
    pub tags: bool,
    pub platforms: bool,
    pub cache_to: bool,
    pub output: bool,
}

/// One target as `docker buildx bake --print` shows it. Optional scalars are `None` when
/// never set (they print only when set, even to `""`/`false`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Target {
    pub name: String,
    pub description: String,
    pub annotations: Vec<String>,
    pub attest: Vec<Attest>,
    /// Always `Some` after resolution (default `"."`, cleaned).
    pub context: Option<String>,
    /// Named build contexts; a value `target:<name>` links another target.
    pub contexts: BTreeMap<String, String>,
    /// Always `Some` after resolution (default `"Dockerfile"`).
    pub dockerfile: Option<String>,
    pub dockerfile_inline: Option<String>,
    pub args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub cache_from: Vec<Entry>,
    pub cache_to: Vec<Entry>,
    pub target: Option<String>,
    pub secrets: Vec<Secret>,
    pub ssh: Vec<Ssh>,
    pub platforms: Vec<String>,
    pub outputs: Vec<Entry>,
    pub pull: Option<bool>,
    pub no_cache: Option<bool>,
    pub network: Option<String>,
    pub no_cache_filter: Vec<String>,
    pub shm_size: Option<String>,
    pub ulimits: Vec<String>,
    pub call: Option<String>,
    pub entitlements: Vec<String>,
    pub extra_hosts: BTreeMap<String, String>,
    /// Parents named by `inherits` (consumed by resolution; never printed).
    pub inherits: Vec<String>,
    pub(crate) set: ListsSet,
}

impl Target {
    pub fn context(&self) -> &str {
        self.context.as_deref().unwrap_or(".")
    }

    pub fn dockerfile(&self) -> &str {
        self.dockerfile.as_deref().unwrap_or("Dockerfile")
    }

    /// Names of targets linked through `contexts` values `target:<name>`, in key order.
    pub fn linked_targets(&self) -> impl Iterator<Item = &str> {
        self.contexts
            .values()
            .filter_map(|v| v.strip_prefix("target:"))
    }

    /// Merges `child` over `self` (the `inherits` and same-name-block rules).
    pub fn merge(&mut self, child: &Target) {
        if !child.description.is_empty() {
            self.description = child.description.clone();
        }
        macro_rules! scalar {
            ($($f:ident),*) => { $( if child.$f.is_some() { self.$f = child.$f.clone(); } )* };
        }
        scalar!(
            context,
            dockerfile,
            dockerfile_inline,
            target,
            call,
            pull,
            no_cache,
            network,
            shm_size
        );
        for (k, v) in &child.args {
            self.args.insert(k.clone(), v.clone());
        }
        for (k, v) in &child.labels {
            self.labels.insert(k.clone(), v.clone());
        }
        for (k, v) in &child.extra_hosts {
            self.extra_hosts.insert(k.clone(), v.clone());
        }
        for (k, v) in &child.contexts {
            self.contexts.insert(k.clone(), v.clone());
        }
        if child.set.tags {
            self.tags = child.tags.clone();
            self.set.tags = true;
        }
        if child.set.platforms {
            self.platforms = child.platforms.clone();
            self.set.platforms = true;
        }
        if child.set.cache_to {
            self.cache_to = child.cache_to.clone();
            self.set.cache_to = true;
        }
        if child.set.output {
            self.outputs = child.outputs.clone();
            self.set.output = true;
        }
        self.annotations.extend(child.annotations.iter().cloned());
        self.annotations = dedupe_strings(std::mem::take(&mut self.annotations));
        self.no_cache_filter
            .extend(child.no_cache_filter.iter().cloned());
        self.no_cache_filter = dedupe_strings(std::mem::take(&mut self.no_cache_filter));
        self.ulimits.extend(child.ulimits.iter().cloned());
        self.ulimits = dedupe_strings(std::mem::take(&mut self.ulimits));
        self.entitlements.extend(child.entitlements.iter().cloned());
        self.entitlements = dedupe_strings(std::mem::take(&mut self.entitlements));
        self.cache_from.extend(child.cache_from.iter().cloned());
        remove_dupes(&mut self.cache_from);
        self.secrets.extend(child.secrets.iter().cloned());
        self.secrets = dedupe_by(std::mem::take(&mut self.secrets), |s| s.id.clone());
        self.ssh.extend(child.ssh.iter().cloned());
        self.ssh = dedupe_by(std::mem::take(&mut self.ssh), |s| s.id.clone());
        self.attest.extend(child.attest.iter().cloned());
        self.attest = dedupe_by(std::mem::take(&mut self.attest), |a| a.kind.clone());
        self.inherits.extend(child.inherits.iter().cloned());
    }

    /// The per-target normalization bake applies after merging and overrides.
    pub(crate) fn normalize(&mut self) {
        if self.dockerfile.as_deref().is_none_or(str::is_empty) {
            self.dockerfile = Some("Dockerfile".into());
        }
        self.contexts.retain(|_, v| !v.is_empty());
        self.tags = dedupe_strings(std::mem::take(&mut self.tags));
        self.platforms = dedupe_strings(std::mem::take(&mut self.platforms));
        self.annotations = dedupe_strings(std::mem::take(&mut self.annotations));
        self.no_cache_filter = dedupe_strings(std::mem::take(&mut self.no_cache_filter));
        self.ulimits = dedupe_strings(std::mem::take(&mut self.ulimits));
        if self.network.as_deref() == Some("host") {
            self.entitlements.push("network.host".into());
        }
        self.entitlements = dedupe_strings(std::mem::take(&mut self.entitlements));
        remove_dupes(&mut self.cache_from);
        remove_dupes(&mut self.cache_to);
        remove_dupes(&mut self.outputs);
        self.secrets = dedupe_by(std::mem::take(&mut self.secrets), |s| s.id.clone());
        self.ssh = dedupe_by(std::mem::take(&mut self.ssh), |s| s.id.clone());
        self.attest = dedupe_by(std::mem::take(&mut self.attest), |a| a.kind.clone());
    }
}

/// Stable dedupe that also drops empty strings.
pub(crate) fn dedupe_strings(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for s in items {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Dedupe by key: a later entry replaces the earlier one in the earlier one's position.
pub(crate) fn dedupe_by<T, K: PartialEq>(items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        let k = key(&item);
        match out.iter().position(|o| key(o) == k) {
            Some(i) => out[i] = item,
            None => out.push(item),
        }
    }
    out
}

/// buildx's `removeDupes`: from the second-to-last entry down, the first later duplicate
/// is swapped with the last entry and dropped (so `[a,b,a,c,d]` becomes `[a,b,d,c]`).
pub(crate) fn remove_dupes(s: &mut Vec<Entry>) {
    if s.len() < 2 {
        return;
    }
    let mut i = s.len() as isize - 2;
    while i >= 0 {
        let iu = i as usize;
        for j in iu + 1..s.len() {
            if s[iu] == s[j] {
                let last = s.len() - 1;
                s.swap(j, last);
                s.truncate(last);
                break;
            }
        }
        i -= 1;
    }
}

fn split_kv(field: &str) -> (String, Option<String>) {
    match field.split_once('=') {
        Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_string())),
        None => (field.trim().to_ascii_lowercase(), None),
    }
}

/// `cache-from`/`cache-to` text: refs (`user/cache:1`, comma-separated) or CSV `k=v`.
pub(crate) fn parse_cache(s: &str) -> Result<Vec<Entry>, String> {
    let fields = csv_fields(s)?;
    if !fields.iter().any(|f| f.contains('=')) {
        return Ok(fields
            .into_iter()
            .filter(|f| !f.is_empty())
            .map(|f| Entry {
                kind: "registry".into(),
                attrs: BTreeMap::from([("ref".into(), f)]),
            })
            .collect());
    }
    let mut e = Entry::default();
    for f in fields {
        let (k, v) = split_kv(&f);
        let Some(v) = v else {
            return Err(format!("invalid value {f}"));
        };
        if k == "type" {
            e.kind = v;
        } else {
            e.attrs.insert(k, v);
        }
    }
    Ok(vec![e])
}

/// `output` text: `-` (tar to stdout), a bare path (local), or CSV `k=v`.
pub(crate) fn parse_output(s: &str) -> Result<Entry, String> {
    if s == "-" {
        return Ok(Entry {
            kind: "tar".into(),
            attrs: BTreeMap::from([("dest".into(), "-".into())]),
        });
    }
    let fields = csv_fields(s)?;
    if fields.len() == 1 && !fields[0].starts_with("type=") && !fields[0].contains('=') {
        return Ok(Entry {
            kind: "local".into(),
            attrs: BTreeMap::from([("dest".into(), s.to_string())]),
        });
    }
    let mut e = Entry::default();
    for f in fields {
        let (k, v) = split_kv(&f);
        let Some(v) = v else {
            return Err(format!("invalid value {f}"));
        };
        if k == "type" {
            e.kind = v;
        } else {
            e.attrs.insert(k, v);
        }
    }
    Ok(e)
}

/// Rejects outputs buildx rejects at print time.
pub(crate) fn validate_output(e: &Entry) -> Result<(), String> {
    if e.kind == "local" && e.attrs.get("dest").is_none_or(|d| d.is_empty()) {
        return Err("dest is required for local exporter".into());
    }
    Ok(())
}

/// `attest` text: CSV `type=...,k=v`; `disabled=<bool>` becomes the flag.
pub(crate) fn parse_attest(s: &str) -> Result<Attest, String> {
    let mut a = Attest::default();
    for f in csv_fields(s)? {
        let (k, v) = split_kv(&f);
        let Some(v) = v else {
            return Err(format!("invalid value {f}"));
        };
        set_attest_attr(&mut a, k, v)?;
    }
    Ok(a)
}

pub(crate) fn set_attest_attr(a: &mut Attest, k: String, v: String) -> Result<(), String> {
    match k.as_str() {
        "type" => a.kind = v,
        "disabled" => {
            a.disabled = crate::vars::parse_go_bool(&v)
                .ok_or_else(|| format!("invalid value {v} for disabled"))?;
        }
        _ => {
            a.attrs.insert(k, v);
        }
    }
    Ok(())
}

/// `secret` text: CSV with `id`, `src`/`source`, `env`, `type=file|env`.
pub(crate) fn parse_secret(s: &str) -> Result<Secret, String> {
    let mut sec = Secret::default();
    let mut kind = String::new();
    for f in csv_fields(s)? {
        let (k, v) = split_kv(&f);
        let Some(v) = v else {
            return Err(format!("invalid field '{f}' must be a key=value pair"));
        };
        match k.as_str() {
            "type" => {
                if v != "file" && v != "env" {
                    return Err(format!("unsupported secret type {v:?}"));
                }
                kind = v;
            }
            "id" => sec.id = v,
            "source" | "src" => sec.src = v,
            "env" => sec.env = v,
            _ => return Err(format!("unexpected key '{k}' in '{f}'")),
        }
    }
    if kind == "env" && sec.env.is_empty() {
        sec.env = std::mem::take(&mut sec.src);
    }
    Ok(sec)
}

/// `ssh` text: `id` or `id=path1,path2`.
pub(crate) fn parse_ssh(s: &str) -> Result<Ssh, String> {
    let fields = csv_fields(s)?;
    let mut it = fields.into_iter();
    let first = it.next().unwrap_or_default();
    let (id, first_path) = match first.split_once('=') {
        Some((id, p)) => (id.to_string(), Some(p.to_string())),
        None => (first, None),
    };
    let mut paths: Vec<String> = first_path.into_iter().collect();
    paths.extend(it);
    Ok(Ssh { id, paths })
}

/// Go's `path.Clean`.
pub(crate) fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Whether a context is remote (printed verbatim) rather than a local path.
pub(crate) fn is_remote_context(s: &str) -> bool {
    s.starts_with("http://")
        || s.starts_with("https://")
        || s.starts_with("git://")
        || s.starts_with("git@")
        || s.starts_with("ssh://")
        || s.starts_with("docker-image://")
        || s.starts_with("oci-layout://")
        || s.starts_with("target:")
        || s.contains(".git#")
        || s.ends_with(".git")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(r: &str) -> Entry {
        Entry {
            kind: "registry".into(),
            attrs: BTreeMap::from([("ref".into(), r.into())]),
        }
    }

    #[test]
    fn remove_dupes_swaps_with_last() {
        let (a, b, c, d) = (reg("a"), reg("b"), reg("c"), reg("d"));
        let mut s = vec![a.clone(), b.clone(), a.clone(), c.clone(), d.clone()];
        remove_dupes(&mut s);
        assert_eq!(s, vec![a, b, d, c]);
    }

    #[test]
    fn dedupe_keeps_first_position_last_value() {
        let s = vec![("gh", 1), ("aws", 2), ("gh", 3)];
        assert_eq!(dedupe_by(s, |x| x.0), vec![("gh", 3), ("aws", 2)]);
        assert_eq!(
            dedupe_strings(vec!["a".into(), "".into(), "b".into(), "a".into()]),
            vec!["a".to_string(), "b".to_string()]
        );
    }

    #[test]
    fn go_path_clean() {
        for (input, want) in [
            ("./services/api/", "services/api"),
            ("../shared//lib/.", "../shared/lib"),
            ("", "."),
            ("/x/../y", "/y"),
            ("a/../..", ".."),
            ("/..", "/"),
        ] {
            assert_eq!(clean_path(input), want, "{input}");
        }
    }

    #[test]
    fn entry_parsing() {
        assert_eq!(parse_cache("a,b").unwrap(), vec![reg("a"), reg("b")]);
        let o = parse_output("type=local,DEST=./o").unwrap();
        assert_eq!(o.kind, "local");
        assert_eq!(o.attrs["dest"], "./o");
        assert_eq!(parse_output("./out").unwrap().kind, "local");
        let s = parse_secret("type=env,id=sentry,src=SENTRY_DSN").unwrap();
        assert_eq!(
            (s.id.as_str(), s.env.as_str(), s.src.as_str()),
            ("sentry", "SENTRY_DSN", "")
        );
        assert_eq!(csv_fields("a,\"b,c\",d").unwrap(), vec!["a", "b,c", "d"]);
    }
}
