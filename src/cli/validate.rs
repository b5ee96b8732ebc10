//! `kiln validate [BENCHMARK]... [--task-id T]... [--jobs N] [--force]`.

use std::path::Path;
use std::process::ExitCode;

use crate::backend::detect::Requested;
use crate::fleet::Fleet;
use crate::validate::{self, Options};

use super::Failure;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Benchmarks to validate (default: all).
    pub benchmarks: Vec<String>,

    /// Only this task (repeatable).
    #[arg(long = "task-id", value_name = "ID")]
    pub task_ids: Vec<String>,

    /// Runs and builds at once (default: the number of CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,

    /// Run again even tasks whose verdict is recorded for the same images.
    #[arg(long)]
    pub force: bool,

    /// How to build missing images (as `kiln build --backend`).
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: Requested,

    /// A CA bundle (PEM) handed to builds as the build secret `ca-bundle` (as `kiln build
    /// --ca-bundle`), for builds behind a TLS-intercepting proxy.
    #[arg(long, env = "KILN_CA_BUNDLE", value_name = "FILE")]
    pub ca_bundle: Option<std::path::PathBuf>,
}

fn parse_backend(s: &str) -> Result<Requested, String> {
    s.parse()
}

/// Exit status: 0 every benchmark valid; 1 one is not (or a run could not happen);
/// 2 refused input; 3 no backend.
pub fn run(repo: &Path, args: Args) -> anyhow::Result<ExitCode> {
    for t in &args.task_ids {
        crate::naming::validate_task_id(t).map_err(|e| Failure::usage(e.to_string()))?;
    }
    if let Some(file) = args.ca_bundle.as_ref().filter(|f| !f.is_file()) {
        return Err(Failure::usage(format!(
            "--ca-bundle {}: no such file",
            file.display()
        )));
    }
    let fleet = Fleet::load(repo, super::build::env_vars())?;
    let info = super::build::build_info(repo)?;
    let mut opts = Options {
        repo: repo.to_path_buf(),
        benchmarks: args.benchmarks,
        tasks: args.task_ids,
        jobs: crate::build::Options::new(repo).jobs,
        force: args.force,
        backend: args.backend,
        progress: crate::progress::Mode::Auto,
        ca_bundle: args.ca_bundle,
        built: None,
    };
    if let Some(j) = args.jobs {
        opts.jobs = j.into();
    }
    let verdicts = validate::validate(&fleet, &info, &opts)?;
    let mut all_valid = true;
    for b in &verdicts {
        let valid = b.valid();
        all_valid &= valid;
        println!(
            "{}: {} ({} task(s), {} from the record)",
            b.benchmark,
            if valid { "valid" } else { "NOT VALID" },
            b.tasks.len(),
            b.recorded
        );
    }
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
