//! Running a matrix on this machine: the selection checked, the containers of dead kiln
//! processes removed, every eval image built by one plan (or, when all are up to
//! date, only checked), kept results skipped, then at most `jobs` runs at a time;
//! SIGINT/SIGTERM stops and removes the running containers and exits 130 with the
//! finished results kept.
//!
//! Entry point: [`run`]; it returns the exit status (0 every run completed, 1 one
//! could not, 130 interrupted; refused input and no backend are errors carrying 2/3).

use crate::printer::{errln, outln};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::watch;

use super::display::Board;
pub(crate) use super::images::build;
use super::images::existing_images;
use super::matrix::{self, Existing, PlannedRun, Selection};
use super::reap::{self, Owner};
use super::{container, Outcome, RunSpec, ORACLE};
use super::{refused, Options};
use crate::error::Failure;
use crate::fleet::Fleet;
use crate::printer::Mode;
use crate::report;
use crate::store::Store;

/// Memory one run is given room for when choosing the default `--jobs` (the shipped
/// tasks' largest, a runner with PostgreSQL as a service, peaks near 200 MiB; agents
/// that call a model API hold little more, so 512 MiB leaves room).
pub const MEMORY_PER_RUN: u64 = 512 << 20;

/// The default number of runs at once: twice the CPUs (a run mostly waits: on the
/// engine, on its services, on a model API), but no more than the available memory
/// holds at [`MEMORY_PER_RUN`] each, and at least 1.
pub fn default_jobs() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let by_memory = available_memory().map_or(usize::MAX, |m| (m / MEMORY_PER_RUN) as usize);
    (2 * cpus).min(by_memory).max(1)
}

/// `MemAvailable` of /proc/meminfo, in bytes.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

pub(crate) fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One run, ready to go.
struct Ready {
    run: PlannedRun,
    spec: RunSpec,
}

/// How a run ended.
enum End {
    Completed(Box<Outcome>),
    /// Started, but no result came out (infrastructure error), and why.
    Failed(String),
    /// Stopped by SIGINT/SIGTERM: its container removed, nothing written.
    Interrupted,
    /// Not started before the interrupt.
    NotStarted,
}

/// Runs `selection` from the repository at `repo`; returns the exit status.
pub fn run(repo: &Path, selection: &Selection, opts: &Options) -> anyhow::Result<u8> {
    if let Some(bad) = opts.pass_env.iter().find(|n| !valid_env_name(n)) {
        return Err(Failure::usage(format!(
            "--pass-env {bad:?} is not an environment variable name"
        )));
    }
    if let Some(missing) = opts
        .pass_env
        .iter()
        .find(|n| crate::env::named(n).is_none())
    {
        return Err(Failure::usage(format!(
            "--pass-env {missing}: {missing} is not set in kiln's environment"
        )));
    }
    let fleet = Fleet::load(repo, opts.vars.clone())?;
    let matrix = matrix::select(&fleet, selection).map_err(refused)?;
    let solutions = solutions(repo, &matrix.runs)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;

    let single = matrix.runs.len() == 1;
    let quiet = opts.progress == Mode::Quiet;
    let say = |line: String| {
        if !quiet {
            errln!("{line}");
        }
    };

    // Containers of kiln processes that died (SIGKILL) go first.
    runtime.block_on(reap::reap_and_say(&[Store::Docker]))?;

    let images = if opts.no_build {
        runtime.block_on(existing_images(&matrix.images))?
    } else {
        build(repo, &fleet, &matrix, opts, &runtime)?
    };
    if let Some((image, _)) = images.iter().find(|(_, (s, _))| *s == Store::Podman) {
        if opts.keep_state {
            return Err(Failure::usage(format!(
                "--keep-state commits containers of the Docker Engine only, and {image} is in podman's store; \
                 build it with --backend engine or bake"
            )));
        }
        runtime.block_on(reap::reap_and_say(&[Store::Podman]))?;
    }

    for note in matrix::adopt_flat_results(&opts.output, &matrix.runs)? {
        say(format!("note: {note}"));
    }
    let owner = Owner::current();
    let mut ready = Vec::new();
    let mut kept = Vec::new();
    for (seq, run) in matrix.runs.iter().enumerate() {
        let (store, digest) = images[&run.image].clone();
        let made_from = run.made_from(&digest);
        let dir = matrix::result_dir(&opts.output, run);
        if !opts.force {
            let mut existing = matrix::existing(&dir, &made_from);
            if opts.keep_state && existing == Existing::Current {
                if let Some(why) = runtime.block_on(state_missing(&dir)) {
                    existing = Existing::Redo(why);
                }
            }
            match existing {
                Existing::Current => {
                    kept.push((run.clone(), dir));
                    continue;
                }
                Existing::Redo(why) if !single => {
                    say(format!("{}: running again: {why}", run.label()));
                }
                _ => {}
            }
        }
        let spec = RunSpec {
            benchmark: run.benchmark.clone(),
            task: run.task.clone(),
            agent: run.agent.clone(),
            image: run.image.clone(),
            store,
            model: run.model.clone(),
            pass_env: opts.pass_env.clone(),
            agent_timeout: opts.agent_timeout,
            gateway: opts.gateway.clone(),
            // Only the oracle gets the solution, even when the matrix also runs the task
            // with another agent.
            solution: (run.agent == ORACLE)
                .then(|| {
                    solutions
                        .get(&(run.benchmark.clone(), run.task.clone()))
                        .cloned()
                })
                .flatten(),
            dir,
            echo_progress: single && !quiet,
            container: super::container_name(
                seq,
                &run.benchmark,
                &run.task,
                &run.agent,
                run.repeat,
            ),
            labels: owner.labels(),
            made_from: Some(made_from),
            keep_state: opts.keep_state,
        };
        ready.push(Ready {
            run: run.clone(),
            spec,
        });
    }
    if !kept.is_empty() {
        if single {
            errln!(
                "kept: {} already has a complete result made from the same eval image, model and repeat \
                 (--force runs it again)",
                kept[0].1.display()
            );
        } else {
            say(format!(
                "{} of {} runs already have a complete, current result: kept (--force runs them again)",
                kept.len(),
                matrix.runs.len()
            ));
        }
    }

    let jobs = opts.jobs.unwrap_or_else(default_jobs).max(1);
    let ends = if ready.is_empty() {
        Vec::new()
    } else if single {
        let r = &ready[0];
        errln!(
            "running {} [{}]: task {}, agent {}",
            r.spec.image,
            r.spec.store,
            r.spec.task,
            r.spec.agent
        );
        runtime.block_on(run_all(&ready, 1, None))
    } else {
        say(format!(
            "running {} of {} runs, {jobs} at a time (results in {})",
            ready.len(),
            matrix.runs.len(),
            opts.output.display()
        ));
        let board = Board::new(opts.progress, ready.len());
        let ends = runtime.block_on(run_all(&ready, jobs, Some(&board)));
        board.finish();
        ends
    };
    let interrupted = ends
        .iter()
        .any(|e| matches!(e, End::Interrupted | End::NotStarted));
    let failed = ends.iter().filter(|e| matches!(e, End::Failed(_))).count();
    let not_completed = ends
        .iter()
        .filter(|e| matches!(e, End::Completed(o) if !completed(o)))
        .count();

    if single && !ready.is_empty() {
        print_single(&ends[0], &ready[0]);
    } else if single {
        print_kept_single(&kept[0].1);
    } else {
        print_summary(&matrix.runs, &opts.output);
        let count = |f: fn(&End) -> bool| ends.iter().filter(|e| f(e)).count();
        let done = count(|e| matches!(e, End::Completed(_)));
        let stopped = count(|e| matches!(e, End::Interrupted));
        let not_started = count(|e| matches!(e, End::NotStarted));
        let mut line = format!(
            "{} runs: {} kept, {} completed, {} failed to run",
            matrix.runs.len(),
            kept.len(),
            done - not_completed,
            failed + not_completed,
        );
        if interrupted {
            line.push_str(&format!(
                "; interrupted: {stopped} stopped (containers removed, nothing written), \
                 {not_started} not started; run the same command again to finish"
            ));
        }
        errln!("{line}");
    }
    Ok(if interrupted {
        crate::error::Exit::Interrupted.code()
    } else if failed + not_completed > 0 {
        1
    } else {
        0
    })
}

/// Why a current result in `dir` does not do for `--keep-state`: its state was not kept,
/// or its image is gone. None when it does.
async fn state_missing(dir: &Path) -> Option<String> {
    let Some(image) = super::kept_state::recorded(dir).and_then(|k| k.image) else {
        return Some("its state was not kept (--keep-state)".into());
    };
    match super::kept_state::is_kept_state(&image).await {
        Ok(Some(true)) => None,
        _ => Some(format!("its kept state {image} is gone (--keep-state)")),
    }
}

/// Completed means the runner exited 0 with a readable result (whatever the score).
fn completed(o: &Outcome) -> bool {
    o.runner_exit == 0 && o.result.is_some()
}

/// The reference solution of every task an oracle runs, checked before anything runs.
pub(crate) fn solutions(
    repo: &Path,
    runs: &[PlannedRun],
) -> anyhow::Result<HashMap<(String, String), PathBuf>> {
    let mut out = HashMap::new();
    for run in runs.iter().filter(|r| r.agent == ORACLE) {
        let dir = repo
            .join("benchmarks")
            .join(&run.benchmark)
            .join("tasks")
            .join(&run.task)
            .join("solution");
        if !dir.join("solve.sh").is_file() {
            return Err(Failure::usage(format!(
                "task {} of {} has no reference solution ({}/solve.sh): the oracle cannot run it",
                run.task,
                run.benchmark,
                dir.display()
            )));
        }
        out.insert((run.benchmark.clone(), run.task.clone()), dir);
    }
    Ok(out)
}

/// Runs `ready`, `jobs` at a time, until done or SIGINT/SIGTERM; one end per run, in order
/// (runs never started count as interrupted).
async fn run_all(ready: &[Ready], jobs: usize, board: Option<&Board>) -> Vec<End> {
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let cancel_tx = Arc::new(cancel_tx);
    let signals = {
        let tx = cancel_tx.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            let _ = tx.send(true);
            // A second signal: stop waiting for the clean-up.
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            errln!("interrupted again: exiting without waiting; the next kiln run removes what is left");
            std::process::exit(crate::error::Exit::Interrupted.code().into());
        })
    };
    let mut ends: Vec<Option<End>> = (0..ready.len()).map(|_| None).collect();
    let mut running = tokio::task::JoinSet::new();
    let mut next = 0;
    let mut noted = false;
    loop {
        let stopping = *cancel_rx.borrow();
        if stopping && !noted {
            noted = true;
            let msg = format!(
                "interrupted: stopping and removing {} running container(s); finished results are kept",
                running.len()
            );
            match board {
                Some(b) => b.note(&msg),
                None => errln!("{msg}"),
            }
        }
        while !stopping && running.len() < jobs && next < ready.len() {
            let i = next;
            next += 1;
            if let Some(b) = board {
                b.started(&ready[i].run.label());
            }
            let spec = ready[i].spec.clone();
            let cancel = cancel_rx.clone();
            running.spawn(async move { (i, super::execute(&spec, cancel).await) });
        }
        if running.is_empty() {
            break;
        }
        let mut wake = cancel_rx.clone();
        tokio::select! {
            joined = running.join_next() => {
                let Some(Ok((i, result))) = joined else { continue };
                let end = match result {
                    Ok(outcome) => End::Completed(Box::new(outcome)),
                    Err(e) if e.downcast_ref::<container::Interrupted>().is_some() => End::Interrupted,
                    Err(e) => End::Failed(format!("{e:#}")),
                };
                if let Some(b) = board {
                    show(b, &ready[i].run, &end);
                }
                ends[i] = Some(end);
            }
            _ = wake.changed(), if !stopping => {}
        }
    }
    signals.abort();
    ends.into_iter()
        .map(|e| e.unwrap_or(End::NotStarted))
        .collect()
}

fn show(board: &Board, run: &PlannedRun, end: &End) {
    let what = run.label();
    match end {
        End::Completed(o) => match (&o.result, o.runner_exit) {
            (Some(r), 0) => board.completed(
                &what,
                r.score.passed,
                &format!(
                    "{}, score {:.4}{} in {:.1}s",
                    if r.score.passed {
                        "passed"
                    } else {
                        "not passed"
                    },
                    r.score.value,
                    match (r.score.highest_gate, r.score.n_gates) {
                        (Some(h), Some(n)) => format!(", gates {h}/{n}"),
                        _ => String::new(),
                    },
                    o.wall.as_secs_f64()
                ),
            ),
            (Some(r), code) => board.failed(
                &what,
                &format!(
                    "runner exit {code}, status {}{}; logs in {}",
                    r.status,
                    r.errors
                        .first()
                        .map(|e| format!(": {}: {}", e.phase, e.message))
                        .unwrap_or_default(),
                    o.dir.display()
                ),
            ),
            (None, code) => board.failed(
                &what,
                &format!(
                    "no readable result (runner exit {code}): {}; logs in {}",
                    o.result_error.as_deref().unwrap_or("unknown"),
                    o.dir.display()
                ),
            ),
        },
        End::Failed(why) => board.failed(&what, why),
        End::Interrupted | End::NotStarted => {}
    }
}

/// The single-run form's report: one line on stdout when it completed, the reason on
/// stderr when it did not (as `kiln run` always printed).
fn print_single(end: &End, ready: &Ready) {
    print_single_run(end, &ready.spec);
    if let End::Completed(o) = end {
        print_model(o);
        match o.kept.as_ref().map(|k| (&k.image, &k.error)) {
            Some((Some(image), _)) => {
                outln!("state kept as {image} (kiln regrade grades it again)")
            }
            Some((None, why)) => errln!(
                "warning: the state was not kept: {}",
                why.as_deref().unwrap_or("unknown")
            ),
            None => {}
        }
    }
}

/// The model gateway's counters of a run, and a warning when a replay diverged, ran
/// out or scored differently from its recording.
fn print_model(o: &super::Outcome) {
    let Some(stats) = &o.model else { return };
    outln!("model gateway: {}", stats.summary());
    let Some(r) = &stats.replay else { return };
    let score = o.result.as_ref().map_or(0.0, |r| r.score.value);
    let part = report::ReplayPart {
        turns_served: r.turns_served as u64,
        turns_recorded: r.turns_recorded as u64,
        diverged: r
            .diverged
            .iter()
            .map(|d| report::DivergencePart {
                turn: d.turn as u64,
                reason: d.reason.clone(),
            })
            .collect(),
        exhausted: r.exhausted as u64,
        recorded_score: r.recorded_score,
        score_equals_recorded: r.recorded_score.map(|rec| (rec - score).abs() < 1e-9),
    };
    let note = part.note(score);
    if !note.is_empty() {
        outln!("warning: {note}");
    }
}

fn print_single_run(end: &End, spec: &super::RunSpec) {
    match end {
        End::Completed(o) => match (&o.result, o.runner_exit) {
            (Some(r), 0) => {
                let gates = match (r.score.highest_gate, r.score.n_gates) {
                    (Some(h), Some(n)) => format!(", gates {h}/{n}"),
                    _ => String::new(),
                };
                outln!(
                    "{}/{} × {}: {}, score {:.4} ({}{gates}), {} in {:.1}s → {}",
                    spec.benchmark,
                    spec.task,
                    spec.agent,
                    r.status,
                    r.score.value,
                    r.score.mode,
                    if r.score.passed {
                        "passed"
                    } else {
                        "not passed"
                    },
                    o.wall.as_secs_f64(),
                    o.dir.join("result.json").display()
                );
            }
            (Some(r), code) => errln!(
                "error: the run did not complete (runner exit {code}, status {}{}); logs in {}",
                r.status,
                r.errors
                    .first()
                    .map(|e| format!(": {}: {}", e.phase, e.message))
                    .unwrap_or_default(),
                o.dir.display()
            ),
            (None, code) => errln!(
                "error: the run left no readable result (runner exit {code}): {}; logs in {}",
                o.result_error.as_deref().unwrap_or("unknown"),
                o.dir.display()
            ),
        },
        End::Failed(why) => errln!("error: {why}"),
        End::Interrupted | End::NotStarted => errln!(
            "interrupted: container {} stopped and removed; nothing was written",
            spec.container
        ),
    }
}

fn print_kept_single(dir: &Path) {
    if let Ok(r) = report::read_result(&dir.join("result.json")) {
        outln!(
            "{} × {}: {}, score {:.4} ({}), {} (kept) → {}",
            r.task.id,
            r.agent.id,
            r.status,
            r.score.value,
            r.score.mode,
            if r.score.passed {
                "passed"
            } else {
                "not passed"
            },
            dir.join("result.json").display()
        );
    }
}

/// The benchmark × agent summary of the matrix's results (kept and new), as `kiln report`
/// prints it, on stdout.
pub(crate) fn print_summary(runs: &[PlannedRun], output: &Path) {
    let mut rows = Vec::new();
    for run in runs {
        let dir = matrix::result_dir(output, run);
        if let Ok(r) = report::read_result(&dir.join("result.json")) {
            rows.push(report::Row::new(
                run.benchmark.clone(),
                r,
                dir.join("result.json"),
            ));
        }
    }
    let summary = report::summarize(&rows);
    if !summary.is_empty() {
        crate::printer::out_text(&report::summary_table(&summary));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_jobs_is_positive_and_bounded_by_cpus() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let j = default_jobs();
        assert!(j >= 1 && j <= 2 * cpus, "{j}");
    }

    #[test]
    fn env_names() {
        assert!(valid_env_name("MODEL_API_KEY"));
        assert!(!valid_env_name("1X"));
        assert!(!valid_env_name("A-B"));
    }
}
