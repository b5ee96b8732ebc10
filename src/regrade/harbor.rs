//! `kiln regrade` of Harbor trials (`kiln run --keep-state` on a dataset): the task's
//! current tests run on the kept state, as a trial whose agent does nothing
//! ([`crate::run::harbor`]: tests copied in only then, a separate verifier in its own
//! current image with the artifacts handed over). The new result goes beside the run's
//! own, as for kiln's benchmarks: `regraded-<n>/` (logs, regrade.json), then
//! `result.regraded-<n>.json` with the run's own agent and model sections (the
//! agent's turn is the run's, whatever the tests say now).

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;

use super::{grade, runs, End, Options};
use crate::fleet::layout::harbor::Task;
use crate::plan::base_map::BaseMap;
use crate::report::{self, regraded};
use crate::run::dataset::Dataset;
use crate::run::harbor::{self, Agent, Outcome, Trial};
use crate::run::reap::Owner;

/// kiln's record of a Harbor regrade: `regraded-<n>/regrade.json`.
#[derive(Debug, serde::Serialize)]
struct Record<'a> {
    n: u32,
    kept_state: &'a str,
    /// The images of the task's separate verifiers, as they are now.
    verifier_images: Vec<&'a str>,
    wall_sec: f64,
    kiln_version: &'static str,
}

/// Regrades the selected runs of `opts.results` against `datasets`; the exit status.
pub fn run(
    datasets: &[Dataset],
    base_map: &BaseMap,
    opts: &Options,
    build_info: impl FnOnce() -> anyhow::Result<crate::labels::BuildInfo>,
) -> anyhow::Result<u8> {
    let selected = runs::selected(opts)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Which runs can be regraded: kept state in the store, a task the dataset still has.
    let mut plan: Vec<Result<(&Dataset, &Task, String), String>> = Vec::new();
    for run in &selected {
        let verdict = runs::kept_image(run).and_then(|image| {
            let ds = datasets
                .iter()
                .find(|d| d.name == run.benchmark)
                .ok_or_else(|| format!("no dataset named {} here", run.benchmark))?;
            let set = ds.fleet.layout.dataset.as_ref().expect("a Harbor fleet");
            let task = set
                .task(&run.task)
                .ok_or_else(|| format!("the dataset has no task {} any more", run.task))?;
            Ok((ds, task, image))
        });
        let verdict = match verdict {
            Ok((ds, task, image)) => {
                match runtime.block_on(crate::run::kept_state::is_kept_state(&image))? {
                    Some(true) => Ok((ds, task, image)),
                    Some(false) => Err(format!("{image} is not a kept-state image")),
                    None => Err(format!(
                        "its kept state {image} is no longer in Docker's image store (kiln clean removes it)"
                    )),
                }
            }
            Err(e) => Err(e),
        };
        plan.push(verdict);
    }
    // The images of the tasks' separate verifiers as they are now, built as kiln run
    // builds them (the kept state stands for the environment).
    let mut wanted: HashMap<*const Dataset, Vec<String>> = HashMap::new();
    for (ds, task, _) in plan.iter().flatten() {
        let ids = wanted.entry(*ds as *const Dataset).or_default();
        if !ids.contains(&task.id) {
            ids.push(task.id.clone());
        }
    }
    if !wanted.is_empty() && !opts.build.no_build {
        let info = build_info()?;
        for ds in datasets {
            let Some(tasks) = wanted.get(&(ds as *const Dataset)) else {
                continue;
            };
            let plan =
                crate::plan::harbor_agents::verifiers_plan(&ds.fleet, tasks, &info, base_map)
                    .map_err(crate::run::refused)?;
            if plan.builds.is_empty() {
                continue;
            }
            let images: Vec<String> = plan.builds.iter().map(|b| b.image.clone()).collect();
            crate::run::images::ensure(&ds.fleet.root, plan, None, &images, &opts.build, &runtime)?;
        }
    }
    harbor::catch_interrupts();
    let owner = Owner::current();
    let mut ends = Vec::new();
    for (run, verdict) in selected.iter().zip(plan) {
        let end = match verdict {
            Err(why) => End::NotRegradable(why),
            Ok(_) if harbor::interrupted() => End::Interrupted,
            Ok((ds, task, kept)) => match regrade(run, ds, task, &kept, &owner) {
                Ok(done) => End::Done(Box::new(done)),
                Err(_) if harbor::interrupted() => End::Interrupted,
                Err(e) => End::Failed(format!("{e:#}")),
            },
        };
        ends.push(end);
    }
    Ok(super::print(&selected, &ends))
}

/// One run's regrade, placed beside its result.
fn regrade(
    run: &runs::Found,
    ds: &Dataset,
    task: &Task,
    kept: &str,
    owner: &Owner,
) -> anyhow::Result<grade::Done> {
    let staging = tempfile::Builder::new()
        .prefix(".regraded.partial-")
        .tempdir_in(&run.dir)
        .with_context(|| format!("creating a directory in {}", run.dir.display()))?;
    let mut images = crate::plan::harbor::images(&ds.fleet, task);
    images.environment = kept.to_string();
    let trial = Trial {
        root: &ds.fleet.root,
        task,
        agent: Agent::Null,
        images: images.clone(),
        out: staging.path().to_path_buf(),
        dry_run: false,
        labels: owner.labels(),
        keep: None,
    };
    let outcome = trial.run(&mut |_| {}).unwrap_or_else(|e| Outcome {
        error: Some(format!("{e:#}")),
        ..Outcome::default()
    });
    if harbor::interrupted() {
        anyhow::bail!("interrupted");
    }
    harbor::write_result(staging.path(), &ds.name, task, Agent::Null, &outcome)?;
    let text = std::fs::read_to_string(staging.path().join("result.json"))?;
    std::fs::remove_file(staging.path().join("result.json"))?;
    let (n, logs) = grade::place(staging, &run.dir, |n| Record {
        n,
        kept_state: kept,
        verifier_images: images.verifiers.values().map(|(i, _)| i.as_str()).collect(),
        wall_sec: (outcome.wall_sec * 1000.0).round() / 1000.0,
        kiln_version: env!("CARGO_PKG_VERSION"),
    })?;
    let Some(_) = outcome.reward else {
        return Ok(grade::Done {
            n,
            result: None,
            logs,
            runner_exit: 1,
            error: Some(outcome.error.unwrap_or_else(|| "no reward".into())),
        });
    };
    let path = regraded::result_file(&run.dir, n);
    let text = with_run_sections(&text, &run.dir.join("result.json"))?;
    let partial = run.dir.join(format!(".result.regraded-{n}.json.partial"));
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, &path).with_context(|| format!("writing {}", path.display()))?;
    let result = report::read_result(&path)?;
    Ok(grade::Done {
        n,
        result: Some((path, result)),
        logs,
        runner_exit: 0,
        error: None,
    })
}

/// The regraded result with the run's own `agent` and `model` sections.
fn with_run_sections(text: &str, original: &Path) -> anyhow::Result<String> {
    let mut result: serde_json::Value = serde_json::from_str(text)?;
    if let Some(own) = std::fs::read_to_string(original)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    {
        for key in ["agent", "model"] {
            if !own[key].is_null() {
                result[key] = own[key].clone();
            }
        }
    }
    Ok(serde_json::to_string_pretty(&result)? + "\n")
}
