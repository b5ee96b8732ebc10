//! Layout checks: image directories and their bake files, target names, the root
//! file's variables and groups, tasks and task ids. Returns what the target checks need.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::source::{BakeSource, Block};
use super::{rules, Report, Sink};
use crate::fleet::layout::{self as fl, FleetLayout as _};
use crate::fleet::Resolver;
use crate::naming::{self, Kind, Naming};

/// One image directory and the target it must define.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub kind: Kind,
    pub name: String,
    pub target: String,
    /// The directory's bake file, relative to the root.
    pub bake_file: PathBuf,
    /// Benchmarks only: task ids that passed the naming rules.
    pub tasks: Vec<String>,
    pub task_count: usize,
}

pub(crate) struct LintFleet {
    pub resolver: Resolver,
    pub naming: Naming,
    pub sources: Vec<BakeSource>,
    /// target name → (index in `sources`, block), for the file that should define it.
    pub blocks: BTreeMap<String, (usize, Block)>,
    pub entries: Vec<Entry>,
    /// Root groups, flattened to target names.
    pub groups: BTreeMap<String, BTreeSet<String>>,
}

impl LintFleet {
    /// The file and line of target `t` (its bake file's first line when not found).
    pub fn target_line(&self, t: &str, fallback: &Path) -> (PathBuf, usize) {
        match self.blocks.get(t) {
            Some((i, b)) => (self.sources[*i].path.clone(), b.line),
            None => (fallback.to_path_buf(), 1),
        }
    }

    /// The line of the first occurrence of `needle` inside target `t`'s block.
    pub fn line_in_target(&self, t: &str, needle: &str, fallback: &Path) -> (PathBuf, usize) {
        match self.blocks.get(t) {
            Some((i, b)) => {
                let src = &self.sources[*i];
                (
                    src.path.clone(),
                    src.find(b.line, b.end, needle).unwrap_or(b.line),
                )
            }
            None => (fallback.to_path_buf(), 1),
        }
    }
}

pub(crate) fn check(
    root: &Path,
    sink: &mut Sink,
    report: &mut Report,
) -> anyhow::Result<Option<LintFleet>> {
    let layout = fl::kiln::Kiln.read(root)?;
    report.bake_files = layout.bake_files.len();

    let mut sources = Vec::new();
    for f in &layout.bake_files {
        match std::fs::read_to_string(root.join(f)) {
            Ok(text) => sources.push(BakeSource::new(f.clone(), &text)),
            Err(e) => sink.add(rules::KILN_LAYOUT, f, 1, format!("cannot read: {e}")),
        }
    }

    // Every target block, by file.
    let mut defined_in: BTreeMap<String, Vec<(usize, Block)>> = BTreeMap::new();
    for (i, src) in sources.iter().enumerate() {
        for b in src.blocks().into_iter().filter(|b| b.kind == "target") {
            defined_in.entry(b.name.clone()).or_default().push((i, b));
        }
    }

    // Image directories → expected targets.
    let mut entries = Vec::new();
    let mut expected_files: BTreeSet<PathBuf> = BTreeSet::new();
    let dirs: Vec<(Kind, &str, &String, Vec<String>)> = layout
        .cores
        .iter()
        .map(|c| (Kind::Core, fl::CORE_DIR, c, Vec::new()))
        .chain(
            layout
                .agents
                .iter()
                .map(|a| (Kind::Agent, fl::AGENTS_DIR, a, Vec::new())),
        )
        .chain(layout.benchmarks.iter().map(|b| {
            (
                Kind::Benchmark,
                fl::BENCHMARKS_DIR,
                &b.name,
                b.tasks.clone(),
            )
        }))
        .collect();
    for (kind, dir, name, tasks) in dirs {
        let what = match kind {
            Kind::Core => "core image name",
            Kind::Agent => "agent name",
            _ => "benchmark name",
        };
        let bake_file = fl::bake_file_of(dir, name);
        expected_files.insert(bake_file.clone());
        if let Err(e) = naming::validate_fleet_name(what, name) {
            sink.add(
                rules::KILN_LAYOUT,
                Path::new(dir).join(name),
                1,
                format!("{e} (the directory name is the {what})"),
            );
            continue;
        }
        let target = match kind {
            Kind::Core => naming::core_target(name),
            Kind::Agent => naming::agent_target(name),
            _ => naming::benchmark_target(name),
        };
        let kind = if target == naming::EVAL_TARGET {
            Kind::Eval
        } else {
            kind
        };
        if !root.join(&bake_file).is_file() {
            sink.add(
                rules::KILN_LAYOUT,
                &bake_file,
                1,
                format!(
                    "missing: {dir}/{name}/ needs a docker-bake.hcl defining target {target:?}"
                ),
            );
            continue;
        }
        let src_index = sources.iter().position(|s| s.path == bake_file);
        let here: Vec<&(usize, Block)> = defined_in
            .get(&target)
            .map(|v| v.iter().filter(|(i, _)| Some(*i) == src_index).collect())
            .unwrap_or_default();
        if here.is_empty() {
            let elsewhere: Vec<String> = defined_in
                .get(&target)
                .into_iter()
                .flatten()
                .map(|(i, b)| format!("{}:{}", sources[*i].path.display(), b.line))
                .collect();
            let hint = if elsewhere.is_empty() {
                String::new()
            } else {
                format!(" (it is defined in {})", elsewhere.join(", "))
            };
            sink.add(
                rules::KILN_LAYOUT,
                &bake_file,
                1,
                format!("no target {target:?} in the bake file of {dir}/{name}/{hint}"),
            );
        }
        if let Some(i) = src_index {
            for b in sources[i]
                .blocks()
                .into_iter()
                .filter(|b| b.kind == "target")
            {
                if b.name != target && !b.name.starts_with('_') {
                    sink.add(rules::KILN_LAYOUT,
                        &bake_file,
                        b.line,
                        format!(
                            "target {:?} does not belong in {}: this file defines only {target:?} (helpers start with '_')",
                            b.name,
                            bake_file.display()
                        ),
                    );
                }
            }
        }
        for (i, b) in defined_in.get(&target).into_iter().flatten() {
            if Some(*i) != src_index {
                sink.add(
                    rules::KILN_LAYOUT,
                    &sources[*i].path,
                    b.line,
                    format!(
                        "target {target:?} belongs in {}, not here",
                        bake_file.display()
                    ),
                );
            }
        }

        // Tasks.
        let task_count = tasks.len();
        let mut good_tasks = Vec::new();
        if kind == Kind::Benchmark {
            let tasks_dir = Path::new(dir).join(name).join(fl::TASKS_DIR);
            if tasks.is_empty() {
                sink.add(
                    rules::KILN_LAYOUT,
                    &bake_file,
                    1,
                    format!(
                        "benchmark {name:?} has no tasks: add one directory per task under {}/",
                        tasks_dir.display()
                    ),
                );
            }
            let mut lower: BTreeMap<String, &String> = BTreeMap::new();
            for t in &tasks {
                match naming::validate_task_id(t) {
                    Err(e) => sink.add(rules::KILN_LAYOUT, tasks_dir.join(t), 1, e.to_string()),
                    Ok(()) => {
                        if let Some(other) = lower.insert(naming::task_component(t), t) {
                            sink.add(rules::KILN_LAYOUT,
                                tasks_dir.join(t),
                                1,
                                format!("task ids {other:?} and {t:?} differ only in case: their images would have the same name"),
                            );
                        }
                        good_tasks.push(t.clone());
                    }
                }
            }
        }
        entries.push(Entry {
            kind,
            name: name.clone(),
            target,
            bake_file,
            tasks: good_tasks,
            task_count,
        });
    }

    // Bake files outside image directories.
    for f in layout.bake_files.iter().skip(1) {
        if !expected_files.contains(f) {
            sink.add(rules::KILN_LAYOUT, f, 1, "bake file outside an image directory: kiln reads it, but every target belongs in its image directory's docker-bake.hcl");
        }
    }

    // Root variables and groups.
    let root_file = PathBuf::from(fl::ROOT_BAKE_FILE);
    let groups = match sources.iter().find(|s| s.path == root_file) {
        Some(src) => {
            let blocks = src.blocks();
            for var in [naming::VAR_REGISTRY, naming::VAR_TAG, naming::VAR_TASK_ID] {
                if !blocks.iter().any(|b| b.kind == "variable" && b.name == var) {
                    sink.add(
                        rules::KILN_LAYOUT,
                        &root_file,
                        1,
                        format!("the root bake file must declare variable {var:?}"),
                    );
                }
            }
            let raw = root_groups(src, &blocks);
            for g in ["default", "core", "benchmarks", "agents"] {
                if !raw.contains_key(g) {
                    sink.add(
                        rules::KILN_GROUPS,
                        &root_file,
                        1,
                        format!("the root bake file must declare group {g:?}"),
                    );
                }
            }
            raw.keys()
                .map(|g| (g.clone(), flatten(g, &raw, &mut BTreeSet::new())))
                .collect()
        }
        None => BTreeMap::new(),
    };

    // Variables only some targets may use.
    let eval_file = fl::bake_file_of(fl::CORE_DIR, "eval");
    for src in &sources {
        if src.path == eval_file {
            continue;
        }
        for var in [naming::VAR_BENCHMARK, naming::VAR_AGENT] {
            for line in src.word_lines(var) {
                sink.add(
                    rules::KILN_VARIABLES,
                    &src.path,
                    line,
                    format!(
                        "only core-eval may use {var} (see RULES.md, Building on other images)"
                    ),
                );
            }
        }
    }

    let resolver = match Resolver::read(root, &layout.bake_files) {
        Ok(r) => r,
        Err(e) => {
            let (file, line) = locate(&format!("{e:#}"), &layout.bake_files);
            sink.add(
                rules::KILN_LAYOUT,
                file,
                line,
                format!("bake files do not parse: {}", first_line(&format!("{e:#}"))),
            );
            return Ok(None);
        }
    };
    let registry = resolver
        .variable(naming::VAR_REGISTRY, &BTreeMap::new())
        .unwrap_or_default();
    let tag = resolver
        .variable(naming::VAR_TAG, &BTreeMap::new())
        .unwrap_or_default();
    let blocks = defined_in
        .into_iter()
        .filter_map(|(t, mut v)| {
            // Prefer the definition in the expected file.
            let expected = entries
                .iter()
                .find(|e| e.target == t)
                .map(|e| e.bake_file.clone());
            v.sort_by_key(|(i, _)| Some(&sources[*i].path) != expected.as_ref());
            v.into_iter().next().map(|x| (t, x))
        })
        .collect();
    Ok(Some(LintFleet {
        resolver,
        naming: Naming::new(registry, tag),
        sources,
        blocks,
        entries,
        groups,
    }))
}

/// The root file's groups: name → member names as written (targets or groups).
fn root_groups(src: &BakeSource, blocks: &[Block]) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for b in blocks.iter().filter(|b| b.kind == "group") {
        let text: String = src.lines[b.line - 1..b.end].join("\n");
        let members = text
            .split_once("targets")
            .and_then(|(_, rest)| {
                rest.split_once('[')
                    .and_then(|(_, r)| r.split_once(']'))
                    .map(|(list, _)| list)
            })
            .map(|list| {
                list.split('"')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        out.insert(b.name.clone(), members);
    }
    out
}

fn flatten(
    g: &str,
    raw: &BTreeMap<String, Vec<String>>,
    seen: &mut BTreeSet<String>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if !seen.insert(g.to_string()) {
        return out;
    }
    for m in raw.get(g).into_iter().flatten() {
        if raw.contains_key(m) && m != g {
            out.extend(flatten(m, raw, seen));
        } else {
            out.insert(m.clone());
        }
    }
    out
}

/// Finds `<file>:<line>` of one of `files` in an error message (bake diagnostics name them).
pub(crate) fn locate(message: &str, files: &[PathBuf]) -> (PathBuf, usize) {
    for f in files {
        let name = f.to_string_lossy();
        if let Some(pos) = message.find(&*name) {
            let rest = &message[pos + name.len()..];
            if let Some(rest) = rest.strip_prefix(':') {
                let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                if let Ok(n) = digits.parse() {
                    return (f.clone(), n);
                }
            }
            return (f.clone(), 1);
        }
    }
    (
        files
            .first()
            .cloned()
            .unwrap_or_else(|| PathBuf::from(fl::ROOT_BAKE_FILE)),
        1,
    )
}

pub(crate) fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s).trim()
}
