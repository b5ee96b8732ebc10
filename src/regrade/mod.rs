//! `kiln regrade RESULTS`: the graders of the current fleet run again on the kept
//! state of earlier runs (`kiln run --keep-state`), without the agent and without a
//! model, and each new result goes beside the run's own ([`crate::report::regraded`]).
//!
//! 1. [`runs`]: the runs under RESULTS, narrowed by `--benchmark`/`--task-id`, and
//!    which of them can be regraded (kept state, still in the fleet);
//! 2. the eval images those runs need are built the way `kiln run` builds them (a
//!    changed grader file changes the image's inputs, so it is rebuilt; otherwise it
//!    is only checked);
//! 3. [`grade`]: one container per run, at most `jobs` at a time;
//! 4. per run the run's own verdict and the new one, then the runs that flipped.
//!
//! Exit status: 0 every regradable run was regraded; 1 one could not be, or none was
//! regradable; 2 refused input (no results, a name without results); 130 interrupted.

pub mod eval_containers;
pub mod grade;
pub mod harbor;
pub mod runs;

use crate::printer::{errln, outln};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use futures_util::StreamExt as _;
use tokio::sync::watch;

use crate::error::Failure;
use crate::fleet::Fleet;
use crate::plan::Request;
use crate::printer::Mode;
use crate::report::regraded;
use crate::run::reap::{self, Owner};
use crate::run::{container, images, local, matrix};
use crate::store::Store;

/// What to regrade and how to build.
#[derive(Debug, Clone)]
pub struct Options {
    pub results: PathBuf,
    /// Only these benchmarks / tasks (all when empty).
    pub benchmarks: Vec<String>,
    pub tasks: Vec<String>,
    /// Regrades at once (None: as `kiln run`).
    pub jobs: Option<usize>,
    /// How eval images are built, as for `kiln run`.
    pub build: crate::run::Options,
}

/// How one run ended up.
enum End {
    NotRegradable(String),
    Done(Box<grade::Done>),
    Failed(String),
    Interrupted,
}

/// Regrades the runs `opts` names in the repository at `repo`; returns the exit status.
/// `build_info` gives the build-time labels, read only when something is to be built.
pub fn run(
    repo: &std::path::Path,
    opts: &Options,
    build_info: impl FnOnce() -> anyhow::Result<crate::labels::BuildInfo>,
) -> anyhow::Result<u8> {
    let selected = runs::selected(opts)?;
    let quiet = opts.build.progress == Mode::Quiet;
    let fleet = Fleet::load(repo, opts.build.vars.clone())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(reap::reap_and_say(&[Store::Docker]))?;

    // Which runs can be regraded, and from which eval image.
    let mut plan: Vec<Result<(String, String), String>> = Vec::new();
    for run in &selected {
        let mut verdict = runs::regradable(run, &fleet);
        if let Ok((kept, _)) = &verdict {
            match runtime.block_on(crate::run::kept_state::is_kept_state(kept))? {
                Some(true) => {}
                Some(false) => verdict = Err(format!("{kept} is not a kept-state image")),
                None => {
                    verdict = Err(format!(
                        "its kept state {kept} is no longer in Docker's image store (kiln clean removes it)"
                    ))
                }
            }
        }
        plan.push(verdict);
    }
    let wanted: BTreeSet<(String, String, String)> = selected
        .iter()
        .zip(&plan)
        .filter(|(_, p)| p.is_ok())
        .map(|(r, _)| (r.benchmark.clone(), r.task.clone(), r.agent.clone()))
        .collect();
    let images = if wanted.is_empty() {
        HashMap::new()
    } else {
        let mut build_opts = opts.build.clone();
        if !build_opts.no_build {
            build_opts.build_info = Some(build_info()?);
        }
        build(repo, &fleet, &wanted, &build_opts, &runtime)?
    };

    let owner = Owner::current();
    let mut jobs = Vec::new();
    let mut ends: Vec<Option<End>> = Vec::new();
    for (seq, (run, verdict)) in selected.iter().zip(plan).enumerate() {
        let job = verdict.and_then(|(kept, eval)| match images.get(&eval) {
            Some((Store::Docker, digest)) => Ok(grade::Job {
                run: run.clone(),
                kept_image: kept,
                inputs_digest: digest.clone(),
                container: format!(
                    "kiln-{}-{seq}-regrade-{}",
                    std::process::id(),
                    crate::naming::task_component(&run.task)
                ),
                eval_image: eval,
                labels: owner.labels(),
            }),
            Some((store, _)) => Err(format!(
                "its current eval image {eval} is in {store}'s store; build it with --backend engine or bake"
            )),
            None => Err(format!("{eval} was not built (a kiln bug)")),
        });
        match job {
            Ok(job) => {
                jobs.push((ends.len(), job));
                ends.push(None);
            }
            Err(why) => ends.push(Some(End::NotRegradable(why))),
        }
    }
    if !quiet && !jobs.is_empty() {
        errln!(
            "regrading {} of {} runs in {} with the current graders",
            jobs.len(),
            selected.len(),
            opts.results.display()
        );
    }
    let parallel = opts.jobs.unwrap_or_else(local::default_jobs).max(1);
    for (i, end) in runtime.block_on(regrade_all(&jobs, parallel)) {
        ends[i] = Some(end);
    }
    let ends: Vec<End> = ends
        .into_iter()
        .map(|e| e.unwrap_or(End::Interrupted))
        .collect();
    Ok(print(&selected, &ends))
}

/// Builds (or checks) the eval images of `wanted` (benchmark, task, agent) as `kiln run`
/// does; image → (store, input digest).
fn build(
    repo: &std::path::Path,
    fleet: &Fleet,
    wanted: &BTreeSet<(String, String, String)>,
    opts: &crate::run::Options,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<HashMap<String, (Store, String)>> {
    let mut requests = Vec::new();
    let mut images = Vec::new();
    for (b, t, a) in wanted {
        let bench = fleet.benchmark(b).map_err(|e| Failure::usage(e.0))?;
        let task = (bench.env == crate::fleet::Env::PerTask).then(|| t.clone());
        let request = Request::Eval {
            benchmark: b.clone(),
            agent: a.clone(),
            task: task.clone(),
        };
        let image = fleet.naming.eval(b, task.as_deref(), a);
        if !images.contains(&image) {
            images.push(image);
            requests.push(request);
        }
    }
    let m = matrix::Matrix {
        runs: Vec::new(),
        request: Request::Many(requests),
        images,
    };
    if opts.no_build {
        return runtime.block_on(images::existing_images(&m.images));
    }
    images::build(repo, fleet, &m, opts, runtime)
}

/// Runs `jobs`, `parallel` at a time, until done or SIGINT/SIGTERM (which stops and
/// removes the running containers); one end per job, by its index.
async fn regrade_all(jobs: &[(usize, grade::Job)], parallel: usize) -> Vec<(usize, End)> {
    let (tx, rx) = watch::channel(false);
    let tx = Arc::new(tx);
    let signals = {
        let tx = tx.clone();
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
            errln!("interrupted: stopping and removing the regrade containers");
            let _ = tx.send(true);
        })
    };
    let ends = futures_util::stream::iter(jobs.iter().map(|(i, job)| {
        let cancel = rx.clone();
        async move {
            let end = if *cancel.borrow() {
                End::Interrupted
            } else {
                match grade::regrade(job, cancel).await {
                    Ok(done) => End::Done(Box::new(done)),
                    Err(e) if e.downcast_ref::<container::Interrupted>().is_some() => {
                        End::Interrupted
                    }
                    Err(e) => End::Failed(format!("{e:#}")),
                }
            };
            (*i, end)
        }
    }))
    .buffer_unordered(parallel)
    .collect::<Vec<_>>()
    .await;
    signals.abort();
    ends
}

/// One line per run on stdout (its own verdict and the new one, or why not), then the
/// runs that flipped, then the counts on stderr; returns the exit status.
fn print(runs: &[runs::Found], ends: &[End]) -> u8 {
    let mut flips: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let (mut done, mut failed, mut not, mut stopped) = (0, 0, 0, 0);
    for (run, end) in runs.iter().zip(ends) {
        let label = run.label();
        match end {
            End::Done(d) => match &d.result {
                Some((path, r)) => {
                    done += 1;
                    let flip = regraded::flip(run.passed, r.score.passed);
                    outln!(
                        "{label}: {} → {}{} → {}",
                        regraded::verdict(run.score, run.passed),
                        regraded::verdict(r.score.value, r.score.passed),
                        if flip.is_empty() {
                            String::new()
                        } else {
                            format!("  {flip}")
                        },
                        path.display()
                    );
                    if !flip.is_empty() {
                        flips.entry(flip).or_default().push(label);
                    }
                }
                None => {
                    failed += 1;
                    outln!(
                        "{label}: regrade {} failed: {}",
                        d.n,
                        d.error.as_deref().unwrap_or("unknown")
                    );
                }
            },
            End::NotRegradable(why) => {
                not += 1;
                outln!("{label}: not regradable: {why}");
            }
            End::Failed(why) => {
                failed += 1;
                outln!("{label}: regrade failed: {why}");
            }
            End::Interrupted => stopped += 1,
        }
    }
    if done + failed + stopped == 0 {
        errln!(
            "error: nothing to regrade: no selected run has its kept state in Docker's image store \
             (kiln run --keep-state keeps it)"
        );
    }
    let flipped: usize = flips.values().map(Vec::len).sum();
    if done > 0 {
        outln!(
            "flipped: {flipped} ({} pass→fail, {} fail→pass)",
            flips.get("pass→fail").map_or(0, Vec::len),
            flips.get("fail→pass").map_or(0, Vec::len)
        );
    }
    for (kind, labels) in &flips {
        for label in labels {
            outln!("  {kind}  {label}");
        }
    }
    let mut line = format!(
        "{} runs: {done} regraded, {failed} failed, {not} not regradable",
        runs.len()
    );
    if stopped > 0 {
        line.push_str(&format!(
            "; interrupted: {stopped} not regraded (nothing written for them)"
        ));
    }
    errln!("{line}");
    if stopped > 0 {
        crate::error::Exit::Interrupted.code()
    } else if failed > 0 || done == 0 {
        1
    } else {
        0
    }
}
