use crate::printer::outln;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::backend::detect::Requested;
use crate::run::shell::{self, Request, DEFAULT_AGENT};
use crate::run::Options;

use super::Failure;

/// `kiln shell`: an interactive shell in a task's environment, as its agent sees it.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  kiln shell terminal-lite --task-id count-lines                  in the null agent's place
  kiln shell terminal-lite --task-id count-lines --with-tests     graders at /tests
  kiln shell terminal-lite --task-id count-lines --agent oracle   solution in $SOLUTION_DIR
  kiln shell terminal-lite --task-id count-lines --dry-run        the docker run command

kiln builds what is out of date (as kiln run does), then runs the eval image with the
runner's `shell` phase: services started, fixtures copied, setup run, then bash (sh when
the image has no bash) as the agent user (uid 1000) in $WORKSPACE with the agent's
environment ($PROMPT_FILE holds the prompt). The graders under /kiln stay hidden.
The container is removed when the shell exits, on Ctrl-C/SIGTERM (exit 130) and when the
terminal closes (SIGHUP, exit 129); otherwise kiln exits with the shell's status. With
stdin not a terminal the shell runs without a TTY and reads its commands from stdin.
Harbor datasets: the task's environment as its agent user (docs/authoring.md).
eval-containers fleets: the eval image kiln run runs (built by kiln build eval; not
built here), uid 1002 with run-agent's environment, no network; --with-tests makes
/grade.sh, /tests and /tasks/<task> readable, --with-solution mounts solution.sh at
/solution/solution.sh (docs/authoring.md).
Exit status: 2 refused input (unknown benchmark, agent or task; nothing started), 3 no
backend to build with, 1 a build failed.")]
pub struct Args {
    /// The benchmark.
    #[arg(value_name = "BENCHMARK")]
    pub benchmark: String,

    /// The task (a directory name under benchmarks/<benchmark>/tasks/).
    #[arg(long = "task-id", value_name = "ID")]
    pub task: String,

    /// The agent whose eval image and place the shell takes (`oracle` also gets the
    /// solution, as in kiln run). eval-containers: default the one agent whose eval
    /// image of the task is built.
    #[arg(long, default_value = DEFAULT_AGENT, value_name = "AGENT")]
    pub agent: String,

    /// Put the task's solution/ where the oracle finds it: /kiln/solutions/<task>/,
    /// copied by the runner to $SOLUTION_DIR (/run/kiln/solution) for the agent user
    /// (Harbor: /solution; eval-containers: the benchmark's solution.sh at
    /// /solution/solution.sh).
    #[arg(long)]
    pub with_solution: bool,

    /// Show the task's graders (its grading/ directory) at /tests, read-only (Harbor: its
    /// tests/; eval-containers: the image's /grade.sh and /tests made readable).
    #[arg(long)]
    pub with_tests: bool,

    /// Print the docker run command instead of building and running anything.
    #[arg(long)]
    pub dry_run: bool,

    /// How to build missing images (as `kiln build --backend`).
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: Requested,

    /// A CA bundle handed to builds as the build secret `ca-bundle` (as `kiln run`).
    #[arg(long, env = crate::env::CA_BUNDLE.name, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,

    /// The build's progress: auto (a bar on a terminal, lines otherwise), tty, plain or quiet.
    #[arg(long, default_value = "auto", value_parser = parse_progress)]
    pub progress: crate::printer::Mode,

    /// Public base images replaced by local ones, one `PUBLIC_REF=LOCAL_REF` a line
    /// (a Harbor dataset, as `kiln build --base-map`).
    #[arg(long, value_name = "FILE")]
    pub base_map: Option<PathBuf>,

    /// One base map entry `PUBLIC_REF=LOCAL_REF` (repeatable; after --base-map).
    #[arg(long = "base", value_name = "PUBLIC=LOCAL")]
    pub bases: Vec<String>,
}

fn parse_backend(s: &str) -> Result<Requested, String> {
    s.parse()
}

fn parse_progress(s: &str) -> Result<crate::printer::Mode, String> {
    s.parse()
}

pub fn run(repo: &Path, args: Args) -> anyhow::Result<ExitCode> {
    if let Some(file) = args.ca_bundle.as_ref().filter(|f| !f.is_file()) {
        return Err(Failure::usage(format!(
            "--ca-bundle {}: no such file",
            file.display()
        )));
    }
    let layout = crate::fleet::layout::detect(repo)?.name();
    if layout == crate::fleet::layout::harbor::NAME {
        let fleet = crate::fleet::Fleet::load(repo, super::build::env_vars())?;
        return harbor(repo, &fleet, &args);
    }
    if layout == crate::fleet::layout::eval_containers::NAME {
        return eval_containers(repo, &args);
    }
    let request = Request {
        benchmark: args.benchmark,
        task: args.task,
        agent: args.agent,
        with_solution: args.with_solution,
        with_tests: args.with_tests,
    };
    let checked = shell::check(repo, &request, super::build::env_vars())?;
    if args.dry_run {
        shell::print_dry_run(&checked)?;
        return Ok(ExitCode::SUCCESS);
    }
    let opts = Options {
        output: PathBuf::new(),
        jobs: None,
        force: false,
        no_build: false,
        backend: args.backend,
        pass_env: Vec::new(),
        agent_timeout: None,
        gateway: None,
        ca_bundle: args.ca_bundle,
        progress: args.progress,
        vars: super::build::env_vars(),
        build_info: Some(super::build::build_info(repo)?),
        keep_state: false,
    };
    Ok(ExitCode::from(shell::run(repo, &checked, &opts)?))
}

/// A shell in an eval-containers task, in its agent's place in the eval image `kiln run`
/// runs (docs/authoring.md); that layout's runs do not build, nor does its shell.
fn eval_containers(repo: &Path, args: &Args) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal as _;
    if args.base_map.is_some() || !args.bases.is_empty() {
        return Err(Failure::usage(
            "--base-map and --base apply to building; an eval-containers shell runs the eval image `kiln build eval` made",
        ));
    }
    let fleet = crate::fleet::Fleet::load(repo, super::build::env_vars())?;
    let req = crate::run::eval_containers::shell::Request {
        benchmark: &args.benchmark,
        task: &args.task,
        agent: (args.agent != shell::DEFAULT_AGENT || fleet.agent(&args.agent).is_ok())
            .then_some(args.agent.as_str()),
        with_solution: args.with_solution,
        with_tests: args.with_tests,
        tty: args.dry_run || std::io::stdin().is_terminal(),
        dry_run: args.dry_run,
    };
    let spec = crate::run::eval_containers::shell::spec(&fleet, &req)?;
    if args.dry_run {
        outln!("{}", crate::backend::shell::join(&spec.argv()));
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(crate::run::reap::reap_and_say(&[
        crate::store::Store::Docker,
    ]))?;
    Ok(ExitCode::from(shell::run_spec(&runtime, &spec)?))
}

/// A shell in a Harbor task's environment: its image built when out of date, then
/// `docker run -it` as the task's agent would run (docs/layouts.md).
fn harbor(repo: &Path, fleet: &crate::fleet::Fleet, args: &Args) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal as _;
    if args.agent != shell::DEFAULT_AGENT {
        return Err(Failure::usage(format!(
            "--agent {:?}: a Harbor dataset has no agents of its own; --with-solution mounts the solution",
            args.agent
        )));
    }
    let bench = fleet
        .benchmark(&args.benchmark)
        .map_err(|e| Failure::usage(e.0.clone()))?;
    let id = bench
        .task(&args.task)
        .map_err(crate::fleet::refused_to_usage)?
        .to_string();
    let ds = fleet.layout.dataset.as_ref().expect("a Harbor fleet");
    let task = ds.task(&id).expect("a listed task");
    if let Some(why) = task.cannot_run(&fleet.root) {
        return Err(Failure::usage(format!("task {id} cannot run here: {why}")));
    }
    let images = crate::plan::harbor::images(fleet, task);
    let tty = args.dry_run || std::io::stdin().is_terminal();
    let mut spec = shell::harbor(
        fleet,
        task,
        &images.environment,
        args.with_solution,
        args.with_tests,
        tty,
    )?;
    if args.dry_run {
        // As for kiln's fleets: a pasted command outlives this kiln process, so it does
        // not carry the labels naming it (the next run would reap it as a dead one's).
        spec.labels = vec![(crate::run::reap::LABEL_RUN.into(), "true".into())];
        outln!("{}", crate::backend::shell::join(&spec.argv()));
        return Ok(ExitCode::SUCCESS);
    }
    let base_map =
        crate::plan::base_map::BaseMap::from_flags(args.base_map.as_deref(), &args.bases)
            .map_err(crate::fleet::refused_to_usage)?;
    let request = crate::plan::Request::Benchmark {
        benchmark: bench.name.clone(),
        task: Some(id),
    };
    let info = super::build::build_info(repo)?;
    let plan = crate::plan::harbor::plan(fleet, &request, &info, &base_map)
        .map_err(crate::fleet::refused_to_usage)?;
    let settings = crate::ensure::Settings {
        progress: args.progress,
        ca_bundle: args.ca_bundle.clone(),
        ..crate::ensure::Settings::new(args.backend)
    };
    let summary = crate::ensure::ensure(
        &fleet.root,
        Some(fleet),
        plan,
        &settings,
        None,
        crate::ensure::Use::Run,
    )?;
    if summary.exit_code() != 0 {
        return Ok(ExitCode::from(summary.exit_code()));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(ExitCode::from(shell::run_spec(&runtime, &spec)?))
}
