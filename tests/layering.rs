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
                    .filter(|p| p.extension().is_some_and(|e| e == "rs")),
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
