//! The repository as a fleet: core images, agents, benchmarks (shared-env or per-task)
//! and their tasks, read from the directory layout and the bake files (no engine).

pub mod dockerfile;
pub mod layout;
pub mod resolve;
pub mod suggest;
pub mod target;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::labels;
use crate::naming::{self, Naming};

pub use layout::Layout;
pub use resolve::Resolver;
pub use target::{Target, TargetSecret};

/// Input refused before anything ran (unknown names, bad task ids, flags that make no
/// sense together). The CLI maps it to exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

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
    /// Task ids (directory names under `tasks/`), in byte order.
    pub tasks: Vec<String>,
    pub released: bool,
}

#[derive(Debug, Clone)]
pub struct Agent {
    pub name: String,
    pub target: String,
    pub description: String,
    pub version: String,
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
}

impl Fleet {
    /// Reads the layout and the bake files under `root` and resolves every image target once.
    pub fn load(root: &Path, vars: BTreeMap<String, String>) -> anyhow::Result<Fleet> {
        let layout = Layout::read(root)?;
        let resolver = Resolver::read(root, &layout.bake_files)?;
        let naming = Naming::new(
            resolver.variable(naming::VAR_REGISTRY, &vars)?,
            resolver.variable(naming::VAR_TAG, &vars)?,
        );
        let defined = resolver.target_names().clone();
        let mut wanted: Vec<String> = Vec::new();
        let mut missing = Vec::new();
        let mut want = |dir: &str, name: &str, target: String| {
            if defined.contains(&target) {
                wanted.push(target);
            } else {
                missing.push(format!(
                    "{}: no target {target:?} (every directory under {dir}/ needs one; see RULES.md)",
                    layout::bake_file_of(dir, name).display()
                ));
            }
        };
        for c in &layout.cores {
            want(layout::CORE_DIR, c, naming::core_target(c));
        }
        for a in &layout.agents {
            want(layout::AGENTS_DIR, a, naming::agent_target(a));
        }
        for b in &layout.benchmarks {
            want(
                layout::BENCHMARKS_DIR,
                &b.name,
                naming::benchmark_target(&b.name),
            );
        }
        if !missing.is_empty() {
            anyhow::bail!("{}", missing.join("\n"));
        }
        wanted.retain(|t| t != naming::EVAL_TARGET);
        let targets = resolver.resolve(&wanted, &vars)?;

        let label = |t: &str, key: &str| -> String {
            targets
                .get(t)
                .and_then(|t| t.labels.get(key))
                .cloned()
                .unwrap_or_default()
        };
        let cores = layout
            .cores
            .iter()
            .map(|c| {
                let target = naming::core_target(c);
                Core {
                    name: c.clone(),
                    description: label(&target, labels::OCI_DESCRIPTION),
                    target,
                }
            })
            .collect();
        let agents = layout
            .agents
            .iter()
            .map(|a| {
                let target = naming::agent_target(a);
                Agent {
                    name: a.clone(),
                    description: label(&target, labels::OCI_DESCRIPTION),
                    version: label(&target, labels::AGENT_VERSION),
                    target,
                }
            })
            .collect();
        let mut benchmarks = Vec::new();
        for b in &layout.benchmarks {
            let target = naming::benchmark_target(&b.name);
            let env_label = label(&target, labels::BENCHMARK_ENV);
            let env = Env::parse(&env_label).ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: target {target:?} has label {}={env_label:?}; expected {:?} or {:?}",
                    layout::bake_file_of(layout::BENCHMARKS_DIR, &b.name).display(),
                    labels::BENCHMARK_ENV,
                    labels::ENV_SHARED,
                    labels::ENV_PER_TASK
                )
            })?;
            benchmarks.push(Benchmark {
                name: b.name.clone(),
                env,
                description: label(&target, labels::BENCHMARK_DESCRIPTION),
                released: label(&target, labels::BENCHMARK_RELEASED) == "true",
                tasks: b.tasks.clone(),
                target,
            });
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
    pub fn task(&self, task_id: &str) -> anyhow::Result<&str> {
        naming::validate_task_id(task_id).map_err(|e| Refused(e.to_string()))?;
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
