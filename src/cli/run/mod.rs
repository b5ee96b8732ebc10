mod dataset;
mod kubernetes;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::backend::detect::Requested;
use crate::run::local;
use crate::run::matrix::Selection;
use crate::run::model::{ModelMode, ModelSpec};
use crate::run::Options;

use super::Failure;

/// `kiln run`: one eval, or a matrix of them (benchmarks × agents × tasks × repeats).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  kiln run terminal-lite --agent oracle --task-id count-lines     one run
  kiln run terminal-lite metric-backfill --agent oracle --agent null --repeat 3
  kiln run --all --agent null --jobs 4 --output results
  kiln run --dataset ../tb2 --agent mini-swe-agent --model M --replay F --base-map bases.txt
  kiln -C ../tb2 run --agent oracle --agent null     a Harbor dataset (docs/layouts.md)
  kiln -C ../ec run agents-smoke --agent mini-swe-agent   an eval-containers fleet's eval image

Runs whose complete result already exists for the same eval image (input digest), model,
replay fixture and repeat are kept (--force runs them again). --keep-state keeps each run's
filesystem as the agent left it, for `kiln regrade`; `kiln clean` removes it. Ctrl-C stops and removes the
running containers, keeps finished results and exits 130; run the same command again to
finish. Exit status: 0 every run completed (whatever the scores); 1 a run could not
complete (infrastructure error) or a build failed; 2 refused input; 3 no backend; 130
interrupted.")]
pub struct Args {
    /// Benchmarks to run (every task of each, unless --task-id); or Harbor datasets, by
    /// their name in kiln.toml or by path.
    #[arg(value_name = "BENCHMARK")]
    pub benchmarks: Vec<String>,

    /// Every benchmark of the fleet.
    #[arg(long)]
    pub all: bool,

    /// An agent (`oracle` runs the task's reference solution, `null` does nothing);
    /// repeatable, at least one.
    #[arg(long = "agent", value_name = "AGENT")]
    pub agents: Vec<String>,

    /// A task (a directory name under benchmarks/<benchmark>/tasks/); repeatable. It
    /// applies to every named benchmark that has it.
    #[arg(long = "task-id", value_name = "ID")]
    pub tasks: Vec<String>,

    /// Runs per benchmark × agent × task; with N > 1 results go to one more level,
    /// <agent>/repeat-<k>/.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,

    /// Runs at once (default: twice the CPUs, at most one per 512 MiB of available memory).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,

    /// Run again even when a complete result made from the same inputs exists.
    #[arg(long)]
    pub force: bool,

    /// Results root: a run writes <DIR>/<benchmark>/<task lowercased>/<agent>/[repeat-<k>/]
    /// result.json and its logs, replacing that directory's previous contents.
    #[arg(long, short = 'o', default_value = "results", value_name = "DIR")]
    pub output: PathBuf,

    /// The model the agent should use (given to it as MODEL).
    #[arg(long)]
    pub model: Option<String>,

    /// Run the agent against a model gateway replaying this fixture (docs/model-gateway.md),
    /// on a network where the gateway is the only other host (--on kubernetes: a second
    /// container in each pod, on the pod's loopback). Needs --model.
    #[arg(long, value_name = "FIXTURE", conflicts_with = "record")]
    pub replay: Option<PathBuf>,

    /// With --replay: serve requests that differ from the recording anyway (counted).
    #[arg(long, requires = "replay")]
    pub lenient: bool,

    /// With --replay: pace streamed answers as recorded, FACTOR times faster (1: as
    /// recorded), or `max`: no waiting.
    #[arg(
        long,
        value_name = "FACTOR|max",
        default_value = "1",
        env = crate::env::REPLAY_SPEED.name
    )]
    pub replay_speed: crate::gateway::Speed,

    /// Record the agent's model calls to this fixture through a gateway forwarding to
    /// --upstream. Needs --model. Local runs only.
    #[arg(long, value_name = "FIXTURE", requires = "upstream")]
    pub record: Option<PathBuf>,

    /// The upstream model API for --record (http[s]://HOST[:PORT][/PREFIX]; https is
    /// verified against the system roots and --ca-bundle).
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

    /// Keep each run's filesystem as the agent left it (before any grader ran) as an
    /// image of Docker's store, named in run.json, so that `kiln regrade` can grade it
    /// again with changed graders; `kiln clean` removes it. Docker Engine only. On an
    /// eval-containers fleet: the eval container committed between its agent and its
    /// grader (docs/authoring.md).
    #[arg(long)]
    pub keep_state: bool,

    /// Override the task's agent timeout, in seconds.
    #[arg(long, value_name = "SEC")]
    pub agent_timeout: Option<u64>,

    /// How to build missing images (as `kiln build --backend`).
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: Requested,

    /// A CA bundle handed to builds as the build secret `ca-bundle` (as `kiln build
    /// --ca-bundle`); images that need it are built with bake or podman and, when podman
    /// built them, moved to the Docker Engine to run.
    #[arg(long, env = crate::env::CA_BUNDLE.name, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,

    /// Do not build: run the eval images as they are (an error if one does not exist).
    #[arg(long)]
    pub no_build: bool,

    /// auto (a bar on a terminal, lines otherwise), tty, plain or quiet.
    #[arg(long, default_value = "auto", value_parser = parse_progress)]
    pub progress: crate::printer::Mode,

    /// Do not echo the runner's progress or per-run lines (same as --progress quiet).
    #[arg(long, short)]
    pub quiet: bool,

    /// Where the runs happen: `local` (the Docker Engine or podman) or `kubernetes`
    /// (the cluster of the current KUBECONFIG context, as Indexed Jobs).
    #[arg(long, default_value = "local", value_parser = ["local", "kubernetes"])]
    pub on: String,

    /// --on kubernetes: the registry the cluster pulls eval images from,
    /// HOST[:PORT][/PREFIX]; kiln pushes them there tagged by their input digest, with
    /// the login `docker login` stored, and hands that login to the pods as an image
    /// pull secret that lives as long as the run.
    #[arg(long, value_name = "HOST[:PORT][/PREFIX]")]
    pub registry: Option<String>,

    /// A Harbor dataset (a folder of `task.toml` tasks) this repository's agents run on,
    /// named by its folder (repeatable; `[datasets] NAME = "PATH"` in kiln.toml names
    /// them for good). A BENCHMARK that is a path (holding `/`) is taken the same way.
    #[arg(long = "dataset", value_name = "PATH")]
    pub datasets: Vec<PathBuf>,

    /// Harbor datasets: public base images replaced by local ones, one
    /// `PUBLIC_REF=LOCAL_REF` a line (as `kiln build --base-map`).
    #[arg(long, value_name = "FILE")]
    pub base_map: Option<PathBuf>,

    /// Harbor datasets: one base map entry `PUBLIC_REF=LOCAL_REF` (repeatable).
    #[arg(long = "base", value_name = "PUBLIC=LOCAL")]
    pub bases: Vec<String>,

    /// --on kubernetes: a registry reached without verified TLS, HOST[:PORT] or a CIDR
    /// (repeatable; the engine's insecure-registries count too; loopback needs no flag).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]", value_parser = super::release::parse_insecure)]
    pub insecure_registries: Vec<String>,

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

fn parse_progress(s: &str) -> Result<crate::printer::Mode, String> {
    s.parse()
}

pub fn run(repo: &Path, args: Args) -> anyhow::Result<ExitCode> {
    if args.on == "kubernetes" {
        if !args.datasets.is_empty() || args.base_map.is_some() || !args.bases.is_empty() {
            return Err(Failure::usage(
                "--dataset, --base-map and --base run on this machine only (not --on kubernetes)",
            ));
        }
        return kubernetes::run(repo, args);
    }
    if args.dry_run || args.registry.is_some() || !args.insecure_registries.is_empty() {
        return Err(Failure::usage(
            "--dry-run, --registry and --insecure-registry apply to --on kubernetes only",
        ));
    }
    for t in &args.tasks {
        // Checked before the repository is even read.
        crate::naming::validate_task_id(t).map_err(|e| Failure::usage(e.to_string()))?;
    }
    let gateway = model_spec(&args)?;
    if let Some(file) = &args.ca_bundle {
        if !file.is_file() {
            return Err(Failure::usage(format!(
                "--ca-bundle {}: no such file",
                file.display()
            )));
        }
    }
    let opts = options(repo, &args, gateway)?;
    if crate::fleet::layout::detect(repo)?.name() == crate::plan::eval_containers::LAYOUT {
        return eval_containers(repo, args, &opts);
    }
    if let Some(code) = dataset::run(repo, &args, &opts)? {
        return Ok(ExitCode::from(code));
    }
    if args.base_map.is_some() || !args.bases.is_empty() {
        return Err(Failure::usage(
            "--base-map and --base apply to Harbor datasets (kiln's own fleet builds on local bases: scripts/make-bases.sh)",
        ));
    }
    let selection = Selection {
        benchmarks: args.benchmarks,
        all: args.all,
        agents: args.agents,
        tasks: args.tasks,
        repeat: args.repeat,
        model: args.model,
        replay: args
            .replay
            .as_deref()
            .map(crate::run::matrix::fixture_identity)
            .transpose()?,
    };
    Ok(ExitCode::from(local::run(repo, &selection, &opts)?))
}

/// `kiln run` on an eval-containers fleet: its eval images as `kiln build eval` made them.
fn eval_containers(repo: &Path, args: Args, opts: &Options) -> anyhow::Result<ExitCode> {
    for (set, flag) in [
        (args.all, "--all"),
        (!args.datasets.is_empty(), "--dataset"),
        (
            args.base_map.is_some() || !args.bases.is_empty(),
            "--base-map/--base",
        ),
        (args.jobs.is_some(), "--jobs"),
    ] {
        if set {
            return Err(Failure::usage(format!(
                "{flag} does not apply to an eval-containers fleet's runs (docs/layouts.md)"
            )));
        }
    }
    let fleet = crate::fleet::Fleet::load(repo, super::build::env_vars())?;
    let sel = crate::run::eval_containers::Selection {
        fleet: &fleet,
        benchmarks: args.benchmarks,
        agents: args.agents,
        tasks: args.tasks,
        repeat: args.repeat,
        keep_state: args.keep_state,
    };
    Ok(ExitCode::from(crate::run::eval_containers::run(
        &sel, opts,
    )?))
}

/// The run options every kind of run shares.
fn options(repo: &Path, args: &Args, gateway: Option<ModelSpec>) -> anyhow::Result<Options> {
    Ok(Options {
        output: args.output.clone(),
        jobs: args.jobs.map(usize::from),
        force: args.force,
        no_build: args.no_build,
        backend: args.backend,
        pass_env: args.pass_env.clone(),
        agent_timeout: args.agent_timeout,
        gateway,
        ca_bundle: args.ca_bundle.clone(),
        progress: if args.quiet {
            crate::printer::Mode::Quiet
        } else {
            args.progress
        },
        vars: super::build::env_vars(),
        build_info: if args.no_build {
            None
        } else {
            Some(super::build::build_info(repo)?)
        },
        keep_state: args.keep_state,
    })
}

/// The run's model gateway, from --model, --replay/--lenient, --record/--upstream.
pub(super) fn model_spec(args: &Args) -> anyhow::Result<Option<ModelSpec>> {
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
                speed: args.replay_speed,
            }
        }
        (None, Some(fixture), Some(upstream)) => {
            crate::gateway::record::Upstream::parse(upstream)
                .map_err(|e| Failure::usage(format!("{e:#}")))?;
            if let Some(name) = &args.upstream_key_env {
                if crate::env::named(name).is_none() {
                    return Err(Failure::usage(format!(
                        "--upstream-key-env {name}: {name} is not set in kiln's environment"
                    )));
                }
            }
            ModelMode::Record {
                fixture: fixture.clone(),
                upstream: upstream.clone(),
                api_key_env: args.upstream_key_env.clone(),
                ca_bundle: args.ca_bundle.clone(),
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
