//! `kiln validate`: runs the `oracle` and the `null` agent on every task of the named
//! benchmarks and decides whether each benchmark is *valid* — every task scores 1.0
//! with `oracle` and does not pass with `null` (RULES.md, Released). The eval images
//! are built first when missing or stale; each verdict is recorded
//! ([`record::Record`], `.kiln/validation.json`) under the input digests of the two
//! eval images that ran, so an unchanged benchmark is answered from the record.

pub mod eval_containers;
pub mod harbor;
pub mod record;

use crate::printer::outln;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{anyhow, bail};

use crate::backend::detect::Requested;
use crate::build::Summary;
use crate::ensure::{ensure, Settings, Use};
use crate::error::Failure;
use crate::fleet::{Env, Fleet};
use crate::labels::{self, BuildInfo};
use crate::plan::{self, Plan, Request};
use crate::run::{self, RunSpec};
use crate::store::{self, Store};

pub use record::{Record, Verdict};

/// The agent that must score 1.0 on every task.
pub const ORACLE: &str = run::ORACLE;
/// The agent that must not pass any task.
pub const NULL: &str = "null";

/// How to validate.
#[derive(Debug, Clone)]
pub struct Options {
    pub repo: PathBuf,
    /// Benchmarks to validate; empty: all.
    pub benchmarks: Vec<String>,
    /// Only these tasks (each must exist in at least one of the benchmarks); empty: all.
    pub tasks: Vec<String>,
    /// Runs (and builds) at once.
    pub jobs: usize,
    /// Run again even when the record has a verdict for the same images.
    pub force: bool,
    pub backend: Requested,
    pub progress: crate::printer::Mode,
    /// `--ca-bundle`: handed to the builds that mount the `ca-bundle` secret.
    pub ca_bundle: Option<PathBuf>,
    /// What the caller's own build just found (`kiln release` builds the same eval
    /// images first): used instead of a second build and up-to-date check when it
    /// covers every image validation needs.
    pub built: Option<crate::build::Summary>,
}

/// One benchmark's verdict.
#[derive(Debug, Clone)]
pub struct BenchmarkVerdict {
    pub benchmark: String,
    pub tasks: Vec<Verdict>,
    /// Verdicts taken from the record without running.
    pub recorded: usize,
}

impl BenchmarkVerdict {
    /// Every task valid (and at least one task).
    pub fn valid(&self) -> bool {
        !self.tasks.is_empty() && self.tasks.iter().all(|v| v.valid)
    }
}

/// One task to validate: its two eval images.
struct Job {
    benchmark: String,
    task: String,
    solution: String,
    oracle: (String, Store, String),
    null: (String, Store, String),
}

/// What the caller's own build found (`kiln release` builds the same images first) when
/// it covers every image of `plan`; otherwise `plan` built for runs (`ensure`).
fn build_unless_built(
    fleet: &Fleet,
    plan: Plan,
    opts: &Options,
    force: bool,
) -> anyhow::Result<Summary> {
    if let Some(built) = &opts.built {
        let covered = plan
            .builds
            .iter()
            .all(|b| built.outcomes.iter().any(|o| o.image == b.image));
        if covered {
            return Ok(built.clone());
        }
    }
    let settings = Settings {
        jobs: Some(opts.jobs),
        force,
        progress: opts.progress,
        ca_bundle: opts.ca_bundle.clone(),
        ..Settings::new(opts.backend)
    };
    ensure(&fleet.root, Some(fleet), plan, &settings, None, Use::Run)
}

/// The `kiln.inputs.digest` of `image` in `store`.
pub(crate) fn inputs_digest(
    rt: &tokio::runtime::Runtime,
    image: &str,
    store: Store,
) -> anyhow::Result<String> {
    let info = rt
        .block_on(store::inspect(store, image))?
        .ok_or_else(|| anyhow!("{image} is not in {store}'s image store after the build"))?;
    info.labels
        .get(labels::INPUTS_DIGEST)
        .cloned()
        .ok_or_else(|| anyhow!("{image} has no {} label", labels::INPUTS_DIGEST))
}

/// Validates the benchmarks `opts` names (all by default), printing one line per task
/// as verdicts come in. Refused input (unknown benchmark or task, no oracle/null
/// agent) is a usage error before anything runs.
pub fn validate(
    fleet: &Fleet,
    info: &BuildInfo,
    opts: &Options,
) -> anyhow::Result<Vec<BenchmarkVerdict>> {
    for agent in [ORACLE, NULL] {
        fleet
            .agent(agent)
            .map_err(|_| Failure::usage(format!("validation needs the agent {agent:?}, which this fleet does not have (containers/agents/{agent}/)")))?;
    }
    let names: Vec<String> = if opts.benchmarks.is_empty() {
        fleet.benchmarks.iter().map(|b| b.name.clone()).collect()
    } else {
        opts.benchmarks.clone()
    };
    let mut selected = Vec::new();
    for name in &names {
        let b = fleet.benchmark(name).map_err(|r| Failure::usage(r.0))?;
        let tasks: Vec<String> = if opts.tasks.is_empty() {
            b.tasks.clone()
        } else {
            b.tasks
                .iter()
                .filter(|t| opts.tasks.contains(t))
                .cloned()
                .collect()
        };
        selected.push((b.clone(), tasks));
    }
    for t in &opts.tasks {
        if !selected.iter().any(|(_, tasks)| tasks.contains(t)) {
            return Err(Failure::usage(format!(
                "--task-id {t:?} is a task of none of {}",
                names.join(", ")
            )));
        }
    }
    let mut requests = Vec::new();
    for (b, tasks) in &selected {
        for agent in [ORACLE, NULL] {
            if b.env == Env::PerTask {
                for t in tasks {
                    requests.push(Request::Eval {
                        benchmark: b.name.clone(),
                        agent: agent.into(),
                        task: Some(t.clone()),
                    });
                }
            } else if !tasks.is_empty() {
                requests.push(Request::Eval {
                    benchmark: b.name.clone(),
                    agent: agent.into(),
                    task: None,
                });
            }
        }
    }
    let plan = plan::plan_many(fleet, &requests, info)?;
    let summary = build_unless_built(fleet, plan, opts, false)?;
    let store_of = |image: &str| {
        summary
            .outcomes
            .iter()
            .find(|o| o.image == image)
            .map(|o| (o.store, o.status.clone()))
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Containers of kiln processes that died (SIGKILL) go first, as for `kiln run`.
    rt.block_on(run::reap::reap_and_say(&[Store::Docker, Store::Podman]))?;
    let record = if opts.force {
        Record::default()
    } else {
        Record::load(&opts.repo)
    };
    let mut results: Vec<BenchmarkVerdict> = Vec::new();
    let mut jobs = Vec::new();
    for (b, tasks) in &selected {
        let mut bv = BenchmarkVerdict {
            benchmark: b.name.clone(),
            tasks: Vec::new(),
            recorded: 0,
        };
        for t in tasks {
            let per_task = (b.env == Env::PerTask).then_some(t.as_str());
            let mut images = Vec::new();
            let mut unbuilt = None;
            for agent in [ORACLE, NULL] {
                let image = fleet.naming.eval(&b.name, per_task, agent);
                match store_of(&image) {
                    Some((
                        store,
                        crate::build::Status::Built { .. } | crate::build::Status::UpToDate { .. },
                    )) => {
                        let digest = inputs_digest(&rt, &image, store)?;
                        images.push((image, store, digest));
                    }
                    _ => unbuilt = Some(image),
                }
            }
            if let Some(image) = unbuilt {
                let v = Verdict {
                    benchmark: b.name.clone(),
                    task: t.clone(),
                    oracle_inputs: String::new(),
                    null_inputs: String::new(),
                    solution: String::new(),
                    oracle_score: None,
                    null_score: None,
                    null_passed: None,
                    valid: false,
                    problem: Some(format!("{image} was not built")),
                };
                outln!("{}", line(&v, false));
                bv.tasks.push(v);
                continue;
            }
            let null = images.pop().expect("two images");
            let oracle = images.pop().expect("two images");
            let solution = solution_digest(
                &fleet
                    .root
                    .join("benchmarks")
                    .join(&b.name)
                    .join("tasks")
                    .join(t)
                    .join("solution"),
            )?;
            if let Some(v) = record.lookup(&b.name, t, &oracle.2, &null.2, &solution) {
                outln!("{}", line(v, true));
                bv.tasks.push(v.clone());
                bv.recorded += 1;
            } else {
                jobs.push(Job {
                    benchmark: b.name.clone(),
                    task: t.clone(),
                    solution,
                    oracle,
                    null,
                });
            }
        }
        results.push(bv);
    }

    let output = opts.repo.join(".kiln").join("validate");
    let queue = Mutex::new(jobs.into_iter().collect::<Vec<_>>());
    let done: Mutex<Vec<Verdict>> = Mutex::new(Vec::new());
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.max(1) {
            s.spawn(|| loop {
                let Some(job) = queue.lock().expect("queue").pop() else {
                    break;
                };
                match run_job(fleet, &job, &output) {
                    Ok(v) => {
                        outln!("{}", line(&v, false));
                        done.lock().expect("done").push(v);
                    }
                    Err(e) => {
                        first_error.lock().expect("error").get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    let done = done.into_inner().expect("done");
    Record::save(&opts.repo, &done)?;
    if let Some(e) = first_error.into_inner().expect("error") {
        return Err(e.context("validation could not run every task"));
    }
    for v in done {
        if let Some(bv) = results.iter_mut().find(|r| r.benchmark == v.benchmark) {
            bv.tasks.push(v);
        }
    }
    for bv in &mut results {
        let order: Vec<String> = fleet
            .benchmark(&bv.benchmark)
            .map(|b| b.tasks.clone())
            .unwrap_or_default();
        bv.tasks
            .sort_by_key(|v| order.iter().position(|t| *t == v.task));
    }
    Ok(results)
}

/// Runs oracle then null on one task.
fn run_job(fleet: &Fleet, job: &Job, output: &Path) -> anyhow::Result<Verdict> {
    let solution = fleet
        .root
        .join("benchmarks")
        .join(&job.benchmark)
        .join("tasks")
        .join(&job.task)
        .join("solution");
    let run_one = |agent: &str,
                   (image, store, _): &(String, Store, String)|
     -> anyhow::Result<run::Outcome> {
        run::execute_blocking(&RunSpec {
            benchmark: job.benchmark.clone(),
            task: job.task.clone(),
            agent: agent.to_string(),
            image: image.clone(),
            store: *store,
            model: None,
            pass_env: Vec::new(),
            agent_timeout: None,
            solution: (agent == ORACLE).then(|| solution.clone()),
            dir: run::result_dir(output, &job.benchmark, &job.task, agent),
            echo_progress: false,
            container: run::container_name(0, &job.benchmark, &job.task, agent, 1),
            labels: run::reap::Owner::current().labels(),
            made_from: None,
            gateway: None,
            keep_state: false,
        })
    };
    if !solution.join("solve.sh").is_file() {
        bail!(
            "task {} of {} has no reference solution ({}/solve.sh)",
            job.task,
            job.benchmark,
            solution.display()
        );
    }
    let oracle = run_one(ORACLE, &job.oracle)?;
    let null = run_one(NULL, &job.null)?;
    let score = |o: &run::Outcome| {
        o.result
            .as_ref()
            .filter(|_| o.runner_exit == 0)
            .map(|r| (r.score.value, r.score.passed))
    };
    let (os, ns) = (score(&oracle), score(&null));
    let problem = match (os, ns) {
        (None, _) => Some(format!(
            "the oracle run gave no score ({}; logs in {})",
            oracle
                .result_error
                .clone()
                .unwrap_or_else(|| format!("runner exit {}", oracle.runner_exit)),
            oracle.dir.display()
        )),
        (Some((v, _)), _) if v < 1.0 => Some(format!(
            "the oracle scored {v:.4}, not 1.0 (logs in {})",
            oracle.dir.display()
        )),
        (_, None) => Some(format!(
            "the null run gave no score ({}; logs in {})",
            null.result_error
                .clone()
                .unwrap_or_else(|| format!("runner exit {}", null.runner_exit)),
            null.dir.display()
        )),
        (_, Some((v, true))) => Some(format!(
            "the null agent passed (score {v:.4}): the task does not discriminate"
        )),
        _ => None,
    };
    Ok(Verdict {
        benchmark: job.benchmark.clone(),
        task: job.task.clone(),
        oracle_inputs: job.oracle.2.clone(),
        null_inputs: job.null.2.clone(),
        solution: job.solution.clone(),
        oracle_score: os.map(|s| s.0),
        null_score: ns.map(|s| s.0),
        null_passed: ns.map(|s| s.1),
        valid: problem.is_none(),
        problem,
    })
}

/// The digest of a task's `solution/` directory: every file's path, executable bit and
/// content, in path order (empty directory or none: the digest of nothing).
fn solution_digest(dir: &Path) -> anyhow::Result<String> {
    use sha2::{Digest as _, Sha256};
    use std::os::unix::fs::PermissionsExt as _;
    let mut h = Sha256::new();
    if dir.is_dir() {
        for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
            let entry = entry?;
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry
                .path()
                .strip_prefix(dir)?
                .to_string_lossy()
                .into_owned();
            let exec = entry.metadata()?.permissions().mode() & 0o111 != 0;
            let body = std::fs::read(entry.path())?;
            h.update(format!("{rel}\0{exec}\0{}\0", body.len()));
            h.update(&body);
        }
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// `benchmark/task  oracle 1.0000  null 0.0000  valid`.
pub fn line(v: &Verdict, recorded: bool) -> String {
    let score = |s: Option<f64>| s.map_or("  -   ".to_string(), |s| format!("{s:.4}"));
    format!(
        "{}/{}  oracle {}  null {}  {}{}",
        v.benchmark,
        v.task,
        score(v.oracle_score),
        score(v.null_score),
        if v.valid {
            "valid".to_string()
        } else {
            format!("NOT VALID: {}", v.problem.as_deref().unwrap_or("?"))
        },
        if recorded { " (recorded)" } else { "" }
    )
}
