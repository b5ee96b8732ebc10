//! `kiln new benchmark` and `kiln new task` in an eval-containers fleet: the files of
//! that fleet's own benchmark layout (its add-benchmark skill and `agents-smoke`), so
//! that the fresh scaffold is a working trivial task there: `kiln lint` finds nothing
//! in it, `kiln build benchmark` builds it, and `kiln validate` (the fleet's oracle
//! contract) shows the reference answer scoring 1 and the empty one 0.
//!
//! `containers/benchmarks/<name>/` holds its bake target, its Dockerfile (the labels of
//! the fleet's benchmark rules; `FROM python:3.12-slim`, the fleet's template base and
//! the one the air-gapped base map already covers), the task files it copies under
//! `/tasks/` (root-only), its grader (`grade.sh` → `/grade.sh`, the reward contract
//! `/logs/verifier/reward.txt`), its entrypoint (the task's `TASK` and
//! `EXPECTED_ANSWER`), the oracle's `solution.sh` (mounted at validation time, never
//! in the image: `.dockerignore`), `compose.yaml` and a README.
//!
//! The task files are the fleet's: `tasks/<dir>/problem.txt` (what the agent is asked),
//! `answer.txt` (what the grader expects), `id.txt` (the task's own id). A shared-env
//! benchmark's tasks are numbered `0` … `n-1` (its rule 15: the runtime `EVAL_TASK_ID`
//! is the number, the id lives in `id.txt`) and counted by `eval.benchmark.tasks`; a
//! per-task benchmark's are named by their id, listed in `tasks.txt`, and each image
//! bakes one of them (`ARG EVAL_TASK_ID`) as its task `0`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use super::{write_new_dir, BenchmarkKind};
use crate::fleet::layout::eval_containers::{image_dir, BENCHMARKS, DOCKERFILE, TASKS_FILE};
use crate::naming;

/// The task the scaffold asks; the solution reads its answer off the prompt, as an
/// agent would.
const PROMPT: &str = "Reply with exactly: hello";
const ANSWER: &str = "hello";
/// The task folders, relative to the benchmark's directory.
const TASKS_DIR: &str = "tasks";

fn kind_label(kind: BenchmarkKind) -> &'static str {
    match kind {
        BenchmarkKind::SharedEnv => "shared-env",
        BenchmarkKind::PerTask => "per-task",
    }
}

fn dockerfile(name: &str, kind: BenchmarkKind, description: &str) -> String {
    let quoted = serde_json::to_string(description).expect("a string serializes");
    let (intro, arg, copy) = match kind {
        BenchmarkKind::SharedEnv => (
            "# One image, every task: tasks/<n>/ is task n (EVAL_TASK_ID picks it at run time).",
            "",
            "COPY tasks/ /tasks/\n",
        ),
        BenchmarkKind::PerTask => (
            "# One image per task: built with EVAL_TASK_ID=<an id of tasks.txt>, it holds that\n\
             # task's folder as its task 0 (what EVAL_TASK_ID is at run time).",
            "ARG EVAL_TASK_ID\n",
            "RUN [ -n \"$EVAL_TASK_ID\" ] || { echo 'build with EVAL_TASK_ID=<an id of tasks.txt>' >&2; exit 1; }\n\
             COPY tasks/${EVAL_TASK_ID}/ /tasks/0/\n",
        ),
    };
    format!(
        r#"# {name}: TODO what this benchmark measures.
{intro}
# A task is tasks/<dir>/problem.txt (the agent's task), answer.txt (what the grader
# expects) and id.txt (its own id). The agent prints its answer; grade.sh compares it
# to answer.txt. solution.sh is the oracle's (kiln validate), never in the image.
FROM python:3.12-slim
{arg}
LABEL eval.type="benchmark"
LABEL eval.benchmark.name="{name}"
LABEL eval.benchmark.released="false"
LABEL eval.benchmark.description={quoted}
LABEL eval.benchmark.tasks="1"
LABEL eval.benchmark.env="{env}"
LABEL eval.benchmark.internet="false"
# The tasks are files of this repository: its commit is their revision.
LABEL eval.benchmark.data_revision="repository"

{copy}COPY grade.sh /grade.sh
COPY entrypoint.sh /entrypoint.sh
# Task data and grader root-only (the agent runs as uid 1002); the agent's /app is its own.
RUN chmod -R go-rwx /tasks /grade.sh \
 && chmod 0755 /entrypoint.sh \
 && mkdir -p /app /tests \
 && chown 1002:0 /app

WORKDIR /app
ENV EVAL_BENCHMARK={name}
ENTRYPOINT ["/entrypoint.sh"]
CMD ["/grade.sh"]
"#,
        env = kind_label(kind),
    )
}

const ENTRYPOINT: &str = r#"#!/bin/bash
# The task EVAL_TASK_ID for the phases after it: TASK (what the agent is asked) and
# EXPECTED_ANSWER (the grader's; the fleet's run-agent never hands it to the agent).
if [ -n "${EVAL_TASK_ID:-}" ] && [ -z "${TASK:-}" ]; then
  export TASK="$(cat "/tasks/$EVAL_TASK_ID/problem.txt")"
  export EXPECTED_ANSWER="$(cat "/tasks/$EVAL_TASK_ID/answer.txt")"
fi
exec "$@"
"#;

const GRADER: &str = r#"#!/bin/bash
# The grader (/grade.sh, run as root after the agent): reward 1 when the agent's
# answer (its stdout) is the task's answer.txt, whitespace aside; else 0. Fail-closed:
# an empty expected answer never matches.
mkdir -p /logs/verifier
echo 0 > /logs/verifier/reward.txt
expected=$(printf '%s' "${EXPECTED_ANSWER:-}" | tr -d '[:space:]')
answer=$(tr -d '[:space:]' < /output/agent/stdout.log 2>/dev/null)
if [ -n "$expected" ] && [ "$answer" = "$expected" ]; then
  echo 1 > /logs/verifier/reward.txt
fi
"#;

const SOLUTION: &str = r#"#!/bin/bash
# The reference solution: `kiln validate` (and the fleet's `oracle`) mounts it
# read-only and runs it as root in the benchmark image; what it prints is the answer.
# It derives the answer from the task, as an agent would (never a copy of answer.txt).
set -eu
sed -n 's/^Reply with exactly: //p' "/tasks/${EVAL_TASK_ID:-0}/problem.txt"
"#;

fn bake_file(name: &str) -> String {
    format!(
        "target \"benchmark-{name}\" {{\n  context = \"containers/benchmarks/{name}\"\n  tags = [\"${{REGISTRY}}/benchmarks/{name}:${{TAG}}\"]\n}}\n"
    )
}

fn compose(name: &str, kind: BenchmarkKind) -> String {
    let image = match kind {
        BenchmarkKind::SharedEnv => format!("{name}--${{EVAL_AGENT:-claude-code}}"),
        BenchmarkKind::PerTask => {
            format!("{name}-${{EVAL_TASK_ID:?}}--${{EVAL_AGENT:-claude-code}}")
        }
    };
    format!(
        "include:\n  - path: ../../compose/services.yaml\n\nservices:\n  runner:\n    extends:\n      file: ../../compose/runner.yaml\n      service: runner\n    depends_on:\n      otelcol:\n        condition: service_healthy\n      gateway:\n        condition: service_healthy\n    image: ${{EVAL_REGISTRY:-ghcr.io/exgentic}}/evals/{image}:latest\n    environment:\n      BENCHMARK: {name}\n"
    )
}

fn readme(name: &str, kind: BenchmarkKind) -> String {
    let tasks = match kind {
        BenchmarkKind::SharedEnv => "`tasks/<n>/` is task `n` (`EVAL_TASK_ID=n`), counted by the label `eval.benchmark.tasks`",
        BenchmarkKind::PerTask => "`tasks/<id>/` is task `id`, listed in `tasks.txt`; each image bakes one (`--task-id id`)",
    };
    format!(
        "# {name}\n\nTODO: what this benchmark measures.\n\n| | |\n|---|---|\n| kind | {} |\n| tasks | {tasks} |\n| task | `problem.txt` (the agent's task), `answer.txt` (the expected answer), `id.txt` |\n| grader | `grade.sh` → `/grade.sh`: exact match of the agent's stdout, reward in `/logs/verifier/reward.txt` |\n| oracle | `solution.sh`, mounted at validation time only |\n\n```sh\nkiln new task {name} ID                  # one more task\nkiln build benchmark {name}{}\nkiln validate {name}                     # the reference answer scores 1, an empty one 0\n```\n",
        kind_label(kind),
        match kind {
            BenchmarkKind::SharedEnv => "",
            BenchmarkKind::PerTask => " --task-id ID",
        }
    )
}

fn task_files(dir: &str, id: &str) -> Vec<(String, String, bool)> {
    let at = |f: &str| format!("{TASKS_DIR}/{dir}/{f}");
    vec![
        (at("problem.txt"), format!("{PROMPT}\n"), false),
        (at("answer.txt"), format!("{ANSWER}\n"), false),
        (at("id.txt"), format!("{id}\n"), false),
    ]
}

/// Writes `containers/benchmarks/<name>/` with its first task `task`; returns the files
/// written (relative to `root`).
pub fn write_benchmark(
    root: &Path,
    name: &str,
    kind: BenchmarkKind,
    task: &str,
    description: &str,
) -> anyhow::Result<Vec<PathBuf>> {
    naming::validate_fleet_name("benchmark", name).map_err(|e| anyhow::anyhow!("{e}"))?;
    naming::validate_task_id(task).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rel_dir = image_dir(BENCHMARKS, name);
    let dir = root.join(&rel_dir);
    if dir.exists() {
        bail!("{}: already exists; choose another name", dir.display());
    }
    let task_dir = match kind {
        BenchmarkKind::SharedEnv => "0",
        BenchmarkKind::PerTask => task,
    };
    let mut files: Vec<(String, String, bool)> = vec![
        ("docker-bake.hcl".into(), bake_file(name), false),
        (DOCKERFILE.into(), dockerfile(name, kind, description), false),
        ("entrypoint.sh".into(), ENTRYPOINT.into(), true),
        ("grade.sh".into(), GRADER.into(), true),
        ("solution.sh".into(), SOLUTION.into(), true),
        (
            ".dockerignore".into(),
            "# The oracle's answer never goes into an image.\nsolution.sh\nREADME.md\ncompose.yaml\n"
                .into(),
            false,
        ),
        ("compose.yaml".into(), compose(name, kind), false),
        ("README.md".into(), readme(name, kind), false),
    ];
    if kind == BenchmarkKind::PerTask {
        files.push((TASKS_FILE.into(), format!("{task}\n"), false));
    }
    files.extend(task_files(task_dir, task));
    write_new_dir(&dir, &files)?;
    Ok(files.iter().map(|(rel, ..)| rel_dir.join(rel)).collect())
}

/// Adds task `id` to benchmark `name` (of `kind`, `tasks` tasks so far), which must keep
/// its tasks as folders of its own (as [`write_benchmark`] makes it); raises
/// `eval.benchmark.tasks` and, per-task, lists the id in `tasks.txt`.
pub fn write_task(
    root: &Path,
    name: &str,
    kind: BenchmarkKind,
    tasks: usize,
    id: &str,
) -> anyhow::Result<Vec<PathBuf>> {
    naming::validate_task_id(id).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rel_dir = image_dir(BENCHMARKS, name);
    let dir = root.join(&rel_dir);
    if !dir.join(TASKS_DIR).is_dir() {
        bail!(
            "{name}: its tasks are not folders of {} (its Dockerfile makes them); \
             kiln new task adds to a benchmark that keeps them in tasks/, as kiln new benchmark writes it",
            rel_dir.display()
        );
    }
    let dockerfile_path = dir.join(DOCKERFILE);
    let text = std::fs::read_to_string(&dockerfile_path)
        .with_context(|| format!("reading {}", dockerfile_path.display()))?;
    let counted = set_task_count(&text, tasks + 1)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dockerfile_path.display()))?;
    if existing_ids(&dir)?.iter().any(|t| t == id) {
        bail!("{name} has a task {id:?} already");
    }
    let task_dir = match kind {
        BenchmarkKind::SharedEnv => tasks.to_string(),
        BenchmarkKind::PerTask => id.to_string(),
    };
    let rel_task = Path::new(TASKS_DIR).join(&task_dir);
    let files: Vec<(String, String, bool)> = task_files(&task_dir, id)
        .into_iter()
        .map(|(rel, text, x)| {
            let rel = Path::new(&rel)
                .strip_prefix(&rel_task)
                .expect("under the task's folder")
                .display()
                .to_string();
            (rel, text, x)
        })
        .collect();
    let list = dir.join(TASKS_FILE);
    let new_list = match kind {
        BenchmarkKind::PerTask => {
            let old = std::fs::read_to_string(&list).unwrap_or_default();
            let sep = if old.is_empty() || old.ends_with('\n') {
                ""
            } else {
                "\n"
            };
            Some(format!("{old}{sep}{id}\n"))
        }
        BenchmarkKind::SharedEnv => None,
    };
    write_new_dir(&dir.join(&rel_task), &files)?;
    let mut written: Vec<PathBuf> = files
        .iter()
        .map(|(rel, ..)| rel_dir.join(&rel_task).join(rel))
        .collect();
    // The task folder is in place; the counts follow (undone when they cannot be written).
    let undo = |e: std::io::Error, what: &Path| {
        let _ = std::fs::remove_dir_all(dir.join(&rel_task));
        Err(e).with_context(|| format!("writing {}", what.display()))
    };
    if let Some(l) = new_list {
        if let Err(e) = std::fs::write(&list, l) {
            return undo(e, &list);
        }
        written.push(rel_dir.join(TASKS_FILE));
    }
    if let Err(e) = std::fs::write(&dockerfile_path, counted) {
        return undo(e, &dockerfile_path);
    }
    written.push(rel_dir.join(DOCKERFILE));
    Ok(written)
}

/// The ids of the benchmark's task folders (`tasks/*/id.txt`, else the folder's name).
fn existing_ids(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir.join(TASKS_DIR))? {
        let entry = entry?;
        let folder = entry.file_name().to_string_lossy().to_string();
        ids.push(folder.clone());
        if let Ok(id) = std::fs::read_to_string(entry.path().join("id.txt")) {
            ids.push(id.trim().to_string());
        }
    }
    if let Ok(list) = std::fs::read_to_string(dir.join(TASKS_FILE)) {
        ids.extend(crate::fleet::layout::eval_containers::task_lines(&list));
    }
    Ok(ids)
}

/// The Dockerfile with its `LABEL eval.benchmark.tasks="N"` set to `count`.
fn set_task_count(text: &str, count: usize) -> Result<String, String> {
    const KEY: &str = "eval.benchmark.tasks=\"";
    let mut out = String::with_capacity(text.len());
    let mut done = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if !done && t.starts_with("LABEL ") {
            if let Some(at) = line.find(KEY) {
                let start = at + KEY.len();
                let Some(len) = line[start..].find('"') else {
                    return Err("its eval.benchmark.tasks label is not a literal string".into());
                };
                if !line[start..start + len].chars().all(|c| c.is_ascii_digit()) {
                    return Err(format!(
                        "its eval.benchmark.tasks label is {:?}, not a number",
                        &line[start..start + len]
                    ));
                }
                out.push_str(&line[..start]);
                out.push_str(&count.to_string());
                out.push_str(&line[start + len..]);
                done = true;
                continue;
            }
        }
        out.push_str(line);
    }
    if !done {
        return Err("no LABEL eval.benchmark.tasks=\"N\" to count the task in".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_count_is_rewritten_in_place() {
        let text =
            "FROM x\nLABEL eval.benchmark.tasks=\"1\"\nLABEL eval.benchmark.env=\"per-task\"\n";
        assert_eq!(
            set_task_count(text, 2).unwrap(),
            text.replace("tasks=\"1\"", "tasks=\"2\"")
        );
        assert!(set_task_count("FROM x\n", 2).is_err());
        assert!(set_task_count("LABEL eval.benchmark.tasks=\"${N}\"\n", 2).is_err());
    }

    #[test]
    fn a_per_task_image_copies_only_its_own_task() {
        let d = dockerfile("b", BenchmarkKind::PerTask, "d");
        assert!(d.contains("COPY tasks/${EVAL_TASK_ID}/ /tasks/0/"), "{d}");
        assert!(d.contains("eval.benchmark.env=\"per-task\""));
        let s = dockerfile("b", BenchmarkKind::SharedEnv, "say \"hi\"");
        assert!(s.contains("COPY tasks/ /tasks/\n"), "{s}");
        assert!(
            s.contains(r#"eval.benchmark.description="say \"hi\"""#),
            "{s}"
        );
    }
}
