//! `kiln validate` of an eval-containers fleet: per task, the benchmark image's own
//! grader (`/grade.sh`, behind the image's `/entrypoint.sh`) scores two answers with no
//! agent and no model — the reference one (the benchmark's `solution.sh`, mounted at
//! run time and never baked in, or else the task's `EXPECTED_ANSWER`) must score 1, an
//! empty one must not. That is the fleet's own oracle contract (its CLI's `oracle`
//! command), run by kiln for every selected task; `--dry-run` prints the `docker run`
//! commands. The images are the fleet's benchmark (or per-task) images as `kiln build`
//! makes them: a missing one is refused with the command that builds it.

use crate::printer::{errln, outln};
use std::path::Path;

use crate::backend::shell;
use crate::error::Failure;
use crate::fleet::{Env, Fleet};

/// What runs in the benchmark image (after its entrypoint has materialized the task):
/// the answer of `KILN_ORACLE` (`reference` or `empty`) as the agent's stdout, then the
/// grader; the reward comes back on a line of its own.
const PROGRAM: &str = r#"mkdir -p /output/agent /logs/verifier
answer=/output/agent/stdout.log
if [ "$KILN_ORACLE" = reference ]; then
  if [ -f /kiln/solution.sh ]; then bash /kiln/solution.sh > "$answer"
  else printf '%s' "${EXPECTED_ANSWER-}" > "$answer"; fi
else
  : > "$answer"
fi
bash /grade.sh > /dev/null 2>&1
printf '\nKILN_REWARD=%s\n' "$(cat /logs/verifier/reward.txt 2>/dev/null)""#;

/// One task's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskVerdict {
    pub benchmark: String,
    pub task: String,
    pub reference: Option<f64>,
    pub empty: Option<f64>,
    /// None: valid.
    pub problem: Option<String>,
}

/// Validates the selected tasks (every known task of every benchmark by default),
/// printing a line per task; with `dry_run`, prints the commands instead.
pub fn validate(
    fleet: &Fleet,
    benchmarks: &[String],
    tasks: &[String],
    dry_run: bool,
) -> anyhow::Result<Vec<TaskVerdict>> {
    let mut selected = Vec::new();
    for b in &fleet.benchmarks {
        if !benchmarks.is_empty() && !benchmarks.contains(&b.name) {
            continue;
        }
        let ids: Vec<String> = if tasks.is_empty() {
            if !b.tasks_known {
                if benchmarks.is_empty() {
                    errln!("note: {}: its task ids are known to its build only (name one with --task-id)", b.name);
                    continue;
                }
                return Err(Failure::usage(format!(
                    "{}: its task ids are known to its build only: name one with --task-id",
                    b.name
                )));
            }
            b.tasks.clone()
        } else {
            tasks
                .iter()
                .filter_map(|t| b.task(t).ok().map(str::to_string))
                .collect()
        };
        for id in ids {
            selected.push((b, id));
        }
    }
    for name in benchmarks {
        fleet.benchmark(name).map_err(|r| Failure::usage(r.0))?;
    }
    if let Some(t) = tasks
        .iter()
        .find(|t| !selected.iter().any(|(_, id)| id == *t))
    {
        return Err(Failure::usage(format!(
            "no selected benchmark has task {t:?}"
        )));
    }
    let mut verdicts = Vec::new();
    for (b, task) in selected {
        let per_task = b.env == Env::PerTask;
        let image = fleet
            .naming
            .benchmark(&b.name, per_task.then_some(task.as_str()));
        // A per-task image holds its task as task 0; a shared image picks it at run time.
        let runtime_task = if per_task { "0" } else { task.as_str() };
        let solution = fleet
            .root
            .join("containers/benchmarks")
            .join(&b.name)
            .join("solution.sh");
        let solution = solution.is_file().then_some(solution);
        if !dry_run && !crate::run::eval_containers::image_exists(&image) {
            return Err(Failure::usage(format!(
                "{image} is not in the engine's store: build it first (`kiln build benchmark {}{}`)",
                b.name,
                if per_task { format!(" --task-id {task}") } else { String::new() }
            )));
        }
        let mut scores = [None, None];
        for (i, mode) in ["reference", "empty"].into_iter().enumerate() {
            let args = command(&image, runtime_task, mode, solution.as_deref());
            if dry_run {
                outln!("docker {}", shell::join(&args));
                continue;
            }
            scores[i] = run(&args)?;
        }
        if dry_run {
            continue;
        }
        let [reference, empty] = scores;
        let problem = match (reference, empty) {
            (Some(r), _) if r < 1.0 => Some(format!("the reference answer scores {r}, not 1")),
            (None, _) => Some("the grader wrote no reward for the reference answer".to_string()),
            (_, Some(e)) if e >= 1.0 => {
                Some("an empty answer scores 1: the grader accepts anything".to_string())
            }
            (_, None) => Some("the grader wrote no reward for an empty answer".to_string()),
            _ => None,
        };
        let show = |r: Option<f64>| r.map_or("none".to_string(), |r| r.to_string());
        match &problem {
            None => outln!(
                "{} {task}: valid (reference {}, empty {})",
                b.name,
                show(reference),
                show(empty)
            ),
            Some(p) => outln!("{} {task}: NOT VALID: {p}", b.name),
        }
        verdicts.push(TaskVerdict {
            benchmark: b.name.clone(),
            task,
            reference,
            empty,
            problem,
        });
    }
    Ok(verdicts)
}

/// The `docker` arguments of one answer's grading.
fn command(image: &str, task: &str, mode: &str, solution: Option<&Path>) -> Vec<String> {
    let mut args: Vec<String> = ["run", "--rm", "--network", "none", "-e"]
        .map(String::from)
        .into();
    args.push(format!("EVAL_TASK_ID={task}"));
    args.extend(["-e".into(), format!("KILN_ORACLE={mode}")]);
    if let Some(s) = solution {
        args.extend(["-v".into(), format!("{}:/kiln/solution.sh:ro", s.display())]);
    }
    args.extend(
        [
            "--entrypoint",
            "/entrypoint.sh",
            image,
            "bash",
            "-c",
            PROGRAM,
        ]
        .map(String::from),
    );
    args
}

/// Runs one grading; its reward (None: the grader wrote none).
fn run(args: &[String]) -> anyhow::Result<Option<f64>> {
    let out = duct::cmd("docker", args)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let reward = text
        .lines()
        .filter_map(|l| l.strip_prefix("KILN_REWARD="))
        .next_back()
        .map(str::trim);
    match reward {
        Some(r) => Ok(r.parse().ok()),
        None if !out.status.success() => anyhow::bail!(
            "docker run failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_answer_is_mounted_and_nothing_reaches_a_network() {
        let args = command("img:1", "3", "reference", Some(Path::new("/f/solution.sh")));
        let line = args.join(" ");
        assert!(line.starts_with("run --rm --network none -e EVAL_TASK_ID=3 -e KILN_ORACLE=reference -v /f/solution.sh:/kiln/solution.sh:ro --entrypoint /entrypoint.sh img:1 bash -c"), "{line}");
        let empty = command("img:1", "0", "empty", None).join(" ");
        assert!(!empty.contains(" -v "), "{empty}");
    }
}
