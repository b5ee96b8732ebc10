//! `kiln regrade RESULTS [--benchmark B]... [--task-id T]...`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::backend::detect::Requested;
use crate::regrade::{self, Options};
use crate::run::local;

use super::Failure;

/// Grade kept runs again with the current graders, without the agent or a model.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  kiln run terminal-lite --agent oracle --agent null --keep-state
  (change a grader under benchmarks/terminal-lite/tasks/<task>/grading/)
  kiln regrade results                                 every kept run
  kiln regrade results --benchmark terminal-lite --task-id count-lines

Each run's filesystem, kept as the agent left it (kiln run --keep-state), is graded
again in a container without network, with the graders and runner of the current
eval image (rebuilt first when a grader changed, as kiln run would). The new result goes
beside the old one as result.regraded-<n>.json, its logs in regraded-<n>/; result.json
is never touched, and kiln report shows the newest regrade, marked as such. Printed per
run: the run's own score and verdict, the new ones, and the runs that flipped. A run
without kept state is listed as not regradable. Exit status: 0 every regradable run was
regraded; 1 one could not be, or none was regradable; 2 refused input; 3 no backend;
130 interrupted.")]
pub struct Args {
    /// A results directory of `kiln run` (its --output).
    #[arg(value_name = "RESULTS")]
    pub results: PathBuf,

    /// Only the runs of this benchmark (repeatable).
    #[arg(long = "benchmark", value_name = "B")]
    pub benchmarks: Vec<String>,

    /// Only the runs of this task (repeatable).
    #[arg(long = "task-id", value_name = "ID")]
    pub tasks: Vec<String>,

    /// Regrades at once (default: as kiln run).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,

    /// How to build eval images whose graders changed (as `kiln build --backend`).
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: Requested,

    /// A CA bundle handed to builds as the build secret `ca-bundle` (as `kiln run`).
    #[arg(long, env = "KILN_CA_BUNDLE", value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,

    /// Do not build: take the graders from the eval images as they are.
    #[arg(long)]
    pub no_build: bool,

    /// auto, tty, plain or quiet (the build's progress).
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
    let opts = Options {
        results: args.results.clone(),
        benchmarks: args.benchmarks,
        tasks: args.tasks,
        jobs: args.jobs.map(usize::from),
        build: local::Options {
            output: args.results,
            jobs: None,
            force: false,
            no_build: args.no_build,
            backend: args.backend,
            pass_env: Vec::new(),
            agent_timeout: None,
            gateway: None,
            ca_bundle: args.ca_bundle,
            progress: args.progress,
            vars: super::build::env_vars(),
            build_info: None,
            keep_state: false,
        },
    };
    // The build information (git) is read only once the input is known to be good.
    Ok(ExitCode::from(regrade::run(repo, &opts, || {
        super::build::build_info(repo)
    })?))
}
