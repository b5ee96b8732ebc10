//! `kiln regrade RESULTS [--benchmark B]... [--task-id T]...`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::backend::detect::Requested;
use crate::regrade::{self, Options};

use super::Failure;

/// Grade kept runs again with the current graders, without the agent or a model.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  kiln run terminal-lite --agent oracle --agent null --keep-state
  (change a grader under benchmarks/terminal-lite/tasks/<task>/grading/)
  kiln regrade results                                 every kept run
  kiln regrade results --benchmark terminal-lite --task-id count-lines
  kiln -C DATASET regrade results                      Harbor trials: the current tests/
  kiln -C EC regrade results --base-map M --builder B  eval-containers: the benchmark image's grader

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
    #[arg(long, env = crate::env::CA_BUNDLE.name, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,

    /// Do not build: take the graders from the eval images as they are.
    #[arg(long)]
    pub no_build: bool,

    /// Harbor datasets and eval-containers fleets: public base images replaced by local
    /// ones for the verifiers' (benchmark) images (as `kiln build --base-map`).
    #[arg(long, value_name = "FILE")]
    pub base_map: Option<PathBuf>,

    /// Harbor datasets and eval-containers fleets: one base map entry
    /// `PUBLIC_REF=LOCAL_REF` (repeatable).
    #[arg(long = "base", value_name = "PUBLIC=LOCAL")]
    pub bases: Vec<String>,

    /// eval-containers fleets: the buildx builder that builds the current benchmark
    /// images (default: BUILDX_BUILDER, else the current one; as `kiln build --builder`).
    #[arg(long, value_name = "NAME")]
    pub builder: Option<String>,

    /// auto, tty, plain or quiet (the build's progress).
    #[arg(long, default_value = "auto", value_parser = parse_progress)]
    pub progress: crate::printer::Mode,
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
    let base_map =
        crate::plan::base_map::BaseMap::from_flags(args.base_map.as_deref(), &args.bases)
            .map_err(crate::fleet::refused_to_usage)?;
    let opts = Options {
        results: args.results.clone(),
        benchmarks: args.benchmarks,
        tasks: args.tasks,
        jobs: args.jobs.map(usize::from),
        build: crate::run::Options {
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
    let info = || super::build::build_info(repo);
    if crate::fleet::layout::detect(repo)?.name() == crate::fleet::layout::eval_containers::NAME {
        let fleet = crate::fleet::Fleet::load(repo, super::build::env_vars())?;
        let builder = args
            .builder
            .clone()
            .or_else(|| crate::env::BUILDX_BUILDER.get());
        let build = regrade::eval_containers::Build {
            base_map: &base_map,
            builder,
        };
        return Ok(ExitCode::from(regrade::eval_containers::run(
            &fleet, &opts, &build, info,
        )?));
    }
    if args.builder.is_some() {
        return Err(Failure::usage(
            "--builder applies to an eval-containers fleet's regrades",
        ));
    }
    if let Some(datasets) = harbor_datasets(repo, &opts)? {
        return Ok(ExitCode::from(regrade::harbor::run(
            &datasets, &base_map, &opts, info,
        )?));
    }
    if !base_map.is_empty() {
        return Err(Failure::usage(
            "--base-map and --base apply to the runs of Harbor datasets",
        ));
    }
    Ok(ExitCode::from(regrade::run(repo, &opts, info)?))
}

/// The Harbor datasets the runs are of: this folder when it is a dataset; the datasets
/// of kiln.toml when every selected run is of one of them. None: kiln's benchmarks.
fn harbor_datasets(
    repo: &Path,
    opts: &Options,
) -> anyhow::Result<Option<Vec<crate::run::dataset::Dataset>>> {
    use crate::fleet::Fleet;
    use crate::run::dataset::{configured, Dataset};
    let vars = super::build::env_vars();
    if crate::fleet::layout::detect(repo)?.name() == crate::fleet::layout::harbor::NAME {
        let fleet = Fleet::load(repo, vars)?;
        let name = fleet.benchmarks[0].name.clone();
        return Ok(Some(vec![Dataset { name, fleet }]));
    }
    let named = configured(repo)?;
    if named.is_empty() {
        return Ok(None);
    }
    let (found, _) = regrade::runs::find(&opts.results)?;
    let selected = regrade::runs::select(found, &opts.results, &opts.benchmarks, &opts.tasks)?;
    if !selected
        .iter()
        .all(|r| named.iter().any(|(n, _)| *n == r.benchmark))
    {
        return Ok(None);
    }
    let mut datasets = Vec::new();
    for (name, path) in named {
        let fleet = Fleet::load(&path, vars.clone())?;
        if fleet.layout.dataset.is_some() {
            datasets.push(Dataset { name, fleet });
        }
    }
    Ok(Some(datasets))
}
