//! Pinning a task to the image `kiln release` published for it:
//! `docker_image = "HOST[:PORT]/[PREFIX/]benchmarks/<dataset>-<task>@sha256:…"` in the
//! `[environment]` table of its `task.toml`, so Harbor runs exactly that image.
//!
//! The file is edited in place with `toml_edit`: comments, key order, blank lines and
//! quoting stay as they were; only the one value changes (or one line is added). A pin
//! is recognised by its repository — the one kiln publishes the task's environment to —
//! and its digest: kiln keeps building such a task from its `environment/Dockerfile`
//! (see [`is_kiln_pin`]), where Harbor, which prefers `docker_image`, runs the pin.

use std::path::Path;

use anyhow::Context as _;
use toml_edit::{DocumentMut, Item, Table, Value};

pub const KEY: &str = "docker_image";
const TABLE: &str = "environment";

/// The pin reference for `repository` (host and prefix included) and a manifest digest.
pub fn reference(repository: &str, digest: &str) -> String {
    format!("{repository}@{digest}")
}

/// Whether `docker_image` is a pin kiln wrote for the task whose images go to
/// repositories ending in `path` (`benchmarks/<dataset>-<task>`): a digest reference
/// whose repository is `path` under some registry host and prefix.
pub fn is_kiln_pin(docker_image: &str, path: &str) -> bool {
    let Some((name, digest)) = docker_image.split_once('@') else {
        return false;
    };
    let hex = digest.strip_prefix("sha256:").unwrap_or("");
    let digest_ok = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    digest_ok
        && name
            .strip_suffix(path)
            .is_some_and(|host| host.ends_with('/') && host.len() > 1)
}

/// The `[environment].docker_image` of a task.toml's text, if any.
pub fn current(text: &str) -> Option<String> {
    let doc: DocumentMut = text.parse().ok()?;
    doc.get(TABLE)?
        .as_table_like()?
        .get(KEY)?
        .as_str()
        .map(str::to_string)
}

/// `text` (the contents of `file`) with `[environment].docker_image = pin`: the value
/// replaced where the key is (its comments kept), else the key added at the end of the
/// table, else the table added at the end of the file.
pub fn pinned(file: &Path, text: &str, pin: &str) -> anyhow::Result<String> {
    let mut doc: DocumentMut = text
        .parse()
        .with_context(|| format!("{}: not TOML", file.display()))?;
    let env = doc
        .entry(TABLE)
        .or_insert_with(|| Item::Table(Table::new()));
    if let Some(t) = env.as_table_mut() {
        // `[environment.env]` alone makes `environment` an implicit table, which has
        // no header of its own to put a key under.
        t.set_implicit(false);
    }
    let table = env.as_table_like_mut().with_context(|| {
        format!(
            "{}: `{TABLE}` is not a table, so it cannot take a {KEY}",
            file.display()
        )
    })?;
    match table.get_mut(KEY).and_then(Item::as_value_mut) {
        Some(old) => {
            let decor = old.decor().clone();
            *old = Value::from(pin);
            *old.decor_mut() = decor;
        }
        None => {
            table.insert(KEY, toml_edit::value(pin));
        }
    }
    Ok(doc.to_string())
}

/// Whether the only difference between `before` (as committed) and `after` (as in the
/// work tree) is a pin kiln wrote: `after`'s docker_image is a kiln pin for `path`, and
/// pinning `before` with it gives `after` byte for byte.
pub fn only_pinned(before: &str, after: &str, path: &str) -> bool {
    let Some(pin) = current(after).filter(|p| is_kiln_pin(p, path)) else {
        return false;
    };
    pinned(Path::new("task.toml"), before, &pin).is_ok_and(|t| t == after)
}

/// What a task's trials read from its `task.toml`, with kiln's own pin left out: the
/// parsed table as canonical JSON. A pin changes what Harbor runs, not what kiln's
/// trials do (kiln builds from the Dockerfile), so a verdict outlives the pin.
pub fn trial_config(text: &str, path: &str) -> anyhow::Result<String> {
    let mut table: toml::Table = toml::from_str(text)?;
    if let Some(toml::Value::Table(env)) = table.get_mut(TABLE) {
        if env
            .get(KEY)
            .and_then(toml::Value::as_str)
            .is_some_and(|p| is_kiln_pin(p, path))
        {
            env.remove(KEY);
        }
        if env.is_empty() {
            table.remove(TABLE);
        }
    }
    Ok(serde_json::to_string(&table)?)
}

/// A unified diff (`diff -u`, three lines of context) of `old` into `new`, with `name`
/// in the `---`/`+++` lines; empty when they are equal.
pub fn unified_diff(name: &str, old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if a == b {
        return String::new();
    }
    // Longest common subsequence table (task.toml files are small).
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // The edit script: (tag, old line index, new line index, text).
    let mut ops: Vec<(char, usize, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', i, j, a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', i, j, a[i]));
            i += 1;
        } else {
            ops.push(('+', i, j, b[j]));
            j += 1;
        }
    }
    const CONTEXT: usize = 3;
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let mut out = format!("--- a/{name}\n+++ b/{name}\n");
    let mut k = 0;
    while k < changed.len() {
        let start = changed[k].saturating_sub(CONTEXT);
        let mut end = changed[k] + CONTEXT;
        while k + 1 < changed.len() && changed[k + 1] <= end + CONTEXT + 1 {
            k += 1;
            end = changed[k] + CONTEXT;
        }
        let end = end.min(ops.len() - 1);
        let hunk = &ops[start..=end];
        let old_len = hunk.iter().filter(|o| o.0 != '+').count();
        let new_len = hunk.iter().filter(|o| o.0 != '-').count();
        // `diff -u` numbers an empty side by the line before it.
        let at = |n: usize, len: usize| if len == 0 { n } else { n + 1 };
        out.push_str(&format!(
            "@@ -{},{old_len} +{},{new_len} @@\n",
            at(hunk[0].1, old_len),
            at(hunk[0].2, new_len)
        ));
        for (tag, _, _, line) in hunk {
            out.push(*tag);
            out.push_str(line);
            out.push('\n');
        }
        k += 1;
    }
    out
}

/// Writes `text` over `file` atomically (a temporary file beside it, renamed), keeping
/// the file's permissions.
pub fn write(file: &Path, text: &str) -> anyhow::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let perms = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .permissions();
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing in {}", dir.display()))?;
    std::fs::write(tmp.path(), text).with_context(|| format!("writing {}", file.display()))?;
    std::fs::set_permissions(tmp.path(), perms)?;
    tmp.persist(file)
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "benchmarks/set-hello-user";
    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn pin(d: &str) -> String {
        reference(&format!("127.0.0.1:5000/team/{PATH}"), d)
    }

    #[test]
    fn a_pin_is_added_to_the_environment_table_and_everything_else_is_kept() {
        let text = "schema_version = \"1.1\"  # the schema\n\n# The machine.\n[environment]\ncpus = 1 # one is enough\nmemory_mb = 2048\n\n[verifier.env]\n\n[environment.env]\n";
        let out = pinned(Path::new("t/task.toml"), text, &pin(D1)).unwrap();
        assert_eq!(
            out,
            format!("schema_version = \"1.1\"  # the schema\n\n# The machine.\n[environment]\ncpus = 1 # one is enough\nmemory_mb = 2048\ndocker_image = \"{}\"\n\n[verifier.env]\n\n[environment.env]\n", pin(D1))
        );
        assert_eq!(current(&out), Some(pin(D1)));
    }

    #[test]
    fn an_existing_docker_image_is_replaced_in_place_with_its_comments() {
        let text = format!(
            "[environment]\n# pinned\ndocker_image   =   \"{}\"  # by kiln\ncpus = 2\n",
            pin(D1)
        );
        let out = pinned(Path::new("task.toml"), &text, &pin(D2)).unwrap();
        assert_eq!(
            out,
            format!(
                "[environment]\n# pinned\ndocker_image   =   \"{}\"  # by kiln\ncpus = 2\n",
                pin(D2)
            )
        );
        // Pinning again with the same digest changes nothing.
        assert_eq!(pinned(Path::new("task.toml"), &out, &pin(D2)).unwrap(), out);
    }

    #[test]
    fn a_missing_table_is_added_and_an_inline_table_takes_the_key() {
        let out = pinned(Path::new("task.toml"), "[task]\nname = \"x\"\n", &pin(D1)).unwrap();
        assert_eq!(
            out,
            format!(
                "[task]\nname = \"x\"\n\n[environment]\ndocker_image = \"{}\"\n",
                pin(D1)
            )
        );
        let out = pinned(
            Path::new("task.toml"),
            "environment = { cpus = 1 }\n",
            &pin(D1),
        )
        .unwrap();
        assert_eq!(current(&out), Some(pin(D1)));
        let out = pinned(
            Path::new("task.toml"),
            "[environment.env]\nA = \"1\"\n",
            &pin(D1),
        )
        .unwrap();
        assert_eq!(current(&out), Some(pin(D1)), "{out}");
        let err = pinned(Path::new("t/task.toml"), "environment = 1\n", &pin(D1)).unwrap_err();
        assert!(err.to_string().contains("t/task.toml"), "{err}");
    }

    #[test]
    fn pins_are_recognised_by_repository_and_digest() {
        assert!(is_kiln_pin(&pin(D1), PATH));
        assert!(is_kiln_pin(&format!("reg.example/{PATH}@{D1}"), PATH));
        assert!(!is_kiln_pin(&format!("reg.example/{PATH}:v1"), PATH));
        assert!(!is_kiln_pin(&format!("reg.example/x{PATH}@{D1}"), PATH));
        assert!(!is_kiln_pin(&format!("{PATH}@{D1}"), PATH));
        assert!(!is_kiln_pin("ubuntu:24.04", PATH));
        assert!(!is_kiln_pin(
            &format!("reg.example/{PATH}@sha256:abc"),
            PATH
        ));
    }

    #[test]
    fn only_a_kiln_pin_counts_as_kiln_s_own_change() {
        let before = "[environment]\ncpus = 1\n";
        let after = pinned(Path::new("task.toml"), before, &pin(D1)).unwrap();
        assert!(only_pinned(before, &after, PATH));
        assert!(!only_pinned(
            before,
            &after.replace("cpus = 1", "cpus = 2"),
            PATH
        ));
        let foreign = "[environment]\ncpus = 1\ndocker_image = \"ubuntu:24.04\"\n";
        assert!(!only_pinned(before, foreign, PATH));
        assert!(!only_pinned(before, before, PATH));
    }

    #[test]
    fn the_trial_config_leaves_kiln_s_pin_out() {
        let before = "[task]\nname = \"x\"\n";
        let after = pinned(Path::new("task.toml"), before, &pin(D1)).unwrap();
        assert_eq!(
            trial_config(before, PATH).unwrap(),
            trial_config(&after, PATH).unwrap()
        );
        let foreign = "[task]\nname = \"x\"\n[environment]\ndocker_image = \"ubuntu:24.04\"\n";
        assert_ne!(
            trial_config(before, PATH).unwrap(),
            trial_config(foreign, PATH).unwrap()
        );
    }

    #[test]
    fn unified_diffs() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nX\ne\nf\ng\nh\n";
        assert_eq!(
            unified_diff("t/task.toml", old, new),
            "--- a/t/task.toml\n+++ b/t/task.toml\n@@ -2,6 +2,7 @@\n b\n c\n d\n+X\n e\n f\n g\n"
        );
        assert_eq!(
            unified_diff("f", "x = 1\n", "x = 2\n"),
            "--- a/f\n+++ b/f\n@@ -1,1 +1,1 @@\n-x = 1\n+x = 2\n"
        );
        assert_eq!(unified_diff("f", "same\n", "same\n"), "");
        assert_eq!(
            unified_diff("f", "", "x\n"),
            "--- a/f\n+++ b/f\n@@ -0,0 +1,1 @@\n+x\n"
        );
    }
}
