//! `kiln validate` of a Harbor dataset: each task's environment is built (an unchanged
//! one is up to date), then oracle and null each run one trial ([`crate::run::harbor`]),
//! both at once.
//! A task is valid when oracle's reward is 1 and null's is not; a task this machine
//! cannot run (Windows, GPU, a cloud sandbox…) is listed with the reason, not failed.
//! Each trial leaves `result.json` (kiln's format, so `kiln report` reads it) and its
//! logs under `<kiln cache>/harbor/<dataset>/results/<dataset>/<task>/<agent>/`.
//!
//! Verdicts are recorded in the dataset's `.kiln/validation.json` ([`super::Record`], as
//! for kiln's own fleets) under what the trials are made of: the input digests of the
//! task's images and a digest of everything else they read — `task.toml` as parsed
//! (without kiln's own pin, which changes what Harbor runs, not what kiln's trials do),
//! the instruction, tests, solution and steps. An unchanged task is answered from the
//! record (`--force` runs it again).

use crate::printer::{errln, outln};
use std::path::{Path, PathBuf};

use super::{Options, Record, Verdict};
use crate::error::Failure;
use crate::fleet::layout::harbor::Task;
use crate::fleet::Fleet;
use crate::labels::BuildInfo;
use crate::plan::base_map::BaseMap;
use crate::plan::{self, Request};
use crate::run::harbor::{write_result, Agent, Outcome, Trial};
use crate::run::reap::Owner;

/// One task's verdict.
#[derive(Debug)]
pub struct TaskVerdict {
    pub task: String,
    pub oracle: Option<f64>,
    pub null: Option<f64>,
    /// `None`: valid. Otherwise why not, or why it did not run.
    pub problem: Option<String>,
    /// It could not run here (not counted against the dataset).
    pub skipped: bool,
}

/// Builds and validates the tasks `opts` names (all by default), printing a line per
/// task as it is decided.
pub fn validate(
    fleet: &Fleet,
    info: &BuildInfo,
    opts: &Options,
    base_map: &BaseMap,
) -> anyhow::Result<Vec<TaskVerdict>> {
    let ds = fleet.layout.dataset.as_ref().expect("a Harbor fleet");
    let bench = &fleet.benchmarks[0];
    for b in &opts.benchmarks {
        fleet.benchmark(b).map_err(|r| Failure::usage(r.0))?;
    }
    let mut tasks: Vec<&Task> = Vec::new();
    for t in &opts.tasks {
        let id = bench.task(t).map_err(|e| Failure::usage(e.to_string()))?;
        tasks.extend(ds.task(id));
    }
    if opts.tasks.is_empty() {
        tasks = ds.tasks.iter().collect();
    }
    let mut verdicts = Vec::new();
    let mut runnable = Vec::new();
    for t in tasks {
        let no_oracle = t
            .missing_solution(&fleet.root)
            .map(|f| format!("no {}: oracle cannot check it", f.display()));
        match t.cannot_run(&fleet.root).or(no_oracle) {
            Some(why) => {
                outln!("{}: cannot run here: {why}", t.id);
                verdicts.push(TaskVerdict {
                    task: t.id.clone(),
                    oracle: None,
                    null: None,
                    problem: Some(why),
                    skipped: true,
                });
            }
            None => {
                for note in plan::harbor::hosts_notes(&fleet.root, t, false) {
                    errln!("note: {note}");
                }
                runnable.push(t)
            }
        }
    }
    if runnable.is_empty() {
        return Ok(verdicts);
    }
    let request = Request::Many(
        runnable
            .iter()
            .map(|t| Request::Benchmark {
                benchmark: bench.name.clone(),
                task: Some(t.id.clone()),
            })
            .collect(),
    );
    let mut plan = plan::harbor::plan(fleet, &request, info, base_map)
        .map_err(crate::fleet::refused_to_usage)?;
    plan.notes.clear(); // said above, per task
    let summary = super::build_unless_built(fleet, plan, opts, opts.force)?;
    let failed_builds: Vec<String> = summary
        .outcomes
        .iter()
        .filter(|o| {
            !matches!(
                o.status,
                crate::build::Status::Built { .. } | crate::build::Status::UpToDate { .. }
            )
        })
        .map(|o| o.image.clone())
        .collect();
    crate::run::harbor::catch_interrupts();
    let owner = Owner::current();
    let out_root = results_dir(&fleet.root)?;
    let record = if opts.force {
        Record::default()
    } else {
        Record::load(&opts.repo)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut decided: Vec<Verdict> = Vec::new();
    for t in runnable {
        let images = plan::harbor::images(fleet, t);
        let mut imgs = vec![images.environment.clone()];
        imgs.extend(images.verifiers.values().map(|(i, _)| i.clone()));
        if let Some(bad) = imgs.iter().find(|i| failed_builds.contains(i)) {
            let why = format!("the build of {bad} failed");
            outln!("{}: NOT VALID: {why}", t.id);
            verdicts.push(TaskVerdict {
                task: t.id.clone(),
                oracle: None,
                null: None,
                problem: Some(why),
                skipped: false,
            });
            continue;
        }
        let key = record_key(fleet, t, &imgs, &summary, &rt)?;
        if let Some(v) = record.lookup(&bench.name, &t.id, &key.0, &key.0, &key.1) {
            let show = |r: Option<f64>| r.map_or("none".to_string(), |r| r.to_string());
            match &v.problem {
                None => outln!(
                    "{}: valid (recorded: oracle {}, null {})",
                    t.id,
                    show(v.oracle_score),
                    show(v.null_score)
                ),
                Some(p) => outln!("{}: NOT VALID (recorded): {p}", t.id),
            }
            verdicts.push(TaskVerdict {
                task: t.id.clone(),
                oracle: v.oracle_score,
                null: v.null_score,
                problem: v.problem.clone(),
                skipped: false,
            });
            continue;
        }
        // Oracle and null at once, each on its own thread with its own containers
        // (named by agent: see `Trial::name`).
        let run_trial = |agent: Agent| -> anyhow::Result<Outcome> {
            let out = out_root
                .join(&bench.name)
                .join(crate::naming::task_component(&t.id))
                .join(agent.name());
            let _ = std::fs::remove_dir_all(&out);
            let trial = Trial {
                root: &fleet.root,
                task: t,
                agent,
                images: images.clone(),
                out: out.clone(),
                dry_run: false,
                labels: owner.labels(),
                keep: None,
            };
            let outcome = trial.run(&mut |_| {}).unwrap_or_else(|e| Outcome {
                error: Some(format!("{e:#}")),
                ..Outcome::default()
            });
            if !crate::run::harbor::interrupted() {
                write_result(&out, &bench.name, t, agent, &outcome)?;
            }
            Ok(outcome)
        };
        let outcomes = std::thread::scope(|scope| {
            let null = scope.spawn(|| run_trial(Agent::Null));
            let oracle = run_trial(Agent::Oracle);
            let null = null
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the null trial's thread panicked")));
            [oracle, null]
        });
        if crate::run::harbor::interrupted() {
            return Err(Failure::interrupted(
                "validation interrupted: the trial's containers were removed",
            ));
        }
        let mut scores = [None, None];
        let mut errors = Vec::new();
        for (i, (agent, outcome)) in [Agent::Oracle, Agent::Null]
            .into_iter()
            .zip(outcomes)
            .enumerate()
        {
            let outcome = outcome?;
            if let Some(e) = &outcome.error {
                errors.push(format!("{}: {e}", agent.name()));
            }
            scores[i] = outcome.reward;
        }
        let [oracle, null] = scores;
        let problem = if oracle != Some(1.0) {
            Some(match oracle {
                Some(r) => format!("oracle's reward is {r}, not 1"),
                None => format!("oracle got no reward ({})", errors.join("; ")),
            })
        } else if null.is_some_and(|r| r >= 1.0) {
            Some("null's reward is 1: the tests pass without any work".to_string())
        } else {
            None
        };
        let show = |r: Option<f64>| r.map_or("none".to_string(), |r| r.to_string());
        match &problem {
            None => outln!(
                "{}: valid (oracle {}, null {})",
                t.id,
                show(oracle),
                show(null)
            ),
            Some(p) => outln!("{}: NOT VALID: {p}", t.id),
        }
        // Only a verdict both trials reached is kept (a failed `docker run` is not one).
        if oracle.is_some() && null.is_some() {
            decided.push(Verdict {
                benchmark: bench.name.clone(),
                task: t.id.clone(),
                oracle_inputs: key.0.clone(),
                null_inputs: key.0.clone(),
                solution: key.1.clone(),
                oracle_score: oracle,
                null_score: null,
                null_passed: null.map(|r| r >= 1.0),
                valid: problem.is_none(),
                problem: problem.clone(),
            });
            Record::save(&opts.repo, &decided)?;
        }
        verdicts.push(TaskVerdict {
            task: t.id.clone(),
            oracle,
            null,
            problem,
            skipped: false,
        });
    }
    outln!("trial logs and result.json files: {}", out_root.display());
    Ok(verdicts)
}

/// What a verdict of `task` is recorded under: a digest of its images' input digests,
/// and a digest of what its trials read besides the images.
fn record_key(
    fleet: &Fleet,
    task: &Task,
    images: &[String],
    built: &crate::build::Summary,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<(String, String)> {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    for image in images {
        let store = built
            .outcomes
            .iter()
            .find(|o| o.image == *image)
            .map_or(crate::store::Store::Docker, |o| o.store);
        h.update(super::inputs_digest(rt, image, store)?);
        h.update([0]);
    }
    let images = format!("sha256:{}", hex::encode(h.finalize()));
    Ok((images, run_inputs(fleet, task)?))
}

/// A digest of everything a trial of `task` reads from the dataset apart from the
/// images: `task.toml` as parsed (kiln's own pin left out) and every file of the task's
/// folder outside `environment/` (instruction, tests, solution, steps).
fn run_inputs(fleet: &Fleet, task: &Task) -> anyhow::Result<String> {
    use sha2::{Digest as _, Sha256};
    use std::os::unix::fs::PermissionsExt as _;
    let dir = fleet.root.join(&task.dir);
    let file = dir.join(crate::fleet::layout::harbor::dataset::TASK_FILE);
    let text = std::fs::read_to_string(&file)?;
    let path = plan::harbor::repository_path(fleet, task);
    let mut h = Sha256::new();
    h.update(crate::fleet::layout::harbor::pin::trial_config(
        &text, &path,
    )?);
    let skip = |e: &walkdir::DirEntry| {
        let rel = e.path().strip_prefix(&dir).unwrap_or(e.path());
        let first = rel.components().next().map(|c| c.as_os_str().to_owned());
        !matches!(
            first.as_deref().and_then(|f| f.to_str()),
            Some("environment" | ".kiln" | "task.toml")
        )
    };
    for entry in walkdir::WalkDir::new(&dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(skip)
    {
        let entry = entry?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(&dir)?
            .to_string_lossy()
            .into_owned();
        let exec = entry.metadata()?.permissions().mode() & 0o111 != 0;
        let body = std::fs::read(entry.path())?;
        h.update(format!("\0{rel}\0{exec}\0{}\0", body.len()));
        h.update(&body);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// Where the trials of the dataset at `root` leave their results.
pub fn results_dir(root: &Path) -> anyhow::Result<PathBuf> {
    Ok(plan::harbor::state_dir(root)?.join("results"))
}
