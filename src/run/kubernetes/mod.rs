//! `kiln run --on kubernetes`: the runs of a matrix as Kubernetes Indexed Jobs on the
//! cluster of the current KUBECONFIG context, images through a registry, results back
//! in the layout of local runs (`super::result_dir`).
//!
//! - One Job per image: a shared-env benchmark × agent × model is one Indexed Job whose
//!   completion index picks the task from the table in `KILN_TASK_TABLE` (the runner
//!   reads it); a per-task benchmark's task is one Job with `--task` as locally.
//! - Oracle solutions travel in a ConfigMap mounted only into oracle pods (never in an
//!   image, so never in a registry) and deleted with the run.
//! - kiln polls Job and Pod lists (two requests per poll, whatever the number of runs),
//!   reads each finished pod's log once, then deletes what it created.

pub mod collect;
pub mod gateway;
pub mod manifest;
pub mod pull_secret;
pub mod push;
mod session;
mod status;

use crate::printer::{errln, outln};
use session::{RunKey, Session};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

pub use collect::TaskInfo;
use manifest::{Entry, GatewayPlan, JobPlan, SolutionFile};

use super::matrix::{self, Existing, MadeFrom, Selection};
use super::model::{ModelMode, ModelSpec};
use crate::fleet::{Env, Fleet};
use crate::registry::{Client, Registry};
use crate::store::Store;

/// Seconds added to a task's summed timeouts for the pod's `activeDeadlineSeconds`
/// (image pull, start, copying, the runner's own bookkeeping).
const DEADLINE_MARGIN_SEC: u64 = 300;

/// How long Ctrl-C waits for the run's Jobs and pods to go.
const CLEANUP_LIMIT: Duration = Duration::from_secs(90);

/// How long a pod may stay unable to start (its image cannot be pulled, its container
/// cannot be created, no node takes it) before kiln gives its Job up. Kubernetes itself
/// would retry until the pod's deadline, which is the task's timeouts: far too long to
/// wait for something that will not fix itself.
const STUCK_LIMIT: Duration = Duration::from_secs(60);

/// One run of the matrix (benchmark × task × agent × repeat), its image built locally.
#[derive(Debug, Clone)]
pub struct Run {
    pub benchmark: String,
    pub task: String,
    pub agent: String,
    pub repeat: u32,
    pub shared_env: bool,
    /// The eval image, in `store`.
    pub local_image: String,
    pub store: Store,
    /// The task's `solution/` directory: oracle runs only.
    pub solution: Option<PathBuf>,
    pub info: TaskInfo,
    /// Where its result goes (`matrix::result_dir`).
    pub dir: PathBuf,
    /// What its result is made from (None in a dry run, before any build).
    pub made_from: Option<MadeFrom>,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// `HOST[:PORT][/PREFIX]` the cluster pulls from.
    pub registry: String,
    pub namespace: String,
    /// Pods running at once, over all Jobs.
    pub parallelism: u32,
    pub output: PathBuf,
    pub model: Option<String>,
    /// `--replay`: each pod runs kiln's model gateway beside the runner.
    pub gateway: Option<ModelSpec>,
    pub agent_timeout: Option<u64>,
    /// Print manifests and kubectl commands; contact nothing.
    pub dry_run: bool,
    pub poll: Duration,
    /// Run again even when a complete, current result exists.
    pub force: bool,
    /// `--ca-bundle`: trusted for the registry's TLS too.
    pub ca_bundle: Option<PathBuf>,
    /// `--insecure-registry` entries.
    pub insecure_registries: Vec<String>,
}

/// How a run ended, as the summary counts it.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub skipped: usize,
    pub passed: usize,
    pub not_passed: usize,
    pub infra_errors: usize,
    pub interrupted: bool,
    /// Where kiln's own time went.
    pub timing: Timing,
}

#[derive(Debug, Default, Clone)]
pub struct Timing {
    pub push: Duration,
    pub create: Duration,
    pub poll: Duration,
    pub polls: usize,
    pub collect: Duration,
    pub cleanup: Duration,
    pub wall: Duration,
    /// Sum of the runner containers' own run times.
    pub pods: Duration,
}

impl Summary {
    pub fn ok(&self) -> bool {
        !self.interrupted && self.infra_errors == 0
    }
}

/// A short id naming this run's objects (label `kiln.dev/run`).
fn new_run_id() -> String {
    use sha2::Digest as _;
    let seed = format!(
        "{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    );
    hex::encode(sha2::Sha256::digest(seed.as_bytes()))[..8].to_string()
}

/// Every file under a solution directory, as `<task>/<relative path>`.
fn solution_files(task: &str, dir: &Path) -> anyhow::Result<Vec<SolutionFile>> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).expect("under dir");
        out.push(SolutionFile {
            path: format!("{task}/{}", rel.display()),
            bytes: std::fs::read(entry.path())
                .with_context(|| format!("reading {}", entry.path().display()))?,
        });
    }
    Ok(out)
}

/// Groups runs into Jobs: one per (benchmark, agent) for shared-env benchmarks, one per
/// task for per-task ones. `images` maps local image → registry reference.
pub fn plan_jobs(
    run_id: &str,
    runs: &[Run],
    images: &BTreeMap<String, String>,
    gateway: Option<&GatewayPlan>,
    opts: &Options,
) -> anyhow::Result<Vec<JobPlan>> {
    let mut groups: BTreeMap<(String, String, String), Vec<&Run>> = BTreeMap::new();
    for r in runs {
        let key = if r.shared_env {
            String::new()
        } else {
            r.task.clone()
        };
        groups
            .entry((r.benchmark.clone(), r.agent.clone(), key))
            .or_default()
            .push(r);
    }
    let mut jobs = Vec::new();
    for (n, ((benchmark, agent, _), members)) in groups.into_iter().enumerate() {
        let first = members[0];
        let mut solutions = Vec::new();
        let mut seen = BTreeSet::new();
        for r in &members {
            if let Some(dir) = &r.solution {
                if seen.insert(r.task.clone()) {
                    solutions.extend(solution_files(&r.task, dir)?);
                }
            }
        }
        let size: usize = solutions.iter().map(|f| f.bytes.len()).sum::<usize>()
            + gateway.map_or(0, |g| g.fixture.len());
        if size > 900 * 1024 {
            bail!(
                "the solutions and replay fixture of {benchmark} × {agent} hold {size} bytes: more than a ConfigMap (1 MiB) takes"
            );
        }
        let longest = members
            .iter()
            .map(|r| r.info.timeouts_sec)
            .max()
            .unwrap_or(0);
        jobs.push(JobPlan {
            name: format!("kiln-{run_id}-{n}"),
            benchmark,
            agent,
            model: opts.model.clone(),
            image: images
                .get(&first.local_image)
                .cloned()
                .unwrap_or_else(|| first.local_image.clone()),
            entries: members
                .iter()
                .map(|r| Entry {
                    task: r.task.clone(),
                    repeat: r.repeat,
                })
                .collect(),
            shared_env: first.shared_env,
            agent_timeout: opts.agent_timeout,
            deadline_sec: (longest + DEADLINE_MARGIN_SEC) as i64,
            parallelism: opts.parallelism as i32,
            solutions,
            gateway: gateway.cloned(),
            pull_secret: None,
        });
    }
    Ok(jobs)
}

/// Runs `selection` on the cluster (or prints what it would do) and writes the results
/// where local runs put them. Returns the exit status (0, 1 infra errors, 130 interrupted).
pub fn run(
    repo: &Path,
    selection: &Selection,
    local: &super::Options,
    opts: &Options,
) -> anyhow::Result<u8> {
    let fleet = Fleet::load(repo, local.vars.clone())?;
    let plan = matrix::select(&fleet, selection).map_err(super::refused)?;
    let solutions = super::local::solutions(repo, &plan.runs)?;
    let mut infos = BTreeMap::new();
    for r in &plan.runs {
        if let std::collections::btree_map::Entry::Vacant(slot) =
            infos.entry((r.benchmark.clone(), r.task.clone()))
        {
            let dir = repo
                .join("benchmarks")
                .join(&r.benchmark)
                .join("tasks")
                .join(&r.task);
            slot.insert(TaskInfo::read(&dir, opts.agent_timeout)?);
        }
    }
    let digests = if opts.dry_run {
        BTreeMap::new()
    } else {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let built = super::local::build(repo, &fleet, &plan, local, &runtime)?;
        let digests: BTreeMap<String, (Store, String)> = built.into_iter().collect();
        for note in matrix::adopt_flat_results(&opts.output, &plan.runs)? {
            errln!("note: {note}");
        }
        digests
    };
    let runs: Vec<Run> = plan
        .runs
        .iter()
        .map(|r| {
            let shared_env = fleet
                .benchmark(&r.benchmark)
                .map(|b| b.env != Env::PerTask)
                .unwrap_or(true);
            Run {
                benchmark: r.benchmark.clone(),
                task: r.task.clone(),
                agent: r.agent.clone(),
                repeat: r.repeat,
                shared_env,
                local_image: r.image.clone(),
                store: digests
                    .get(&r.image)
                    .map_or(Store::Docker, |(store, _)| *store),
                // Only oracle runs: the map holds every task some oracle run has.
                solution: (r.agent == super::ORACLE)
                    .then(|| {
                        solutions
                            .get(&(r.benchmark.clone(), r.task.clone()))
                            .cloned()
                    })
                    .flatten(),
                info: infos[&(r.benchmark.clone(), r.task.clone())].clone(),
                dir: matrix::result_dir(&opts.output, r),
                made_from: digests.get(&r.image).map(|(_, d)| r.made_from(d)),
            }
        })
        .collect();
    let summary = execute(runs, opts)?;
    if opts.dry_run {
        return Ok(0);
    }
    super::local::print_summary(&plan.runs, &opts.output);
    let t = &summary.timing;
    errln!(
        "kubernetes: {} passed, {} not passed, {} infra errors, {} kept{}; wall {:.1}s \
         (kiln: push {:.1}s, create {:.2}s, poll {:.2}s in {} polls, collect {:.2}s, cleanup {:.2}s; runners ran {:.1}s in all) → {}",
        summary.passed,
        summary.not_passed,
        summary.infra_errors,
        summary.skipped,
        if summary.interrupted { ", interrupted" } else { "" },
        t.wall.as_secs_f64(),
        t.push.as_secs_f64(),
        t.create.as_secs_f64(),
        t.poll.as_secs_f64(),
        t.polls,
        t.collect.as_secs_f64(),
        t.cleanup.as_secs_f64(),
        t.pods.as_secs_f64(),
        opts.output.display()
    );
    Ok(if summary.interrupted {
        crate::error::Exit::Interrupted.code()
    } else if summary.ok() {
        0
    } else {
        1
    })
}

/// The gateway of every pod of a replaying run, its image at `image`.
fn gateway_plan(opts: &Options, image: &str) -> anyhow::Result<Option<GatewayPlan>> {
    let Some(spec) = &opts.gateway else {
        return Ok(None);
    };
    let ModelMode::Replay {
        fixture,
        lenient,
        speed,
    } = &spec.mode
    else {
        bail!(
            "--record runs locally only: on a cluster the gateway could not write the fixture back"
        );
    };
    Ok(Some(GatewayPlan {
        image: image.to_string(),
        fixture: std::fs::read(fixture)
            .with_context(|| format!("reading {}", fixture.display()))?,
        lenient: *lenient,
        speed: *speed,
    }))
}

/// Runs `runs` on the cluster (or prints what it would do) and writes their results.
pub fn execute(runs: Vec<Run>, opts: &Options) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let mut summary = Summary::default();
    let (todo, done): (Vec<Run>, Vec<Run>) = runs.into_iter().partition(|r| {
        if opts.dry_run || opts.force {
            return true;
        }
        match r.made_from.as_ref().map(|m| matrix::existing(&r.dir, m)) {
            Some(Existing::Current) => false,
            Some(Existing::Redo(why)) => {
                errln!(
                    "{}/{} × {}: running again: {why}",
                    r.benchmark,
                    r.task,
                    r.agent
                );
                true
            }
            _ => true,
        }
    });
    summary.skipped = done.len();
    if !done.is_empty() {
        errln!(
            "kubernetes: {} run(s) already have a complete, current result in {}: kept (--force runs them again)",
            done.len(),
            opts.output.display()
        );
    }
    if todo.is_empty() {
        return Ok(summary);
    }
    let run_id = new_run_id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    // Each image once, with its store and the input digest it was built with.
    let locals: BTreeMap<String, (Store, String)> = todo
        .iter()
        .map(|r| {
            let built = r
                .made_from
                .as_ref()
                .map(|m| m.inputs_digest.clone())
                .unwrap_or_default();
            (r.local_image.clone(), (r.store, built))
        })
        .collect();
    let mut images = BTreeMap::new();
    if opts.dry_run {
        for l in locals.keys() {
            images.insert(
                l.clone(),
                push::registry_ref(&opts.registry, l, "<inputs-digest>"),
            );
        }
        let gateway = gateway_plan(opts, "<gateway image>")?;
        let mut jobs = plan_jobs(&run_id, &todo, &images, gateway.as_ref(), opts)?;
        // Only the configuration is read: a credential helper is not asked.
        let login = crate::registry::auth::has_login(&Registry::parse(&opts.registry)?.host)?;
        if login {
            for j in &mut jobs {
                j.pull_secret = Some(pull_secret::name(&run_id));
            }
        }
        outln!(
            "# kiln run --on kubernetes (dry run): {} run(s) in {} Job(s), namespace {}; \
                  image tags are the images' input digests once built",
            todo.len(),
            jobs.len(),
            opts.namespace
        );
        for l in locals.keys() {
            outln!("# docker tag {l} {0} && docker push {0}", images[l]);
        }
        if gateway.is_some() {
            outln!(
                "# the gateway image: kiln's binary on {}, built once per kiln binary and pushed like the above",
                super::model::GATEWAY_IMAGE
            );
        }
        if login {
            crate::printer::out_text(&pull_secret::dry_run_text(&run_id, &opts.namespace)?);
        }
        crate::printer::out_text(&manifest::dry_run_text(&run_id, &opts.namespace, &jobs)?);
        outln!("---");
        for c in manifest::kubectl_commands(&run_id, &opts.namespace) {
            outln!("# {c}");
        }
        return Ok(summary);
    }

    let t = Instant::now();
    let registry = Registry::parse(&opts.registry)?;
    let transport =
        crate::registry::Transport::new(opts.ca_bundle.clone(), opts.insecure_registries.clone())?;
    let transport = rt.block_on(transport.with_engine_insecure());
    let client = Client::new(&registry)?.over(&transport)?;
    let secret = match client.credentials() {
        Some(creds) => {
            // The login is checked before anything is pushed: a refusal names the user.
            rt.block_on(client.ping())?;
            let s = pull_secret::for_login(&run_id, &opts.namespace, &registry.host, creds);
            if s.is_none() {
                errln!(
                    "kubernetes: the login for {} is an identity token, which the kubelet cannot use: \
                     no image pull secret is made (the nodes need their own access to the registry)",
                    registry.host
                );
            }
            s
        }
        None => None,
    };
    let mut locals = locals;
    let gateway_local = match &opts.gateway {
        Some(_) => {
            let base = super::model::gateway_image();
            let (local, inputs) = gateway::ensure_image(&base)?;
            locals.insert(local.clone(), (Store::Docker, inputs));
            Some(local)
        }
        None => None,
    };
    rt.block_on(async {
        for (local, (store, built)) in &locals {
            let p = push::publish(&client, &opts.registry, *store, local, built).await?;
            errln!(
                "kubernetes: {} {} ({})",
                if p.pushed {
                    "pushed"
                } else {
                    "already in the registry:"
                },
                p.reference,
                p.digest
            );
            // Pods pull by digest: what runs is what was verified.
            let name = p
                .reference
                .rsplit_once(':')
                .map_or(p.reference.as_str(), |(n, _)| n);
            images.insert(local.clone(), format!("{name}@{}", p.digest));
        }
        anyhow::Ok(())
    })?;
    summary.timing.push = t.elapsed();

    let gateway = match &gateway_local {
        Some(local) => gateway_plan(opts, &images[local])?,
        None => None,
    };
    let mut jobs = plan_jobs(&run_id, &todo, &images, gateway.as_ref(), opts)?;
    for j in &mut jobs {
        j.pull_secret = secret.as_ref().and_then(|s| s.metadata.name.clone());
    }
    let by_key: BTreeMap<RunKey, &Run> = todo
        .iter()
        .map(|r| {
            (
                (
                    r.benchmark.clone(),
                    r.task.clone(),
                    r.agent.clone(),
                    r.repeat,
                ),
                r,
            )
        })
        .collect();
    let mut session = Session {
        run_id: run_id.clone(),
        opts,
        jobs: &jobs,
        pull_secret: secret,
        runs: &by_key,
        summary,
        collected: BTreeSet::new(),
        results: BTreeSet::new(),
        repeats: jobs
            .iter()
            .enumerate()
            .flat_map(|(i, j)| {
                j.entries
                    .iter()
                    .map(move |e| ((i, e.task.clone()), e.repeat))
            })
            .fold(BTreeMap::new(), |mut m, (k, r)| {
                let v = m.entry(k).or_insert(0);
                *v = (*v).max(r);
                m
            }),
    };
    let driven = rt.block_on(session.drive());
    if driven.is_err() && session.pull_secret.is_some() {
        // The run's other objects may stay for a look; the login may not.
        rt.block_on(pull_secret::remove_after_error(&opts.namespace, &run_id));
    }
    driven?;
    let mut summary = session.summary;
    summary.timing.wall = started.elapsed();
    Ok(summary)
}
