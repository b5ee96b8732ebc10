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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};

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
    local: &super::local::Options,
    opts: &Options,
) -> anyhow::Result<u8> {
    let fleet = Fleet::load(repo, local.vars.clone())?;
    let plan = matrix::select(&fleet, selection).map_err(super::local::refused)?;
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
            eprintln!("note: {note}");
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
    eprintln!(
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
        130
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
                eprintln!(
                    "{}/{} × {}: running again: {why}",
                    r.benchmark, r.task, r.agent
                );
                true
            }
            _ => true,
        }
    });
    summary.skipped = done.len();
    if !done.is_empty() {
        eprintln!(
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
        println!(
            "# kiln run --on kubernetes (dry run): {} run(s) in {} Job(s), namespace {}; \
                  image tags are the images' input digests once built",
            todo.len(),
            jobs.len(),
            opts.namespace
        );
        for l in locals.keys() {
            println!("# docker tag {l} {0} && docker push {0}", images[l]);
        }
        if gateway.is_some() {
            println!(
                "# the gateway image: kiln's binary on {}, built once per kiln binary and pushed like the above",
                super::model::GATEWAY_IMAGE
            );
        }
        if login {
            print!("{}", pull_secret::dry_run_text(&run_id, &opts.namespace)?);
        }
        print!(
            "{}",
            manifest::dry_run_text(&run_id, &opts.namespace, &jobs)?
        );
        println!("---");
        for c in manifest::kubectl_commands(&run_id, &opts.namespace) {
            println!("# {c}");
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
                eprintln!(
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
            let base = std::env::var("KILN_GATEWAY_IMAGE")
                .unwrap_or_else(|_| super::model::GATEWAY_IMAGE.into());
            let (local, inputs) = gateway::ensure_image(&base)?;
            locals.insert(local.clone(), (Store::Docker, inputs));
            Some(local)
        }
        None => None,
    };
    rt.block_on(async {
        for (local, (store, built)) in &locals {
            let p = push::publish(&client, &opts.registry, *store, local, built).await?;
            eprintln!(
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

/// Benchmark, task, agent, repeat.
type RunKey = (String, String, String, u32);

/// The state of a run on the cluster.
struct Session<'a> {
    run_id: String,
    opts: &'a Options,
    jobs: &'a [JobPlan],
    /// The image pull secret the run's pods use (a registry that needs a login).
    pull_secret: Option<Secret>,
    runs: &'a BTreeMap<RunKey, &'a Run>,
    summary: Summary,
    /// Pods whose log has been read.
    collected: BTreeSet<String>,
    /// (job index, completion index) with a result written.
    results: BTreeSet<(usize, usize)>,
    /// How many repeats each (job, task) has: labels show `#k` when more than one.
    repeats: BTreeMap<(usize, String), u32>,
}

fn selector(run_id: &str) -> ListParams {
    ListParams::default().labels(&format!("{}={run_id}", manifest::RUN_LABEL))
}

/// A Job's final condition (`Complete` or `Failed`) with its reason and message.
fn finished(job: &Job) -> Option<(String, String)> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| {
            (
                c.type_.clone(),
                format!(
                    "{}{}",
                    c.reason.clone().unwrap_or_default(),
                    c.message
                        .as_ref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
            )
        })
}

/// Why a pod failed, from its status.
fn pod_failure(pod: &Pod) -> String {
    let Some(status) = &pod.status else {
        return "no pod status".into();
    };
    let mut parts = Vec::new();
    if let Some(r) = &status.reason {
        parts.push(r.clone());
    }
    if let Some(m) = &status.message {
        parts.push(m.clone());
    }
    for cs in status.container_statuses.iter().flatten() {
        if let Some(t) = cs.state.as_ref().and_then(|s| s.terminated.as_ref()) {
            parts.push(format!(
                "container {} {} (exit {}{})",
                cs.name,
                t.reason.as_deref().unwrap_or("terminated"),
                t.exit_code,
                t.signal
                    .map(|s| format!(", signal {s}"))
                    .unwrap_or_default()
            ));
        }
    }
    if parts.is_empty() {
        "the pod failed without a reason".into()
    } else {
        parts.join("; ")
    }
}

/// Why a pod that has not finished cannot start, when it is for a reason retrying does
/// not usually fix: a failing image pull, a container that cannot be created, or no node
/// to schedule it on.
fn stuck(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    for cs in status.container_statuses.iter().flatten() {
        let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let reason = w.reason.as_deref().unwrap_or_default();
        if matches!(
            reason,
            "ErrImagePull"
                | "ImagePullBackOff"
                | "InvalidImageName"
                | "ErrImageNeverPull"
                | "CreateContainerConfigError"
                | "CreateContainerError"
        ) {
            return Some(match &w.message {
                Some(m) => format!("{reason}: {m}"),
                None => reason.to_string(),
            });
        }
    }
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        })
        .map(|c| format!("Unschedulable: {}", c.message.as_deref().unwrap_or("")))
}

fn container_times(pod: &Pod) -> (Option<i32>, Option<f64>) {
    let term = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref());
    match term {
        Some(t) => {
            let wall = match (&t.started_at, &t.finished_at) {
                (Some(a), Some(b)) => Some((b.0 - a.0).num_milliseconds().max(0) as f64 / 1000.0),
                _ => None,
            };
            (Some(t.exit_code), wall)
        }
        None => (None, None),
    }
}

impl Session<'_> {
    async fn drive(&mut self) -> anyhow::Result<()> {
        let client = kube::Client::try_default()
            .await
            .context("connecting to the cluster of the current KUBECONFIG context")?;
        let ns = &self.opts.namespace;
        let jobs_api: Api<Job> = Api::namespaced(client.clone(), ns);
        let pods_api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let cms_api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), ns);
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        if let Some(s) = &self.pull_secret {
            secrets
                .create(&PostParams::default(), s)
                .await
                .with_context(|| format!("creating the image pull secret in namespace {ns}"))?;
        }
        if self.jobs.iter().any(|j| j.gateway.is_some()) {
            policies
                .create(
                    &PostParams::default(),
                    &manifest::network_policy(&self.run_id, ns),
                )
                .await
                .with_context(|| format!("creating a NetworkPolicy in namespace {ns}"))?;
        }
        let total: usize = self.jobs.iter().map(|j| j.entries.len()).sum();
        eprintln!(
            "kubernetes: run {} — {total} run(s) in {} Job(s) in namespace {ns}, at most {} pod(s) at a time",
            self.run_id,
            self.jobs.len(),
            self.opts.parallelism
        );

        let mut next_job = 0;
        // Parallelism each created, unfinished Job holds.
        let mut holding: BTreeMap<usize, i32> = BTreeMap::new();
        let mut finished_jobs: BTreeMap<usize, (String, String)> = BTreeMap::new();
        // Pods that cannot start, and since when kiln has seen them so.
        let mut stuck_since: BTreeMap<String, Instant> = BTreeMap::new();
        let mut last_progress = String::new();
        let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
        loop {
            // Create Jobs while there is room.
            let t = Instant::now();
            while next_job < self.jobs.len() {
                let used: i32 = holding.values().sum();
                let room = self.opts.parallelism as i32 - used;
                if room <= 0 {
                    break;
                }
                let mut plan = self.jobs[next_job].clone();
                plan.parallelism = room.min(plan.entries.len() as i32);
                if let Some(cm) = manifest::config_map(&self.run_id, ns, &plan) {
                    cms_api
                        .create(&PostParams::default(), &cm)
                        .await
                        .with_context(|| {
                            format!("creating ConfigMap {}", plan.config_map_name())
                        })?;
                }
                jobs_api
                    .create(
                        &PostParams::default(),
                        &manifest::job(&self.run_id, ns, &plan),
                    )
                    .await
                    .with_context(|| format!("creating Job {} in namespace {ns}", plan.name))?;
                holding.insert(next_job, plan.parallelism);
                next_job += 1;
            }
            self.summary.timing.create += t.elapsed();

            tokio::select! {
                _ = tokio::time::sleep(self.opts.poll) => {}
                _ = &mut interrupt => {
                    self.summary.interrupted = true;
                    return self.interrupted(&jobs_api, &pods_api, &cms_api, &policies, &secrets).await;
                }
            }

            let t = Instant::now();
            let job_list = jobs_api
                .list(&selector(&self.run_id))
                .await
                .context("listing kiln's Jobs")?;
            let pod_list = pods_api
                .list(&selector(&self.run_id))
                .await
                .context("listing kiln's pods")?;
            self.summary.timing.poll += t.elapsed();
            self.summary.timing.polls += 1;

            let plans = self.jobs;
            let index_of = |name: &str| plans.iter().position(|j| j.name == name);
            let (mut active, mut succeeded, mut failed) = (0, 0, 0);
            for job in &job_list.items {
                let Some(i) = job.metadata.name.as_deref().and_then(index_of) else {
                    continue;
                };
                if let Some(s) = &job.status {
                    active += s.active.unwrap_or(0);
                    succeeded += s.succeeded.unwrap_or(0);
                    failed += s.failed.unwrap_or(0);
                }
                if let Some(f) = finished(job) {
                    holding.remove(&i);
                    finished_jobs.entry(i).or_insert(f);
                }
            }
            let t = Instant::now();
            for pod in &pod_list.items {
                self.collect_pod(&pods_api, pod).await?;
            }
            for pod in &pod_list.items {
                let (Some(name), Some(why)) = (pod.metadata.name.clone(), stuck(pod)) else {
                    continue;
                };
                let since = *stuck_since.entry(name.clone()).or_insert_with(Instant::now);
                let job_name = pod
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("job-name"))
                    .cloned()
                    .unwrap_or_default();
                let Some(i) = index_of(&job_name) else {
                    continue;
                };
                if since.elapsed() < STUCK_LIMIT || finished_jobs.contains_key(&i) {
                    continue;
                }
                eprintln!(
                    "kubernetes: pod {name} could not start for {}s ({why}): giving Job {job_name} up",
                    STUCK_LIMIT.as_secs()
                );
                jobs_api
                    .delete(&job_name, &DeleteParams::background())
                    .await
                    .with_context(|| format!("deleting Job {job_name}"))?;
                holding.remove(&i);
                finished_jobs.insert(
                    i,
                    (
                        "Failed".into(),
                        format!("pod {name} could not start: {why}"),
                    ),
                );
            }
            self.summary.timing.collect += t.elapsed();

            let progress = format!(
                "kubernetes: {}/{total} done ({} passed, {} not passed, {} infra errors), {active} running; Jobs: {succeeded} succeeded, {failed} failed pod(s)",
                self.results.len(),
                self.summary.passed,
                self.summary.not_passed,
                self.summary.infra_errors
            );
            if progress != last_progress {
                eprintln!("{progress}");
                last_progress = progress;
            }
            if next_job == self.jobs.len() && finished_jobs.len() == self.jobs.len() {
                break;
            }
        }
        // Indexes of failed Jobs that left no pod to read.
        for (i, (kind, why)) in &finished_jobs {
            for (index, entry) in self.jobs[*i].entries.iter().enumerate() {
                if !self.results.contains(&(*i, index)) {
                    let reason = format!(
                        "Job {} ended {kind} ({why}) before index {index} left a result",
                        self.jobs[*i].name
                    );
                    self.write_result(
                        *i,
                        index,
                        entry,
                        None,
                        None,
                        "Unknown",
                        Some(&reason),
                        &reason,
                    )?;
                }
            }
        }
        let t = Instant::now();
        self.cleanup(&jobs_api, &cms_api, &policies, &secrets)
            .await?;
        self.summary.timing.cleanup = t.elapsed();
        Ok(())
    }

    /// Reads a finished pod's log (once) and writes its run's results.
    async fn collect_pod(&mut self, pods_api: &Api<Pod>, pod: &Pod) -> anyhow::Result<()> {
        let Some(name) = pod.metadata.name.clone() else {
            return Ok(());
        };
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        if self.collected.contains(&name) || (phase != "Succeeded" && phase != "Failed") {
            return Ok(());
        }
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let annotations = pod.metadata.annotations.clone().unwrap_or_default();
        let job_name = labels.get("job-name").cloned().unwrap_or_default();
        let (Some(i), Some(index)) = (
            self.jobs.iter().position(|j| j.name == job_name),
            annotations
                .get(manifest::INDEX_ANNOTATION)
                .and_then(|v| v.parse::<usize>().ok()),
        ) else {
            return Ok(());
        };
        let Some(entry) = self.jobs[i].entries.get(index).cloned() else {
            return Ok(());
        };
        self.collected.insert(name.clone());
        let log = pods_api
            .logs(
                &name,
                &LogParams {
                    container: Some(manifest::CONTAINER.into()),
                    ..Default::default()
                },
            )
            .await
            .ok();
        let reason = (phase == "Failed").then(|| pod_failure(pod));
        let fallback_reason = match &reason {
            Some(r) => format!("pod {name} failed: {r}"),
            None => format!("pod {name} succeeded but its log holds no result"),
        };
        let (dir, score) = self.write_result(
            i,
            index,
            &entry,
            Some(pod),
            log.as_deref(),
            &phase,
            reason.as_deref(),
            &fallback_reason,
        )?;
        if let (Some(_), Some(spec)) = (&self.jobs[i].gateway, &self.opts.gateway) {
            self.gateway_counters(pods_api, &name, spec, &dir, score)
                .await?;
        }
        Ok(())
    }

    /// Keeps the gateway container's log beside the result and puts its final counters
    /// (its last stdout line) into result.json's `model` section, as a local run does.
    async fn gateway_counters(
        &self,
        pods_api: &Api<Pod>,
        pod: &str,
        spec: &ModelSpec,
        dir: &Path,
        score: Option<f64>,
    ) -> anyhow::Result<()> {
        let log = pods_api
            .logs(
                pod,
                &LogParams {
                    container: Some(manifest::GATEWAY_CONTAINER.into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap_or_default();
        std::fs::write(dir.join("gateway.log"), &log)
            .with_context(|| format!("writing {}", dir.join("gateway.log").display()))?;
        let stats = log
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<crate::gateway::stats::Stats>(l).ok());
        let result = dir.join("result.json");
        match stats {
            Some(stats) if result.is_file() => {
                super::model::write_section(&result, super::model::section(spec, &stats, score))
            }
            _ => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write_result(
        &mut self,
        i: usize,
        index: usize,
        entry: &Entry,
        pod: Option<&Pod>,
        log: Option<&str>,
        phase: &str,
        reason: Option<&str>,
        fallback_reason: &str,
    ) -> anyhow::Result<(PathBuf, Option<f64>)> {
        let job = &self.jobs[i];
        let run = self.runs[&(
            job.benchmark.clone(),
            entry.task.clone(),
            job.agent.clone(),
            entry.repeat,
        )];
        let (runner_exit, wall) = pod.map(container_times).unwrap_or((None, None));
        let record = collect::PodRecord {
            benchmark: &job.benchmark,
            task: &entry.task,
            agent: &job.agent,
            image: &job.image,
            on: "kubernetes",
            namespace: &self.opts.namespace,
            job: &job.name,
            pod: pod.and_then(|p| p.metadata.name.as_deref()),
            completion_index: index,
            pod_phase: phase,
            pod_reason: reason,
            runner_exit: runner_exit.map_or(-1, i64::from),
            wall_sec: wall,
            kiln_version: env!("CARGO_PKG_VERSION"),
            made_from: run.made_from.clone(),
        };
        let dir = run.dir.clone();
        let run_id = format!("{}-{}-{index}", self.run_id, job.name);
        let (dir, result) = collect::write(
            &dir,
            log,
            || {
                collect::infra_error_result(
                    &entry.task,
                    &run.info,
                    &job.agent,
                    job.model.as_deref(),
                    &run_id,
                    fallback_reason,
                )
            },
            &record,
        )?;
        self.results.insert((i, index));
        self.summary.timing.pods += Duration::from_secs_f64(result.timing.wall_sec.max(0.0));
        let label = if self
            .repeats
            .get(&(i, entry.task.clone()))
            .copied()
            .unwrap_or(1)
            > 1
        {
            format!(
                "{}/{} × {} #{}",
                job.benchmark, entry.task, job.agent, entry.repeat
            )
        } else {
            format!("{}/{} × {}", job.benchmark, entry.task, job.agent)
        };
        if result.status == "infra_error" {
            self.summary.infra_errors += 1;
            let why = result
                .errors
                .first()
                .map(|e| e.message.clone())
                .unwrap_or_default();
            println!(
                "{label}: infra_error: {why} → {}",
                dir.join("result.json").display()
            );
        } else {
            if result.score.passed {
                self.summary.passed += 1;
            } else {
                self.summary.not_passed += 1;
            }
            let gates = match (result.score.highest_gate, result.score.n_gates) {
                (Some(h), Some(n)) => format!(", gates {h}/{n}"),
                _ => String::new(),
            };
            println!(
                "{label}: {}, score {:.4} ({}{gates}), {:.1}s → {}",
                result.status,
                result.score.value,
                if result.score.passed {
                    "passed"
                } else {
                    "not passed"
                },
                result.timing.wall_sec,
                dir.join("result.json").display()
            );
        }
        let score = (result.status != "infra_error").then_some(result.score.value);
        Ok((dir, score))
    }

    /// Deletes the run's Jobs (their pods with them), ConfigMaps and pull secret.
    async fn cleanup(
        &self,
        jobs_api: &Api<Job>,
        cms_api: &Api<ConfigMap>,
        policies: &Api<NetworkPolicy>,
        secrets: &Api<Secret>,
    ) -> anyhow::Result<()> {
        if self.pull_secret.is_some() {
            pull_secret::remove(secrets, &self.run_id).await?;
        }
        jobs_api
            .delete_collection(&DeleteParams::background(), &selector(&self.run_id))
            .await
            .context("deleting kiln's Jobs")?;
        cms_api
            .delete_collection(&DeleteParams::background(), &selector(&self.run_id))
            .await
            .context("deleting kiln's ConfigMaps")?;
        policies
            .delete_collection(&DeleteParams::background(), &selector(&self.run_id))
            .await
            .context("deleting kiln's NetworkPolicy")?;
        Ok(())
    }

    /// First Ctrl-C: delete Jobs and pods (foreground: the Job goes once its pods are
    /// gone) and wait for the pods to go; a second Ctrl-C leaves them.
    async fn interrupted(
        &mut self,
        jobs_api: &Api<Job>,
        pods_api: &Api<Pod>,
        cms_api: &Api<ConfigMap>,
        policies: &Api<NetworkPolicy>,
        secrets: &Api<Secret>,
    ) -> anyhow::Result<()> {
        let ns = &self.opts.namespace;
        let how = format!(
            "kubectl delete jobs,configmaps,networkpolicies,secrets -n {ns} -l {}={} --cascade=foreground",
            manifest::RUN_LABEL,
            self.run_id
        );
        eprintln!(
            "kubernetes: interrupted: deleting run {}'s Jobs and pods (finished results are kept); Ctrl-C again to leave them",
            self.run_id
        );
        let work = async {
            // The login goes first, whatever happens to the rest.
            if self.pull_secret.is_some() {
                pull_secret::remove(secrets, &self.run_id).await?;
            }
            jobs_api
                .delete_collection(&DeleteParams::foreground(), &selector(&self.run_id))
                .await
                .context("deleting kiln's Jobs")?;
            cms_api
                .delete_collection(&DeleteParams::background(), &selector(&self.run_id))
                .await
                .context("deleting kiln's ConfigMaps")?;
            policies
                .delete_collection(&DeleteParams::background(), &selector(&self.run_id))
                .await
                .context("deleting kiln's NetworkPolicy")?;
            // Pods of a deleted Job get no grace from kiln: they are removed as the
            // kubelet stops them.
            pods_api
                .delete_collection(
                    &DeleteParams::background().grace_period(0),
                    &selector(&self.run_id),
                )
                .await
                .context("deleting kiln's pods")?;
            let deadline = Instant::now() + CLEANUP_LIMIT;
            loop {
                let pods = pods_api.list(&selector(&self.run_id)).await?;
                let jobs = jobs_api.list(&selector(&self.run_id)).await?;
                if pods.items.is_empty() && jobs.items.is_empty() {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "{} Job(s) and {} pod(s) still there after {} s",
                        jobs.items.len(),
                        pods.items.len(),
                        CLEANUP_LIMIT.as_secs()
                    );
                }
                // A pod whose Job is gone keeps the Job controller's tracking finalizer
                // when the controller missed it; nothing else will remove it.
                if jobs.items.is_empty() {
                    for pod in &pods.items {
                        let (Some(name), Some(f)) = (&pod.metadata.name, &pod.metadata.finalizers)
                        else {
                            continue;
                        };
                        if pod.metadata.deletion_timestamp.is_some() && !f.is_empty() {
                            let patch = serde_json::json!({"metadata": {"finalizers": null}});
                            let _ = pods_api
                                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                                .await;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            anyhow::Ok(())
        };
        tokio::select! {
            r = work => {
                r.with_context(|| format!("cleaning up; to finish by hand: {how}"))?;
                eprintln!("kubernetes: run {}'s Jobs and pods are deleted", self.run_id);
            }
            _ = tokio::signal::ctrl_c() => {
                eprintln!("kubernetes: leaving run {}'s Jobs and pods; delete them with:\n  {how}", self.run_id);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn pods_that_cannot_start_are_told_from_slow_ones() {
        let pull = pod(serde_json::json!({
            "phase": "Pending",
            "containerStatuses": [{
                "name": "runner", "image": "r/x:1", "imageID": "", "ready": false,
                "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"r/x:1\""}}
            }]
        }));
        assert_eq!(
            stuck(&pull).as_deref(),
            Some("ImagePullBackOff: Back-off pulling image \"r/x:1\"")
        );
        let unschedulable = pod(serde_json::json!({
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                            "message": "0/1 nodes are available"}]
        }));
        assert_eq!(
            stuck(&unschedulable).as_deref(),
            Some("Unschedulable: 0/1 nodes are available")
        );
        // Still being created, or running: not stuck.
        let creating = pod(serde_json::json!({
            "phase": "Pending",
            "containerStatuses": [{
                "name": "runner", "image": "r/x:1", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}
            }]
        }));
        assert_eq!(stuck(&creating), None);
        assert_eq!(stuck(&pod(serde_json::json!({"phase": "Running"}))), None);
    }
}
