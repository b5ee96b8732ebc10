//! The command layer: clap definitions and dispatch. Each subcommand's file turns its
//! flags into the library's option structs and calls one library function.

use crate::printer::errln;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bake;
mod build;
mod clean;
mod gateway;
mod lint;
mod list;
mod new;
mod regrade;
mod release;
mod report;
mod run;
mod shell;
mod validate;

/// Builds, labels and runs the container images of AI-agent evaluations.
///
/// Exit status: 0 success; 1 a build, check or bake resolution failed; 2 bad usage
/// or input refused before anything ran; 3 no backend able to do the work.
#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about,
    long_about,
    after_help = "Exit status: 0 success; 1 a build, check, run, push or resolution failed; 2 bad usage or \
                  input refused before anything ran; 3 no backend able to do the work; 130 interrupted \
                  (Ctrl-C or SIGTERM: what was started is removed). Environment variables: \
                  docs/environment.md."
)]
pub struct Cli {
    /// The repository root (kiln layout: holds docker-bake.hcl, benchmarks/ and containers/;
    /// eval-containers layout: holds containers/docker-bake.hcl).
    #[arg(
        short = 'C',
        long = "repo",
        global = true,
        default_value = ".",
        value_name = "DIR"
    )]
    pub repo: std::path::PathBuf,

    /// The fleet layout (default: detected from the files; docs/layouts.md).
    #[arg(long, global = true, value_name = "LAYOUT",
          value_parser = clap::builder::PossibleValuesParser::new(crate::fleet::layout::names()))]
    pub layout: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Resolve Docker Bake files like `docker buildx bake` (`--print` writes the same JSON).
    ///
    /// A repeated `--print` with the same files, request and environment is answered from
    /// a cache under $XDG_CACHE_HOME/kiln/bake (KILN_BAKE_CACHE=0 turns it off).
    Bake(bake::Args),
    /// Build benchmark, per-task, agent and eval images (or print the commands with --dry-run).
    Build(build::Args),
    /// Check the repository against RULES.md.
    Lint(lint::Args),
    /// List the fleet's benchmarks, agents, tasks or built images.
    List(list::Args),
    /// Build what is missing and run evals: one benchmark × agent × task, or a whole matrix,
    /// here or on Kubernetes (--on kubernetes).
    Run(run::Args),
    /// Open a shell in a task's environment as its agent sees it (same image, user,
    /// workspace, environment); --with-tests shows the graders at /tests.
    Shell(shell::Args),
    /// Aggregate the result.json files under a results directory: per benchmark × agent ×
    /// model the mean score with its 95% interval, pass@k, pass^k, tokens, cost, time;
    /// or compare two sets of runs task by task (docs/results.md).
    ///
    /// Exit status: 0 done; 1 a result.json could not be read (named, and listed with
    /// the other problems) or --fail-if-worse found B worse; 2 a directory or the price
    /// table is missing or bad.
    Report(report::Args),
    /// Grade the kept state of earlier runs (kiln run --keep-state) again with the
    /// current graders, without the agent or a model; the new results go beside the old.
    Regrade(regrade::Args),
    /// Remove kept state and the other images and containers kiln left in Docker's store.
    Clean(clean::Args),
    /// Run oracle and null on every task; a benchmark is valid when oracle scores 1.0 and null does not pass.
    Validate(validate::Args),
    /// Publish the released benchmarks, the agents and the core images (a Harbor dataset: its valid tasks) to a registry, gated and verified.
    Release(release::Args),
    /// The model gateway: replay a fixture, record an upstream, import OpenTelemetry traces.
    Gateway(gateway::Args),
    /// Scaffold a benchmark, a task or an agent (from PyPI) that passes `kiln lint` as written.
    New(new::Args),
}

/// Runs the parsed command and maps its outcome to the process exit status.
pub fn main(cli: Cli) -> ExitCode {
    if let Some(layout) = cli
        .layout
        .as_deref()
        .and_then(crate::fleet::layout::by_name)
    {
        crate::fleet::layout::force(layout);
    }
    let outcome = match cli.command {
        Command::Bake(args) => bake::run(&cli.repo, args),
        Command::Build(args) => build::run(&cli.repo, args),
        Command::Lint(args) => lint::run(&cli.repo, args),
        Command::List(args) => list::run(&cli.repo, args),
        Command::Run(args) => run::run(&cli.repo, args),
        Command::Shell(args) => shell::run(&cli.repo, args),
        Command::Report(args) => report::run(&cli.repo, args),
        Command::Regrade(args) => regrade::run(&cli.repo, args),
        Command::Clean(args) => clean::run(&cli.repo, args),
        Command::Validate(args) => validate::run(&cli.repo, args),
        Command::Release(args) => release::run(&cli.repo, args),
        Command::Gateway(args) => gateway::run(&cli.repo, args),
        Command::New(args) => new::run(&cli.repo, args),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            errln!("error: {err:#}");
            ExitCode::from(
                err.downcast_ref::<Failure>()
                    .map_or(Exit::Failed.code(), |f| f.code),
            )
        }
    }
}

pub use crate::error::{Exit, Failure};
