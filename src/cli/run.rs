use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::backend::detect::{self, Requested};
use crate::fleet::{Env, Fleet};
use crate::plan::{self, Request};
use crate::run::{self, RunSpec};
use crate::store::{self, Store};

use super::Failure;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The benchmark (several with --on kubernetes).
    #[arg(required = true, value_name = "BENCHMARK")]
    pub benchmarks: Vec<String>,

    /// The agent (`oracle` runs the task's reference solution, `null` does nothing);
    /// repeatable with --on kubernetes.
    #[arg(long, required = true, value_name = "AGENT")]
    pub agent: Vec<String>,

    /// The task to run (a directory name under benchmarks/<benchmark>/tasks/); with
    /// --on kubernetes repeatable, and every task of each benchmark when absent.
    #[arg(long, value_name = "ID")]
    pub task_id: Vec<String>,

    /// Results root: the run writes <DIR>/<benchmark>/<task lowercased>/<agent>/result.json
    /// and its logs, replacing that directory's previous contents.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub output: PathBuf,

    /// The model the agent should use (given to it as MODEL).
    #[arg(long)]
    pub model: Option<String>,

    /// Hand this environment variable (an API key, say) to the agent; repeatable. Its
    /// value never appears in a command line, a log or the results.
    #[arg(long = "pass-env", value_name = "NAME")]
    pub pass_env: Vec<String>,

    /// Override the task's agent timeout, in seconds.
    #[arg(long, value_name = "SEC")]
    pub agent_timeout: Option<u64>,

    /// How to build missing images (as `kiln build --backend`).
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: Requested,

    /// Do not build: run the eval image as it is (an error if it does not exist).
    #[arg(long)]
    pub no_build: bool,

    /// Do not echo the runner's progress.
    #[arg(long, short)]
    pub quiet: bool,

    /// Where the runs happen: `local` (the Docker Engine or podman) or `kubernetes`
    /// (the cluster of the current KUBECONFIG context, as Indexed Jobs).
    #[arg(long, default_value = "local", value_parser = ["local", "kubernetes"])]
    pub on: String,

    /// --on kubernetes: the registry the cluster pulls eval images from,
    /// HOST[:PORT][/PREFIX]; kiln pushes them there tagged by their input digest.
    #[arg(long, value_name = "HOST[:PORT][/PREFIX]")]
    pub registry: Option<String>,

    /// --on kubernetes: the namespace of kiln's Jobs.
    #[arg(long, default_value = "default", value_name = "NS")]
    pub namespace: String,

    /// --on kubernetes: pods running at once, over all Jobs.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallelism: u32,

    /// --on kubernetes: seconds between two looks at the Jobs' status.
    #[arg(long, default_value_t = 2.0, value_name = "SEC")]
    pub poll_interval: f64,

    /// --on kubernetes: print the manifests (YAML) and kubectl commands; build, push and
    /// contact nothing.
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_backend(s: &str) -> Result<Requested, String> {
    s.parse()
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Exit status: 0 when the run completed (whatever the score); 1 when it could not
/// (a build failed, the runner reported infra_error, no result came out); 2 refused
/// input; 3 no backend.
pub fn run(repo: &Path, args: Args) -> anyhow::Result<ExitCode> {
    if args.on == "kubernetes" {
        return super::run_kubernetes::run(repo, args);
    }
    for (what, flag, given) in [
        ("benchmark", "BENCHMARK", args.benchmarks.len()),
        ("agent", "--agent", args.agent.len()),
        ("task", "--task-id", args.task_id.len()),
    ] {
        if given != 1 {
            return Err(Failure::usage(format!(
                "a local kiln run runs one benchmark × agent × task: give one {what} ({flag}), not {given} \
                 (several run with --on kubernetes)"
            )));
        }
    }
    if args.dry_run || args.registry.is_some() {
        return Err(Failure::usage(
            "--dry-run and --registry apply to --on kubernetes only",
        ));
    }
    let task_id = args.task_id[0].clone();
    let agent = args.agent[0].clone();
    crate::naming::validate_task_id(&task_id).map_err(|e| Failure::usage(e.to_string()))?;
    if let Some(bad) = args.pass_env.iter().find(|n| !valid_env_name(n)) {
        return Err(Failure::usage(format!(
            "--pass-env {bad:?} is not an environment variable name"
        )));
    }
    if let Some(missing) = args.pass_env.iter().find(|n| std::env::var_os(n).is_none()) {
        return Err(Failure::usage(format!(
            "--pass-env {missing}: {missing} is not set in kiln's environment"
        )));
    }
    let fleet = Fleet::load(repo, super::build::env_vars())?;
    let benchmark = fleet
        .benchmark(&args.benchmarks[0])
        .map_err(|r| Failure::usage(r.0))?
        .clone();
    fleet.agent(&agent).map_err(|r| Failure::usage(r.0))?;
    let task = benchmark
        .task(&task_id)
        .map_err(super::build::refused_to_usage)?
        .to_string();
    let per_task = benchmark.env == Env::PerTask;
    let image = fleet.naming.eval(
        &benchmark.name,
        per_task.then_some(task.as_str()),
        &agent,
    );

    let solution = if agent == run::ORACLE {
        let dir = repo
            .join("benchmarks")
            .join(&benchmark.name)
            .join("tasks")
            .join(&task)
            .join("solution");
        if !dir.join("solve.sh").is_file() {
            return Err(Failure::usage(format!(
                "task {task} of {} has no reference solution ({}/solve.sh): the oracle cannot run it",
                benchmark.name,
                dir.display()
            )));
        }
        Some(dir)
    } else {
        None
    };

    let store = if args.no_build {
        let found = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(store::locate_async(&image));
        *found.first().ok_or_else(|| {
            anyhow::anyhow!("{image} is in neither Docker's nor podman's image store; run without --no-build to build it")
        })?
    } else {
        build(
            repo,
            &fleet,
            &args,
            &agent,
            &benchmark.name,
            per_task.then(|| task.clone()),
            &image,
        )?
    };

    let spec = RunSpec {
        benchmark: benchmark.name.clone(),
        task: task.clone(),
        agent: agent.clone(),
        image: image.clone(),
        store,
        model: args.model.clone(),
        pass_env: args.pass_env.clone(),
        agent_timeout: args.agent_timeout,
        solution,
        output: args.output.clone(),
        echo_progress: !args.quiet,
    };
    eprintln!(
        "running {image} [{store}]: task {task}, agent {agent}"
    );
    let outcome = run::execute(&spec)?;
    let shown = outcome.dir.join("result.json");
    match (&outcome.result, outcome.runner_exit) {
        (Some(r), 0) => {
            let gates = match (r.score.highest_gate, r.score.n_gates) {
                (Some(h), Some(n)) => format!(", gates {h}/{n}"),
                _ => String::new(),
            };
            println!(
                "{}/{task} × {}: {}, score {:.4} ({}{gates}), {} in {:.1}s → {}",
                benchmark.name,
                agent,
                r.status,
                r.score.value,
                r.score.mode,
                if r.score.passed {
                    "passed"
                } else {
                    "not passed"
                },
                outcome.wall.as_secs_f64(),
                shown.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        (Some(r), code) => {
            let why = r
                .errors
                .first()
                .map(|e| format!(": {}: {}", e.phase, e.message))
                .unwrap_or_default();
            eprintln!(
                "error: the run did not complete (runner exit {code}, status {}{why}); logs in {}",
                r.status,
                outcome.dir.display()
            );
            Ok(ExitCode::FAILURE)
        }
        (None, code) => {
            eprintln!(
                "error: the run left no readable result (runner exit {code}): {}; logs in {}",
                outcome.result_error.as_deref().unwrap_or("unknown"),
                outcome.dir.display()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Builds the eval image and everything under it that is missing or stale (the
/// executor skips up-to-date images) and returns the store that holds it.
pub(super) fn build(
    repo: &Path,
    fleet: &Fleet,
    args: &Args,
    agent: &str,
    benchmark: &str,
    task: Option<String>,
    image: &str,
) -> anyhow::Result<Store> {
    run::stage::stage_runner(repo)?;
    let request = Request::Eval {
        benchmark: benchmark.to_string(),
        agent: agent.to_string(),
        task,
    };
    let info = super::build::build_info(repo)?;
    let plan = plan::plan(fleet, &request, &info).map_err(super::build::refused_to_usage)?;
    for note in &plan.notes {
        eprintln!("note: {note}");
    }
    let probes = detect::probe();
    let local_only = if probes.buildx.is_some() && probes.driver.as_deref() != Some("docker") {
        let bases = detect::external_bases(&plan.builds);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(detect::local_only_bases(&bases))
    } else {
        Vec::new()
    };
    let mut decision = detect::decide(args.backend, &probes, &local_only)?;
    // The run itself happens on the engine when it answers, so an automatic choice
    // builds into the engine's store rather than podman's (no copy between stores).
    if args.backend == Requested::Auto && decision.backend.store() == Store::Podman {
        if let Ok(version) = &probes.engine {
            decision = detect::Decision {
                backend: crate::backend::BackendKind::Engine,
                reason: format!(
                    "kiln run runs the eval on the Docker Engine ({version}), so it builds into the engine's store \
                     (auto would have chosen {}: {})",
                    decision.backend, decision.reason
                ),
                cause: None,
                fallback: None,
            };
        }
    }
    let mut opts = crate::build::Options::new(repo);
    if args.quiet {
        opts.progress = crate::progress::Mode::Quiet;
    }
    let summary = crate::build::run(&plan.builds, &plan.bake, &decision, &opts)?;
    if !summary.ok() {
        anyhow::bail!("building {image} failed; nothing was run (see the build output above)");
    }
    let store = summary
        .outcomes
        .iter()
        .find(|o| o.image == image)
        .map(|o| o.store)
        .ok_or_else(|| anyhow::anyhow!("the plan for {image} did not build it (a kiln bug: the plan and the eval name disagree)"))?;
    prefer_engine(image, store)
}

/// An image current in podman's store that the engine holds with the same inputs runs
/// on the engine: kiln runs containers there when it can.
fn prefer_engine(image: &str, store: Store) -> anyhow::Result<Store> {
    if store != Store::Podman {
        return Ok(store);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let digest = |s: Store| -> Option<String> {
        rt.block_on(store::inspect(s, image))
            .ok()
            .flatten()
            .and_then(|i| i.labels.get(crate::labels::INPUTS_DIGEST).cloned())
    };
    match (digest(Store::Podman), digest(Store::Docker)) {
        (Some(p), Some(d)) if p == d => Ok(Store::Docker),
        _ => Ok(Store::Podman),
    }
}
