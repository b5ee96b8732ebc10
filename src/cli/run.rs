use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::backend::detect::{self, Requested};
use crate::fleet::{Env, Fleet};
use crate::plan::{self, Request};
use crate::run::model::{ModelMode, ModelSpec};
use crate::run::{self, RunSpec};
use crate::store::{self, Store};

use super::Failure;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The benchmark.
    pub benchmark: String,

    /// The agent (`oracle` runs the task's reference solution, `null` does nothing).
    #[arg(long, value_name = "AGENT")]
    pub agent: String,

    /// The task to run (a directory name under benchmarks/<benchmark>/tasks/).
    #[arg(long, value_name = "ID")]
    pub task_id: String,

    /// Results root: the run writes <DIR>/<benchmark>/<task lowercased>/<agent>/result.json
    /// and its logs, replacing that directory's previous contents.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub output: PathBuf,

    /// The model the agent should use (given to it as MODEL).
    #[arg(long)]
    pub model: Option<String>,

    /// Run the agent against a model gateway replaying this fixture (docs/model-gateway.md),
    /// on a network where the gateway is the only other host. Needs --model.
    #[arg(long, value_name = "FIXTURE", conflicts_with = "record")]
    pub replay: Option<PathBuf>,

    /// With --replay: serve requests that differ from the recording anyway (counted).
    #[arg(long, requires = "replay")]
    pub lenient: bool,

    /// Record the agent's model calls to this fixture through a gateway forwarding to
    /// --upstream. Needs --model.
    #[arg(long, value_name = "FIXTURE", requires = "upstream")]
    pub record: Option<PathBuf>,

    /// The upstream model API for --record (http://HOST:PORT[/PREFIX]).
    #[arg(long, value_name = "URL", requires = "record")]
    pub upstream: Option<String>,

    /// The environment variable holding the upstream's API key (--record): handed to
    /// the gateway only, never to the agent, never written.
    #[arg(long, value_name = "NAME", requires = "record")]
    pub upstream_key_env: Option<String>,

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

    /// A CA bundle handed to builds as the build secret `ca-bundle` (as `kiln build
    /// --ca-bundle`); images that need it are built with bake or podman and, when podman
    /// built them, moved to the Docker Engine to run.
    #[arg(long, env = "KILN_CA_BUNDLE", value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,

    /// Do not build: run the eval image as it is (an error if it does not exist).
    #[arg(long)]
    pub no_build: bool,

    /// Do not echo the runner's progress.
    #[arg(long, short)]
    pub quiet: bool,
}

fn r_score(outcome: &run::Outcome) -> f64 {
    outcome.result.as_ref().map_or(0.0, |r| r.score.value)
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
    crate::naming::validate_task_id(&args.task_id).map_err(|e| Failure::usage(e.to_string()))?;
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
    let gateway = model_spec(&args)?;
    let fleet = Fleet::load(repo, super::build::env_vars())?;
    let benchmark = fleet
        .benchmark(&args.benchmark)
        .map_err(|r| Failure::usage(r.0))?
        .clone();
    fleet.agent(&args.agent).map_err(|r| Failure::usage(r.0))?;
    let task = benchmark
        .task(&args.task_id)
        .map_err(super::build::refused_to_usage)?
        .to_string();
    let per_task = benchmark.env == Env::PerTask;
    let image = fleet.naming.eval(
        &benchmark.name,
        per_task.then_some(task.as_str()),
        &args.agent,
    );

    let solution = if args.agent == run::ORACLE {
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
            &benchmark.name,
            per_task.then(|| task.clone()),
            &image,
        )?
    };

    let spec = RunSpec {
        benchmark: benchmark.name.clone(),
        task: task.clone(),
        agent: args.agent.clone(),
        image: image.clone(),
        store,
        model: args.model.clone(),
        pass_env: args.pass_env.clone(),
        agent_timeout: args.agent_timeout,
        solution,
        output: args.output.clone(),
        echo_progress: !args.quiet,
        gateway,
    };
    eprintln!(
        "running {image} [{store}]: task {task}, agent {}",
        args.agent
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
                args.agent,
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
            if let Some(stats) = &outcome.model {
                println!("model gateway: {}", stats.summary());
                if let Some(r) = &stats.replay {
                    let part = crate::report::ReplayPart {
                        turns_served: r.turns_served as u64,
                        turns_recorded: r.turns_recorded as u64,
                        diverged: r
                            .diverged
                            .iter()
                            .map(|d| crate::report::DivergencePart {
                                turn: d.turn as u64,
                                reason: d.reason.clone(),
                            })
                            .collect(),
                        exhausted: r.exhausted as u64,
                        recorded_score: r.recorded_score,
                        score_equals_recorded: r
                            .recorded_score
                            .map(|rec| (rec - r_score(&outcome)).abs() < 1e-9),
                    };
                    let note = part.note(r_score(&outcome));
                    if !note.is_empty() {
                        println!("warning: {note}");
                    }
                }
            }
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

/// The run's model gateway, from --model, --replay/--lenient, --record/--upstream.
fn model_spec(args: &Args) -> anyhow::Result<Option<ModelSpec>> {
    let mode = match (&args.replay, &args.record, &args.upstream) {
        (Some(fixture), _, _) => {
            if !fixture.is_file() {
                return Err(Failure::usage(format!(
                    "--replay {}: no such fixture",
                    fixture.display()
                )));
            }
            crate::gateway::fixture::Fixture::read(fixture)
                .map_err(|e| Failure::usage(format!("--replay: {e:#}")))?;
            ModelMode::Replay {
                fixture: fixture.clone(),
                lenient: args.lenient,
            }
        }
        (None, Some(fixture), Some(upstream)) => {
            crate::gateway::record::Upstream::parse(upstream)
                .map_err(|e| Failure::usage(format!("{e:#}")))?;
            if let Some(name) = &args.upstream_key_env {
                if std::env::var_os(name).is_none() {
                    return Err(Failure::usage(format!(
                        "--upstream-key-env {name}: {name} is not set in kiln's environment"
                    )));
                }
            }
            ModelMode::Record {
                fixture: fixture.clone(),
                upstream: upstream.clone(),
                api_key_env: args.upstream_key_env.clone(),
            }
        }
        _ => return Ok(None),
    };
    let Some(model) = args.model.clone() else {
        return Err(Failure::usage(
            "--replay and --record need --model (the model the agent asks the gateway for)",
        ));
    };
    Ok(Some(ModelSpec { model, mode }))
}

/// Builds the eval image and everything under it that is missing or stale (the
/// executor skips up-to-date images) and returns the store that holds it.
fn build(
    repo: &Path,
    fleet: &Fleet,
    args: &Args,
    benchmark: &str,
    task: Option<String>,
    image: &str,
) -> anyhow::Result<Store> {
    run::stage::stage_runner(repo)?;
    let request = Request::Eval {
        benchmark: benchmark.to_string(),
        agent: args.agent.clone(),
        task,
    };
    let info = super::build::build_info(repo)?;
    let mut plan = plan::plan(fleet, &request, &info).map_err(super::build::refused_to_usage)?;
    if let Some(file) = &args.ca_bundle {
        if !file.is_file() {
            return Err(Failure::usage(format!(
                "--ca-bundle {}: no such file",
                file.display()
            )));
        }
        let named = plan::ca_bundle::apply(&mut plan.builds, file);
        plan::ca_bundle::apply_bake(&mut plan.bake, &plan.builds, file);
        if !named.is_empty() {
            eprintln!(
                "note: CA bundle {} handed as build secret `ca-bundle` to {}",
                file.display(),
                named.join(", ")
            );
        }
    }
    let needs_secrets = plan.builds.iter().any(|b| !b.secrets.is_empty());
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
    // Build secrets need bake or podman: then the image is moved to the engine below.
    if args.backend == Requested::Auto
        && decision.backend.store() == Store::Podman
        && !needs_secrets
    {
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
    let store = prefer_engine(image, store)?;
    if store == Store::Podman && probes.engine.is_ok() {
        move_to_engine(image)?;
        return Ok(Store::Docker);
    }
    Ok(store)
}

/// Copies `image` from podman's store into the Docker Engine's (kiln runs containers
/// on the engine; podman here builds but need not run them), and says so.
fn move_to_engine(image: &str) -> anyhow::Result<()> {
    eprintln!("note: moving {image} from podman's store to the Docker Engine (skopeo copy) to run it there");
    let out = duct::cmd(
        "skopeo",
        [
            "copy",
            "--quiet",
            &format!("containers-storage:{image}"),
            &format!("docker-daemon:{image}"),
        ],
    )
    .stdout_capture()
    .stderr_capture()
    .unchecked()
    .run()
    .map_err(|e| {
        anyhow::anyhow!("running skopeo to move {image} to the Docker Engine: {e} (install skopeo)")
    })?;
    if !out.status.success() {
        anyhow::bail!(
            "moving {image} from podman's store to the Docker Engine failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
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
