//! Executing a plan: every `BuildSpec` built on the chosen backend, bases first,
//! independent images in parallel (`jobs`), each skipped when its image already
//! carries the same input digest, its labels checked after the build, and its final
//! name tagged only once the build and the check succeeded.
//!
//! Entry point: [`run`] (synchronous; it owns its tokio runtime). Ctrl-C stops
//! starting builds, cancels running ones (the engine build's connection is dropped,
//! a podman/bake child gets SIGTERM) and reports what was not finished; nothing
//! half-built carries a final name, so re-running finishes the job.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::{watch, Mutex};

use crate::backend::detect::{self, Decision};
use crate::backend::{bake, child, Backend, BackendKind, Env, Stop};
use crate::labels;
use crate::naming::Kind;
use crate::plan::{BakeRequest, BuildSpec};
use crate::printer;
use crate::progress::Progress;
use crate::store::{self, Record, State, Store};

/// How to run a plan.
#[derive(Debug, Clone)]
pub struct Options {
    /// The repository root: children run here and relative spec paths resolve from here.
    pub repo: PathBuf,
    /// Builds running at once (at least 1).
    pub jobs: usize,
    /// Rebuild even when the input digest matches.
    pub force: bool,
    pub progress: printer::Mode,
}

impl Options {
    /// Defaults: as many jobs as CPUs, no force, progress auto.
    pub fn new(repo: &Path) -> Options {
        let jobs = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Options {
            repo: repo.to_path_buf(),
            jobs,
            force: false,
            progress: printer::Mode::Auto,
        }
    }
}

/// What happened to one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Built {
        id: String,
    },
    UpToDate {
        id: String,
    },
    Failed(String),
    /// Not attempted: a base failed, or the run was interrupted first.
    NotBuilt(String),
    /// Cancelled while building (Ctrl-C).
    Interrupted,
}

/// One image's outcome.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    pub image: String,
    pub store: Store,
    pub status: Status,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Summary {
    pub backend: BackendKind,
    pub outcomes: Vec<Outcome>,
    pub interrupted: bool,
}

impl Summary {
    pub fn ok(&self) -> bool {
        !self.interrupted
            && self
                .outcomes
                .iter()
                .all(|o| matches!(o.status, Status::Built { .. } | Status::UpToDate { .. }))
    }

    /// 0 all built or up to date, 130 interrupted, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            crate::error::Exit::Interrupted.code()
        } else if self.ok() {
            0
        } else {
            1
        }
    }

    /// One line per image, then the totals.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let (mut built, mut fresh, mut failed, mut not_built) = (0, 0, 0, 0);
        for o in &self.outcomes {
            let what = match &o.status {
                Status::Built { .. } => {
                    built += 1;
                    "built".to_string()
                }
                Status::UpToDate { .. } => {
                    fresh += 1;
                    "up to date".to_string()
                }
                Status::Failed(msg) => {
                    failed += 1;
                    format!("FAILED: {msg}")
                }
                Status::NotBuilt(why) => {
                    not_built += 1;
                    format!("not built: {why}")
                }
                Status::Interrupted => {
                    not_built += 1;
                    "interrupted (no image tagged)".to_string()
                }
            };
            lines.push(format!(
                "  {} ({}, {} store): {what}",
                o.name, o.image, o.store
            ));
        }
        let moved = self
            .outcomes
            .iter()
            .filter(|o| o.store != self.backend.store())
            .count();
        lines.push(format!(
            "{} backend: {built} built, {fresh} up to date, {failed} failed, {not_built} not built{}{}",
            self.backend,
            if moved > 0 {
                format!(" ({moved} by podman after the fallback)")
            } else {
                String::new()
            },
            if self.interrupted { " (interrupted)" } else { "" }
        ));
        lines
    }
}

/// Builds `specs` (and, for the bake backend, `requests`) with `decision.backend`.
/// The decision's reason is printed first; a bake resolve failure of a locally
/// present base falls back to podman when `decision.fallback` allows it.
pub fn run(
    specs: &[BuildSpec],
    requests: &[BakeRequest],
    decision: &Decision,
    opts: &Options,
) -> anyhow::Result<Summary> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.jobs.clamp(2, 16))
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(run_async(specs, requests, decision, opts))
}

struct Shared {
    specs: Vec<BuildSpec>,
    opts: Options,
    progress: Arc<Progress>,
    cancel: watch::Receiver<bool>,
    /// What the backends get: repository, progress, cancel.
    env: Env,
    state_lock: Mutex<()>,
    /// Image ids resolved during this run (image ref → id), per store.
    ids: StdMutex<HashMap<(Store, String), String>>,
}

async fn run_async(
    specs: &[BuildSpec],
    requests: &[BakeRequest],
    decision: &Decision,
    opts: &Options,
) -> anyhow::Result<Summary> {
    let progress = Arc::new(Progress::new(opts.progress));
    progress.note(&format!(
        "backend: {} ({})",
        decision.backend, decision.reason
    ));
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let backend = decision.backend();
    let shared = Arc::new(Shared {
        specs: specs.to_vec(),
        opts: opts.clone(),
        progress: progress.clone(),
        env: Env {
            repo: opts.repo.clone(),
            progress,
            cancel: cancel_rx.clone(),
        },
        cancel: cancel_rx,
        state_lock: Mutex::new(()),
        ids: StdMutex::new(HashMap::new()),
    });
    let interrupt = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = cancel_tx.send(true);
        }
    });
    let mut results: BTreeMap<usize, (Store, Status)> = BTreeMap::new();
    match &backend {
        Backend::Bake(setup) if !backend.per_image() => {
            for request in requests {
                for (i, store, st) in run_bake_request(&shared, request, setup, decision).await {
                    results.insert(i, (store, st));
                }
            }
        }
        _ => {
            let all: Vec<usize> = (0..specs.len()).collect();
            for (i, st) in schedule(&shared, &all, &backend).await {
                results.insert(i, (backend.store(), st));
            }
        }
    }
    interrupt.abort();
    let interrupted = *shared.cancel.borrow();
    let outcomes = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let (store, status) = results.remove(&i).unwrap_or((
                decision.backend.store(),
                Status::NotBuilt("not part of any bake request".into()),
            ));
            Outcome {
                name: spec.name.clone(),
                image: spec.image.clone(),
                store,
                status,
            }
        })
        .collect();
    let summary = Summary {
        backend: decision.backend,
        outcomes,
        interrupted,
    };
    shared.progress.summary(&summary.lines());
    Ok(summary)
}

/// Runs the selected specs on `backend` in dependency order, `jobs` at a time.
/// Deps outside `selected` count as done.
async fn schedule(
    shared: &Arc<Shared>,
    selected: &[usize],
    backend: &Backend,
) -> BTreeMap<usize, Status> {
    let chosen: BTreeSet<usize> = selected.iter().copied().collect();
    let mut waiting_on: HashMap<usize, BTreeSet<usize>> = HashMap::new();
    let mut dependents: HashMap<usize, Vec<usize>> = HashMap::new();
    for &i in &chosen {
        let deps: BTreeSet<usize> = shared.specs[i]
            .deps
            .iter()
            .copied()
            .filter(|d| chosen.contains(d))
            .collect();
        for &d in &deps {
            dependents.entry(d).or_default().push(i);
        }
        waiting_on.insert(i, deps);
    }
    let mut ready: BTreeSet<usize> = chosen
        .iter()
        .copied()
        .filter(|i| waiting_on[i].is_empty())
        .collect();
    for i in &chosen {
        if !ready.contains(i) {
            shared.progress.waiting(&shared.specs[*i].name, "its bases");
        }
    }
    let mut results: BTreeMap<usize, Status> = BTreeMap::new();
    let mut running = tokio::task::JoinSet::new();
    let mut cancel = shared.cancel.clone();
    loop {
        let cancelled = *cancel.borrow();
        while !cancelled && running.len() < shared.opts.jobs.max(1) {
            let Some(i) = ready.pop_first() else { break };
            let sh = shared.clone();
            let backend = backend.clone();
            running.spawn(async move { (i, build_one(&sh, i, &backend).await) });
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            joined = running.join_next() => {
                let Some(joined) = joined else { break };
                let (i, status) = joined.unwrap_or_else(|e| (usize::MAX, Status::Failed(format!("build task panicked: {e}"))));
                if i == usize::MAX { continue; }
                let ok = matches!(status, Status::Built { .. } | Status::UpToDate { .. });
                results.insert(i, status);
                // Settle the dependents: ready when every base is done, not built when one failed.
                let mut stack = vec![i];
                while let Some(done) = stack.pop() {
                    for &dep in dependents.get(&done).map(Vec::as_slice).unwrap_or(&[]) {
                        if results.contains_key(&dep) { continue; }
                        if ok && done == i {
                            let w = waiting_on.get_mut(&dep).expect("every chosen spec has a wait set");
                            w.remove(&i);
                            if w.is_empty() { ready.insert(dep); }
                        } else {
                            let why = format!("{} was not built", shared.specs[done].name);
                            shared.progress.skipped(&shared.specs[dep].name, &why);
                            results.insert(dep, Status::NotBuilt(why));
                            stack.push(dep);
                        }
                    }
                }
            }
            _ = cancel.changed(), if !cancelled => {
                shared.progress.note("interrupted: cancelling running builds; nothing partial gets a final tag");
            }
        }
    }
    for i in chosen {
        results.entry(i).or_insert_with(|| {
            shared
                .progress
                .skipped(&shared.specs[i].name, "interrupted before it started");
            Status::NotBuilt("interrupted before it started".into())
        });
    }
    results
}

async fn build_one(shared: &Arc<Shared>, i: usize, backend: &Backend) -> Status {
    let spec = &shared.specs[i];
    let started = Instant::now();
    shared.progress.started(&spec.name, "hashing inputs");
    let result = build_one_inner(shared, spec, backend).await;
    match result {
        Ok((status, built)) => {
            match &status {
                Status::UpToDate { .. } => shared.progress.up_to_date(&spec.name, &spec.image),
                Status::Built { .. } if built => {
                    shared
                        .progress
                        .built(&spec.name, &spec.image, started.elapsed())
                }
                _ => {}
            }
            status
        }
        Err(Stop::Interrupted) => {
            shared
                .progress
                .failed(&spec.name, "interrupted; no image tagged");
            Status::Interrupted
        }
        Err(Stop::Failed(msg)) => {
            shared.progress.failed(&spec.name, &msg);
            Status::Failed(msg)
        }
    }
}

/// The id of `image` in `store`: from this run's builds, or by inspecting it.
async fn image_id(shared: &Shared, store: Store, image: &str) -> anyhow::Result<Option<String>> {
    if let Some(id) = shared.ids.lock().unwrap().get(&(store, image.to_string())) {
        return Ok(Some(id.clone()));
    }
    Ok(store::inspect(store, image).await?.map(|info| info.id))
}

/// The ids of `spec`'s bases in `store`; a missing base is an error that says where it is instead.
async fn base_ids(
    shared: &Shared,
    spec: &BuildSpec,
    store: Store,
) -> Result<BTreeMap<String, String>, Stop> {
    let mut ids = BTreeMap::new();
    for base in &spec.bases {
        match image_id(shared, store, base).await? {
            Some(id) => {
                ids.insert(base.clone(), id);
            }
            None => {
                let elsewhere = store::inspect(store.other(), base)
                    .await
                    .ok()
                    .flatten()
                    .is_some();
                let hint = if elsewhere {
                    format!("; it exists only in {}'s store", store.other())
                } else {
                    "; make local bases with scripts/make-bases.sh (kiln pulls nothing)".to_string()
                };
                return Err(Stop::Failed(format!(
                    "base image {base} is not in {store}'s image store{hint}"
                )));
            }
        }
    }
    Ok(ids)
}

fn resolve(repo: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        repo.join(p)
    }
}

/// Walks the context and computes the input digest (blocking work, off the runtime).
async fn input_digest(
    shared: &Shared,
    spec: &BuildSpec,
    bases: &BTreeMap<String, String>,
) -> Result<(crate::context::Context, String), Stop> {
    let root = resolve(&shared.opts.repo, &spec.context);
    let spec = spec.clone();
    let bases = bases.clone();
    let out = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let ctx = crate::context::walk(&root, &spec.dockerfile)?;
        let digest = crate::digest::input_digest(&spec, &ctx, &bases)?;
        Ok((ctx, digest))
    })
    .await
    .map_err(|e| Stop::Failed(format!("hashing inputs: {e}")))??;
    Ok(out)
}

async fn build_one_inner(
    shared: &Arc<Shared>,
    spec: &BuildSpec,
    backend: &Backend,
) -> Result<(Status, bool), Stop> {
    let store = backend.store();
    if let Some(why) = backend.refusal(spec) {
        return Err(Stop::Failed(why));
    }
    let bases = base_ids(shared, spec, store).await?;
    let (ctx, digest) = input_digest(shared, spec, &bases).await?;
    if !shared.opts.force {
        if let Some(info) = store::inspect(store, &spec.image).await? {
            if info.labels.get(labels::INPUTS_DIGEST) == Some(&digest) {
                remember(shared, store, &spec.image, &info.id, &digest).await?;
                return Ok((Status::UpToDate { id: info.id }, false));
            }
        }
    }
    if *shared.cancel.borrow() {
        return Err(Stop::Interrupted);
    }
    let mut stamped = spec.clone();
    stamped
        .labels
        .insert(labels::INPUTS_DIGEST.into(), digest.as_str().into());
    let built = backend.build_image(&shared.env, &stamped, ctx).await?;
    let id = check_and_name(shared, store, spec, &built.reference, built.tagged, &digest).await?;
    remember(shared, store, &spec.image, &id, &digest).await?;
    Ok((Status::Built { id }, true))
}

/// The scheduler's part after any build: read the labels back from the store, check
/// them, and give the image its final name only when they pass (or take the name a
/// backend already gave away again when they do not). Returns the image id.
async fn check_and_name(
    shared: &Shared,
    store: Store,
    spec: &BuildSpec,
    reference: &str,
    tagged: bool,
    digest: &str,
) -> Result<String, Stop> {
    let info = store::inspect(store, reference).await?.ok_or_else(|| {
        Stop::Failed(format!(
            "the build succeeded but {reference} is not in {store}'s image store"
        ))
    })?;
    if let Err(why) = check_labels(&info.labels, digest) {
        store::discard(store, &info.id, &spec.image).await;
        return Err(Stop::Failed(why));
    }
    if *shared.cancel.borrow() {
        if !tagged {
            store::discard(store, &info.id, &spec.image).await;
        }
        return Err(Stop::Interrupted);
    }
    if !tagged {
        store::tag(store, &info.id, &spec.image).await?;
    }
    Ok(info.id)
}

async fn remember(
    shared: &Shared,
    store: Store,
    image: &str,
    id: &str,
    digest: &str,
) -> anyhow::Result<()> {
    shared
        .ids
        .lock()
        .unwrap()
        .insert((store, image.to_string()), id.to_string());
    let _guard = shared.state_lock.lock().await;
    State::record(
        &shared.opts.repo,
        image,
        Record {
            store,
            id: id.to_string(),
            digest: digest.to_string(),
        },
    )
}

/// Checks a built image's labels: every label the contract requires for its kind
/// (from `eval.type`) is present and non-empty, and the input digest is the one stamped.
pub fn check_labels(built: &BTreeMap<String, String>, digest: &str) -> Result<(), String> {
    let kind = match built.get(labels::TYPE).map(String::as_str) {
        Some("core") => Kind::Core,
        Some("benchmark") => Kind::Benchmark,
        Some("task") => Kind::Task,
        Some("agent") => Kind::Agent,
        Some("eval") => Kind::Eval,
        Some(other) => {
            return Err(format!(
                "label {} has the unknown value {other:?}",
                labels::TYPE
            ))
        }
        None => return Err(format!("required label {} is missing", labels::TYPE)),
    };
    let per_task =
        built.get(labels::BENCHMARK_ENV).map(String::as_str) == Some(labels::ENV_PER_TASK);
    let missing: Vec<&str> = labels::required(kind, per_task)
        .into_iter()
        .filter(|k| built.get(*k).is_none_or(|v| v.trim().is_empty()))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the built {kind} image lacks required label(s): {}",
            missing.join(", ")
        ));
    }
    if built.get(labels::INPUTS_DIGEST).map(String::as_str) != Some(digest) {
        return Err(format!(
            "label {} was not stamped on the built image",
            labels::INPUTS_DIGEST
        ));
    }
    Ok(())
}

/// Builds one bake request: digests first (a base built in the same request counts
/// by its input digest, any other base by its image id), skipped when every image is
/// up to date; on bake's failure to resolve a locally present base, the request's
/// images are built with podman instead when the decision allows it.
async fn run_bake_request(
    shared: &Arc<Shared>,
    request: &BakeRequest,
    setup: &bake::Setup,
    decision: &Decision,
) -> Vec<(usize, Store, Status)> {
    let store = Store::Docker;
    let label = request.targets.join(" ");
    let mut digests: BTreeMap<usize, String> = BTreeMap::new();
    let mut fresh: Vec<(usize, String)> = Vec::new();
    let fail_all = |msg: String| -> Vec<(usize, Store, Status)> {
        shared.progress.failed(&label, &msg);
        let short = format!("the bake request for {label} failed (its output is above)");
        request
            .builds
            .iter()
            .map(|&i| (i, store, Status::Failed(short.clone())))
            .collect()
    };
    for &i in &request.builds {
        let spec = &shared.specs[i];
        let mut bases = BTreeMap::new();
        for base in &spec.bases {
            let in_request = request
                .builds
                .iter()
                .find(|&&j| shared.specs[j].image == *base);
            let id = match in_request.and_then(|j| digests.get(j)) {
                Some(d) => Some(format!("inputs:{d}")),
                None => image_id(shared, store, base).await.ok().flatten(),
            };
            bases.insert(base.clone(), id.unwrap_or_default());
        }
        let digest = match input_digest(shared, spec, &bases).await {
            Ok((_, d)) => d,
            Err(Stop::Failed(msg)) => return fail_all(msg),
            Err(Stop::Interrupted) => return fail_all("interrupted".into()),
        };
        if !shared.opts.force {
            if let Ok(Some(info)) = store::inspect(store, &spec.image).await {
                if info.labels.get(labels::INPUTS_DIGEST) == Some(&digest) {
                    fresh.push((i, info.id));
                }
            }
        }
        digests.insert(i, digest);
    }
    if fresh.len() == request.builds.len() {
        return fresh
            .into_iter()
            .map(|(i, id)| {
                shared
                    .progress
                    .up_to_date(&shared.specs[i].name, &shared.specs[i].image);
                (i, store, Status::UpToDate { id })
            })
            .collect();
    }
    let mut stamped = request.clone();
    for (&i, digest) in &digests {
        stamped.sets.push(format!(
            "{}.labels.{}={digest}",
            shared.specs[i].bake_target,
            labels::INPUTS_DIGEST
        ));
    }
    let run = match bake::build_request(&shared.env, setup, &stamped, &shared.specs).await {
        Ok(run) => run,
        Err(Stop::Interrupted) => {
            return request
                .builds
                .iter()
                .map(|&i| (i, store, Status::Interrupted))
                .collect()
        }
        Err(Stop::Failed(msg)) => return fail_all(msg),
    };
    if !run.success {
        let handle = tokio::runtime::Handle::current();
        let local = tokio::task::block_in_place(|| {
            detect::bake_resolve_failure(&run.output, |r| {
                handle
                    .block_on(store::inspect(Store::Docker, r))
                    .ok()
                    .flatten()
                    .is_some()
            })
        });
        if let (Some(base), Some(BackendKind::Podman)) = (local, decision.fallback) {
            let cause = detect::FallbackCause::BakeCannotResolveLocalBase { base };
            shared
                .progress
                .note(&format!("falling back to podman for {label}: {cause}"));
            return schedule(shared, &request.builds, &Backend::Podman)
                .await
                .into_iter()
                .map(|(i, st)| (i, Store::Podman, st))
                .collect();
        }
        return fail_all(format!(
            "{} failed:\n{}",
            run.line,
            child::tail(&run.output, 15)
        ));
    }
    let mut out = Vec::new();
    for (&i, digest) in &digests {
        let spec = &shared.specs[i];
        let status = match check_and_name(shared, store, spec, &spec.image, true, digest).await {
            Ok(id) => {
                let _ = remember(shared, store, &spec.image, &id, digest).await;
                shared
                    .progress
                    .built(&spec.name, &spec.image, Duration::ZERO);
                Status::Built { id }
            }
            Err(Stop::Failed(why)) => {
                shared.progress.failed(&spec.name, &why);
                Status::Failed(why)
            }
            Err(Stop::Interrupted) => Status::Interrupted,
        };
        out.push((i, store, status));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(kind: &str) -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, String> = labels::COMMON
            .iter()
            .map(|k| (k.to_string(), "x".to_string()))
            .collect();
        m.insert(labels::TYPE.into(), kind.into());
        m.insert(labels::INPUTS_DIGEST.into(), "sha256:d".into());
        m
    }

    #[test]
    fn label_check_names_missing_and_empty() {
        assert_eq!(check_labels(&full("core"), "sha256:d"), Ok(()));
        let err = check_labels(&full("agent"), "sha256:d").unwrap_err();
        assert!(err.contains("eval.agent.name, eval.agent.version"), "{err}");
        let mut m = full("core");
        m.insert(labels::OCI_TITLE.into(), "  ".into());
        assert!(check_labels(&m, "sha256:d")
            .unwrap_err()
            .contains(labels::OCI_TITLE));
        m.remove(labels::TYPE);
        assert!(check_labels(&m, "sha256:d")
            .unwrap_err()
            .contains("eval.type is missing"));
        assert!(check_labels(&full("core"), "sha256:other")
            .unwrap_err()
            .contains("kiln.inputs.digest"));
        let mut eval = full("eval");
        for k in labels::BENCHMARK.iter().chain(labels::AGENT) {
            eval.insert(k.to_string(), "v".into());
        }
        assert_eq!(check_labels(&eval, "sha256:d"), Ok(()));
        eval.insert(labels::BENCHMARK_ENV.into(), labels::ENV_PER_TASK.into());
        assert!(check_labels(&eval, "sha256:d")
            .unwrap_err()
            .contains(labels::TASK_ID));
    }
}
