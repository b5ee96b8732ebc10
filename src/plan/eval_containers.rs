//! Builds of an eval-containers fleet (docs/layouts.md): the same bake targets its own
//! CLI builds (`agent-<a>`, `benchmark-<b>`, the combination's `eval`), with the same
//! variables and overrides, bases first. A per-task base is the benchmark's target with
//! `EVAL_TASK_ID` set through bake (its in-fleet bases build in the same graph), or the
//! benchmark's `build.sh <image> <task-id>` when it ships one (environments built from
//! source, which no single bake target expresses).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::fleet::dockerfile::Dockerfile;
use crate::fleet::hosts;
use crate::fleet::Target;

use super::base_map::BaseMap;
use super::ec_site;

use crate::fleet::layout::eval_containers::{
    self as ec, BENCHMARKS, BUILD_SCRIPT, CONTAINERS, EVAL_TARGET,
};
use crate::fleet::{Benchmark, Env, Fleet, Refused};
use crate::labels::BuildInfo;

use super::Request;

/// The layout this plan is for.
pub const LAYOUT: &str = ec::NAME;

/// One build, as the command that does it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// `ENV… docker buildx bake -f … --load --set … TARGET`.
    Bake {
        /// Variables bake reads from the environment (shown before the command).
        env: Vec<(String, String)>,
        files: Vec<PathBuf>,
        sets: Vec<String>,
        target: String,
        /// The image it makes.
        image: String,
        /// The hosts its build reaches (every Dockerfile of its bake graph).
        hosts: Vec<String>,
        /// (target, image) of the bases built by earlier steps: a builder that cannot
        /// read the engine's image store gets them handed over (`backend::eval_containers`).
        built: Vec<(String, String)>,
    },
    /// `bash containers/benchmarks/<b>/build.sh IMAGE TASK`.
    Script {
        script: PathBuf,
        image: String,
        task: String,
    },
}

impl Step {
    /// The environment and the argument vector (from the repository root).
    pub fn command(&self) -> (Vec<(String, String)>, Vec<String>) {
        match self {
            Step::Bake {
                env,
                files,
                sets,
                target,
                ..
            } => {
                let mut argv = vec!["docker".to_string(), "buildx".into(), "bake".into()];
                for f in files {
                    argv.push("-f".into());
                    argv.push(f.display().to_string());
                }
                argv.push("--load".into());
                for s in sets {
                    argv.push("--set".into());
                    argv.push(s.clone());
                }
                argv.push(target.clone());
                (env.clone(), argv)
            }
            Step::Script {
                script,
                image,
                task,
            } => (
                Vec::new(),
                vec![
                    "bash".into(),
                    script.display().to_string(),
                    image.clone(),
                    task.clone(),
                ],
            ),
        }
    }

    pub fn image(&self) -> &str {
        match self {
            Step::Bake { image, .. } | Step::Script { image, .. } => image,
        }
    }
}

/// The plan of an eval-containers fleet: the steps in order, and notes for the user.
#[derive(Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub notes: Vec<String>,
}

/// How builds are fitted to this site: the Dockerfile copy's changes, and the CA
/// bundle handed to every target as the build secret `ca-bundle` (`src/plan/ec_site.rs`).
#[derive(Debug, Clone, Default)]
pub struct Site {
    pub changes: ec_site::Changes,
    pub ca_bundle: Option<PathBuf>,
}

impl Site {
    /// An air-gapped site (a base map is given) cannot pull Docker's frontend image;
    /// a CA bundle must reach every `RUN`.
    pub fn new(base_map: &BaseMap, ca_bundle: Option<&std::path::Path>) -> Site {
        Site {
            changes: ec_site::Changes {
                drop_syntax: !base_map.is_empty(),
                ca_bundle: ca_bundle.is_some(),
            },
            ca_bundle: ca_bundle.map(|p| p.to_path_buf()),
        }
    }
}

/// What a bake graph needs beyond the fleet's own definitions.
struct GraphNeeds {
    sets: Vec<String>,
    hosts: Vec<String>,
    built: Vec<(String, String)>,
}

struct Planner<'f> {
    fleet: &'f Fleet,
    base_map: &'f BaseMap,
    site: &'f Site,
    /// Parsed Dockerfiles, their build hosts and site copies, by path.
    dockerfiles: BTreeMap<PathBuf, (Dockerfile, BTreeSet<String>, Option<PathBuf>)>,
    /// Targets resolved on demand (models, gateways, the eval recipe).
    resolved: BTreeMap<String, Target>,
    /// `--set *.labels.K=V` of kiln's build-time labels (every image of a bake graph).
    label_sets: Vec<String>,
    plan: Plan,
    seen: BTreeSet<String>,
}

/// Checks `request` against the fleet and lists its builds.
pub fn plan(
    fleet: &Fleet,
    request: &Request,
    info: &BuildInfo,
    base_map: &BaseMap,
    site: &Site,
) -> anyhow::Result<Plan> {
    let mut p = Planner {
        fleet,
        base_map,
        site,
        dockerfiles: BTreeMap::new(),
        resolved: BTreeMap::new(),
        label_sets: info
            .labels(None)
            .map(|(k, v)| format!("*.labels.{k}={v}"))
            .collect(),
        plan: Plan::default(),
        seen: BTreeSet::new(),
    };
    p.request(request)?;
    Ok(p.plan)
}

impl Planner<'_> {
    fn request(&mut self, request: &Request) -> anyhow::Result<()> {
        match request {
            Request::Benchmark { benchmark, task } => {
                let b = self.fleet.benchmark(benchmark)?;
                self.benchmark(b, task.as_deref())
            }
            Request::Agent { agent } => {
                self.fleet.agent(agent)?;
                self.agent(agent)
            }
            Request::Eval {
                benchmark,
                agent,
                task,
            } => {
                let b = self.fleet.benchmark(benchmark)?;
                self.fleet.agent(agent)?;
                self.eval(b, agent, task.as_deref())
            }
            Request::All => self.all(),
            Request::Many(all) => all.iter().try_for_each(|r| self.request(r)),
        }
    }

    fn push(&mut self, step: Step) {
        if self.seen.insert(step.image().to_string()) {
            self.plan.steps.push(step);
        }
    }

    /// `name` resolved with the fleet's variables (loaded, or resolved now and kept).
    fn target_of(&mut self, name: &str) -> Option<Target> {
        if let Some(t) = self
            .fleet
            .targets
            .get(name)
            .or_else(|| self.resolved.get(name))
        {
            return Some(t.clone());
        }
        let mut r = self
            .fleet
            .resolve(&[name.to_string()], &BTreeMap::new())
            .ok()?;
        let t = r.remove(name)?;
        self.resolved.extend(r);
        self.resolved.insert(name.to_string(), t.clone());
        Some(t)
    }

    /// The base-map contexts, site copies and secrets, build hosts and bases built by
    /// earlier steps of `target`'s bake graph, with `args` over its own (a per-task id,
    /// the eval's base images).
    fn graph_needs(
        &mut self,
        target: &str,
        args: &BTreeMap<String, String>,
    ) -> anyhow::Result<GraphNeeds> {
        let (mut sets, mut reached, mut built) = (Vec::new(), BTreeSet::new(), Vec::new());
        let mut todo = vec![target.to_string()];
        let mut seen = BTreeSet::new();
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let Some(mut t) = self.target_of(&name) else {
                continue;
            };
            if name == target {
                t.args
                    .extend(args.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            todo.extend(t.linked_targets().map(|(_, l)| l.to_string()));
            let path = t.dockerfile_path();
            if !self.dockerfiles.contains_key(&path) {
                let text = std::fs::read_to_string(self.fleet.root.join(&path)).unwrap_or_default();
                let df = Dockerfile::parse(&text);
                let h = hosts::build_hosts(&df);
                let copy = ec_site::write(&self.fleet.root, &name, &text, self.site.changes)?;
                self.dockerfiles.insert(path.clone(), (df, h, copy));
            }
            let (df, h, copy) = &self.dockerfiles[&path];
            reached.extend(h.iter().cloned());
            if let Some(copy) = copy {
                sets.push(format!("{name}.dockerfile={}", copy.display()));
            }
            if let Some(file) = &self.site.ca_bundle {
                let id = super::ca_bundle::ID;
                sets.push(format!("{name}.secrets=id={id},src={}", file.display()));
            }
            for base in df.bases(&t.args) {
                if t.contexts.contains_key(&base.image) {
                    continue; // bound to a fleet target already
                }
                if let Some((_, value)) = self.base_map.get(&base.image) {
                    let key = super::base_map::context_key(&base.image);
                    sets.push(format!("{name}.contexts.{key}={value}"));
                } else if self.seen.contains(&base.image) {
                    built.push((name.clone(), base.image.clone()));
                }
            }
        }
        sets.sort();
        sets.dedup();
        built.sort();
        built.dedup();
        Ok(GraphNeeds {
            sets,
            hosts: reached.into_iter().collect(),
            built,
        })
    }

    fn bake(
        &mut self,
        env: Vec<(String, String)>,
        sets: Vec<String>,
        target: String,
        image: String,
    ) -> anyhow::Result<()> {
        if self.seen.contains(&image) {
            return Ok(());
        }
        // The args the request sets on its own target (`<t>.args.K=V`).
        let prefix = format!("{target}.args.");
        let args: BTreeMap<String, String> = sets
            .iter()
            .filter_map(|s| s.strip_prefix(&prefix)?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let needs = self.graph_needs(&target, &args)?;
        let mut all = self.label_sets.clone();
        all.extend(sets);
        all.extend(needs.sets);
        let mut env_all: Vec<(String, String)> = self
            .fleet
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env_all.extend(env);
        self.push(Step::Bake {
            env: env_all,
            files: self.fleet.layout.bake_files.clone(),
            sets: all,
            target,
            image,
            hosts: needs.hosts,
            built: needs.built,
        });
        Ok(())
    }

    fn agent(&mut self, agent: &str) -> anyhow::Result<()> {
        let target = self.fleet.layout.target(crate::naming::Kind::Agent, agent);
        self.bake(
            Vec::new(),
            Vec::new(),
            target,
            self.fleet.naming.agent(agent),
        )
    }

    /// The tasks of `b` a request means: the one asked for, or every listed one.
    fn tasks<'b>(
        &mut self,
        b: &'b Benchmark,
        task: Option<&'b str>,
    ) -> anyhow::Result<Vec<String>> {
        if let Some(t) = task {
            return Ok(vec![b.task(t)?.to_string()]);
        }
        if !b.tasks_known {
            return Err(Refused(format!(
                "benchmark {:?} is per-task and only its build knows its {} task ids (no tasks.txt): name one with --task-id",
                b.name, b.task_count
            ))
            .into());
        }
        Ok(b.tasks.clone())
    }

    fn benchmark(&mut self, b: &Benchmark, task: Option<&str>) -> anyhow::Result<()> {
        if b.env == Env::SharedEnv {
            if let Some(t) = task {
                b.task(t)?;
            }
            let target = b.target.clone();
            self.bake(
                Vec::new(),
                Vec::new(),
                target,
                self.fleet.naming.benchmark(&b.name, None),
            )?;
            return Ok(());
        }
        for t in self.tasks(b, task)? {
            self.task_base(b, &t)?;
        }
        Ok(())
    }

    fn task_base(&mut self, b: &Benchmark, task: &str) -> anyhow::Result<()> {
        let image = self.fleet.naming.benchmark(&b.name, Some(task));
        let script = PathBuf::from(CONTAINERS)
            .join(BENCHMARKS)
            .join(&b.name)
            .join(BUILD_SCRIPT);
        if self.fleet.root.join(&script).is_file() {
            self.push(Step::Script {
                script,
                image,
                task: task.to_string(),
            });
            return Ok(());
        }
        let t = &b.target;
        let sets = vec![
            format!("{t}.args.{}={task}", crate::naming::VAR_TASK_ID),
            format!("{t}.tags={image}"),
            format!("{t}.labels.{}={task}", crate::labels::TASK_ID),
        ];
        self.bake(Vec::new(), sets, t.clone(), image)
    }

    fn eval(&mut self, b: &Benchmark, agent: &str, task: Option<&str>) -> anyhow::Result<()> {
        let tasks: Vec<Option<String>> = match b.env {
            Env::SharedEnv => {
                if let Some(t) = task {
                    b.task(t)?;
                }
                vec![None]
            }
            Env::PerTask => self.tasks(b, task)?.into_iter().map(Some).collect(),
        };
        self.agent(agent)?;
        for t in tasks {
            let t = t.as_deref();
            match t {
                Some(t) => self.task_base(b, t)?,
                None => self.benchmark(b, None)?,
            }
            let n = &self.fleet.naming;
            let bench_image = n.benchmark(&b.name, t);
            let agent_image = n.agent(agent);
            let image = n.eval(&b.name, t, agent);
            let env = vec![
                ("EVAL_BENCHMARK".to_string(), b.name.clone()),
                ("EVAL_AGENT".to_string(), agent.to_string()),
                ("BENCHMARK_IMAGE".to_string(), bench_image.clone()),
                ("AGENT_IMAGE".to_string(), agent_image.clone()),
            ];
            let mut sets = vec![
                format!("{EVAL_TARGET}.args.BENCHMARK_IMAGE={bench_image}"),
                format!("{EVAL_TARGET}.args.AGENT_IMAGE={agent_image}"),
            ];
            if let Some(t) = t {
                sets.push(format!("{EVAL_TARGET}.tags={image}"));
                sets.push(format!(
                    "{EVAL_TARGET}.labels.{}={t}",
                    crate::labels::TASK_ID
                ));
            }
            self.bake(env, sets, EVAL_TARGET.to_string(), image)?;
        }
        Ok(())
    }

    fn all(&mut self) -> anyhow::Result<()> {
        let fleet = self.fleet;
        for c in &fleet.cores {
            self.bake(
                Vec::new(),
                Vec::new(),
                c.target.clone(),
                fleet.naming.core(&c.name),
            )?;
        }
        for (category, name) in &fleet.layout.others {
            let image = format!(
                "{}/{category}/{name}:{}",
                fleet.naming.registry, fleet.naming.tag
            );
            self.bake(
                Vec::new(),
                Vec::new(),
                ec::other_target(category, name),
                image,
            )?;
        }
        for a in &fleet.agents {
            self.agent(&a.name)?;
        }
        for b in &fleet.benchmarks {
            if b.env == Env::PerTask && !b.tasks_known {
                self.plan.notes.push(format!(
                    "benchmark {:?} left out: per-task, and only its build knows its {} task ids (no tasks.txt)",
                    b.name, b.task_count
                ));
                continue;
            }
            for a in &fleet.agents {
                self.eval(b, &a.name, None)?;
            }
        }
        Ok(())
    }
}
