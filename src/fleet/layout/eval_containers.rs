//! The eval-containers layout (github.com/Exgentic/eval-containers): every image under
//! `containers/<category>/<name>/` with its `Dockerfile` and `docker-bake.hcl`, the
//! fleet-wide variables in `containers/docker-bake.hcl`, the eval image recipe in
//! `containers/core/combination.docker-bake.hcl` (targets `eval`, `eval-local`,
//! `eval-standalone`). Labels live in the Dockerfiles (`LABEL eval.*`), not in the
//! bake files; task lists are `tasks.txt` (per-task benchmarks that publish one) or the
//! label `eval.benchmark.tasks` (a shared-env benchmark's tasks are `0` … `n-1`).
//!
//! Bake contexts are relative to the repository root, as in kiln's layout, so every
//! command runs from the root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::{subdirs, BenchmarkDir, FleetLayout, Layout, TaskSource};
use crate::fleet::dockerfile::Dockerfile;
use crate::fleet::target::Target;
use crate::fleet::Env;
use crate::naming::Kind;

pub const ROOT_BAKE_FILE: &str = "containers/docker-bake.hcl";
pub const COMBINATION_BAKE_FILE: &str = "containers/core/combination.docker-bake.hcl";
pub const COMBINATION_DOCKERFILE: &str = "containers/core/combination.Dockerfile";
/// The eval image targets: pulling its bases from a registry, and binding them to the
/// fleet's own targets (what an offline build needs).
pub const EVAL_TARGET: &str = "eval";
pub const EVAL_LOCAL_TARGET: &str = "eval-local";
pub const CONTAINERS: &str = "containers";
pub const CORE: &str = "core";
pub const AGENTS: &str = "agents";
pub const BENCHMARKS: &str = "benchmarks";
pub const MODELS: &str = "models";
pub const GATEWAYS: &str = "gateways";
/// The image categories, in the order their bake files are read.
pub const CATEGORIES: [&str; 5] = [CORE, AGENTS, BENCHMARKS, MODELS, GATEWAYS];
pub const BAKE_FILE: &str = "docker-bake.hcl";
pub const DOCKERFILE: &str = "Dockerfile";
/// A per-task benchmark's list of task ids, one a line.
pub const TASKS_FILE: &str = "tasks.txt";
/// A per-task benchmark whose task environments are built from source ships this script
/// (`build.sh <image> <task-id>`) instead of a plain `docker build`.
pub const BUILD_SCRIPT: &str = "build.sh";
/// Its benchmark kind for a carrier benchmark of one built-in task (`agents-smoke`):
/// one image, the task chosen at run time, as shared-env.
pub const ENV_TEST: &str = "test";

pub struct EvalContainers;

/// The name `--layout` takes.
pub const NAME: &str = "eval-containers";

/// The directory of an image of `category`, relative to the root.
pub fn image_dir(category: &str, name: &str) -> PathBuf {
    Path::new(CONTAINERS).join(category).join(name)
}

/// The bake target of a model (`gpt-5.4` → `model-gpt-5_4`: HCL names have no dots) or
/// a gateway.
pub fn other_target(category: &str, name: &str) -> String {
    match category {
        MODELS => format!("model-{}", name.replace('.', "_")),
        GATEWAYS => format!("gateway-{name}"),
        _ => name.to_string(),
    }
}

impl FleetLayout for EvalContainers {
    fn name(&self) -> &'static str {
        NAME
    }
    fn marker(&self) -> &'static str {
        ROOT_BAKE_FILE
    }
    fn strict(&self) -> bool {
        false
    }
    fn target(&self, kind: Kind, name: &str) -> String {
        match kind {
            Kind::Core | Kind::Eval => name.to_string(),
            Kind::Agent => format!("agent-{name}"),
            Kind::Benchmark | Kind::Task => format!("benchmark-{name}"),
        }
    }
    fn bake_file(&self, kind: Kind, name: &str) -> PathBuf {
        let category = match kind {
            Kind::Core | Kind::Eval => CORE,
            Kind::Agent => AGENTS,
            Kind::Benchmark | Kind::Task => BENCHMARKS,
        };
        image_dir(category, name).join(BAKE_FILE)
    }

    fn read(&self, root: &Path) -> anyhow::Result<Layout> {
        if !root.join(ROOT_BAKE_FILE).is_file() {
            anyhow::bail!(
                "{} has no {ROOT_BAKE_FILE}: not an eval-containers repository",
                root.display()
            );
        }
        let mut bake_files = vec![PathBuf::from(ROOT_BAKE_FILE)];
        if root.join(COMBINATION_BAKE_FILE).is_file() {
            bake_files.push(PathBuf::from(COMBINATION_BAKE_FILE));
        }
        let mut layout = Layout {
            kind: &EvalContainers,
            bake_files: Vec::new(),
            cores: Vec::new(),
            agents: Vec::new(),
            benchmarks: Vec::new(),
            others: Vec::new(),
            dataset: None,
        };
        for category in CATEGORIES {
            for name in subdirs(&root.join(CONTAINERS).join(category))? {
                let dir = image_dir(category, &name);
                let bake = dir.join(BAKE_FILE);
                let has_bake = root.join(&bake).is_file();
                // Directories with neither file hold shared material (`benchmarks/_chart`,
                // `core/oracle`), not an image.
                if !has_bake && !root.join(&dir).join(DOCKERFILE).is_file() {
                    continue;
                }
                if has_bake {
                    bake_files.push(bake);
                }
                match category {
                    CORE => layout.cores.push(name),
                    AGENTS => layout.agents.push(name),
                    BENCHMARKS => {
                        let list = dir.join(TASKS_FILE);
                        let (tasks, task_source) = if root.join(&list).is_file() {
                            let text = std::fs::read_to_string(root.join(&list))
                                .with_context(|| format!("reading {}", list.display()))?;
                            (task_lines(&text), TaskSource::File(list))
                        } else {
                            (Vec::new(), TaskSource::CountLabel)
                        };
                        layout.benchmarks.push(BenchmarkDir {
                            name,
                            tasks,
                            task_source,
                        });
                    }
                    other => layout.others.push((other, name)),
                }
            }
        }
        layout.bake_files = bake_files;
        Ok(layout)
    }

    fn image_labels(
        &self,
        root: &Path,
        target: &Target,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let dockerfile = target.dockerfile_path();
        let text = std::fs::read_to_string(root.join(&dockerfile))
            .with_context(|| format!("reading {}", dockerfile.display()))?;
        let mut labels = Dockerfile::parse(&text).labels(&target.args);
        labels.extend(target.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(labels)
    }

    fn default_bake_files(&self, root: &Path) -> anyhow::Result<Option<Vec<PathBuf>>> {
        Ok(Some(self.read(root)?.bake_files))
    }

    fn env(&self, label: &str) -> Option<Env> {
        match label {
            ENV_TEST => Some(Env::SharedEnv),
            other => Env::parse(other),
        }
    }
}

/// Task ids of a `tasks.txt`: one a line, blank lines and `#` comments skipped, sorted.
pub fn task_lines(text: &str) -> Vec<String> {
    let mut tasks: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    tasks.sort();
    tasks.dedup();
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_lines_skip_blanks_and_comments() {
        assert_eq!(task_lines("# ids\nb\n\n a \nb\n"), ["a", "b"]);
    }

    #[test]
    fn targets_follow_the_fleet_convention() {
        let l = EvalContainers;
        assert_eq!(l.target(Kind::Core, "gosu"), "gosu");
        assert_eq!(l.target(Kind::Agent, "aider"), "agent-aider");
        assert_eq!(l.target(Kind::Benchmark, "aime"), "benchmark-aime");
        assert_eq!(other_target(MODELS, "gpt-5.4"), "model-gpt-5_4");
        assert_eq!(other_target(GATEWAYS, "bifrost"), "gateway-bifrost");
        assert_eq!(
            l.bake_file(Kind::Agent, "aider"),
            Path::new("containers/agents/aider/docker-bake.hcl")
        );
    }
}
