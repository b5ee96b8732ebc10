//! `kiln shell` on an eval-containers fleet: a person in the agent's place in the eval
//! image `kiln run` runs (`evals/<b>--<a>`, per-task `evals/<b>-<task>--<a>`, built by
//! `kiln build eval`; a missing one is refused with that command, as `kiln run` does).
//!
//! The container is started as [`super::one`] starts a run without `--model`: the same
//! image, entrypoint (`/entrypoint.sh`, which materializes the task), environment and
//! network (`none`: without the gateway the agent reaches nothing). Then, instead of
//! upstream's `run` → `run-agent` → `/run.sh`, kiln's [`PROGRAM`] does what `run`
//! prepares before the agent (its output directories and their owners) and what
//! `run-agent` does to start it — `gosu agent env -i` with run-agent's allow-list — but
//! starts a shell on the terminal, without `timeout` (a shell is not bounded by the
//! agent's time) and with the terminal's `TERM`. So the shell is uid 1002 in the image's
//! working directory with only the variables the agent gets (`TASK`, `MODEL`, the
//! gateway endpoints, placeholder keys); the test below keeps that list equal to the
//! fleet's own run-agent.
//!
//! What the agent cannot read stays so (the fleet keeps `/tasks`, and usually
//! `/grade.sh` and `/tests`, root-only). `--with-tests` makes the image's graders and
//! what they check against — `/grade.sh`, `/tests/` and the task's `/tasks/<id>/` —
//! readable where the run's grading reads them (in this container only); `--with-solution` mounts the benchmark's `solution.sh` read-only at
//! `/solution/solution.sh`.

use std::path::{Path, PathBuf};

use super::{env, image_exists, Item};
use crate::error::Failure;
use crate::fleet::{Env, Fleet};
use crate::run::reap::{Owner, LABEL_RUN};
use crate::run::shell::{container_name, ShellSpec};
use crate::store::Store;

/// Where `--with-solution` mounts the benchmark's `solution.sh`.
pub const SOLUTION_TARGET: &str = "/solution/solution.sh";

/// The variables run-agent hands the agent (`env -i` …), with the values it gives them
/// (read from the container's environment, as there).
const AGENT_ENV: &[(&str, &str)] = &[
    (
        "PATH",
        "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("HOME", "/home/agent"),
    ("USER", "agent"),
    ("LANG", "C.UTF-8"),
    ("TASK", "${TASK:-}"),
    ("MODEL", "${MODEL:-}"),
    ("TIMEOUT", "${TIMEOUT:-300}"),
    (
        "EVAL_AGENT_REASONING_EFFORT",
        "${EVAL_AGENT_REASONING_EFFORT:-}",
    ),
    ("OPENAI_BASE_URL", "${OPENAI_BASE_URL:-}"),
    ("OPENAI_API_KEY", "sk-proxy"),
    ("ANTHROPIC_BASE_URL", "${ANTHROPIC_BASE_URL:-}"),
    ("ANTHROPIC_API_KEY", "sk-proxy"),
    ("GOOGLE_GEMINI_BASE_URL", "${GOOGLE_GEMINI_BASE_URL:-}"),
    ("GEMINI_API_KEY", "sk-proxy"),
];

/// The shell's program (bash, as root behind the image's entrypoint): upstream `run`'s
/// preparation, then the agent's user and environment, a shell instead of `/run.sh`.
fn program(with_tests: bool) -> String {
    let mut p = String::from(
        r#"set -eu
export TIMEOUT="${TIMEOUT:-${EVAL_TIMEOUT:-300}}" TASK_ID="${TASK_ID:-${EVAL_TASK_ID:-}}"
export MODEL="${MODEL:-${EVAL_MODEL:-}}" TASK="${TASK:-}"
id agent >/dev/null 2>&1 || useradd -m -s /bin/bash -u 1002 agent
mkdir -p /output/model /output/agent /output/task /logs/verifier
chown -R agent:agent /output/agent /tmp 2>/dev/null || true
chmod 0755 /output /output/agent /output/task /output/model
"#,
    );
    if with_tests {
        p.push_str(
            "chmod -R a+rX /grade.sh /tests \"/tasks/$EVAL_TASK_ID\" 2>/dev/null || true\n\
             chmod a+x /tasks 2>/dev/null || true\n",
        );
    }
    p.push_str("echo \"shell: as the agent, uid $(id -u agent), in $(pwd)\" >&2\n");
    p.push_str("exec gosu agent env -i");
    for (k, v) in AGENT_ENV {
        p.push_str(&format!(" {k}=\"{v}\""));
    }
    p.push_str(
        " TERM=\"${TERM:-xterm}\" sh -c 'command -v bash >/dev/null 2>&1 && exec bash || exec sh'\n",
    );
    p
}

/// What `kiln shell` on this layout was asked for.
pub struct Request<'a> {
    pub benchmark: &'a str,
    pub task: &'a str,
    /// None: the one agent whose eval image of the task is built.
    pub agent: Option<&'a str>,
    pub with_solution: bool,
    pub with_tests: bool,
    pub tty: bool,
    pub dry_run: bool,
}

/// The shell's container, checked against the fleet and (unless a dry run) the store:
/// an unknown benchmark, task or agent, a missing eval image or solution is refused
/// (exit status 2) before anything starts.
pub fn spec(fleet: &Fleet, req: &Request) -> anyhow::Result<ShellSpec> {
    crate::naming::validate_task_id(req.task).map_err(|e| Failure::usage(e.to_string()))?;
    let b = fleet
        .benchmark(req.benchmark)
        .map_err(|r| Failure::usage(r.0))?;
    let task = b
        .task(req.task)
        .map_err(crate::fleet::refused_to_usage)?
        .to_string();
    let per_task = (b.env == Env::PerTask).then_some(task.as_str());
    let agent = match req.agent {
        Some(a) => fleet
            .agent(a)
            .map_err(|r| Failure::usage(r.0))?
            .name
            .clone(),
        None => {
            // The fleet has no agent that does nothing: take the one whose image is built.
            let built: Vec<&str> = fleet
                .agents
                .iter()
                .map(|a| a.name.as_str())
                .filter(|a| image_exists(&fleet.naming.eval(&b.name, per_task, a)))
                .collect();
            match built.as_slice() {
                [one] => one.to_string(),
                [] => {
                    return Err(Failure::usage(format!(
                    "no eval image of {} is built: name the agent whose place to take (--agent A) \
                         and build it first (`kiln build eval {} --agent A{}`)",
                    b.name,
                    b.name,
                    per_task
                        .map(|t| format!(" --task-id {t}"))
                        .unwrap_or_default()
                )))
                }
                many => {
                    return Err(Failure::usage(format!(
                        "name the agent whose place to take: --agent {}",
                        many.join(" | ")
                    )))
                }
            }
        }
    };
    let image = fleet.naming.eval(&b.name, per_task, &agent);
    if !req.dry_run && !image_exists(&image) {
        return Err(Failure::usage(format!(
            "{image} is not in the engine's store: build it first (`kiln build eval {} --agent {agent}{}`)",
            b.name,
            per_task.map(|t| format!(" --task-id {t}")).unwrap_or_default()
        )));
    }
    let solution = if req.with_solution {
        Some(solution_file(&fleet.root, &b.name)?)
    } else {
        None
    };
    let item = Item {
        benchmark: b,
        task: task.clone(),
        agent: agent.clone(),
        repeat: 1,
        image: image.clone(),
    };
    let mut run_args: Vec<String> = vec!["--network".into(), "none".into()];
    for (k, v) in env(&item, "", None) {
        run_args.extend(["-e".into(), format!("{k}={v}")]);
    }
    let labels = if req.dry_run {
        // A pasted command outlives this kiln process: no labels naming it.
        vec![(LABEL_RUN.into(), "true".into())]
    } else {
        Owner::current().labels()
    };
    Ok(ShellSpec {
        store: Store::Docker,
        image,
        name: container_name(&b.name, &task, &agent),
        task,
        agent,
        tty: req.tty,
        solution: solution.map(|s| (s, SOLUTION_TARGET.to_string())),
        tests: None,
        graders: Some(if req.with_tests {
            "graders /grade.sh, /tests and /tasks/<task> readable (this container only)".into()
        } else {
            "graders as the image keeps them".into()
        }),
        labels,
        run_args,
        command: vec!["bash".into(), "-c".into(), program(req.with_tests)],
        env: Vec::new(),
    })
}

/// The benchmark's `solution.sh`, absolute (a bind mount names it).
fn solution_file(root: &Path, benchmark: &str) -> anyhow::Result<PathBuf> {
    let rel = crate::fleet::layout::eval_containers::image_dir(
        crate::fleet::layout::eval_containers::BENCHMARKS,
        benchmark,
    )
    .join("solution.sh");
    let path = root.join(&rel);
    if !path.is_file() {
        return Err(Failure::usage(format!(
            "--with-solution: {benchmark} has no reference solution ({} is missing)",
            rel.display()
        )));
    }
    let path = std::fs::canonicalize(&path)?;
    if path.to_string_lossy().contains(',') {
        return Err(Failure::usage(format!(
            "--with-solution: {} holds a comma, which a bind mount cannot name",
            path.display()
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent's variables are run-agent's own, read from the fleet's copy.
    #[test]
    fn the_agent_environment_is_run_agents_allow_list() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let Some(file) = root
            .ancestors()
            .map(|d| d.join("shared/fleets/eval-containers/containers/core/runner/run-agent"))
            .find(|p| p.is_file())
        else {
            crate::printer::errln!("skipped: ../shared/fleets/eval-containers not found");
            return;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let list = text.split("gosu agent env -i").nth(1).unwrap();
        let list = list.split("/run.sh").next().unwrap();
        let mut theirs: Vec<&str> = list
            .split_whitespace()
            .filter_map(|w| w.split_once('=').map(|(k, _)| k))
            .collect();
        theirs.sort();
        let mut ours: Vec<&str> = AGENT_ENV.iter().map(|(k, _)| *k).collect();
        ours.sort();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn the_graders_open_only_when_asked() {
        assert!(!program(false).contains("chmod -R a+rX"));
        assert!(program(true).contains("chmod -R a+rX /grade.sh /tests \"/tasks/$EVAL_TASK_ID\""));
        assert!(program(false).contains("exec gosu agent env -i PATH="));
    }
}
