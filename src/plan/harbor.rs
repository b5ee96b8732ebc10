//! Builds of a Harbor dataset: per task, its environment image (from
//! `environment/Dockerfile`, or `FROM` the task's prebuilt `docker_image`) and, when the
//! verifier runs apart with its own `tests/Dockerfile`, the verifier's image. They are
//! ordinary [`BuildSpec`]s, so every backend, the input digest (an unchanged task is not
//! rebuilt), the label check and `--dry-run` work as for kiln's own fleet.
//!
//! A base map (`PUBLIC=LOCAL`) is applied by writing the task's Dockerfile with its
//! `FROM` lines rewritten into kiln's cache ([`state_dir`]): the dataset's files are
//! never edited, and a read-only dataset builds too. The builds that need none read the
//! task's own Dockerfile. For bake, the dataset's images are written as one bake file
//! there ([`bake_file`], one target per image), so the printed `docker buildx bake`
//! commands run as they are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use super::base_map::BaseMap;
use super::{BakeRequest, BuildSpec, Definition, Plan, Request};
use crate::fleet::dockerfile::Dockerfile;
use crate::fleet::layout::harbor::config::Step;
use crate::fleet::layout::harbor::{self, dataset, Dataset, Task};
use crate::fleet::{Fleet, Refused};
use crate::labels::BuildInfo;

/// Where kiln keeps what it writes for the dataset at `root`:
/// `$XDG_CACHE_HOME/kiln/harbor/<digest of the dataset's absolute path>`.
pub fn state_dir(root: &Path) -> anyhow::Result<PathBuf> {
    use sha2::{Digest as _, Sha256};
    let abs = std::fs::canonicalize(root).with_context(|| format!("reading {}", root.display()))?;
    let cache = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into())).join(".cache")
        }
    };
    let digest = Sha256::digest(abs.as_os_str().as_encoded_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Ok(cache.join("kiln").join("harbor").join(hex))
}

/// The bake file of the dataset's images (written when bake builds whole requests).
pub fn bake_file(root: &Path) -> anyhow::Result<PathBuf> {
    Ok(state_dir(root)?.join("docker-bake.json"))
}

/// The images of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskImages {
    /// The task's environment: what the agent runs in.
    pub environment: String,
    /// The images of its separate verifiers, by the folder each is built from
    /// (relative to the dataset root), with the prebuilt image it starts from if any.
    pub verifiers: BTreeMap<PathBuf, (String, Option<String>)>,
}

impl TaskImages {
    /// The image the verifier of `step` runs in when it runs apart.
    pub fn verifier(&self, root: &Path, task: &Task, step: Option<&Step>) -> Option<&str> {
        if !task.separate_for(step) {
            return None;
        }
        self.verifiers
            .get(&task.verifier_dir(root, step))
            .map(|(image, _)| image.as_str())
    }
}

/// The repository path kiln publishes `task`'s environment to, under the registry root
/// (`benchmarks/<dataset>-<task>`): what a pin of the task names.
pub fn repository_path(fleet: &Fleet, task: &Task) -> String {
    crate::naming::benchmark_path(&fleet.benchmarks[0].name, Some(&task.id))
}

/// What the task's environment is built from: `environment.docker_image` (Harbor
/// prefers it) unless it is kiln's own pin of the task and the Dockerfile is still
/// there — building `FROM` the pin would stack every release on the previous one.
pub fn prebuilt_environment<'t>(fleet: &Fleet, task: &'t Task) -> Option<&'t str> {
    let image = task.config.environment.docker_image.as_deref()?;
    let dockerfile = fleet
        .root
        .join(&task.dir)
        .join(dataset::ENVIRONMENT_DIR)
        .join(dataset::DOCKERFILE);
    let own_pin = harbor::pin::is_kiln_pin(image, &repository_path(fleet, task));
    (!(own_pin && dockerfile.is_file())).then_some(image)
}

/// The image names of `task` in `fleet`.
pub fn images(fleet: &Fleet, task: &Task) -> TaskImages {
    let environment = fleet
        .naming
        .benchmark(&fleet.benchmarks[0].name, Some(&task.id));
    let top = task.dir.join(dataset::TESTS_DIR);
    let mut verifiers = BTreeMap::new();
    for step in task.phases() {
        if !task.separate_for(step) {
            continue;
        }
        let dir = task.verifier_dir(&fleet.root, step);
        let own_env = step.and_then(|s| s.verifier.environment.as_deref()).or(task
            .config
            .verifier
            .environment
            .as_deref());
        let prebuilt = own_env.and_then(|e| e.docker_image.clone());
        let suffix = match step {
            Some(s) if dir != top => format!("-verifier-{}", image_word(&s.name)),
            _ => "-verifier".to_string(),
        };
        verifiers
            .entry(dir)
            .or_insert_with(|| (suffixed(&environment, &suffix), prebuilt));
    }
    TaskImages {
        environment,
        verifiers,
    }
}

/// `name` lowercased, anything but letters and digits as `-`.
fn image_word(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// `…/bench-task:tag` with `suffix` → `…/bench-task<suffix>:tag` (the tag is after
/// the last `:` past the last `/`).
fn suffixed(image: &str, suffix: &str) -> String {
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(i) => format!("{}{suffix}{}", &image[..slash + i], &image[slash + i..]),
        None => format!("{image}{suffix}"),
    }
}

/// The builds `request` needs, bases first. Unknown tasks are refused before anything
/// is written.
pub fn plan(
    fleet: &Fleet,
    request: &Request,
    info: &BuildInfo,
    base_map: &BaseMap,
) -> anyhow::Result<Plan> {
    let ds = fleet
        .layout
        .dataset
        .as_ref()
        .expect("a Harbor fleet has its dataset");
    let mut tasks: Vec<&Task> = Vec::new();
    collect(fleet, ds, request, &mut tasks)?;
    let mut plan = Plan::default();
    let named = matches!(request, Request::Benchmark { task: Some(_), .. });
    for task in tasks {
        if let Some(why) = unbuildable(&fleet.root, task) {
            let msg = format!("task {}: not built: {why}", task.id);
            if named {
                return Err(Refused(msg).into());
            }
            plan.notes.push(msg);
            continue;
        }
        plan.notes.extend(hosts_notes(&fleet.root, task, true));
        for spec in task_builds(fleet, ds, task, info, base_map)? {
            if !plan.builds.iter().any(|b| b.image == spec.image) {
                plan.builds.push(spec);
            }
        }
    }
    plan.bake = bake_requests(&fleet.root, &plan.builds)?;
    Ok(plan)
}

/// The plan's images as one bake file in kiln's cache (rewritten only when it changed),
/// and one bake request per image over it.
pub(super) fn bake_requests(root: &Path, builds: &[BuildSpec]) -> anyhow::Result<Vec<BakeRequest>> {
    if builds.is_empty() {
        return Ok(Vec::new());
    }
    let file = bake_file(root)?;
    write(
        &file,
        &serde_json::to_string_pretty(&Definition::of(builds))?,
    )?;
    Ok(builds
        .iter()
        .enumerate()
        .map(|(i, b)| BakeRequest {
            files: vec![file.clone()],
            vars: BTreeMap::new(),
            sets: Vec::new(),
            targets: vec![b.bake_target.clone()],
            builds: vec![i],
        })
        .collect())
}

fn collect<'d>(
    fleet: &Fleet,
    ds: &'d Dataset,
    request: &Request,
    out: &mut Vec<&'d Task>,
) -> anyhow::Result<()> {
    match request {
        Request::Benchmark { benchmark, task } => {
            let b = fleet.benchmark(benchmark)?;
            match task {
                Some(t) => {
                    let id = b.task(t)?;
                    out.extend(ds.task(id));
                }
                None => out.extend(ds.tasks.iter()),
            }
            Ok(())
        }
        Request::All => {
            out.extend(ds.tasks.iter());
            Ok(())
        }
        Request::Many(all) => all.iter().try_for_each(|r| collect(fleet, ds, r, out)),
        Request::Agent { .. } | Request::Eval { .. } => Err(Refused(format!(
            "a Harbor dataset has no agents of its own: build its tasks with `kiln build benchmark {}` (oracle and null run with `kiln validate`)",
            ds.name
        ))
        .into()),
    }
}

/// What an air-gapped site must know about `task` before it runs: the hosts its
/// build (with `build`), its tests and its solution reach. A test script that fetches
/// cannot grade without those hosts.
pub fn hosts_notes(root: &Path, task: &Task, build: bool) -> Vec<String> {
    let mut notes = Vec::new();
    let list =
        |h: &std::collections::BTreeSet<String>| h.iter().cloned().collect::<Vec<_>>().join(", ");
    if build {
        let dockerfile = root
            .join(&task.dir)
            .join(dataset::ENVIRONMENT_DIR)
            .join(dataset::DOCKERFILE);
        if let Ok(text) = std::fs::read_to_string(dockerfile) {
            let hosts = crate::fleet::hosts::build_hosts(&Dockerfile::parse(&text));
            if !hosts.is_empty() {
                notes.push(format!(
                    "task {}: its build reaches {}",
                    task.id,
                    list(&hosts)
                ));
            }
        }
    }
    let (tests, solution) = task.run_hosts(root);
    if !tests.is_empty() {
        notes.push(format!(
            "task {}: its tests reach {} at run time: without them it cannot grade (an air-gapped site must mirror them)",
            task.id,
            list(&tests)
        ));
    }
    if !solution.is_empty() {
        notes.push(format!(
            "task {}: its solution reaches {} at run time",
            task.id,
            list(&solution)
        ));
    }
    notes
}

/// Why kiln cannot build `task`'s environment here (it still runs nowhere else than
/// where its environment can be made).
fn unbuildable(root: &Path, task: &Task) -> Option<String> {
    let env = &task.config.environment;
    if env.os == Some(crate::fleet::layout::harbor::config::Os::Windows) {
        return Some("environment.os = \"windows\": a Windows image does not build here".into());
    }
    let dockerfile = root
        .join(&task.dir)
        .join(dataset::ENVIRONMENT_DIR)
        .join(dataset::DOCKERFILE);
    if env.docker_image.is_none() && !dockerfile.is_file() {
        return task.cannot_run(root);
    }
    None
}

/// The environment build of `task` and, when it has one, its verifier's.
fn task_builds(
    fleet: &Fleet,
    ds: &Dataset,
    task: &Task,
    info: &BuildInfo,
    base_map: &BaseMap,
) -> anyhow::Result<Vec<BuildSpec>> {
    let names = images(fleet, task);
    let mut labels = harbor::task_labels(ds, task);
    labels.extend(
        info.labels(Some(&task.id))
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let root = &fleet.root;
    let target = bake_target(&fleet.benchmarks[0].name, &task.id);
    let env_dir = task.dir.join(dataset::ENVIRONMENT_DIR);
    let mut out = vec![image_build(
        root,
        &target,
        &task.id,
        &names.environment,
        &labels,
        Source::new(root, &env_dir, prebuilt_environment(fleet, task))?,
        base_map,
    )?];
    for (dir, (image, prebuilt)) in &names.verifiers {
        let mut l = labels.clone();
        l.insert(
            crate::labels::OCI_TITLE.into(),
            format!("{} (verifier)", task.name()),
        );
        let rel = dir.strip_prefix(&task.dir).unwrap_or(dir);
        let word = image_word(&rel.display().to_string());
        out.push(image_build(
            root,
            &format!("{target}-{word}"),
            &format!("{}-{word}", task.id),
            image,
            &l,
            Source::new(root, dir, prebuilt.as_deref())?,
            base_map,
        )?);
    }
    Ok(out)
}

/// What an image is built from: a Dockerfile in a context folder, or a prebuilt image.
enum Source {
    Dockerfile { context: PathBuf },
    Prebuilt(String),
}

impl Source {
    fn new(root: &Path, dir: &Path, prebuilt: Option<&str>) -> anyhow::Result<Source> {
        if let Some(image) = prebuilt {
            return Ok(Source::Prebuilt(image.to_string()));
        }
        if root.join(dir).join(dataset::DOCKERFILE).is_file() {
            return Ok(Source::Dockerfile {
                context: dir.to_path_buf(),
            });
        }
        Err(Refused(format!(
            "{}: no Dockerfile and no docker_image to build from",
            dir.display()
        ))
        .into())
    }
}

/// A bake target name for a task's image (`benchmark-<dataset>-<task>`, `.` as `_`:
/// bake names are letters, digits, `_` and `-`).
fn bake_target(dataset: &str, task_id: &str) -> String {
    format!("benchmark-{dataset}-{}", task_id.replace('.', "_"))
}

fn image_build(
    root: &Path,
    target: &str,
    state_name: &str,
    image: &str,
    labels: &BTreeMap<String, String>,
    source: Source,
    base_map: &BaseMap,
) -> anyhow::Result<BuildSpec> {
    // The context is relative to the dataset root (as the backends take it), or in
    // kiln's cache; a Dockerfile kiln writes is named by its absolute path.
    let state = state_dir(root)?.join(state_name);
    let (context, original) = match &source {
        Source::Dockerfile { context } => {
            let file = root.join(context).join(dataset::DOCKERFILE);
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            (context.clone(), text)
        }
        // A prebuilt image gets kiln's labels through a one-line build on an empty context.
        Source::Prebuilt(image) => {
            let context = state.join("context");
            std::fs::create_dir_all(&context)
                .with_context(|| format!("creating {}", context.display()))?;
            (context, format!("FROM {image}\n"))
        }
    };
    let (text, bases) = map_bases(&original, base_map)?;
    let dockerfile = match source {
        Source::Dockerfile { .. } if text == original => PathBuf::from(dataset::DOCKERFILE),
        _ => {
            write(&state.join(dataset::DOCKERFILE), &text)?;
            state.join(dataset::DOCKERFILE)
        }
    };
    let arc = |s: &str| -> Arc<str> { Arc::from(s) };
    Ok(BuildSpec {
        name: target.to_string(),
        bake_target: target.to_string(),
        image: image.to_string(),
        context,
        dockerfile,
        target: None,
        args: Default::default(),
        labels: labels.iter().map(|(k, v)| (arc(k), arc(v))).collect(),
        secrets: Vec::new(),
        bases,
        deps: Vec::new(),
    })
}

/// `text` with every mapped base replaced by its local image, and the bases it then
/// builds on. A base mapped to an OCI layout cannot be written in a `FROM` line.
fn map_bases(text: &str, base_map: &BaseMap) -> anyhow::Result<(String, Vec<String>)> {
    let df = Dockerfile::parse(text);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut bases = Vec::new();
    for base in df.bases(&BTreeMap::new()) {
        let local = match base_map.get(&base.image) {
            Some((_, value)) => match value.strip_prefix("docker-image://") {
                Some(local) => {
                    if let Some(line) = lines.get_mut(base.line.saturating_sub(1)) {
                        *line = line.replacen(&base.written, local, 1);
                    }
                    local.to_string()
                }
                None => {
                    return Err(Refused(format!(
                        "base map: {} → {value}: a Harbor task's base must map to an image (its Dockerfile's FROM is rewritten)",
                        base.image
                    ))
                    .into())
                }
            },
            None => base.image,
        };
        if !bases.contains(&local) {
            bases.push(local);
        }
    }
    let mut out = lines.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    Ok((out, bases))
}

/// Writes `text` to `file` unless it already holds it (the mtime then stays).
fn write(file: &Path, text: &str) -> anyhow::Result<()> {
    if std::fs::read_to_string(file).is_ok_and(|t| t == text) {
        return Ok(());
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(file, text).with_context(|| format!("writing {}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_base_is_rewritten_in_its_line_only() {
        let mut m = BaseMap::default();
        m.add("ubuntu:24.04=debian:bookworm-slim", "--base")
            .unwrap();
        let (text, bases) = map_bases(
            "FROM ubuntu:24.04\nRUN echo ubuntu:24.04\nFROM alpine AS x\n",
            &m,
        )
        .unwrap();
        assert_eq!(
            text,
            "FROM debian:bookworm-slim\nRUN echo ubuntu:24.04\nFROM alpine AS x\n"
        );
        assert_eq!(bases, ["debian:bookworm-slim", "alpine"]);
    }

    #[test]
    fn names() {
        assert_eq!(bake_target("tasks", "a.b-c"), "benchmark-tasks-a_b-c");
        assert_eq!(
            suffixed("reg:5000/benchmarks/t-x:dev", "-verifier"),
            "reg:5000/benchmarks/t-x-verifier:dev"
        );
    }
}
