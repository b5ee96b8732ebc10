//! The task rules over kiln's own benchmarks (docs/scenario-format.md): per task its
//! `scenario.toml`, `prompts/`, `grading/` (the tests), `solution/` and, in a per-task
//! benchmark, `environment/Dockerfile` (context: the task folder); per shared-env
//! benchmark its `Dockerfile` (context: the benchmark folder). Every other Dockerfile of
//! the fleet gets the image rules.
//!
//! The graders are in the image by design, under `/kiln/` (0700 while the agent runs);
//! only a grader copied elsewhere, or a solution anywhere, is a leak. The runner always
//! runs the agent as uid 1000, so `root-agent` does not apply.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::leak::Kind as Hidden;
use super::{toml_lines, Findings};
use crate::fleet::layout::{self as fl, FleetLayout as _};
use crate::lint::{rules, Sink, Violation};

const SCENARIO: &str = "scenario.toml";
const GRADING: &str = "grading";
const SOLUTION: &str = "solution";
const PROMPTS: &str = "prompts";
const WORKSPACE: &str = "workspace";
const SETUP: &str = "setup";
/// Where the graders may be: the runner closes it to the agent.
const HIDDEN_UNDER: &str = "/kiln/";

pub(crate) fn check(root: &Path, sink: &mut Sink) -> anyhow::Result<()> {
    let layout = fl::kiln::Kiln.read(root)?;
    let local = local_images();
    let mut tasks: Vec<PathBuf> = Vec::new();
    for b in &layout.benchmarks {
        let bdir = Path::new(fl::BENCHMARKS_DIR).join(&b.name);
        for t in &b.tasks {
            tasks.push(bdir.join(fl::TASKS_DIR).join(t));
        }
        // A shared-env benchmark's image holds every task.
        let df = bdir.join("Dockerfile");
        if let Some(parsed) = super::read_dockerfile(root, &df) {
            let mut out = Findings::default();
            super::dockerfile(&df, &parsed, true, &local, &mut out);
            let hidden: Vec<(PathBuf, Hidden)> = b
                .tasks
                .iter()
                .flat_map(|t| {
                    let d = bdir.join(fl::TASKS_DIR).join(t);
                    [
                        (d.join(GRADING), Hidden::Tests),
                        (d.join(SOLUTION), Hidden::Solution),
                    ]
                })
                .collect();
            super::agent_image(root, &df, &bdir, &hidden, Some(HIDDEN_UNDER), &mut out);
            sink.violations.extend(out.list);
        }
    }
    // The fleet's other images.
    for (dir, names) in [
        (fl::CORE_DIR, &layout.cores),
        (fl::AGENTS_DIR, &layout.agents),
    ] {
        for name in names {
            let df = Path::new(dir).join(name).join("Dockerfile");
            if let Some(parsed) = super::read_dockerfile(root, &df) {
                let mut out = Findings::default();
                super::dockerfile(&df, &parsed, true, &local, &mut out);
                sink.violations.extend(out.list);
            }
        }
    }
    for found in super::parallel(&tasks, |dir| task(root, dir, &local)) {
        sink.violations.extend(found);
    }
    Ok(())
}

/// The rules that read `scenario.toml`: the runner's own reading of it and of the task
/// folder (so `kiln lint` refuses what the runner would, before any build), its allow
/// list (returned) and its timeouts.
fn scenario_rules(
    root: &Path,
    dir: &Path,
    file: &Path,
    text: &str,
    out: &mut Findings,
) -> BTreeSet<String> {
    let line_at = |e: &toml::de::Error| {
        e.span().map_or(1, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        })
    };
    if let Err(e) = toml::from_str::<kiln_runner::scenario::Scenario>(text) {
        let message = e.message().trim().to_string();
        // serde's wording for a field `deny_unknown_fields` refuses.
        let rule = if message.starts_with("unknown field") {
            rules::UNKNOWN_CONFIG_FIELD
        } else {
            rules::INVALID_TASK_CONFIG
        };
        out.add(rule, file, line_at(&e), message);
        return BTreeSet::new();
    }
    if let Err(errors) = kiln_runner::scenario::load(&root.join(dir)) {
        let toml_prefix = format!("{}: ", root.join(file).display());
        for e in errors {
            match e.strip_prefix(&toml_prefix) {
                // `key: what is wrong`, about a value, or about the file a value names.
                Some(rest) => {
                    let key = rest.split_once(": ").map_or("", |(k, _)| k);
                    let about_a_file = rest.contains("missing") || rest.contains("executable");
                    let rule = if about_a_file {
                        rules::INVALID_TASK_FILES
                    } else {
                        rules::INVALID_TASK_CONFIG
                    };
                    out.add(rule, file, key_line(text, key), rest);
                }
                // `path: what is wrong` about a file of the task.
                None => {
                    let (path, what) = e.split_once(": ").unwrap_or(("", &e));
                    let abs = Path::new(path);
                    let rel = abs.strip_prefix(root).unwrap_or(abs);
                    out.add(rules::INVALID_TASK_FILES, rel, 1, what);
                }
            }
        }
    }
    let scenario: toml::Table = toml::from_str(text).unwrap_or_default();
    let table = |name: &str| scenario.get(name).and_then(|v| v.as_table());
    let empty = toml::Table::new();
    let allow = super::allow_list(table("metadata").unwrap_or(&empty), file, text, out);
    for (section, default) in [("agent", "1800 s"), ("grading", "300 s per grader")] {
        if table(section).and_then(|t| t.get("timeout_sec")).is_none() {
            out.add(
                rules::MISSING_TIMEOUT,
                file,
                toml_lines::line_of(text, section, 0, None),
                format!("{section}.timeout_sec is not set: the runner's default is {default}, whatever this task needs; set it for this task"),
            );
        }
    }
    allow
}

/// The line of a dotted key the runner names (`grading.reward.command`,
/// `environment.services[1]`): its table's line for it, else the table's header.
fn key_line(text: &str, key: &str) -> usize {
    let key = key.split('[').next().unwrap_or(key);
    match key.rsplit_once('.') {
        Some((table, k)) => toml_lines::line_of(text, table, 0, Some(k)),
        None => toml_lines::line_of(text, "", 0, Some(key)),
    }
}

/// The image prefixes made on this machine: the fleet's own registry (`REGISTRY`, default
/// `kiln.local`) and `kiln.local/bases/` (scripts/make-bases.sh). kiln never pulls, so a
/// `latest` there is the one this machine built.
fn local_images() -> Vec<String> {
    let registry = crate::env::REGISTRY
        .get()
        .unwrap_or_else(|| "kiln.local".into());
    vec![format!("{registry}/"), "kiln.local/".to_string()]
}

fn task(root: &Path, dir: &Path, local: &[String]) -> Vec<Violation> {
    let mut out = Findings::default();
    let file = dir.join(SCENARIO);
    // No scenario.toml: a fixture or a task being written; `kiln validate` and the runner
    // refuse it, and the rules that read it have nothing to read.
    let mut allow = BTreeSet::new();
    if let Ok(text) = std::fs::read_to_string(root.join(&file)) {
        allow = scenario_rules(root, dir, &file, &text, &mut out);
    }

    // The runner copies workspace/ to $WORKSPACE: inputs, named relative to it.
    let workspace = root.join(dir).join(WORKSPACE);
    let mut provided: Vec<String> = walkdir::WalkDir::new(&workspace)
        .into_iter()
        .flatten()
        .filter(|e| !e.file_type().is_dir())
        .filter_map(|e| {
            let rest = e.path().strip_prefix(&workspace).ok()?;
            Some(rest.to_string_lossy().into_owned())
        })
        .collect();
    let env_df = dir.join("environment").join("Dockerfile");
    if let Some(df) = super::read_dockerfile(root, &env_df) {
        super::dockerfile(&env_df, &df, true, local, &mut out);
        let hidden = [
            (dir.join(GRADING), Hidden::Tests),
            (dir.join(SOLUTION), Hidden::Solution),
        ];
        provided.extend(super::agent_image(
            root,
            &env_df,
            dir,
            &hidden,
            Some(HIDDEN_UNDER),
            &mut out,
        ));
    }

    let mut graders = Vec::new();
    for (f, text) in super::files(root, &dir.join(GRADING), |_| true) {
        if is_shell(&f, &text) {
            super::script(root, &f, &text, true, None, &mut out);
            graders.push((f, text));
        } else if f.extension().is_some_and(|x| x == "py") {
            super::inline_dependencies(&f, &text, &mut out);
            graders.push((f, text));
        }
    }
    for (f, text) in super::files(root, &dir.join(SOLUTION), |_| true) {
        if is_shell(&f, &text) {
            super::script(root, &f, &text, false, None, &mut out);
        } else if f.extension().is_some_and(|x| x == "py") {
            super::inline_dependencies(&f, &text, &mut out);
        }
    }
    let prompts: String = super::files(root, &dir.join(PROMPTS), |p| {
        p.extension().is_some_and(|x| x == "md")
    })
    .into_iter()
    .map(|(_, t)| t)
    .collect::<Vec<_>>()
    .join("\n");
    let unnamed = format!("no prompt of {} names it", dir.join(PROMPTS).display());
    // What the environment makes: its files and the setup scripts, run before the agent.
    let environment = || {
        [dir.join("environment"), dir.join(SETUP)]
            .iter()
            .flat_map(|d| super::files(root, d, |_| true))
            .map(|(_, t)| t)
            .collect()
    };
    super::mentions(
        &graders,
        &prompts,
        &unnamed,
        &provided,
        &environment,
        &mut out,
    );
    out.allowed(&allow)
}

/// A shell script: `*.sh`, or a `#!` line naming a shell.
fn is_shell(path: &Path, text: &str) -> bool {
    if path.extension().is_some_and(|x| x == "sh") {
        return true;
    }
    let first = text.lines().next().unwrap_or("");
    first.starts_with("#!")
        && ["/sh", "/bash", "/dash", " sh", " bash"]
            .iter()
            .any(|s| first.contains(s))
}
