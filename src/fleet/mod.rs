//! The repository as a fleet: core images, agents, benchmarks (shared-env or per-task)
//! and their tasks, read from the directory layout and the bake files (no engine).

pub mod dockerfile;
pub mod hosts;
pub mod layout;
mod load;
pub mod resolve;
pub mod suggest;
pub mod target;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::labels;
use crate::naming::{self, Kind, Naming};

pub use layout::{FleetLayout, Layout};
use load::Problems;
pub use resolve::Resolver;
pub use target::{Target, TargetSecret};

/// Input refused before anything ran (unknown names, bad task ids, flags that make no
/// sense together). The CLI maps it to exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// [`Refused`] and invalid names as usage errors (exit status 2); any other error as
/// it is.
pub fn refused_to_usage(err: anyhow::Error) -> anyhow::Error {
    if let Some(r) = err.downcast_ref::<Refused>() {
        return crate::error::Failure::usage(r.0.clone());
    }
    if let Some(n) = err.downcast_ref::<crate::naming::InvalidName>() {
        return crate::error::Failure::usage(n.to_string());
    }
    err
}

/// The two kinds of benchmark (label `eval.benchmark.env`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Env {
    #[serde(rename = "shared-env")]
    SharedEnv,
    #[serde(rename = "per-task")]
    PerTask,
}

impl Env {
    pub fn parse(label: &str) -> Option<Env> {
        match label {
            labels::ENV_SHARED => Some(Env::SharedEnv),
            labels::ENV_PER_TASK => Some(Env::PerTask),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Env::SharedEnv => labels::ENV_SHARED,
            Env::PerTask => labels::ENV_PER_TASK,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Benchmark {
    pub name: String,
    pub target: String,
    pub env: Env,
    pub description: String,
    /// Task ids in byte order (empty when the layout does not list them, see `tasks_known`).
    pub tasks: Vec<String>,
    /// How many tasks the benchmark has (`tasks.len()` when they are listed).
    pub task_count: usize,
    /// False for a per-task benchmark whose ids only its build knows (an eval-containers
    /// benchmark without `tasks.txt`): any well-formed `--task-id` is then accepted.
    pub tasks_known: bool,
    pub released: bool,
    /// Every label its image gets (bake file, and the Dockerfile where the layout keeps them).
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Agent {
    pub name: String,
    pub target: String,
    pub description: String,
    pub version: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Core {
    pub name: String,
    pub target: String,
    pub description: String,
}

/// The loaded fleet. Bake files are parsed once; [`Fleet::resolve`] resolves targets
/// again with other variables (per task, per eval) from the same parse.
pub struct Fleet {
    pub root: PathBuf,
    pub layout: Layout,
    /// Bake variables the caller fixed (for example `REGISTRY` and `TAG` from the environment).
    pub vars: BTreeMap<String, String>,
    pub naming: Naming,
    pub cores: Vec<Core>,
    pub agents: Vec<Agent>,
    pub benchmarks: Vec<Benchmark>,
    /// Every fleet target except `core-eval`, resolved with `vars` and no `EVAL_*` variable.
    pub targets: BTreeMap<String, Target>,
    pub resolver: Resolver,
    /// Image directories left out, one message each naming the file (only layouts that
    /// are not strict keep loading past a broken directory; see [`FleetLayout::strict`]).
    pub problems: Vec<String>,
}

impl Fleet {
    /// Reads the layout and the bake files under `root` and resolves every image target once.
    pub fn load(root: &Path, vars: BTreeMap<String, String>) -> anyhow::Result<Fleet> {
        let mut layout = layout::read(root)?;
        if let Some(dataset) = layout.dataset.clone() {
            return layout::harbor::fleet(root, vars, layout, dataset);
        }
        let kind = layout.kind;
        let mut problems = Problems {
            strict: kind.strict(),
            list: Vec::new(),
        };
        let resolver = load::resolver(root, &mut layout, &mut problems)?;
        let naming = Naming::new(
            resolver.variable(naming::VAR_REGISTRY, &vars)?,
            resolver.variable(naming::VAR_TAG, &vars)?,
        );
        let dirs = load::expected_targets(&layout, &resolver, &mut problems)?;
        let wanted: Vec<String> = dirs
            .iter()
            .map(|d| d.target.clone())
            .filter(|t| t != naming::EVAL_TARGET || !kind.strict())
            .collect();
        let targets = load::resolve_each(&resolver, &dirs, &wanted, &vars, &mut problems)?;
        let labels = load::labels(root, &layout, &dirs, &targets, &mut problems)?;
        let label = |t: &str, key: &str| -> String {
            labels
                .get(t)
                .and_then(|l| l.get(key))
                .cloned()
                .unwrap_or_default()
        };
        let usable = |d: &load::Dir| labels.contains_key(&d.target);

        let mut cores = Vec::new();
        let mut agents = Vec::new();
        let mut benchmarks = Vec::new();
        for d in dirs.iter().filter(|d| usable(d)) {
            let target = d.target.clone();
            match d.kind {
                Kind::Core | Kind::Eval | Kind::Task => cores.push(Core {
                    name: d.name.clone(),
                    description: label(&target, labels::OCI_DESCRIPTION),
                    target,
                }),
                Kind::Agent => agents.push(Agent {
                    name: d.name.clone(),
                    description: load::agent_description(&labels[&target]),
                    version: label(&target, labels::AGENT_VERSION),
                    labels: labels[&target].clone(),
                    target,
                }),
                Kind::Benchmark => {
                    let b = &layout.benchmarks[d.index];
                    if let Some(bench) =
                        load::benchmark(&layout, b, target, &labels, &mut problems)?
                    {
                        benchmarks.push(bench);
                    }
                }
            }
        }
        if !kind.strict() {
            load::drop_duplicate_agents(&mut agents, &targets, &mut problems);
        }
        Ok(Fleet {
            root: root.to_path_buf(),
            layout,
            vars,
            naming,
            cores,
            agents,
            benchmarks,
            targets,
            resolver,
            problems: problems.list,
        })
    }

    /// The benchmark named `name`, or an error naming the closest existing ones.
    pub fn benchmark(&self, name: &str) -> Result<&Benchmark, Refused> {
        self.benchmarks
            .iter()
            .find(|b| b.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.benchmarks.iter().map(|b| b.name.as_str()).collect();
                Refused(suggest::unknown("benchmark", name, &names))
            })
    }

    pub fn agent(&self, name: &str) -> Result<&Agent, Refused> {
        self.agents.iter().find(|a| a.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.agents.iter().map(|a| a.name.as_str()).collect();
            Refused(suggest::unknown("agent", name, &names))
        })
    }

    /// Resolves `targets` with the fleet's variables plus `extra` (from the parse made at load).
    pub fn resolve(
        &self,
        targets: &[String],
        extra: &BTreeMap<String, String>,
    ) -> anyhow::Result<BTreeMap<String, Target>> {
        let mut vars = self.vars.clone();
        vars.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.resolver.resolve(targets, &vars)
    }
}

impl Benchmark {
    /// Checks `task_id` (naming rules first, then existence) and returns the task's id as
    /// the benchmark spells it.
    pub fn task<'a>(&'a self, task_id: &'a str) -> anyhow::Result<&'a str> {
        naming::validate_task_id(task_id).map_err(|e| Refused(e.to_string()))?;
        if !self.tasks_known {
            return Ok(task_id);
        }
        match self.tasks.binary_search_by(|t| t.as_str().cmp(task_id)) {
            Ok(i) => Ok(&self.tasks[i]),
            Err(_) => {
                let names: Vec<&str> = self.tasks.iter().map(String::as_str).collect();
                Err(Refused(suggest::unknown(
                    &format!("task of benchmark {:?}", self.name),
                    task_id,
                    &names,
                ))
                .into())
            }
        }
    }
}
