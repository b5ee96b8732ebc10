//! What a release does differently for a Harbor dataset (docs/layouts.md, "Publishing a
//! Harbor dataset"). The pipeline is the same — gates, build, validation, push, verify,
//! manifest — but its units are the dataset's tasks, not benchmarks:
//!
//! - [`select`]: every task that can run and build here, with its environment image and
//!   its separate verifiers' images (the Harbor build plan, base map applied); a task
//!   that cannot is listed with why and never published;
//! - [`validate`]: the Harbor trials of `kiln validate` for these very images; a task
//!   whose oracle does not pass, or whose null does, is not published;
//! - [`pin`] (`--pin`): once a task's images are verified in the registry, its
//!   `task.toml` gets `[environment].docker_image` = the environment's digest reference;
//!   [`preview_pins`] prints that edit as a diff (`--dry-run`);
//! - [`own_pins`]: the clean-tree gate does not count kiln's own pins as changes.

use crate::printer::errln;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use crate::error::Failure;
use crate::fleet::layout::harbor::{dataset, pin as toml_pin, Task};
use crate::fleet::Fleet;
use crate::labels::BuildInfo;
use crate::plan::base_map::BaseMap;
use crate::plan::{self, Request};
use crate::validate;

use super::manifest::{BenchmarkEntry, Manifest, NotPublished, TaskVerdict, Validation};
use super::select::{Item, Selection, Tasks};
use super::{target, Options};

fn dataset(fleet: &Fleet) -> &crate::fleet::layout::harbor::Dataset {
    fleet.layout.dataset.as_deref().expect("a Harbor fleet")
}

/// Selects the tasks of a release. `only` names tasks (or the dataset: all of them).
pub fn select(
    fleet: &Fleet,
    info: &BuildInfo,
    only: &[String],
    base_map: &BaseMap,
) -> anyhow::Result<Selection> {
    let ds = dataset(fleet);
    let bench = &fleet.benchmarks[0];
    let mut named = BTreeSet::new();
    for name in only.iter().filter(|n| **n != ds.name) {
        let id = bench.task(name).map_err(|_| {
            Failure::usage(format!(
                "--only {name}: no task of that name in the dataset {} (name a task id or the dataset)",
                ds.name
            ))
        })?;
        named.insert(id.to_string());
    }
    let mut tasks = Tasks {
        selected: Vec::new(),
        left_out: Vec::new(),
    };
    for t in ds
        .tasks
        .iter()
        .filter(|t| named.is_empty() || named.contains(&t.id))
    {
        let no_oracle = t.missing_solution(&fleet.root).map(|f| {
            format!(
                "no {}: oracle cannot check it, so it cannot be validated",
                f.display()
            )
        });
        match t.cannot_run(&fleet.root).or(no_oracle) {
            Some(why) => tasks.left_out.push((t.id.clone(), why)),
            None => tasks.selected.push(t.id.clone()),
        }
    }
    let request = Request::Many(
        tasks
            .selected
            .iter()
            .map(|t| Request::Benchmark {
                benchmark: bench.name.clone(),
                task: Some(t.clone()),
            })
            .collect(),
    );
    let plan = if tasks.selected.is_empty() {
        plan::Plan::default()
    } else {
        plan::harbor::plan(fleet, &request, info, base_map)
            .map_err(crate::fleet::refused_to_usage)?
    };
    let items = plan
        .builds
        .iter()
        .map(|spec| {
            let mut item = Item::of(spec, &fleet.naming.registry, &fleet.naming.tag);
            item.unit = item.task.clone();
            item
        })
        .collect();
    Ok(Selection {
        plan,
        items,
        benchmarks: vec![bench.clone()],
        unreleased: Vec::new(),
        harbor: Some(tasks),
    })
}

/// The validation gate in words (for `--dry-run`).
pub fn validation_gate(tasks: &Tasks) -> String {
    format!(
        "validation, per task ({} of them): oracle's reward is 1 and null's is not, in Harbor's trials of the very images pushed \
         (kiln validate's record, or the trials when it has no verdict); a task that fails is not published, the others are",
        tasks.selected.len()
    )
}

/// Runs the Harbor validation on the selected tasks not yet blocked; each task that is
/// not valid is blocked with its reason.
pub(super) fn validate(
    fleet: &Fleet,
    info: &BuildInfo,
    opts: &Options,
    tasks: &Tasks,
    built: &crate::build::Summary,
    blocked: &mut BTreeMap<String, String>,
) -> anyhow::Result<Option<Validation>> {
    let to_validate: Vec<String> = tasks
        .selected
        .iter()
        .filter(|t| !blocked.contains_key(*t))
        .cloned()
        .collect();
    if to_validate.is_empty() {
        return Ok(None);
    }
    let vopts = validate::Options {
        repo: opts.repo.clone(),
        benchmarks: Vec::new(),
        tasks: to_validate,
        jobs: opts.jobs,
        force: false,
        backend: opts.backend,
        progress: opts.progress,
        ca_bundle: opts.ca_bundle.clone(),
        built: Some(built.clone()),
    };
    let verdicts = validate::harbor::validate(fleet, info, &vopts, &opts.base_map)?;
    for v in &verdicts {
        if let Some(p) = &v.problem {
            blocked.insert(v.task.clone(), format!("gate `validation` failed: {p}"));
        }
    }
    Ok(Some(Validation {
        valid: verdicts.iter().all(|v| v.problem.is_none()),
        tasks: verdicts
            .iter()
            .map(|v| TaskVerdict {
                task: v.task.clone(),
                oracle_score: v.oracle,
                null_score: v.null,
                valid: v.problem.is_none(),
            })
            .collect(),
    }))
}

/// The manifest's entry of the dataset: published when any task is, every task that is
/// not listed with why.
pub(super) fn entry(
    fleet: &Fleet,
    tasks: &Tasks,
    blocked: &BTreeMap<String, String>,
    validation: Option<Validation>,
) -> BenchmarkEntry {
    let mut not_published: Vec<NotPublished> = tasks
        .left_out
        .iter()
        .map(|(task, why)| NotPublished {
            task: task.clone(),
            reason: format!("cannot run here: {why}"),
        })
        .collect();
    not_published.extend(blocked.iter().map(|(task, why)| NotPublished {
        task: task.clone(),
        reason: why.clone(),
    }));
    not_published.sort_by(|a, b| a.task.cmp(&b.task));
    let published = tasks.selected.iter().any(|t| !blocked.contains_key(t));
    BenchmarkEntry {
        name: fleet.benchmarks[0].name.clone(),
        env: crate::labels::ENV_PER_TASK.to_string(),
        tasks: dataset(fleet).tasks.len(),
        status: if published { "published" } else { "blocked" }.to_string(),
        blocked_by: (!published).then(|| "no task of the dataset can be published".to_string()),
        validation,
        not_published,
    }
}

/// The environment image of `task` among the selection's items.
fn environment_item<'s>(fleet: &Fleet, sel: &'s Selection, task: &Task) -> Option<&'s Item> {
    let image = plan::harbor::images(fleet, task).environment;
    sel.items.iter().find(|i| i.local == image)
}

/// Why `task` cannot take a pin, if it cannot: its environment has no Dockerfile (the
/// docker_image is its only source), or a docker_image that is not kiln's pin (Harbor
/// runs it; kiln builds from it).
fn unpinnable(fleet: &Fleet, task: &Task) -> Option<String> {
    let dockerfile = task
        .dir
        .join(dataset::ENVIRONMENT_DIR)
        .join(dataset::DOCKERFILE);
    let current = task.config.environment.docker_image.as_deref();
    if !fleet.root.join(&dockerfile).is_file() {
        return Some(format!(
            "no {}: its environment is docker_image {}, which a pin would replace",
            dockerfile.display(),
            current.unwrap_or("(none)")
        ));
    }
    match current {
        Some(image)
            if !toml_pin::is_kiln_pin(image, &plan::harbor::repository_path(fleet, task)) =>
        {
            Some(format!(
                "environment.docker_image = {image:?} is not kiln's pin: Harbor runs it and kiln builds from it, so kiln does not replace it"
            ))
        }
        _ => None,
    }
}

/// A task's `task.toml`: its path relative to the dataset, its text, and the text
/// with `pin`.
fn edit(fleet: &Fleet, task: &Task, pin: &str) -> anyhow::Result<(String, String, String)> {
    let rel = task.dir.join(dataset::TASK_FILE);
    let file = fleet.root.join(&rel);
    let text = std::fs::read_to_string(&file)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
    let new = toml_pin::pinned(&rel, &text, pin)?;
    Ok((rel.display().to_string(), text, new))
}

/// `--pin`: every published task whose references are all verified in the registry
/// gets its environment's digest reference in `task.toml` (unchanged files are not
/// written). Returns the failures.
pub(super) fn pin(
    fleet: &Fleet,
    opts: &Options,
    sel: &Selection,
    manifest: &Manifest,
    blocked: &BTreeMap<String, String>,
) -> Vec<String> {
    let Some(tasks) = &sel.harbor else {
        return Vec::new();
    };
    let verified: BTreeMap<&str, &str> = manifest
        .images
        .iter()
        .map(|i| (i.reference.as_str(), i.digest.as_str()))
        .collect();
    let mut failures = Vec::new();
    let say = |msg: String| errln!("release: {msg}");
    for id in tasks.selected.iter().filter(|t| !blocked.contains_key(*t)) {
        let Some(task) = dataset(fleet).task(id) else {
            continue;
        };
        let all_verified = sel
            .items
            .iter()
            .filter(|i| i.owner() == Some(id))
            .flat_map(|i| manifest.tags.iter().map(|t| target(&opts.registry, i, t)))
            .all(|r| verified.contains_key(r.to_string().as_str()));
        let env = environment_item(fleet, sel, task)
            .map(|i| target(&opts.registry, i, &manifest.version));
        let digest = env
            .as_ref()
            .and_then(|r| verified.get(r.to_string().as_str()));
        let (Some(env), Some(digest), true) = (env.as_ref(), digest, all_verified) else {
            say(format!(
                "task {id}: not pinned: its images are not all verified in the registry"
            ));
            continue;
        };
        if let Some(why) = unpinnable(fleet, task) {
            say(format!("task {id}: not pinned: {why}"));
            continue;
        }
        let pin = toml_pin::reference(&format!("{}/{}", env.host, env.repository), digest);
        match edit(fleet, task, &pin) {
            Ok((rel, old, new)) if old == new => {
                say(format!("task {id}: {rel} is already pinned to {pin}"))
            }
            Ok((rel, _, new)) => match toml_pin::write(&fleet.root.join(&rel), &new) {
                Ok(()) => say(format!("task {id}: pinned {rel}: docker_image = {pin}")),
                Err(e) => failures.push(format!("pinning task {id}: {e:#}")),
            },
            Err(e) => failures.push(format!("pinning task {id}: {e:#}")),
        }
    }
    failures
}

/// `--pin --dry-run`: the edit of each task's `task.toml` as a unified diff, for the
/// tasks whose environment reference the release manifest at `--manifest` already
/// lists (a digest is known only once the registry holds the image); writes nothing.
pub fn preview_pins(
    out: &mut impl Write,
    fleet: &Fleet,
    opts: &Options,
    sel: &Selection,
    version: &str,
) -> std::io::Result<()> {
    let Some(tasks) = &sel.harbor else {
        return Ok(());
    };
    let known = super::check::previously_published(&opts.manifest);
    writeln!(
        out,
        "# --pin: each task.toml that changes, as a diff (pinned only once the task is valid and its images are verified; nothing is written now):"
    )?;
    for id in &tasks.selected {
        let Some(task) = dataset(fleet).task(id) else {
            continue;
        };
        if let Some(why) = unpinnable(fleet, task) {
            writeln!(out, "# task {id}: not pinned: {why}")?;
            continue;
        }
        let Some(env) =
            environment_item(fleet, sel, task).map(|i| target(&opts.registry, i, version))
        else {
            continue;
        };
        let Some(published) = known.get(&env.to_string()) else {
            writeln!(
                out,
                "# task {id}: pinned after its images are published ({env} is not in {} yet: its digest is known after the push)",
                opts.manifest.display()
            )?;
            continue;
        };
        let pin = toml_pin::reference(
            &format!("{}/{}", env.host, env.repository),
            &published.digest,
        );
        match edit(fleet, task, &pin) {
            Ok((rel, old, new)) if old == new => {
                writeln!(out, "# task {id}: {rel} is already pinned to {pin}")?
            }
            Ok((rel, old, new)) => write!(out, "{}", toml_pin::unified_diff(&rel, &old, &new))?,
            Err(e) => writeln!(out, "# task {id}: cannot be pinned: {e:#}")?,
        }
    }
    Ok(())
}

/// The paths among `dirty` (as `git status --porcelain` lists them, relative to the
/// repository's top level) that are a task's `task.toml` differing from `HEAD` only by
/// kiln's own pin.
pub fn own_pins(fleet: &Fleet, dirty: &[String]) -> BTreeSet<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = duct::cmd("git", args)
            .dir(&fleet.root)
            .stdout_capture()
            .stderr_null()
            .unchecked()
            .run()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let mut own = BTreeSet::new();
    let Some(top) = git(&["rev-parse", "--show-toplevel"]) else {
        return own;
    };
    let top = Path::new(top.trim());
    let root = fleet.root.canonicalize().unwrap_or(fleet.root.clone());
    for path in dirty.iter().filter(|p| p.ends_with(dataset::TASK_FILE)) {
        let Ok(file) = top.join(path).canonicalize() else {
            continue;
        };
        let Some(task) = dataset(fleet)
            .tasks
            .iter()
            .find(|t| root.join(&t.dir).join(dataset::TASK_FILE) == file)
        else {
            continue;
        };
        let (Some(before), Ok(after)) = (
            git(&["show", &format!("HEAD:{path}")]),
            std::fs::read_to_string(&file),
        ) else {
            continue;
        };
        if toml_pin::only_pinned(&before, &after, &plan::harbor::repository_path(fleet, task)) {
            own.insert(path.clone());
        }
    }
    own
}
