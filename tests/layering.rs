//! The layering documented in `src/lib.rs`, enforced: every `crate::<module>` path in
//! a module's non-test code names a module of a layer to its left. A module missing
//! from the documented layering fails too, so the list stays complete.

use std::collections::BTreeMap;
use std::path::Path;

/// The layers, left to right, read from the one `→` line of `src/lib.rs`'s docs.
fn layers(lib: &str) -> BTreeMap<String, usize> {
    let line = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .find(|l| l.contains('→'))
        .expect("src/lib.rs documents the layering on one `→` line");
    let mut rank = BTreeMap::new();
    for (i, group) in line.split('→').enumerate() {
        for name in group.split('`').skip(1).step_by(2) {
            rank.insert(name.to_string(), i);
        }
    }
    rank
}

/// A source file of non-test code: `.rs`, and not a test module kept in a file of its
/// own (`x/tests.rs` beside `x.rs`; tests may borrow fixtures anywhere).
fn is_code(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "rs") && !p.ends_with("tests.rs")
}

/// The module names `crate::` paths in `text` refer to, skipping comments and
/// everything from the first `#[cfg(test)]` on (tests may borrow fixtures anywhere).
fn crate_refs(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") {
            break;
        }
        if code.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push((n + 1, name));
            }
            rest = after;
        }
    }
    out
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let rank = layers(&lib);
    let modules: Vec<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect();
    let mut problems = Vec::new();
    for m in &modules {
        let Some(&own) = rank.get(m) else {
            problems.push(format!("module {m} is not in the layering of src/lib.rs"));
            continue;
        };
        // `m.rs` and everything under `m/` (a module may have both, as store has).
        let file = src.join(format!("{m}.rs"));
        let mut files: Vec<std::path::PathBuf> = Vec::new();
        if file.exists() {
            files.push(file);
        }
        if src.join(m).is_dir() {
            files.extend(
                walkdir::WalkDir::new(src.join(m))
                    .into_iter()
                    .map(|e| e.unwrap().into_path())
                    .filter(|p| is_code(p)),
            );
        }
        assert!(!files.is_empty(), "module {m}: neither {m}.rs nor {m}/");
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (line, used) in crate_refs(&text) {
                if used == *m {
                    continue;
                }
                match rank.get(&used) {
                    Some(&r) if r < own => {}
                    Some(_) => problems.push(format!(
                        "{}:{line}: {m} uses crate::{used}, which is not to its left in src/lib.rs's layering",
                        f.strip_prefix(&src).unwrap().display()
                    )),
                    None => problems.push(format!(
                        "{}:{line}: crate::{used} is not in the layering of src/lib.rs",
                        f.strip_prefix(&src).unwrap().display()
                    )),
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_finds_an_upward_import() {
    let rank = layers("//! `error` → `naming` → `cli`\n");
    assert_eq!(rank["error"], 0);
    assert_eq!(rank["cli"], 2);
    let refs = crate_refs(
        "use crate::cli::Failure;\n// crate::ignored\nfn f() { crate::naming::x(); }\n#[cfg(test)]\nuse crate::late;\n",
    );
    assert_eq!(
        refs,
        vec![(1, "cli".to_string()), (3, "naming".to_string())]
    );
}

/// A module's path inside its crate, from its file: `run/kubernetes/mod.rs` → `run::kubernetes`.
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The paths `crate::…`, `super::…` and `self::…` in `text` (non-test code), made absolute
/// from module `at`, with braces expanded: `use super::{a::{self, B}, c}` gives `a`, `a::B`
/// and `c`. Each with its line.
fn module_refs(text: &str, at: &[String]) -> Vec<(usize, Vec<String>)> {
    fn ident(s: &str) -> (&str, &str) {
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        s.split_at(end)
    }
    // Reads a path after its first `::` (and a brace group) from `s`, into `out`.
    fn walk(s: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        let s = s.trim_start();
        if let Some(group) = s.strip_prefix('{') {
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        walk(&group[start..i], prefix.clone(), out);
                        return;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        walk(&group[start..i], prefix.clone(), out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            return;
        }
        let (name, rest) = ident(s);
        if name.is_empty() || name == "self" {
            out.push(prefix);
            return;
        }
        let mut path = prefix;
        path.push(name.to_string());
        match rest.strip_prefix("::") {
            Some(rest) => walk(rest, path, out),
            None => out.push(path),
        }
    }
    let mut out = Vec::new();
    let mut joined = String::new();
    let mut line_of = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") {
            break;
        }
        if code.starts_with("//") {
            continue;
        }
        // `use` groups may span lines: join them, remembering where each byte came from.
        line_of.extend(std::iter::repeat_n(n + 1, line.len() + 1));
        joined.push_str(line);
        joined.push(' ');
    }
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < joined.len() {
        let before_ok = i == 0
            || !(bytes[i - 1].is_ascii_alphanumeric()
                || bytes[i - 1] == b'_'
                || bytes[i - 1] == b':');
        let rest = &joined[i..];
        let start = if !before_ok {
            None
        } else if let Some(r) = rest.strip_prefix("crate::") {
            Some((Vec::new(), r))
        } else if rest.starts_with("super::") || rest.starts_with("self::") {
            let mut base = at.to_vec();
            let mut r = rest;
            if let Some(after) = r.strip_prefix("self::") {
                r = after;
            }
            while let Some(after) = r.strip_prefix("super::") {
                base.pop();
                r = after;
            }
            Some((base, r))
        } else {
            None
        };
        match start {
            Some((base, r)) => {
                let mut paths = Vec::new();
                walk(r, base, &mut paths);
                out.extend(paths.into_iter().map(|p| (line_of[i], p)));
                i += rest.len() - r.len();
            }
            None => i += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    out
}

/// Circles between sibling modules of one crate (`src` its source root): a uses b, b
/// uses … a. A parent and its own child may use each other (that is how Rust modules
/// share a type); siblings may not, at any depth. Each circle, with one use per step.
fn circles(src: &Path) -> Vec<String> {
    use std::collections::{BTreeMap, BTreeSet};
    let files: Vec<_> = walkdir::WalkDir::new(src)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| is_code(p))
        .collect();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(src, f)).collect();
    // (parent, sibling) → the siblings it uses → where it first does.
    type Graph = BTreeMap<(Vec<String>, String), BTreeMap<String, String>>;
    let mut graph = Graph::new();
    for f in &files {
        let from = module_of(src, f);
        let text = std::fs::read_to_string(f).unwrap();
        for (line, path) in module_refs(&text, &from) {
            let to = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| modules.contains(p))
                .unwrap();
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == from.len() || common == to.len() {
                continue; // the same module, or a parent and its descendant
            }
            graph
                .entry((from[..common].to_vec(), from[common].clone()))
                .or_default()
                .entry(to[common].clone())
                .or_insert_with(|| format!("{}:{line}", f.strip_prefix(src).unwrap().display()));
        }
    }
    let mut found = BTreeSet::new();
    let mut out = Vec::new();
    for (parent, start) in graph.keys() {
        // Depth-first search for a path from `start` back to itself.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((node, path)) = stack.pop() {
            let Some(next) = graph.get(&(parent.clone(), node.clone())) else {
                continue;
            };
            for to in next.keys() {
                if to == start {
                    let mut members = path.clone();
                    members.sort();
                    if found.insert((parent.clone(), members)) {
                        let steps: Vec<String> = path
                            .iter()
                            .zip(path.iter().skip(1).chain([start]))
                            .map(|(a, b)| {
                                let at = &graph[&(parent.clone(), a.clone())][b];
                                format!("{a} → {b} ({at})")
                            })
                            .collect();
                        out.push(format!("in {}: {}", parent.join("::"), steps.join(", ")));
                    }
                } else if seen.insert(to.clone()) {
                    let mut p = path.clone();
                    p.push(to.clone());
                    stack.push((to.clone(), p));
                }
            }
        }
    }
    out
}

#[test]
fn no_modules_use_each_other_in_a_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    for src in ["src", "crates/bake/src", "crates/runner/src"] {
        problems.extend(
            circles(&root.join(src))
                .into_iter()
                .map(|c| format!("{src}: {c}")),
        );
    }
    assert!(
        problems.is_empty(),
        "import circles:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_circle_check_reads_paths_and_finds_a_circle() {
    let at = vec!["run".to_string(), "local".to_string()];
    let refs = module_refs(
        "use super::{model::{self, Net}, reap::Owner};\nuse crate::fleet::Fleet;\nfn f() { self::g(); }\n",
        &at,
    );
    let paths: Vec<String> = refs.iter().map(|(_, p)| p.join("::")).collect();
    assert_eq!(
        paths,
        [
            "run::model",
            "run::model::Net",
            "run::reap::Owner",
            "fleet::Fleet",
            "run::local::g"
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let w = |f: &str, t: &str| {
        let p = dir.path().join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, t).unwrap();
    };
    w("lib.rs", "mod a;\nmod b;\n");
    w("a/mod.rs", "mod x;\nmod y;\nuse crate::b::B;\n");
    w("a/x.rs", "use super::y::Y;\nuse super::Shared;\n");
    w("a/y.rs", "fn f() { super::x::g() }\n");
    w("b.rs", "pub struct B;\n");
    let found = circles(dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("in a: x → y (a/x.rs:1), y → x (a/y.rs:1)"),
        "{found:?}"
    );
}
