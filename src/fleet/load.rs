//! The steps of [`super::Fleet::load`]: parse the bake files, find each image
//! directory's target, resolve, read labels, work out task lists. A strict layout (kiln's
//! own) stops at the first broken directory; any other leaves that directory out with a
//! message naming its file, so the rest of the fleet still lists and builds.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::layout::{BenchmarkDir, Layout, TaskSource};
use super::{Agent, Benchmark, Env, Resolver, Target};
use crate::labels;
use crate::naming::Kind;

/// Messages about image directories left out.
pub(super) struct Problems {
    pub strict: bool,
    pub list: Vec<String>,
}

impl Problems {
    /// Records `message`; in a strict layout it is an error at once.
    fn add(&mut self, message: String) -> anyhow::Result<()> {
        if self.strict {
            anyhow::bail!("{message}");
        }
        self.list.push(message);
        Ok(())
    }
}

/// One image directory and its target.
pub(super) struct Dir {
    pub kind: Kind,
    pub name: String,
    pub target: String,
    pub bake_file: PathBuf,
    /// Index into `layout.benchmarks` (benchmarks only).
    pub index: usize,
}

/// Parses the bake files. When that fails and the layout is not strict, each image's bake
/// file is tried alone with the root file, and the ones that fail are left out.
pub(super) fn resolver(
    root: &std::path::Path,
    layout: &mut Layout,
    problems: &mut Problems,
) -> anyhow::Result<Resolver> {
    let whole = Resolver::read(root, &layout.bake_files);
    if whole.is_ok() || problems.strict {
        return whole;
    }
    let root_file = layout.bake_files[0].clone();
    let mut kept = vec![root_file.clone()];
    for f in layout.bake_files.iter().skip(1) {
        match Resolver::read(root, &[root_file.clone(), f.clone()]) {
            Ok(_) => kept.push(f.clone()),
            Err(e) => problems.add(format!("{}: left out: {e:#}", f.display()))?,
        }
    }
    layout.bake_files = kept;
    Resolver::read(root, &layout.bake_files)
}

/// Every image directory with its target; a missing target or one defined in several
/// files is a problem (the directory is left out).
pub(super) fn expected_targets(
    layout: &Layout,
    resolver: &Resolver,
    problems: &mut Problems,
) -> anyhow::Result<Vec<Dir>> {
    let mut all: Vec<Dir> = Vec::new();
    let mut push = |kind: Kind, name: &String, index: usize| {
        all.push(Dir {
            kind,
            name: name.clone(),
            target: layout.target(kind, name),
            bake_file: layout.bake_file(kind, name),
            index,
        })
    };
    for c in &layout.cores {
        push(Kind::Core, c, 0);
    }
    for a in &layout.agents {
        push(Kind::Agent, a, 0);
    }
    for (i, b) in layout.benchmarks.iter().enumerate() {
        push(Kind::Benchmark, &b.name, i);
    }
    let mut missing = Vec::new();
    let mut dirs = Vec::new();
    for d in all {
        let files = resolver.files_defining(&d.target);
        if files.is_empty() {
            missing.push(format!(
                "{}: no target {:?} (every image directory needs one; see {})",
                d.bake_file.display(),
                d.target,
                if problems.strict {
                    "RULES.md"
                } else {
                    "docs/layouts.md"
                }
            ));
        } else if files.len() > 1 && !problems.strict {
            let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            missing.push(format!(
                "{}: target {:?} is defined in {} (bake would merge them): left out",
                d.bake_file.display(),
                d.target,
                names.join(" and ")
            ));
        } else {
            dirs.push(d);
        }
    }
    if !missing.is_empty() {
        if problems.strict {
            anyhow::bail!("{}", missing.join("\n"));
        }
        problems.list.extend(missing);
    }
    Ok(dirs)
}

/// Resolves `wanted` at once; when that fails and the layout is not strict, one target at
/// a time, leaving out the ones that fail.
pub(super) fn resolve_each(
    resolver: &Resolver,
    dirs: &[Dir],
    wanted: &[String],
    vars: &BTreeMap<String, String>,
    problems: &mut Problems,
) -> anyhow::Result<BTreeMap<String, Target>> {
    let whole = resolver.resolve(wanted, vars);
    if whole.is_ok() || problems.strict {
        return whole;
    }
    let mut out = BTreeMap::new();
    for d in dirs.iter().filter(|d| wanted.contains(&d.target)) {
        match resolver.resolve(std::slice::from_ref(&d.target), vars) {
            Ok(t) => out.extend(t),
            Err(e) => problems.add(format!(
                "{}: target {:?} does not resolve: {e:#}",
                d.bake_file.display(),
                d.target
            ))?,
        }
    }
    Ok(out)
}

/// The labels of every directory's image (the layout says where they live). A directory
/// whose target did not resolve or whose labels cannot be read is left out.
pub(super) fn labels(
    root: &std::path::Path,
    layout: &Layout,
    dirs: &[Dir],
    targets: &BTreeMap<String, Target>,
    problems: &mut Problems,
) -> anyhow::Result<BTreeMap<String, BTreeMap<String, String>>> {
    let mut out = BTreeMap::new();
    for d in dirs {
        let Some(t) = targets.get(&d.target) else {
            if problems.strict {
                // kiln's `core-eval`: resolved per eval, never alone.
                out.insert(d.target.clone(), BTreeMap::new());
            }
            continue;
        };
        match layout.kind.image_labels(root, t) {
            Ok(l) => {
                out.insert(d.target.clone(), l);
            }
            Err(e) => problems.add(format!("{}: left out: {e:#}", d.bake_file.display()))?,
        }
    }
    Ok(out)
}

/// An agent's description: the OCI label, or eval-containers' `eval.agent.description`.
pub(super) fn agent_description(l: &BTreeMap<String, String>) -> String {
    l.get(labels::OCI_DESCRIPTION)
        .or_else(|| l.get("eval.agent.description"))
        .cloned()
        .unwrap_or_default()
}

/// A benchmark with its kind and tasks, or `None` (and a problem) when its labels say
/// neither a known kind nor any task.
pub(super) fn benchmark(
    layout: &Layout,
    b: &BenchmarkDir,
    target: String,
    all: &BTreeMap<String, BTreeMap<String, String>>,
    problems: &mut Problems,
) -> anyhow::Result<Option<Benchmark>> {
    let l = &all[&target];
    let get = |k: &str| l.get(k).cloned().unwrap_or_default();
    // Where a message points: the file that carries the labels.
    let file = if problems.strict {
        layout.bake_file(Kind::Benchmark, &b.name)
    } else {
        layout
            .bake_file(Kind::Benchmark, &b.name)
            .with_file_name("Dockerfile")
    };
    let env_label = get(labels::BENCHMARK_ENV);
    let Some(env) = layout.kind.env(&env_label) else {
        problems.add(format!(
            "{}: target {target:?} has label {}={env_label:?}; expected {:?} or {:?}",
            file.display(),
            labels::BENCHMARK_ENV,
            labels::ENV_SHARED,
            labels::ENV_PER_TASK
        ))?;
        return Ok(None);
    };
    let (tasks, task_count, tasks_known) = match &b.task_source {
        TaskSource::Dirs | TaskSource::Harbor => (b.tasks.clone(), b.tasks.len(), true),
        TaskSource::File(list) => {
            if b.tasks.is_empty() {
                problems.add(format!(
                    "{}: benchmark {:?} has no tasks (the file lists none)",
                    list.display(),
                    b.name
                ))?;
                return Ok(None);
            }
            (b.tasks.clone(), b.tasks.len(), true)
        }
        TaskSource::CountLabel => {
            let count = get(labels::BENCHMARK_TASKS)
                .trim()
                .parse::<usize>()
                .unwrap_or(0);
            if count == 0 {
                problems.add(format!(
                    "{}: benchmark {:?} has no tasks: no {}=<number> label above 0 (and no tasks.txt)",
                    file.display(),
                    b.name,
                    labels::BENCHMARK_TASKS
                ))?;
                return Ok(None);
            }
            match env {
                Env::SharedEnv => ((0..count).map(|i| i.to_string()).collect(), count, true),
                Env::PerTask => (Vec::new(), count, false),
            }
        }
    };
    let mut tasks = tasks;
    tasks.sort();
    Ok(Some(Benchmark {
        name: b.name.clone(),
        env,
        description: get(labels::BENCHMARK_DESCRIPTION),
        released: get(labels::BENCHMARK_RELEASED) == "true",
        tasks,
        task_count,
        tasks_known,
        labels: l.clone(),
        target,
    }))
}

/// Two agent directories whose images carry the same `eval.agent.name`: the one whose
/// directory has that name stays (if any), the others are left out.
pub(super) fn drop_duplicate_agents(
    agents: &mut Vec<Agent>,
    targets: &BTreeMap<String, Target>,
    problems: &mut Problems,
) {
    let mut by_label: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, a) in agents.iter().enumerate() {
        if let Some(n) = a.labels.get(labels::AGENT_NAME) {
            by_label.entry(n.clone()).or_default().push(i);
        }
    }
    let mut drop = Vec::new();
    for (name, idx) in by_label.into_iter().filter(|(_, v)| v.len() > 1) {
        let files: Vec<String> = idx
            .iter()
            .map(|&i| {
                targets
                    .get(&agents[i].target)
                    .map_or_else(String::new, |t| t.dockerfile_path().display().to_string())
            })
            .collect();
        for &i in &idx {
            if agents[i].name != name {
                problems.list.push(format!(
                    "{}: agent name {name:?} ({}) is used by {}: left out",
                    files[idx.iter().position(|&j| j == i).unwrap_or(0)],
                    labels::AGENT_NAME,
                    files.join(" and ")
                ));
                drop.push(i);
            }
        }
    }
    drop.sort_unstable();
    for i in drop.into_iter().rev() {
        agents.remove(i);
    }
}
