//! `kiln lint` of an eval-containers fleet (docs/layouts.md), by that fleet's own rules
//! where they differ from kiln's: every image directory loads (its bake file parses, its
//! target exists once, it has tasks, its names are its own), the labels its benchmark
//! rules require are in each benchmark's Dockerfile, the name labels match the directory,
//! and no `ARG`/`ENV` looks like a credential (their rule 8a, kiln's secret rule); every
//! Dockerfile gets the task rules about images (unpinned images and Python installs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{rules, Report, Sink};
use crate::fleet::dockerfile::Dockerfile;
use crate::fleet::Fleet;

/// Labels every benchmark image carries (their benchmark rule 21).
const BENCHMARK_LABELS: &[&str] = &[
    "eval.type",
    "eval.benchmark.name",
    "eval.benchmark.description",
    "eval.benchmark.tasks",
    "eval.benchmark.env",
    "eval.benchmark.internet",
    "eval.benchmark.data_revision",
];
const AGENT_LABELS: &[&str] = &["eval.type", "eval.agent.name", "eval.agent.version"];

pub(crate) fn check(root: &Path, sink: &mut Sink, report: &mut Report) -> anyhow::Result<()> {
    let fleet = Fleet::load(root, BTreeMap::new())?;
    report.bake_files = fleet.layout.bake_files.len();
    report.targets = fleet.targets.len();
    for p in &fleet.problems {
        // Messages start with the file they are about.
        let (file, message) = p.split_once(": ").unwrap_or(("", p));
        sink.add(rules::EC_LAYOUT, file, 1, message.to_string());
    }
    let mut dockerfiles: BTreeMap<PathBuf, Dockerfile> = BTreeMap::new();
    for t in fleet.targets.values() {
        let path = t.dockerfile_path();
        if let Ok(text) = std::fs::read_to_string(root.join(&path)) {
            dockerfiles.insert(path, Dockerfile::parse(&text));
        }
    }
    report.dockerfiles = dockerfiles.len();
    let file_of = |target: &str| fleet.targets.get(target).map(|t| t.dockerfile_path());
    let line_of = |file: &Path, needle: &str| -> usize {
        dockerfiles
            .get(file)
            .and_then(|d| d.instructions.iter().find(|i| i.args.contains(needle)))
            .map_or(1, |i| i.line)
    };
    let required = |sink: &mut Sink,
                    file: &Path,
                    have: &BTreeMap<String, String>,
                    keys: &[&str],
                    name: &str,
                    name_key: &str,
                    kind: &str| {
        for k in keys {
            if have.get(*k).is_none_or(|v| v.is_empty()) {
                sink.add(
                    rules::EC_LABELS,
                    file,
                    1,
                    format!("label {k} is missing (every {kind} image carries it)"),
                );
            }
        }
        if have.get("eval.type").is_some_and(|v| v != kind) {
            sink.add(
                rules::EC_LABELS,
                file,
                line_of(file, "eval.type"),
                format!("eval.type is {:?}; this is a {kind}", have["eval.type"]),
            );
        }
        if let Some(v) = have.get(name_key).filter(|v| !v.is_empty() && *v != name) {
            sink.add(
                rules::EC_LABELS,
                file,
                line_of(file, name_key),
                format!("{name_key} is {v:?}, but the directory is {name:?}"),
            );
        }
    };
    for b in &fleet.benchmarks {
        report.tasks += b.task_count;
        if let Some(f) = file_of(&b.target) {
            // A carrier benchmark (`eval.benchmark.env="test"`) bakes its one task into
            // the Dockerfile: there is no dataset revision to record.
            let keys: Vec<&str> = BENCHMARK_LABELS
                .iter()
                .copied()
                .filter(|k| {
                    *k != "eval.benchmark.data_revision"
                        || b.labels.get("eval.benchmark.env").map(String::as_str)
                            != Some(crate::fleet::layout::eval_containers::ENV_TEST)
                })
                .collect();
            required(
                sink,
                &f,
                &b.labels,
                &keys,
                &b.name,
                "eval.benchmark.name",
                "benchmark",
            );
            if let Some(v) = b
                .labels
                .get("eval.benchmark.released")
                .filter(|v| *v != "true" && *v != "false")
            {
                sink.add(
                    rules::EC_LABELS,
                    &f,
                    line_of(&f, "eval.benchmark.released"),
                    format!("eval.benchmark.released is {v:?}: \"true\" or \"false\""),
                );
            }
        }
    }
    for a in &fleet.agents {
        if let Some(f) = file_of(&a.target) {
            required(
                sink,
                &f,
                &a.labels,
                AGENT_LABELS,
                &a.name,
                "eval.agent.name",
                "agent",
            );
        }
    }
    for (file, df) in &dockerfiles {
        // The fleet has no task folders: of the task rules, the image ones apply.
        sink.violations.extend(super::tasks::image_rules(file, df));
        for (line, what, name) in df.declared_variables() {
            if super::is_secret_shaped(&name) {
                sink.add(rules::KILN_SECRETS, file, line, format!("{what} {name} looks like a credential: it would stay in the image; use RUN --mount=type=secret"));
            }
        }
    }
    Ok(())
}
