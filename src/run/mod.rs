//! `kiln run`: evals (benchmark × agent × task, repeated) run in their eval images, and
//! their results put where `kiln report` finds them:
//!
//! ```text
//! <output>/<benchmark>/<task id lowercased>/<agent>/        (one repeat)
//! <output>/<benchmark>/<task id lowercased>/<agent>/repeat-<k>/   (--repeat N, N > 1)
//!     result.json          the runner's result (docs/scenario-format.md §9)
//!     runner.log, agent/, grader/, services/, setup/, state/   the runner's /output
//!     runner.stdout.log    the container's stdout (the result between markers)
//!     runner.stderr.log    the container's stderr (the runner's progress)
//!     run.json             kiln's own record: image, store, exit status, wall time,
//!                          and `made_from` (the eval image's input digest, model,
//!                          replay fixture, repeat): what makes a result current
//! ```
//!
//! A result directory appears whole or not at all: the run writes to a hidden
//! `.<name>.partial-*` sibling and renames it into place when complete.
//! [`matrix`] says which runs a command means and which results are kept;
//! [`local`] runs them on this machine; [`execute`] is one run, start to tear-down;
//! [`reap`] removes the containers of kiln processes that died.
//!
//! Solutions reach oracle runs only: no image holds one (benchmark Dockerfiles
//! leave `solution/` out), and for the agent named `oracle` kiln copies
//! `benchmarks/<b>/tasks/<t>/solution/` into the container at
//! `/kiln/solutions/<t>/` before it starts, where the runner hands it to the agent.
//!
//! With `--keep-state` the filesystem the agent left is committed as an image before
//! anything grades it ([`kept_state`]); `run.json` names it, `kiln regrade` grades it.

pub mod container;
pub mod dataset;
pub mod display;
pub mod eval_containers;
pub mod harbor;
pub mod images;
pub mod kept_state;
pub mod kubernetes;
pub mod local;
pub mod matrix;
pub mod model;
pub mod reap;
pub mod shell;

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::Serialize;

use crate::report::{self, RunnerResult};
use crate::store::Store;

/// How to run a matrix.
#[derive(Debug, Clone)]
pub struct Options {
    /// The results root (`--output`).
    pub output: PathBuf,
    /// Runs at once; None: [`default_jobs`].
    pub jobs: Option<usize>,
    /// Run again even when a complete, current result exists.
    pub force: bool,
    /// Do not build: the eval images must exist.
    pub no_build: bool,
    pub backend: crate::backend::detect::Requested,
    /// Environment variables handed to the agent (names; values from kiln's environment).
    pub pass_env: Vec<String>,
    pub agent_timeout: Option<u64>,
    /// `--replay`/`--record`: each run gets a model gateway on a network of its own.
    pub gateway: Option<model::ModelSpec>,
    /// A CA bundle handed to builds as the build secret `ca-bundle`.
    pub ca_bundle: Option<PathBuf>,
    pub progress: crate::printer::Mode,
    /// The `REGISTRY`/`TAG` bake variables from the environment.
    pub vars: std::collections::BTreeMap<String, String>,
    /// The build-time label values (from git or the environment); needed unless `no_build`.
    pub build_info: Option<crate::labels::BuildInfo>,
    /// `--keep-state`: commit each run's filesystem as the agent left it (Docker Engine only).
    pub keep_state: bool,
}

impl Options {
    /// The settings its builds use: a run's `--force` runs again, it does not rebuild.
    pub fn build_settings(&self) -> crate::ensure::Settings {
        crate::ensure::Settings {
            ca_bundle: self.ca_bundle.clone(),
            progress: self.progress,
            ..crate::ensure::Settings::new(self.backend)
        }
    }
}

/// A fleet's refusal (an unknown name, a bad selection) as a usage error.
pub(crate) fn refused(err: anyhow::Error) -> anyhow::Error {
    if let Some(r) = err.downcast_ref::<crate::fleet::Refused>() {
        return crate::error::Failure::usage(r.0.clone());
    }
    err
}

/// The agent that gets the task's reference solution.
pub const ORACLE: &str = "oracle";
const BEGIN_MARKER: &str = "==== KILN RESULT BEGIN ====";
const END_MARKER: &str = "==== KILN RESULT END ====";

/// One eval to run, with its image already built.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub benchmark: String,
    /// The task id as the benchmark spells it.
    pub task: String,
    pub agent: String,
    pub image: String,
    pub store: Store,
    /// Passed to the runner as `KILN_MODEL`.
    pub model: Option<String>,
    /// Names of environment variables (API keys) handed to the agent; their values are
    /// read from kiln's environment and never written anywhere.
    pub pass_env: Vec<String>,
    pub agent_timeout: Option<u64>,
    /// The task's `solution/` directory: set for oracle runs only.
    pub solution: Option<PathBuf>,
    /// Where the result goes (see [`matrix::result_dir`]); replaced only when the run ends.
    pub dir: PathBuf,
    pub echo_progress: bool,
    /// The container's name (unique among running containers).
    pub container: String,
    /// Labels naming the kiln process and run ([`reap::Owner::labels`]).
    pub labels: Vec<(String, String)>,
    /// What the result is made from, recorded in run.json.
    pub made_from: Option<matrix::MadeFrom>,
    /// `--replay`/`--record`: the run gets a model gateway on a network of its own.
    pub gateway: Option<model::ModelSpec>,
    /// `--keep-state`: commit the filesystem the agent left (Docker Engine only).
    pub keep_state: bool,
}

/// What a run left.
#[derive(Debug)]
pub struct Outcome {
    /// The result directory.
    pub dir: PathBuf,
    pub runner_exit: i64,
    pub result: Option<RunnerResult>,
    /// Why there is no readable result, when there is none.
    pub result_error: Option<String>,
    pub wall: Duration,
    /// The model gateway's counters, when the run had one.
    pub model: Option<crate::gateway::stats::Stats>,
    /// `--keep-state`: the image, or why there is none.
    pub kept: Option<kept_state::Kept>,
}

/// kiln's own record of a run, `run.json` beside result.json.
#[derive(Debug, Serialize)]
struct RunRecord<'a> {
    benchmark: &'a str,
    task: &'a str,
    agent: &'a str,
    image: &'a str,
    store: Store,
    runner_exit: i64,
    wall_sec: f64,
    kiln_version: &'static str,
    output_error: Option<&'a str>,
    container: &'a str,
    made_from: Option<&'a matrix::MadeFrom>,
    /// `--keep-state`: the image holding the filesystem the agent left, or why there is none.
    kept_state: Option<&'a kept_state::Kept>,
}

/// Where a single run's results go (no repeats): `<output>/<benchmark>/<task lowercased>/<agent>`.
pub fn result_dir(output: &Path, benchmark: &str, task: &str, agent: &str) -> PathBuf {
    matrix::agent_dir(output, benchmark, task, agent)
}

/// A container name for a run: kiln's pid and a sequence number make it unique, the
/// rest says what runs in it.
pub fn container_name(seq: usize, benchmark: &str, task: &str, agent: &str, repeat: u32) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect()
    };
    let mut name = format!(
        "kiln-{}-{seq}-{}-{}-{}",
        std::process::id(),
        clean(benchmark),
        clean(task),
        clean(agent)
    );
    if repeat > 1 {
        name.push_str(&format!("-{repeat}"));
    }
    name
}

/// Tars `solution` as `kiln/solutions/<task>/…` for extraction at `/`, root-owned.
pub fn solution_tar(solution: &Path, task: &str) -> anyhow::Result<Vec<u8>> {
    if !solution.join("solve.sh").is_file() {
        bail!(
            "{} has no solve.sh: the oracle has nothing to run",
            solution.display()
        );
    }
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    let root = Path::new(container::SOLUTIONS_DIR.trim_start_matches('/')).join(task);
    builder
        .append_dir_all(&root, solution)
        .with_context(|| format!("packing {}", solution.display()))?;
    Ok(builder.into_inner()?)
}

/// The JSON between the runner's markers on stdout, when both are there.
pub fn between_markers(stdout: &str) -> Option<&str> {
    let start = stdout.find(BEGIN_MARKER)? + BEGIN_MARKER.len();
    let end = stdout[start..].find(END_MARKER)? + start;
    Some(stdout[start..end].trim())
}

/// Unpacks a tar of `/output` (entries `output/…`) into `dest`, dropping the first
/// component and refusing entries that would leave `dest`.
pub(crate) fn unpack_output(tar_bytes: &[u8], dest: &Path) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(tar_bytes);
    archive.set_preserve_permissions(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let rest: PathBuf = path.components().skip(1).collect();
        if rest.as_os_str().is_empty() {
            continue;
        }
        if rest
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            bail!("refusing {} from the container's output", path.display());
        }
        let target = dest.join(&rest);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        entry
            .unpack(&target)
            .with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(())
}

/// Replaces every secret value in the text files under `dir` (a last line of defence:
/// the runner never logs them, but an agent may print its own key).
pub(crate) fn scrub(dir: &Path, secrets: &[(String, String)]) -> anyhow::Result<()> {
    let secrets: Vec<&(String, String)> = secrets.iter().filter(|(_, v)| !v.is_empty()).collect();
    if secrets.is_empty() {
        return Ok(());
    }
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry?;
        if !entry.file_type().is_file() || entry.metadata()?.len() > 64 << 20 {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let mut clean = text.clone();
        for (name, value) in &secrets {
            clean = clean.replace(value.as_str(), &format!("[redacted {name}]"));
        }
        if clean != text {
            std::fs::write(entry.path(), clean)?;
        }
    }
    Ok(())
}

/// Runs `spec` and writes its results. Errors are infrastructure failures with
/// nothing to report (a [`container::Interrupted`] when `cancel` turned true: the
/// container is gone and nothing was written); a run whose runner failed still
/// returns an [`Outcome`] (with whatever result and logs it produced). The one place
/// a run is started and torn down.
pub async fn execute(
    spec: &RunSpec,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Outcome> {
    let mut secret_env = Vec::new();
    for name in &spec.pass_env {
        let value = crate::env::named(name).ok_or_else(|| {
            anyhow::anyhow!("--pass-env {name}: {name} is not set in kiln's environment")
        })?;
        secret_env.push((name.clone(), value));
    }
    if spec.keep_state && spec.store != Store::Docker {
        bail!(
            "--keep-state runs on the Docker Engine only (the image is in {}'s store)",
            spec.store
        );
    }
    let mut env = vec![
        ("KILN_TASK_ID".to_string(), spec.task.clone()),
        ("KILN_AGENT_ID".to_string(), spec.agent.clone()),
    ];
    if let Some(model) = &spec.model {
        env.push(("KILN_MODEL".to_string(), model.clone()));
    }
    let mut passed: Vec<String> = spec.pass_env.clone();
    let net = match &spec.gateway {
        Some(m) => {
            if spec.store != Store::Docker {
                bail!(
                    "--replay/--record run on the Docker Engine only (the image is in {}'s store)",
                    spec.store
                );
            }
            let base = format!("http://{}:{}", model::GATEWAY_HOST, model::GATEWAY_PORT);
            for (k, v) in model::ModelNet::agent_env(&base) {
                passed.push(k.clone());
                env.push((k, v));
            }
            Some(model::ModelNet::start(
                &spec.container,
                m,
                [&spec.benchmark, &spec.task, &spec.agent],
            )?)
        }
        None => None,
    };
    if !passed.is_empty() {
        env.push(("KILN_PASS_ENV".to_string(), passed.join(",")));
    }
    let mut args = vec!["all".to_string(), "--task".to_string(), spec.task.clone()];
    if let Some(secs) = spec.agent_timeout {
        args.extend(["--agent-timeout".to_string(), secs.to_string()]);
    }
    if spec.keep_state {
        args.push("--keep-state".to_string());
    }
    let solution_tar = match &spec.solution {
        Some(dir) => Some(solution_tar(dir, &spec.task)?),
        None => None,
    };
    let c = container::Container {
        image: spec.image.clone(),
        store: spec.store,
        name: spec.container.clone(),
        args,
        env,
        secret_env: secret_env.clone(),
        inject_tar: solution_tar,
        entrypoint: None,
        keep_state: spec.keep_state.then(|| kept_state::KeepState {
            benchmark: spec.benchmark.clone(),
            task: spec.task.clone(),
            agent: spec.agent.clone(),
            secret_names: secret_env.iter().map(|(k, _)| k.clone()).collect(),
        }),
        echo_progress: spec.echo_progress,
        labels: spec.labels.clone(),
        network: net.as_ref().map(|n| n.network.clone()),
    };
    let finished = container::run(&c, cancel).await?;

    // Results go to a fresh directory that replaces the previous run's only when complete.
    let dir = spec.dir.clone();
    let parent = dir.parent().expect("result_dir has a parent");
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let leaf = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{leaf}.partial-"))
        .tempdir_in(parent)
        .with_context(|| format!("creating a directory in {}", parent.display()))?;
    let mut output_error = finished.output_error.clone();
    if let Some(tar) = &finished.output_tar {
        if let Err(e) = unpack_output(tar, staging.path()) {
            output_error = Some(format!("{e:#}"));
        }
    }
    std::fs::write(staging.path().join("runner.stdout.log"), &finished.stdout)?;
    std::fs::write(staging.path().join("runner.stderr.log"), &finished.stderr)?;
    // The markers on stdout are the fallback when /output could not be copied out.
    let result_path = staging.path().join("result.json");
    if !result_path.is_file() {
        if let Some(json) = between_markers(&String::from_utf8_lossy(&finished.stdout)) {
            std::fs::write(&result_path, format!("{json}\n"))?;
        }
    }
    let record = RunRecord {
        benchmark: &spec.benchmark,
        task: &spec.task,
        agent: &spec.agent,
        image: &spec.image,
        store: spec.store,
        runner_exit: finished.exit_code,
        wall_sec: (finished.wall.as_secs_f64() * 1000.0).round() / 1000.0,
        kiln_version: env!("CARGO_PKG_VERSION"),
        output_error: output_error.as_deref(),
        container: &spec.container,
        made_from: spec.made_from.as_ref(),
        kept_state: finished.kept.as_ref(),
    };
    std::fs::write(
        staging.path().join("run.json"),
        serde_json::to_string_pretty(&record)? + "\n",
    )?;
    let mut model_stats = None;
    if let (Some(net), Some(m)) = (net, &spec.gateway) {
        let result_path = staging.path().join("result.json");
        let score = report::read_result(&result_path)
            .ok()
            .map(|r| r.score.value);
        let stats = net.finish(score, &staging.path().join("gateway.log"))?;
        if result_path.is_file() {
            model::write_section(&result_path, model::section(m, &stats, score))?;
        }
        model_stats = Some(stats);
    }
    scrub(staging.path(), &secret_env)?;
    // The state kept by the run this one replaces is nobody's any more.
    let replaced = kept_state::recorded(&dir).and_then(|k| k.image);
    replace_dir(staging, &dir)?;
    if let Some(image) = replaced {
        let _ = kept_state::remove(&image).await;
    }

    let (result, result_error) = if dir.join("result.json").is_file() {
        match report::read_result(&dir.join("result.json")) {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(format!("{e:#}"))),
        }
    } else {
        let why = output_error
            .unwrap_or_else(|| "the runner wrote no result.json and printed none".to_string());
        (None, Some(why))
    };
    Ok(Outcome {
        dir,
        runner_exit: finished.exit_code,
        result,
        result_error,
        wall: finished.wall,
        model: model_stats,
        kept: finished.kept,
    })
}

/// [`execute`] outside a runtime, stopped by Ctrl-C (for tests and one-off callers).
pub fn execute_blocking(spec: &RunSpec) -> anyhow::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let interrupt = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = tx.send(true);
            }
        });
        let outcome = execute(spec, rx).await;
        interrupt.abort();
        outcome
    })
}

/// Puts `staging` at `dir`: the previous results are moved aside first (so `dir` never
/// holds a mix), then removed.
fn replace_dir(staging: tempfile::TempDir, dir: &Path) -> anyhow::Result<()> {
    let parent = dir.parent().expect("result dir has a parent");
    let old = if dir.exists() {
        let aside = tempfile::Builder::new()
            .prefix(".replaced-")
            .tempdir_in(parent)?;
        std::fs::rename(dir, aside.path().join("old"))
            .with_context(|| format!("moving the previous results in {} aside", dir.display()))?;
        Some(aside)
    } else {
        None
    };
    let kept = staging.keep();
    std::fs::rename(&kept, dir).with_context(|| format!("moving results to {}", dir.display()))?;
    drop(old);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        let out = format!("x\n{BEGIN_MARKER}\n{{\"a\": 1}}\n{END_MARKER}\n");
        assert_eq!(between_markers(&out), Some("{\"a\": 1}"));
        assert_eq!(between_markers(BEGIN_MARKER), None);
    }

    #[test]
    fn result_dirs_lowercase_the_task() {
        assert_eq!(
            result_dir(
                Path::new("results"),
                "terminal-lite",
                "Fix.Config",
                "oracle"
            ),
            PathBuf::from("results/terminal-lite/fix.config/oracle")
        );
    }

    #[test]
    fn solution_tar_roots_at_kiln_solutions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("solve.sh"), "#!/bin/sh\n").unwrap();
        let tar = solution_tar(dir.path(), "Fix.Config").unwrap();
        let names: Vec<String> = tar::Archive::new(tar.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(
            names.contains(&"kiln/solutions/Fix.Config/solve.sh".to_string()),
            "{names:?}"
        );
        assert!(solution_tar(tempfile::tempdir().unwrap().path(), "t").is_err());
    }

    #[test]
    fn unpack_strips_output_and_refuses_escapes() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "output/agent/x.log", &b"hi"[..])
            .unwrap();
        let dest = tempfile::tempdir().unwrap();
        unpack_output(&b.into_inner().unwrap(), dest.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.path().join("agent/x.log")).unwrap(),
            "hi"
        );
    }

    #[test]
    fn scrub_redacts_secret_values() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.log"), "key is sk-test-123456 ok").unwrap();
        scrub(
            dir.path(),
            &[("MODEL_API_KEY".into(), "sk-test-123456".into())],
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.log")).unwrap(),
            "key is [redacted MODEL_API_KEY] ok"
        );
    }
}
