//! Builds of a Harbor dataset: per task, its environment image (from
//! `environment/Dockerfile`, or `FROM` the task's prebuilt `docker_image`) and, when the
//! verifier runs apart with its own `tests/Dockerfile`, the verifier's image. They are
//! ordinary [`BuildSpec`]s, so every backend, the input digest (an unchanged task is not
//! rebuilt), the label check and `--dry-run` work as for kiln's own fleet.
//!
//! A base map (`PUBLIC=LOCAL`) is applied by writing the task's Dockerfile with its
//! `FROM` lines rewritten into kiln's cache ([`state_dir`]), one file per distinct text
//! ([`SharedDockerfiles`]: a dataset's tasks mostly share a few): the dataset's files are
//! never edited, and a read-only dataset builds too. The builds that need none read the
//! task's own Dockerfile. For bake, the dataset's images are written as one bake file
//! there ([`bake_file`], one target per image), so the printed `docker buildx bake`
//! commands run as they are.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use anyhow::Context as _;

use super::base_map::BaseMap;
use super::shared_dockerfile::SharedDockerfiles;
use super::{BakeRequest, BuildSpec, Definition, Plan, Request};
use crate::fleet::dockerfile::Dockerfile;
use crate::fleet::layout::harbor::config::Step;
use crate::fleet::layout::harbor::{self, dataset, Dataset, Task};
use crate::fleet::{Fleet, Refused};
use crate::labels::BuildInfo;

/// Where kiln keeps what it writes for the dataset at `root`:
/// `$XDG_CACHE_HOME/kiln/harbor/<digest of the dataset's absolute path>`.
pub fn state_dir(root: &Path) -> anyhow::Result<PathBuf> {
    super::fleet_cache_dir("harbor", root)
}

/// The bake file of the dataset's images (written when bake builds whole requests).
pub fn bake_file(root: &Path) -> anyhow::Result<PathBuf> {
    Ok(state_dir(root)?.join(BAKE_FILE))
}

const BAKE_FILE: &str = "docker-bake.json";
/// The folder of the Dockerfiles kiln writes, shared by content ([`SharedDockerfiles`]).
const DOCKERFILES: &str = "dockerfiles";
/// The empty context of the one-line builds of prebuilt images.
const EMPTY_CONTEXT: &str = "empty-context";

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

/// Refuses what [`plan`] would refuse of `request` itself (an unknown task, a named
/// task kiln cannot build, agents): quick, so a caller may start probing the machine
/// once it passes, while the plan is made.
pub fn check(fleet: &Fleet, request: &Request) -> anyhow::Result<()> {
    let ds = fleet
        .layout
        .dataset
        .as_ref()
        .expect("a Harbor fleet has its dataset");
    let mut tasks: Vec<&Task> = Vec::new();
    collect(fleet, ds, request, &mut tasks)?;
    if matches!(request, Request::Benchmark { task: Some(_), .. }) {
        for t in tasks {
            if let Some(why) = unbuildable(&fleet.root, t) {
                return Err(Refused(format!("task {}: not built: {why}", t.id)).into());
            }
        }
    }
    Ok(())
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
    let state = state_dir(&fleet.root)?;
    let mut planner = Planner {
        fleet,
        ds,
        info,
        base_map,
        dockerfiles: SharedDockerfiles::new(state.join(DOCKERFILES)),
        empty_context: None,
        rewrites: HashMap::new(),
        state,
    };
    let mut plan = Plan::default();
    let named = matches!(request, Request::Benchmark { task: Some(_), .. });
    let mut planned: HashSet<String> = HashSet::new();
    for task in tasks {
        if let Some(why) = unbuildable(&fleet.root, task) {
            let msg = format!("task {}: not built: {why}", task.id);
            if named {
                return Err(Refused(msg).into());
            }
            plan.notes.push(msg);
            continue;
        }
        for spec in planner.task_builds(task, &mut plan.notes)? {
            if planned.insert(spec.image.clone()) {
                plan.builds.push(spec);
            }
        }
    }
    plan.bake = bake_requests(&planner.state, &plan.builds)?;
    Ok(plan)
}

/// The plan's images as one bake file in kiln's cache (rewritten only when it changed),
/// and one bake request per image over it.
pub(super) fn bake_requests(
    state: &Path,
    builds: &[BuildSpec],
) -> anyhow::Result<Vec<BakeRequest>> {
    if builds.is_empty() {
        return Ok(Vec::new());
    }
    let file = state.join(BAKE_FILE);
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
    if build {
        let dockerfile = root
            .join(&task.dir)
            .join(dataset::ENVIRONMENT_DIR)
            .join(dataset::DOCKERFILE);
        if let Ok(text) = std::fs::read_to_string(dockerfile) {
            let hosts = crate::fleet::hosts::build_hosts(&Dockerfile::parse(&text));
            notes.extend(build_hosts_note(task, &hosts));
        }
    }
    notes.extend(run_hosts_notes(root, task));
    notes
}

fn list(hosts: &BTreeSet<String>) -> String {
    hosts.iter().cloned().collect::<Vec<_>>().join(", ")
}

fn build_hosts_note(task: &Task, hosts: &BTreeSet<String>) -> Option<String> {
    (!hosts.is_empty()).then(|| format!("task {}: its build reaches {}", task.id, list(hosts)))
}

fn run_hosts_notes(root: &Path, task: &Task) -> Vec<String> {
    let mut notes = Vec::new();
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

/// Plans the builds of a dataset's tasks. Each distinct Dockerfile text is parsed and
/// rewritten once (thousands of tasks mostly share a few), and a rewritten one is
/// written once, shared by content.
struct Planner<'a> {
    fleet: &'a Fleet,
    ds: &'a Dataset,
    info: &'a BuildInfo,
    base_map: &'a BaseMap,
    /// Kiln's cache folder of the dataset ([`state_dir`]).
    state: PathBuf,
    dockerfiles: SharedDockerfiles,
    /// The empty context folder, once made.
    empty_context: Option<PathBuf>,
    /// Dockerfile text as read → its rewrite.
    rewrites: HashMap<String, Rc<Rewrite>>,
}

/// A Dockerfile with the base map applied.
struct Rewrite {
    text: String,
    /// The base map changed it (it must be written to kiln's cache).
    changed: bool,
    /// The bases it then builds on.
    bases: Vec<String>,
    /// The hosts its build reaches (as written).
    hosts: BTreeSet<String>,
}

/// What an image is built from: its context folder and Dockerfile, and whether the
/// Dockerfile is the context's own (else it is a text kiln writes).
struct Source {
    context: PathBuf,
    dockerfile: Rc<Rewrite>,
    own: bool,
}

impl Planner<'_> {
    /// The environment build of `task` and, when it has one, its verifier's; the task's
    /// notes (the hosts it reaches) go to `notes`.
    fn task_builds(
        &mut self,
        task: &Task,
        notes: &mut Vec<String>,
    ) -> anyhow::Result<Vec<BuildSpec>> {
        let fleet = self.fleet;
        let root = &fleet.root;
        let env_dir = task.dir.join(dataset::ENVIRONMENT_DIR);
        // Read once, for the build and for the note of the hosts it reaches.
        let env_file = self.dockerfile(&env_dir);
        let prebuilt = prebuilt_environment(fleet, task);
        let env_source = match (prebuilt, env_file) {
            (Some(image), file) => {
                if let Ok(Some(r)) = file {
                    notes.extend(build_hosts_note(task, &r.hosts));
                }
                self.prebuilt(image)?
            }
            (None, file) => {
                let r = file?;
                if let Some(r) = &r {
                    notes.extend(build_hosts_note(task, &r.hosts));
                }
                source_of(&env_dir, r)?
            }
        };
        notes.extend(run_hosts_notes(root, task));

        let names = images(fleet, task);
        let mut labels = harbor::task_labels(self.ds, task);
        labels.extend(
            self.info
                .labels(Some(&task.id))
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let target = bake_target(&fleet.benchmarks[0].name, &task.id);
        let mut out = vec![self.image_build(&target, &names.environment, &labels, env_source)?];
        for (dir, (image, prebuilt)) in &names.verifiers {
            let mut l = labels.clone();
            l.insert(
                crate::labels::OCI_TITLE.into(),
                format!("{} (verifier)", task.name()),
            );
            let rel = dir.strip_prefix(&task.dir).unwrap_or(dir);
            let word = image_word(&rel.display().to_string());
            let source = match prebuilt {
                Some(image) => self.prebuilt(image)?,
                None => {
                    let r = self.dockerfile(dir)?;
                    source_of(dir, r)?
                }
            };
            out.push(self.image_build(&format!("{target}-{word}"), image, &l, source)?);
        }
        Ok(out)
    }

    /// The Dockerfile of the folder `dir` (relative to the dataset root), rewritten;
    /// `None` when it has none.
    fn dockerfile(&mut self, dir: &Path) -> anyhow::Result<Option<Rc<Rewrite>>> {
        let file = self.fleet.root.join(dir).join(dataset::DOCKERFILE);
        if !file.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        self.rewrite(text).map(Some)
    }

    fn rewrite(&mut self, text: String) -> anyhow::Result<Rc<Rewrite>> {
        if let Some(r) = self.rewrites.get(&text) {
            return Ok(r.clone());
        }
        let df = Dockerfile::parse(&text);
        let (mapped, bases) = map_parsed(&text, &df, self.base_map)?;
        let r = Rc::new(Rewrite {
            changed: mapped != text,
            text: mapped,
            bases,
            hosts: crate::fleet::hosts::build_hosts(&df),
        });
        self.rewrites.insert(text, r.clone());
        Ok(r)
    }

    /// A prebuilt image gets kiln's labels through a one-line build on an empty context.
    fn prebuilt(&mut self, image: &str) -> anyhow::Result<Source> {
        let context = match &self.empty_context {
            Some(c) => c.clone(),
            None => {
                let c = self.state.join(EMPTY_CONTEXT);
                std::fs::create_dir_all(&c).with_context(|| format!("creating {}", c.display()))?;
                self.empty_context = Some(c.clone());
                c
            }
        };
        Ok(Source {
            context,
            dockerfile: self.rewrite(format!("FROM {image}\n"))?,
            own: false,
        })
    }

    fn image_build(
        &mut self,
        target: &str,
        image: &str,
        labels: &BTreeMap<String, String>,
        source: Source,
    ) -> anyhow::Result<BuildSpec> {
        // The context is relative to the dataset root (as the backends take it), or in
        // kiln's cache; a Dockerfile kiln writes is named by its absolute path.
        let dockerfile = if source.own && !source.dockerfile.changed {
            PathBuf::from(dataset::DOCKERFILE)
        } else {
            self.dockerfiles.path(&source.dockerfile.text)?
        };
        let arc = |s: &str| -> Arc<str> { Arc::from(s) };
        Ok(BuildSpec {
            name: target.to_string(),
            bake_target: target.to_string(),
            image: image.to_string(),
            context: source.context,
            dockerfile,
            target: None,
            args: Default::default(),
            labels: labels.iter().map(|(k, v)| (arc(k), arc(v))).collect(),
            secrets: Vec::new(),
            bases: source.dockerfile.bases.clone(),
            deps: Vec::new(),
        })
    }
}

/// The build from the Dockerfile `dockerfile` of the folder `dir`: refused without one.
fn source_of(dir: &Path, dockerfile: Option<Rc<Rewrite>>) -> anyhow::Result<Source> {
    match dockerfile {
        Some(d) => Ok(Source {
            context: dir.to_path_buf(),
            dockerfile: d,
            own: true,
        }),
        None => Err(Refused(format!(
            "{}: no Dockerfile and no docker_image to build from",
            dir.display()
        ))
        .into()),
    }
}

/// A bake target name for a task's image (`benchmark-<dataset>-<task>`, `.` as `_`:
/// bake names are letters, digits, `_` and `-`).
fn bake_target(dataset: &str, task_id: &str) -> String {
    format!("benchmark-{dataset}-{}", task_id.replace('.', "_"))
}

/// `text` with every mapped base replaced by its local image, and the bases it then
/// builds on. A base mapped to an OCI layout cannot be written in a `FROM` line.
#[cfg(test)]
fn map_bases(text: &str, base_map: &BaseMap) -> anyhow::Result<(String, Vec<String>)> {
    map_parsed(text, &Dockerfile::parse(text), base_map)
}

/// [`map_bases`] of a Dockerfile already parsed.
fn map_parsed(
    text: &str,
    df: &Dockerfile,
    base_map: &BaseMap,
) -> anyhow::Result<(String, Vec<String>)> {
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
