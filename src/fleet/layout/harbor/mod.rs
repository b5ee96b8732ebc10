//! Harbor's task format (Terminal-Bench 2.0 and Harbor's adapters): a folder holding
//! `task.toml` files at any depth is a dataset ([`dataset`], [`config`]), which kiln
//! opens as a fleet of one per-task benchmark named after the folder, a base image per
//! task. There are no bake files: the builds are planned in `plan::harbor`, the trials
//! (oracle or null, then the task's tests) run in `run::harbor`.

pub mod config;
pub mod dataset;
pub mod pin;
pub mod problem;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use dataset::{Dataset, Task};
pub use problem::{Problem, ProblemKind};

use super::{BenchmarkDir, FleetLayout, Layout, TaskSource};
use crate::fleet::{Benchmark, Env, Fleet, Resolver};
use crate::labels;
use crate::naming::{self, Kind, Naming};

pub struct Harbor;

/// The name `--layout` takes.
pub const NAME: &str = "harbor";

impl FleetLayout for Harbor {
    fn name(&self) -> &'static str {
        NAME
    }
    fn marker(&self) -> &'static str {
        "**/task.toml"
    }
    /// A folder with tasks below it and neither of the bake layouts' root files (a
    /// fleet may keep Harbor tasks inside; it is opened as the fleet it is).
    fn matches(&self, root: &Path) -> bool {
        super::LAYOUTS
            .iter()
            .filter(|l| l.name() != NAME)
            .all(|l| !root.join(l.marker()).is_file())
            && dataset::holds_tasks(root)
    }
    fn strict(&self) -> bool {
        false
    }
    fn read(&self, root: &Path) -> anyhow::Result<Layout> {
        let ds = Arc::new(Dataset::read(root)?);
        Ok(Layout {
            kind: &Harbor,
            bake_files: Vec::new(),
            cores: Vec::new(),
            agents: Vec::new(),
            benchmarks: vec![BenchmarkDir {
                name: ds.name.clone(),
                tasks: ds.tasks.iter().map(|t| t.id.clone()).collect(),
                task_source: TaskSource::Harbor,
            }],
            others: Vec::new(),
            dataset: Some(ds),
        })
    }
    fn target(&self, kind: Kind, name: &str) -> String {
        super::kiln::Kiln.target(kind, name)
    }
    fn bake_file(&self, _kind: Kind, _name: &str) -> PathBuf {
        PathBuf::from(dataset::TASK_FILE)
    }
}

/// The value of `eval.task.format` on every image kiln builds from a Harbor task.
pub const FORMAT: &str = "harbor";
pub const LABEL_FORMAT: &str = "eval.task.format";
pub const LABEL_TASK_NAME: &str = "eval.task.name";
pub const LABEL_TASK_VERSION: &str = "eval.task.version";
pub const LABEL_KEYWORDS: &str = "eval.task.keywords";
pub const LABEL_DIFFICULTY: &str = "eval.task.difficulty";
pub const LABEL_CATEGORY: &str = "eval.task.category";
pub const OCI_AUTHORS: &str = "org.opencontainers.image.authors";

/// The fleet of a dataset: one per-task benchmark, no agents or core images of its own.
pub fn fleet(
    root: &Path,
    vars: BTreeMap<String, String>,
    layout: Layout,
    dataset: Arc<Dataset>,
) -> anyhow::Result<Fleet> {
    // No bake files: kiln's defaults for the two naming variables, which the
    // environment overrides as in any fleet.
    let defaults = format!(
        "variable \"{}\" {{\n  default = \"kiln.local\"\n}}\nvariable \"{}\" {{\n  default = \"dev\"\n}}\n",
        naming::VAR_REGISTRY,
        naming::VAR_TAG
    );
    let resolver = Resolver::read_with(root, &[], vec![("<kiln: harbor>.hcl".into(), defaults)])?;
    let naming = Naming::new(
        resolver.variable(naming::VAR_REGISTRY, &vars)?,
        resolver.variable(naming::VAR_TAG, &vars)?,
    );
    let ds = &dataset;
    let description = format!("Harbor dataset {} ({} tasks)", ds.name, ds.tasks.len());
    let labels = BTreeMap::from([
        (labels::TYPE.to_string(), "benchmark".to_string()),
        (labels::BENCHMARK_NAME.to_string(), ds.name.clone()),
        (
            labels::BENCHMARK_DESCRIPTION.to_string(),
            description.clone(),
        ),
        (
            labels::BENCHMARK_ENV.to_string(),
            labels::ENV_PER_TASK.to_string(),
        ),
        (
            labels::BENCHMARK_TASKS.to_string(),
            ds.tasks.len().to_string(),
        ),
        (LABEL_FORMAT.to_string(), FORMAT.to_string()),
    ]);
    let benchmark = Benchmark {
        name: ds.name.clone(),
        target: naming::benchmark_target(&ds.name),
        env: Env::PerTask,
        description,
        tasks: ds.tasks.iter().map(|t| t.id.clone()).collect(),
        task_count: ds.tasks.len(),
        tasks_known: true,
        released: false,
        labels,
    };
    Ok(Fleet {
        root: root.to_path_buf(),
        problems: ds.problems.iter().map(ToString::to_string).collect(),
        layout,
        vars,
        naming,
        cores: Vec::new(),
        agents: Vec::new(),
        benchmarks: vec![benchmark],
        targets: BTreeMap::new(),
        resolver,
    })
}

/// The labels of a task's image, from its `task.toml` (build-time labels aside).
pub fn task_labels(dataset: &Dataset, task: &Task) -> BTreeMap<String, String> {
    let c = &task.config;
    let meta = |key: &str| {
        c.metadata
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let description = if c.task.description.is_empty() {
        format!("Harbor task {}", task.name())
    } else {
        c.task.description.clone()
    };
    let mut l = BTreeMap::from([
        (labels::TYPE.to_string(), "task".to_string()),
        (labels::OCI_TITLE.to_string(), task.name().to_string()),
        (labels::OCI_DESCRIPTION.to_string(), description.clone()),
        (labels::BENCHMARK_NAME.to_string(), dataset.name.clone()),
        (labels::BENCHMARK_DESCRIPTION.to_string(), description),
        (
            labels::BENCHMARK_ENV.to_string(),
            labels::ENV_PER_TASK.to_string(),
        ),
        (
            labels::BENCHMARK_TASKS.to_string(),
            dataset.tasks.len().to_string(),
        ),
        (
            labels::BENCHMARK_DATA_REVISION.to_string(),
            c.task
                .version
                .clone()
                .unwrap_or_else(|| "unversioned".into()),
        ),
        (labels::TASK_ID.to_string(), task.id.clone()),
        (LABEL_FORMAT.to_string(), FORMAT.to_string()),
        (LABEL_TASK_NAME.to_string(), task.name().to_string()),
    ]);
    let authors: Vec<String> = c
        .task
        .authors
        .iter()
        .map(|a| match a.email.as_deref().filter(|e| !e.is_empty()) {
            Some(e) => format!("{} <{e}>", a.name),
            None => a.name.clone(),
        })
        .chain(meta("author_name").map(|n| match meta("author_email") {
            Some(e) => format!("{n} <{e}>"),
            None => n,
        }))
        .collect();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            l.insert(k.to_string(), v);
        }
    };
    put(OCI_AUTHORS, Some(authors.join(", ")));
    put(LABEL_TASK_VERSION, c.task.version.clone());
    put(LABEL_KEYWORDS, Some(c.task.keywords.join(",")));
    put(LABEL_DIFFICULTY, meta("difficulty"));
    put(LABEL_CATEGORY, meta("category"));
    l
}
