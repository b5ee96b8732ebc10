use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::backend::detect::Requested;
use crate::run::local::Options;
use crate::run::shell::{self, Request, DEFAULT_AGENT};

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
    /// solution, as in kiln run).
    #[arg(long, default_value = DEFAULT_AGENT, value_name = "AGENT")]
    pub agent: String,

    /// Put the task's solution/ where the oracle finds it: /kiln/solutions/<task>/,
    /// copied by the runner to $SOLUTION_DIR (/run/kiln/solution) for the agent user.
    #[arg(long)]
    pub with_solution: bool,

    /// Show the task's graders (its grading/ directory) at /tests, read-only.
    #[arg(long)]
    pub with_tests: bool,

    /// Print the docker run command instead of building and running anything.
    #[arg(long)]
    pub dry_run: bool,

    /// How to build missing images (as `kiln build --backend`).
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: Requested,

    /// A CA bundle handed to builds as the build secret `ca-bundle` (as `kiln run`).
    #[arg(long, env = "KILN_CA_BUNDLE", value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,

    /// The build's progress: auto (a bar on a terminal, lines otherwise), tty, plain or quiet.
    #[arg(long, default_value = "auto", value_parser = parse_progress)]
    pub progress: crate::progress::Mode,
}

fn parse_backend(s: &str) -> Result<Requested, String> {
    s.parse()
}

fn parse_progress(s: &str) -> Result<crate::progress::Mode, String> {
    s.parse()
}

pub fn run(repo: &Path, args: Args) -> anyhow::Result<ExitCode> {
    if let Some(file) = args.ca_bundle.as_ref().filter(|f| !f.is_file()) {
        return Err(Failure::usage(format!(
            "--ca-bundle {}: no such file",
            file.display()
        )));
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
