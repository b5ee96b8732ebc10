//! Which runs a `kiln run` command means, where each one's result goes, and whether a
//! result already there is complete and current. Independent of where runs execute:
//! the local executor ([`super::local`]) and any other one use the same three steps:
//!
//! 1. [`select`]: benchmarks × agents × tasks × repeats (and the model) as [`PlannedRun`]s,
//!    every name checked against the fleet before anything runs, plus the one build
//!    [`Request`] that makes every eval image they need;
//! 2. once the images exist, [`MadeFrom`] per run: the eval image's input digest
//!    (label `kiln.inputs.digest`), the model, the replay fixture and the repeat index;
//! 3. [`existing`]: a run whose directory holds a complete result made from exactly
//!    that is kept; anything else (missing, incomplete, failed, made from something
//!    else) is run again.
//!
//! Layout (what `kiln report` reads): `<output>/<benchmark>/<task lowercased>/<agent>/`
//! for one repeat; with `--repeat N` (N > 1) one more level, `repeat-<k>/` (k = 1..N),
//! under the agent directory. A cell once run with repeats keeps that level (a later
//! `--repeat 1` finds its repeat 1 in `repeat-1/`), and a flat result found when
//! repeats start is moved to `repeat-1/` ([`adopt_flat_results`]), so a cell never has
//! both forms and the report never counts a run twice.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fleet::{Env, Fleet, Refused};
use crate::plan::Request;

pub use crate::report::{repeat_of_dir_name, REPEAT_PREFIX};

/// What a command asked for, before it is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Named benchmarks, in the order given (duplicates dropped).
    pub benchmarks: Vec<String>,
    /// Every benchmark of the fleet (with or without names).
    pub all: bool,
    /// At least one agent.
    pub agents: Vec<String>,
    /// Empty: every task of each benchmark. Otherwise each id applies to every selected
    /// benchmark that has it; an id that no selected benchmark has is refused.
    pub tasks: Vec<String>,
    /// Runs per cell (at least 1).
    pub repeat: u32,
    /// The model the agent is told to use (`KILN_MODEL`); part of what a result is made from.
    pub model: Option<String>,
    /// The identity of the replay fixture (sha256 of its bytes, see [`fixture_identity`])
    /// when runs replay recorded model traffic; part of what a result is made from.
    pub replay: Option<String>,
}

/// One run of the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRun {
    pub benchmark: String,
    /// As the benchmark spells it.
    pub task: String,
    pub agent: String,
    /// 1-based.
    pub repeat: u32,
    /// The command's `--repeat` (decides the layout).
    pub repeats: u32,
    /// The eval image it runs in.
    pub image: String,
    pub model: Option<String>,
    pub replay: Option<String>,
}

impl PlannedRun {
    /// `benchmark/task × agent` (`#k` when repeated): how progress lines name it.
    pub fn label(&self) -> String {
        let mut s = format!("{}/{} × {}", self.benchmark, self.task, self.agent);
        if self.repeats > 1 {
            s.push_str(&format!(" #{}", self.repeat));
        }
        s
    }

    /// What a result of this run must have been made from to be kept.
    pub fn made_from(&self, inputs_digest: &str) -> MadeFrom {
        MadeFrom {
            inputs_digest: inputs_digest.to_string(),
            model: self.model.clone(),
            replay: self.replay.clone(),
            repeat: self.repeat,
        }
    }
}

/// The runs of a command and the build that makes their images.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// Benchmark, task, agent, repeat order (tasks in the benchmark's byte order).
    pub runs: Vec<PlannedRun>,
    /// One request for every eval image the runs need (`plan::plan` it once).
    pub request: Request,
    /// Distinct eval images, in first-use order.
    pub images: Vec<String>,
}

/// What a result was made from: recorded in `run.json` (`made_from`) beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MadeFrom {
    /// The eval image's `kiln.inputs.digest`.
    pub inputs_digest: String,
    pub model: Option<String>,
    pub replay: Option<String>,
    pub repeat: u32,
}

/// The part of `run.json` the completeness check reads.
#[derive(Debug, Deserialize)]
struct RecordView {
    runner_exit: i64,
    #[serde(default)]
    made_from: Option<MadeFrom>,
}

/// What a run's directory holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// Nothing there.
    Missing,
    /// A complete result made from exactly what was asked: keep it.
    Current,
    /// A result that cannot be kept, and why (run it again).
    Redo(String),
}

/// Checks the selection against the fleet (every name, every task id, the counts) and
/// lists its runs. Errors are [`Refused`] (exit status 2): nothing has run yet.
pub fn select(fleet: &Fleet, sel: &Selection) -> anyhow::Result<Matrix> {
    if sel.repeat == 0 {
        return Err(Refused("--repeat must be at least 1".into()).into());
    }
    if sel.agents.is_empty() {
        return Err(Refused(format!(
            "name at least one --agent (this fleet has: {})",
            fleet
                .agents
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    }
    if sel.benchmarks.is_empty() && !sel.all {
        return Err(
            Refused("name at least one benchmark, or --all for every benchmark".into()).into(),
        );
    }
    let mut benchmarks = Vec::new();
    for name in &sel.benchmarks {
        let b = fleet.benchmark(name)?;
        if !benchmarks
            .iter()
            .any(|x: &&crate::fleet::Benchmark| x.name == b.name)
        {
            benchmarks.push(b);
        }
    }
    if sel.all {
        for b in &fleet.benchmarks {
            if !benchmarks.iter().any(|x| x.name == b.name) {
                benchmarks.push(b);
            }
        }
    }
    let mut agents: Vec<&str> = Vec::new();
    for name in &sel.agents {
        fleet.agent(name)?;
        if !agents.contains(&name.as_str()) {
            agents.push(name);
        }
    }
    for t in &sel.tasks {
        crate::naming::validate_task_id(t).map_err(|e| Refused(e.to_string()))?;
    }
    // Each benchmark's tasks: all, or the named ones it has.
    let mut tasks_of: Vec<Vec<String>> = Vec::new();
    for b in &benchmarks {
        if sel.tasks.is_empty() {
            tasks_of.push(b.tasks.clone());
        } else {
            let mut own: Vec<String> = sel
                .tasks
                .iter()
                .filter_map(|t| b.tasks.iter().find(|bt| *bt == t).cloned())
                .collect();
            own.sort();
            own.dedup();
            tasks_of.push(own);
        }
    }
    for t in &sel.tasks {
        if !tasks_of.iter().flatten().any(|x| x == t) {
            // One benchmark: its own error, with suggestions.
            if let [b] = benchmarks.as_slice() {
                b.task(t)?;
            }
            return Err(Refused(format!(
                "task {t:?} is in none of the selected benchmarks ({})",
                benchmarks
                    .iter()
                    .map(|b| b.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        }
    }
    let mut runs = Vec::new();
    let mut images: Vec<String> = Vec::new();
    let mut requests = Vec::new();
    for (b, tasks) in benchmarks.iter().zip(&tasks_of) {
        let per_task = b.env == Env::PerTask;
        for agent in &agents {
            // Shared-env: one eval image for every task; per-task: one per task.
            if per_task {
                for t in tasks {
                    requests.push(Request::Eval {
                        benchmark: b.name.clone(),
                        agent: agent.to_string(),
                        task: Some(t.clone()),
                    });
                }
            } else if !tasks.is_empty() {
                requests.push(Request::Eval {
                    benchmark: b.name.clone(),
                    agent: agent.to_string(),
                    task: None,
                });
            }
        }
        for task in tasks {
            for agent in &agents {
                let image = fleet
                    .naming
                    .eval(&b.name, per_task.then_some(task.as_str()), agent);
                if !images.contains(&image) {
                    images.push(image.clone());
                }
                for repeat in 1..=sel.repeat {
                    runs.push(PlannedRun {
                        benchmark: b.name.clone(),
                        task: task.clone(),
                        agent: agent.to_string(),
                        repeat,
                        repeats: sel.repeat,
                        image: image.clone(),
                        model: sel.model.clone(),
                        replay: sel.replay.clone(),
                    });
                }
            }
        }
    }
    let request = match requests.len() {
        1 => requests.pop().expect("one"),
        _ => Request::Many(requests),
    };
    Ok(Matrix {
        runs,
        request,
        images,
    })
}

/// `<output>/<benchmark>/<task lowercased>/<agent>`.
pub fn agent_dir(output: &Path, benchmark: &str, task: &str, agent: &str) -> PathBuf {
    output
        .join(benchmark)
        .join(crate::naming::task_component(task))
        .join(agent)
}

/// Whether an agent directory holds results per repeat (`repeat-<k>/`).
pub fn has_repeat_level(agent_dir: &Path) -> bool {
    std::fs::read_dir(agent_dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name()
                .to_str()
                .and_then(repeat_of_dir_name)
                .is_some()
                && e.path().is_dir()
        })
    })
}

/// Where `run`'s result goes: the agent directory, or its `repeat-<k>/` when the command
/// repeats or the cell already has the repeat level.
pub fn result_dir(output: &Path, run: &PlannedRun) -> PathBuf {
    let dir = agent_dir(output, &run.benchmark, &run.task, &run.agent);
    if run.repeats > 1 || has_repeat_level(&dir) {
        dir.join(format!("{REPEAT_PREFIX}{}", run.repeat))
    } else {
        dir
    }
}

/// Before repeated runs: a cell whose agent directory holds a flat result (from a run
/// without repeats) gets it moved to `repeat-1/`, where it counts as repeat 1. Returns
/// one line per move.
pub fn adopt_flat_results(output: &Path, runs: &[PlannedRun]) -> anyhow::Result<Vec<String>> {
    use anyhow::Context as _;
    let mut notes = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for run in runs.iter().filter(|r| r.repeats > 1) {
        let dir = agent_dir(output, &run.benchmark, &run.task, &run.agent);
        if !seen.insert(dir.clone()) || !dir.join("run.json").is_file() {
            continue;
        }
        let parent = dir.parent().expect("agent dir has a parent");
        let moving = tempfile::Builder::new()
            .prefix(&format!(".{}.adopt-", run.agent))
            .tempdir_in(parent)
            .with_context(|| format!("creating a directory in {}", parent.display()))?
            .keep();
        let inner = moving.join(format!("{REPEAT_PREFIX}1"));
        std::fs::rename(&dir, &inner).with_context(|| format!("moving {} aside", dir.display()))?;
        std::fs::rename(&moving, &dir)
            .with_context(|| format!("moving results to {}", inner.display()))?;
        // run.json said nothing about repeats: it was repeat 1.
        notes.push(format!(
            "{} holds a run without repeats: it is repeat 1 now ({})",
            dir.display(),
            dir.join(format!("{REPEAT_PREFIX}1")).display()
        ));
    }
    Ok(notes)
}

/// What `dir` holds for a run that must be made from `want`.
///
/// Current means: `run.json` and a readable `result.json` v1 are there, the runner
/// exited 0 (it completed, whatever the score), and `run.json`'s `made_from` equals
/// `want`. A result from before `made_from` was recorded counts as made from
/// something else.
pub fn existing(dir: &Path, want: &MadeFrom) -> Existing {
    let record = dir.join("run.json");
    let text = match std::fs::read_to_string(&record) {
        Ok(t) => t,
        Err(_) if !dir.exists() => return Existing::Missing,
        Err(_) => return Existing::Redo("no run.json (an unfinished or foreign run)".into()),
    };
    let view: RecordView = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return Existing::Redo(format!("run.json is unreadable: {e}")),
    };
    if view.runner_exit != 0 {
        return Existing::Redo(format!(
            "the last run did not complete (runner exit {})",
            view.runner_exit
        ));
    }
    if let Err(e) = crate::report::read_result(&dir.join("result.json")) {
        return Existing::Redo(format!("{e:#}"));
    }
    match view.made_from {
        None => Existing::Redo("run.json does not say what the result was made from".into()),
        Some(m) if m == *want => Existing::Current,
        Some(m) => Existing::Redo(differences(&m, want)),
    }
}

fn differences(had: &MadeFrom, want: &MadeFrom) -> String {
    let mut why = Vec::new();
    if had.inputs_digest != want.inputs_digest {
        why.push("the eval image changed".to_string());
    }
    if had.model != want.model {
        why.push(format!(
            "model {} then, {} now",
            had.model.as_deref().unwrap_or("(none)"),
            want.model.as_deref().unwrap_or("(none)")
        ));
    }
    if had.replay != want.replay {
        why.push("another replay fixture".to_string());
    }
    if had.repeat != want.repeat {
        why.push(format!("repeat {} then, {} now", had.repeat, want.repeat));
    }
    why.join("; ")
}

/// The identity of a replay fixture: `sha256:<hex>` of its bytes.
pub fn fixture_identity(path: &Path) -> anyhow::Result<String> {
    use anyhow::Context as _;
    use sha2::Digest as _;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(&bytes))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet() -> Fleet {
        Fleet::load(Path::new(env!("CARGO_MANIFEST_DIR")), Default::default()).unwrap()
    }

    fn sel(benchmarks: &[&str], agents: &[&str], tasks: &[&str], repeat: u32) -> Selection {
        Selection {
            benchmarks: benchmarks.iter().map(|s| s.to_string()).collect(),
            agents: agents.iter().map(|s| s.to_string()).collect(),
            tasks: tasks.iter().map(|s| s.to_string()).collect(),
            repeat,
            ..Default::default()
        }
    }

    fn refusal(err: anyhow::Error) -> String {
        err.downcast_ref::<Refused>()
            .map(|r| r.0.clone())
            .unwrap_or_else(|| panic!("not refused: {err:#}"))
    }

    #[test]
    fn every_task_agent_and_repeat() {
        let f = fleet();
        let m = select(&f, &sel(&["terminal-lite"], &["oracle", "null"], &[], 2)).unwrap();
        let tl = &f.benchmark("terminal-lite").unwrap().tasks;
        assert_eq!(m.runs.len(), tl.len() * 2 * 2);
        assert_eq!(
            m.images.len(),
            tl.len() * 2,
            "per-task: one image per task and agent"
        );
        let first = &m.runs[0];
        assert_eq!(
            (first.task.as_str(), first.agent.as_str(), first.repeat),
            (tl[0].as_str(), "oracle", 1)
        );
        assert_eq!(m.runs[1].repeat, 2);
        assert_eq!(
            first.label(),
            format!("terminal-lite/{} × oracle #1", tl[0])
        );
        assert!(matches!(m.request, Request::Many(ref r) if r.len() == tl.len() * 2));
    }

    #[test]
    fn shared_env_benchmarks_need_one_image_per_agent() {
        let f = fleet();
        let m = select(&f, &sel(&["metric-backfill"], &["null"], &[], 1)).unwrap();
        assert_eq!(m.images.len(), 1);
        assert!(m.runs.len() >= 2);
        assert!(matches!(m.request, Request::Eval { task: None, .. }));
    }

    #[test]
    fn all_means_every_benchmark_and_names_are_not_doubled() {
        let f = fleet();
        let m = select(
            &f,
            &Selection {
                all: true,
                ..sel(
                    &["terminal-lite", "terminal-lite"],
                    &["null", "null"],
                    &[],
                    1,
                )
            },
        )
        .unwrap();
        let tasks: usize = f.benchmarks.iter().map(|b| b.tasks.len()).sum();
        assert_eq!(m.runs.len(), tasks);
        assert_eq!(m.runs[0].benchmark, "terminal-lite", "named ones first");
    }

    #[test]
    fn a_task_applies_to_the_benchmarks_that_have_it() {
        let f = fleet();
        let m = select(
            &f,
            &sel(
                &["terminal-lite", "metric-backfill"],
                &["null"],
                &["count-lines"],
                1,
            ),
        )
        .unwrap();
        assert_eq!(m.runs.len(), 1);
        let err = refusal(
            select(
                &f,
                &sel(
                    &["terminal-lite", "metric-backfill"],
                    &["null"],
                    &["nope"],
                    1,
                ),
            )
            .unwrap_err(),
        );
        assert!(err.contains("\"nope\" is in none of"), "{err}");
        let err = refusal(
            select(&f, &sel(&["terminal-lite"], &["null"], &["count-line"], 1)).unwrap_err(),
        );
        assert!(err.contains("count-lines"), "suggests the near name: {err}");
    }

    #[test]
    fn bad_selections_are_refused() {
        let f = fleet();
        for (s, needle) in [
            (sel(&["terminal-lite"], &[], &[], 1), "--agent"),
            (sel(&[], &["null"], &[], 1), "--all"),
            (sel(&["terminal-lite"], &["null"], &[], 0), "--repeat"),
            (sel(&["nope"], &["null"], &[], 1), "nope"),
            (sel(&["terminal-lite"], &["nobody"], &[], 1), "nobody"),
            (sel(&["terminal-lite"], &["null"], &["../x"], 1), "../x"),
        ] {
            let err = refusal(select(&f, &s).unwrap_err());
            assert!(err.contains(needle), "{s:?}: {err}");
        }
    }

    fn write_run(dir: &Path, exit: i64, made_from: Option<&MadeFrom>) {
        std::fs::create_dir_all(dir).unwrap();
        let record = serde_json::json!({"runner_exit": exit, "made_from": made_from});
        std::fs::write(dir.join("run.json"), record.to_string()).unwrap();
        let result = serde_json::json!({
            "schema_version": "1", "run_id": "r", "status": "completed",
            "task": {"id": "t"}, "agent": {"id": "a", "exit_code": 0, "timed_out": false, "wall_sec": 1.0},
            "score": {"mode": "reward", "value": 1.0, "passed": true, "raw_value": 1.0},
            "timing": {"started_at": "2026-01-01T00:00:00Z", "wall_sec": 1.0}
        });
        std::fs::write(dir.join("result.json"), result.to_string()).unwrap();
    }

    #[test]
    fn only_complete_results_made_from_the_same_inputs_are_current() {
        let tmp = tempfile::tempdir().unwrap();
        let want = MadeFrom {
            inputs_digest: "sha256:a".into(),
            model: Some("m1".into()),
            replay: None,
            repeat: 1,
        };
        let dir = tmp.path().join("x");
        assert_eq!(existing(&dir, &want), Existing::Missing);
        write_run(&dir, 0, Some(&want));
        assert_eq!(existing(&dir, &want), Existing::Current);
        for (other, needle) in [
            (
                MadeFrom {
                    inputs_digest: "sha256:b".into(),
                    ..want.clone()
                },
                "image changed",
            ),
            (
                MadeFrom {
                    model: None,
                    ..want.clone()
                },
                "model",
            ),
            (
                MadeFrom {
                    replay: Some("sha256:f".into()),
                    ..want.clone()
                },
                "replay",
            ),
            (
                MadeFrom {
                    repeat: 2,
                    ..want.clone()
                },
                "repeat",
            ),
        ] {
            match existing(&dir, &other) {
                Existing::Redo(why) => assert!(why.contains(needle), "{why}"),
                e => panic!("{e:?}"),
            }
        }
        write_run(&dir, 1, Some(&want));
        assert!(
            matches!(existing(&dir, &want), Existing::Redo(w) if w.contains("did not complete"))
        );
        write_run(&dir, 0, None);
        assert!(matches!(existing(&dir, &want), Existing::Redo(_)));
        write_run(&dir, 0, Some(&want));
        std::fs::write(dir.join("result.json"), "{").unwrap();
        assert!(matches!(existing(&dir, &want), Existing::Redo(_)));
        std::fs::remove_file(dir.join("run.json")).unwrap();
        assert!(matches!(existing(&dir, &want), Existing::Redo(_)));
    }

    #[test]
    fn repeats_get_a_level_and_flat_results_become_repeat_one() {
        let tmp = tempfile::tempdir().unwrap();
        let run = |repeat, repeats| PlannedRun {
            benchmark: "b".into(),
            task: "Fix.Config".into(),
            agent: "null".into(),
            repeat,
            repeats,
            image: "i".into(),
            model: None,
            replay: None,
        };
        let flat = tmp.path().join("b/fix.config/null");
        assert_eq!(result_dir(tmp.path(), &run(1, 1)), flat);
        assert_eq!(result_dir(tmp.path(), &run(2, 3)), flat.join("repeat-2"));
        write_run(&flat, 0, None);
        let notes = adopt_flat_results(tmp.path(), &[run(1, 3), run(2, 3)]).unwrap();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(flat.join("repeat-1/result.json").is_file());
        assert!(!flat.join("run.json").exists());
        // Once repeated, a single run finds its repeat 1 in the repeat level.
        assert_eq!(result_dir(tmp.path(), &run(1, 1)), flat.join("repeat-1"));
        assert!(adopt_flat_results(tmp.path(), &[run(1, 3)])
            .unwrap()
            .is_empty());
        assert_eq!(repeat_of_dir_name("repeat-12"), Some(12));
        assert_eq!(repeat_of_dir_name("repeat-0"), None);
        assert_eq!(repeat_of_dir_name("oracle"), None);
    }
}
