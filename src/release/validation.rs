//! The validation gate of a release, for the very images just built: kiln's own
//! fleets validate every released benchmark still in the running (`kiln validate`,
//! answered from its record when the images are unchanged) and block a benchmark with
//! any task that is not valid; a Harbor dataset validates per task
//! ([`super::harbor::validate`]) and blocks only the tasks that are not valid.

use std::collections::BTreeMap;

use crate::fleet::Fleet;
use crate::labels::BuildInfo;
use crate::validate;

use super::manifest::{TaskVerdict, Validation};
use super::select::Selection;
use super::Options;

/// The validations by benchmark; every unit that fails is added to `blocked`.
pub(super) fn run(
    fleet: &Fleet,
    info: &BuildInfo,
    opts: &Options,
    sel: &Selection,
    built: &crate::build::Summary,
    blocked: &mut BTreeMap<String, String>,
) -> anyhow::Result<BTreeMap<String, Validation>> {
    let mut validations = BTreeMap::new();
    if let Some(tasks) = &sel.harbor {
        if let Some(v) = super::harbor::validate(fleet, info, opts, tasks, built, blocked)? {
            validations.insert(fleet.benchmarks[0].name.clone(), v);
        }
        return Ok(validations);
    }
    let to_validate: Vec<String> = sel
        .benchmarks
        .iter()
        .map(|b| b.name.clone())
        .filter(|b| !blocked.contains_key(b))
        .collect();
    if to_validate.is_empty() {
        return Ok(validations);
    }
    let vopts = validate::Options {
        repo: opts.repo.clone(),
        benchmarks: to_validate,
        tasks: Vec::new(),
        jobs: opts.jobs,
        force: false,
        backend: opts.backend,
        progress: opts.progress,
        ca_bundle: opts.ca_bundle.clone(),
        built: Some(built.clone()),
    };
    for bv in validate::validate(fleet, info, &vopts)? {
        let v = Validation {
            valid: bv.valid(),
            tasks: bv
                .tasks
                .iter()
                .map(|t| TaskVerdict {
                    task: t.task.clone(),
                    oracle_score: t.oracle_score,
                    null_score: t.null_score,
                    valid: t.valid,
                })
                .collect(),
        };
        if !v.valid {
            let bad: Vec<String> = bv
                .tasks
                .iter()
                .filter(|t| !t.valid)
                .map(|t| {
                    format!(
                        "{}: {}",
                        t.task,
                        t.problem.as_deref().unwrap_or("not valid")
                    )
                })
                .collect();
            blocked
                .entry(bv.benchmark.clone())
                .or_insert(format!("gate `validation` failed: {}", bad.join("; ")));
        }
        validations.insert(bv.benchmark, v);
    }
    Ok(validations)
}
