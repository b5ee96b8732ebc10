//! `kiln run` on Harbor datasets: in a dataset (`kiln -C DATASET run --agent oracle`),
//! or from a kiln repository that names datasets (`--dataset PATH`, a BENCHMARK that is
//! a path, or `[datasets]` in kiln.toml) so that its own agents run on their tasks.

use std::path::{Path, PathBuf};

use super::Args;
use crate::error::Failure;
use crate::fleet::layout::harbor;
use crate::fleet::Fleet;
use crate::run::dataset::{self, Dataset, Selection};
use crate::run::Options;

/// Runs `args` when they name Harbor datasets (the exit status); None: a kiln run.
pub fn run(repo: &Path, args: &Args, opts: &Options) -> anyhow::Result<Option<u8>> {
    let vars = crate::cli::build::env_vars();
    let in_dataset = crate::fleet::layout::detect(repo)?.name() == harbor::NAME;
    let (datasets, kiln) = if in_dataset {
        if !args.datasets.is_empty() {
            return Err(Failure::usage(
                "--dataset names a Harbor dataset from a kiln repository; this folder is a dataset itself",
            ));
        }
        let fleet = Fleet::load(repo, vars)?;
        let name = fleet.benchmarks[0].name.clone();
        if let Some(other) = args.benchmarks.iter().find(|b| **b != name) {
            return Err(Failure::usage(format!(
                "unknown benchmark {other:?}: this dataset is {name:?}"
            )));
        }
        (vec![Dataset { name, fleet }], None)
    } else {
        let configured = dataset::configured(repo)?;
        let mut paths: Vec<(Option<String>, PathBuf)> =
            args.datasets.iter().map(|p| (None, p.clone())).collect();
        let mut kiln_benchmarks = Vec::new();
        for b in &args.benchmarks {
            if let Some((name, path)) = configured.iter().find(|(n, _)| n == b) {
                paths.push((Some(name.clone()), path.clone()));
            } else if b.contains('/') {
                paths.push((None, PathBuf::from(b)));
            } else {
                kiln_benchmarks.push(b.clone());
            }
        }
        if paths.is_empty() {
            return Ok(None);
        }
        let mut datasets: Vec<Dataset> = Vec::new();
        for (name, path) in paths {
            let fleet = load(&path, &vars)?;
            let name = name.unwrap_or_else(|| fleet.benchmarks[0].name.clone());
            // `--dataset P` and a BENCHMARK naming the same dataset select it once.
            if !datasets.iter().any(|d| d.fleet.root == fleet.root) {
                datasets.push(Dataset { name, fleet });
            }
        }
        if let Some(b) = kiln_benchmarks
            .iter()
            .find(|b| !datasets.iter().any(|d| &d.name == *b))
        {
            return Err(Failure::usage(format!(
                "{b:?} is not a dataset of this run: run kiln's benchmarks and Harbor datasets in separate commands"
            )));
        }
        (datasets, Some(Fleet::load(repo, vars)?))
    };
    for (set, flag) in [
        (args.all, "--all"),
        (args.agent_timeout.is_some(), "--agent-timeout"),
    ] {
        if set {
            return Err(Failure::usage(format!(
                "{flag} does not apply to a Harbor dataset (its task.toml sets the timeouts)"
            )));
        }
    }
    for t in &args.tasks {
        crate::naming::validate_task_id(t).map_err(|e| Failure::usage(e.to_string()))?;
    }
    let base_map =
        crate::plan::base_map::BaseMap::from_flags(args.base_map.as_deref(), &args.bases)
            .map_err(crate::fleet::refused_to_usage)?;
    let sel = Selection {
        datasets,
        kiln: kiln.as_ref().map(|f| (repo, f)),
        agents: args.agents.clone(),
        tasks: args.tasks.clone(),
        repeat: args.repeat,
        base_map,
    };
    dataset::run(&sel, opts).map(Some)
}

/// The Harbor dataset at `path` (an error naming the path when it is none).
fn load(path: &Path, vars: &std::collections::BTreeMap<String, String>) -> anyhow::Result<Fleet> {
    if !path.is_dir() {
        return Err(Failure::usage(format!(
            "dataset {}: no such directory",
            path.display()
        )));
    }
    let fleet = Fleet::load(path, vars.clone())?;
    if fleet.layout.dataset.is_none() {
        return Err(Failure::usage(format!(
            "{} is not a Harbor dataset (no task.toml in it; it reads as a {} fleet)",
            path.display(),
            fleet.layout.kind.name()
        )));
    }
    Ok(fleet)
}
