//! `kiln validate [BENCHMARK]... [--task-id T]... [--jobs N] [--force]`.

use crate::printer::{errln, outln};
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
    #[arg(long, env = crate::env::CA_BUNDLE.name, value_name = "FILE")]
    pub ca_bundle: Option<std::path::PathBuf>,

    /// Public base images replaced by local ones, one `PUBLIC_REF=LOCAL_REF` a line (as
    /// `kiln build --base-map`; Harbor layout).
    #[arg(long, value_name = "FILE")]
    pub base_map: Option<std::path::PathBuf>,

    /// One base map entry `PUBLIC_REF=LOCAL_REF` (repeatable; after --base-map).
    #[arg(long = "base", value_name = "PUBLIC=LOCAL")]
    pub bases: Vec<String>,

    /// Print the `docker run` commands of each task's gradings instead of running them
    /// (eval-containers layout).
    #[arg(long)]
    pub dry_run: bool,
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
    if fleet.layout.kind.name() == crate::plan::eval_containers::LAYOUT {
        return eval_containers(&fleet, &args);
    }
    let info = super::build::build_info(repo)?;
    let mut opts = Options {
        repo: repo.to_path_buf(),
        benchmarks: args.benchmarks,
        tasks: args.task_ids,
        jobs: crate::build::Options::new(repo).jobs,
        force: args.force,
        backend: args.backend,
        progress: crate::printer::Mode::Auto,
        ca_bundle: args.ca_bundle,
        built: None,
    };
    if let Some(j) = args.jobs {
        opts.jobs = j.into();
    }
    if args.dry_run {
        return Err(Failure::usage(
            "--dry-run applies to an eval-containers fleet (its gradings are plain docker runs)",
        ));
    }
    if fleet.layout.dataset.is_some() {
        return harbor(&fleet, &info, &opts, &args.base_map, &args.bases);
    }
    if args.base_map.is_some() || !args.bases.is_empty() {
        return Err(Failure::usage(
            "--base-map and --base apply to a Harbor dataset (kiln's own fleet builds on local bases: scripts/make-bases.sh)",
        ));
    }
    let verdicts = validate::validate(&fleet, &info, &opts)?;
    let mut all_valid = true;
    for b in &verdicts {
        let valid = b.valid();
        all_valid &= valid;
        outln!(
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

/// A Harbor dataset: valid when every task that can run here is (the others are listed
/// with their reason).
fn harbor(
    fleet: &Fleet,
    info: &crate::labels::BuildInfo,
    opts: &Options,
    base_map: &Option<std::path::PathBuf>,
    bases: &[String],
) -> anyhow::Result<ExitCode> {
    for p in &fleet.problems {
        errln!("note: left out: {p}");
    }
    let map = crate::plan::base_map::BaseMap::from_flags(base_map.as_deref(), bases)
        .map_err(crate::fleet::refused_to_usage)?;
    let verdicts = validate::harbor::validate(fleet, info, opts, &map)?;
    let ran: Vec<_> = verdicts.iter().filter(|v| !v.skipped).collect();
    let valid = ran.iter().filter(|v| v.problem.is_none()).count();
    outln!(
        "{}: {} ({valid} of {} task(s) valid, {} cannot run here)",
        fleet.benchmarks[0].name,
        if !ran.is_empty() && valid == ran.len() {
            "valid"
        } else {
            "NOT VALID"
        },
        ran.len(),
        verdicts.len() - ran.len()
    );
    Ok(if !ran.is_empty() && valid == ran.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// An eval-containers fleet: valid when the reference answer of every selected task
/// scores 1 and an empty one does not.
fn eval_containers(fleet: &Fleet, args: &Args) -> anyhow::Result<ExitCode> {
    if args.base_map.is_some() || !args.bases.is_empty() || args.force {
        return Err(Failure::usage(
            "--base-map, --base and --force do not apply to validating an eval-containers fleet: \
             it grades the images `kiln build` made",
        ));
    }
    let verdicts =
        validate::eval_containers::validate(fleet, &args.benchmarks, &args.task_ids, args.dry_run)?;
    if args.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    let valid = verdicts.iter().filter(|v| v.problem.is_none()).count();
    outln!("{valid} of {} task(s) valid", verdicts.len());
    Ok(if valid == verdicts.len() && valid > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
