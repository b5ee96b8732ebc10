//! Task quality: what makes a task grade wrongly, leak its answer or stop working later,
//! read from its files without an engine. The rules keep Harbor 0.26.0's names where the
//! rule is the same (docs/authoring.md lists them):
//!
//! - [`harbor`], [`kiln`]: one driver per layout with tasks, each finding the task's
//!   files and applying the rules below; the eval-containers layout has no task folders,
//!   only its Dockerfiles are checked ([`dockerfile`]);
//! - [`images`]: Dockerfiles (unpinned images, unpinned Python installs, the final user);
//! - [`scripts`] over [`shell`] and [`python_deps`]: tests and solution scripts;
//! - [`copies`] and [`leak`]: what the agent's image takes from its build context;
//! - [`mentions`]: files the tests look at and the instruction never names;
//! - [`toml_lines`]: where in `task.toml` / `scenario.toml` a finding points.
//!
//! A task allows a rule with `[metadata] kiln_lint_allow = ["root-agent"]` in its
//! `task.toml` (Harbor) or `scenario.toml` (kiln).

mod copies;
mod harbor;
mod images;
mod kiln;
mod leak;
mod mentions;
mod python_deps;
mod scripts;
mod shell;
mod toml_lines;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub(crate) use harbor::check as harbor;
pub(crate) use kiln::check as kiln;

use super::{rules, Violation};
use crate::fleet::dockerfile::Dockerfile;

/// The findings of one task (paths relative to the fleet's root), before its allow list.
#[derive(Default)]
pub(crate) struct Findings {
    pub list: Vec<Violation>,
}

impl Findings {
    pub fn add(
        &mut self,
        rule: &'static str,
        file: &Path,
        line: usize,
        message: impl Into<String>,
    ) {
        self.list.push(Violation {
            file: file.to_path_buf(),
            line: line.max(1),
            rule,
            message: message.into(),
        });
    }

    /// Leaves out what `allow` allows.
    pub fn allowed(mut self, allow: &BTreeSet<String>) -> Vec<Violation> {
        self.list.retain(|v| !allow.contains(v.rule));
        self.list
    }
}

/// The rules `metadata.kiln_lint_allow` allows (`file` holds it, `text` is its text). An
/// entry that is not an allowable rule is itself a finding: a typo would otherwise
/// silently allow nothing.
pub(crate) fn allow_list(
    metadata: &toml::Table,
    file: &Path,
    text: &str,
    out: &mut Findings,
) -> BTreeSet<String> {
    let mut allow = BTreeSet::new();
    let Some(value) = metadata.get(rules::ALLOW_KEY) else {
        return allow;
    };
    let line = toml_lines::line_of(text, "metadata", 0, Some(rules::ALLOW_KEY));
    let Some(items) = value.as_array() else {
        out.add(
            rules::INVALID_TASK_CONFIG,
            file,
            line,
            format!("metadata.{}: a list of rule ids", rules::ALLOW_KEY),
        );
        return allow;
    };
    for item in items {
        match item.as_str() {
            Some(r) if rules::ALLOWABLE.contains(&r) => {
                allow.insert(r.to_string());
            }
            _ => out.add(
                rules::INVALID_TASK_CONFIG,
                file,
                line,
                format!(
                    "metadata.{}: {item} is not a rule a task can allow ({})",
                    rules::ALLOW_KEY,
                    rules::ALLOWABLE.join(", ")
                ),
            ),
        }
    }
    allow
}

/// The image rules of one Dockerfile (`file` relative to the root): unpinned images
/// (except under the `local` prefixes) and, when its `RUN`s are shell (`shell`: not a
/// Windows image), unpinned Python installs.
pub(crate) fn dockerfile(
    file: &Path,
    df: &Dockerfile,
    shell: bool,
    local: &[String],
    out: &mut Findings,
) {
    for (line, message) in images::unpinned_images(df, local) {
        out.add(rules::UNPINNED_IMAGE, file, line, message);
    }
    if shell {
        for hit in images::unpinned_python(df) {
            out.add(hit.rule, file, hit.line, hit.message);
        }
    }
}

/// [`dockerfile`] for a fleet without tasks (eval-containers): nothing to allow.
pub(crate) fn image_rules(file: &Path, df: &Dockerfile) -> Vec<Violation> {
    let mut out = Findings::default();
    dockerfile(file, df, true, &[], &mut out);
    out.list
}

/// A shell or Python file, by its name.
pub(crate) fn is_script(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "sh" || x == "py")
}

/// The script rules of one shell script (`file` relative to the root; `verifier`: it is
/// part of the tests). `dir` is where a script it runs by a relative path is looked up,
/// `mount` the path the tests are mounted at (`/tests`), mapping absolute paths back.
pub(crate) fn script(
    root: &Path,
    file: &Path,
    text: &str,
    verifier: bool,
    mount: Option<(&str, &Path)>,
    out: &mut Findings,
) {
    let dir = file.parent().unwrap_or(Path::new(""));
    let read = |p: &str| {
        let rel = match mount {
            Some((m, tests)) => match p.strip_prefix(m) {
                Some(rest) => tests.join(rest.trim_start_matches('/')),
                None if p.starts_with('/') => return None,
                None => dir.join(p),
            },
            None if p.starts_with('/') => return None,
            None => dir.join(p),
        };
        std::fs::read_to_string(root.join(rel)).ok()
    };
    let hits = scripts::check(
        text,
        scripts::Script {
            verifier,
            read: &read,
        },
    );
    for hit in hits {
        out.add(hit.rule, file, hit.line, hit.message);
    }
}

/// The unpinned inline dependencies (PEP 723) of a Python file.
pub(crate) fn inline_dependencies(file: &Path, text: &str, out: &mut Findings) {
    for (line, spec) in python_deps::script_dependencies(text) {
        if !python_deps::is_pinned(&spec) {
            out.add(
                rules::UNPINNED_PYTHON_DEPENDENCY,
                file,
                line,
                format!("the script depends on {spec:?} without an exact version: pin it (==)"),
            );
        }
    }
}

/// `file-reference-mentioned` over a task's test files (path relative to the root, text).
/// `provided`: the files the image or the runner provides; `environment`: the texts of
/// the files that make the environment (a path they name is the environment's), read
/// only when a path is otherwise unexplained.
pub(crate) fn mentions(
    tests: &[(PathBuf, String)],
    instruction: &str,
    unnamed: &str,
    provided: &[String],
    environment: &dyn Fn() -> Vec<String>,
    out: &mut Findings,
) {
    let mut seen = BTreeSet::new();
    let mut env_texts: Option<Vec<String>> = None;
    for (file, text) in tests {
        for r in mentions::references(text) {
            if r.written
                || mentions::is_provided(provided, &r.path)
                || mentions::is_named(instruction, &r.path)
                || !seen.insert(r.path.clone())
            {
                continue;
            }
            let texts = env_texts.get_or_insert_with(environment);
            if texts.iter().any(|t| t.contains(r.path.as_str())) {
                continue;
            }
            out.add(
                rules::FILE_REFERENCE_MENTIONED,
                file,
                r.line,
                format!(
                    "the tests look at {}, but {unnamed}: say which file the agent must make",
                    r.path
                ),
            );
        }
    }
}

/// The agent image's leak rule, and the files it takes from its context (where they land,
/// for [`mentions`]). `dockerfile` and `context` are relative to the root.
pub(crate) fn agent_image(
    root: &Path,
    dockerfile: &Path,
    context: &Path,
    hidden: &[(PathBuf, leak::Kind)],
    tests_hidden_under: Option<&str>,
    out: &mut Findings,
) -> Vec<String> {
    let abs = root.join(dockerfile);
    let Ok(text) = std::fs::read_to_string(&abs) else {
        return Vec::new();
    };
    let df = Dockerfile::parse(&text);
    let Ok(ctx) = crate::context::walk(&root.join(context), &abs) else {
        return Vec::new();
    };
    let copied = copies::copied(&df, &ctx);
    let mut hidden = leak::Hidden::read(root, hidden);
    for (line, message) in leak::check(&ctx, &copied, &mut hidden, tests_hidden_under, context) {
        out.add(rules::AGENT_IMAGE_TEST_LEAK, dockerfile, line, message);
    }
    copied.into_iter().map(|c| c.dest).collect()
}

pub(crate) fn read_dockerfile(root: &Path, rel: &Path) -> Option<Dockerfile> {
    std::fs::read_to_string(root.join(rel))
        .ok()
        .map(|t| Dockerfile::parse(&t))
}

/// The text files under `dir` (relative to the root) that `keep` wants by their path, in
/// path order; data files of more than 1 MiB are not scripts and are skipped.
pub(crate) fn files(
    root: &Path,
    dir: &Path,
    keep: impl Fn(&Path) -> bool,
) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root.join(dir))
        .sort_by_file_name()
        .into_iter()
        .flatten()
    {
        if !e.file_type().is_file() || !keep(e.path()) {
            continue;
        }
        if e.metadata().is_ok_and(|m| m.len() <= 1 << 20) {
            if let Ok(text) = std::fs::read_to_string(e.path()) {
                let rel = e.path().strip_prefix(root).unwrap_or(e.path());
                out.push((rel.to_path_buf(), text));
            }
        }
    }
    out
}

/// Runs `f` over `items` on every core, keeping the order of the results.
pub(crate) fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || items.len() < 8 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a lint thread panicked"))
            .collect()
    })
}
