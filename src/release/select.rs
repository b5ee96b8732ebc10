//! What a release publishes: every benchmark whose target carries
//! `eval.benchmark.released="true"` (per-task: every task's base), every agent, the
//! core images the eval recipe needs, and the eval images of each released benchmark
//! × each agent (per task for per-task benchmarks) — exactly the images of one build
//! plan, so what is pushed is what kiln builds and checks. A Harbor dataset selects its
//! task images instead ([`super::harbor::select`]).

use crate::error::Failure;
use crate::fleet::{Benchmark, Fleet};
use crate::labels::{self, BuildInfo};
use crate::plan::{self, Plan, Request};

/// One image to publish.
#[derive(Debug, Clone)]
pub struct Item {
    /// The local reference (`kiln.local/evals/b--a:dev`).
    pub local: String,
    /// The repository path under the registry root (`evals/b--a`).
    pub path: String,
    /// `eval.type`.
    pub kind: String,
    pub benchmark: Option<String>,
    pub agent: Option<String>,
    pub task: Option<String>,
    /// What the image is published or blocked with: its released benchmark (none for
    /// core and agent images, which every released benchmark shares), or for a Harbor
    /// dataset its task.
    pub unit: Option<String>,
}

impl Item {
    /// The unit this image is published or blocked with.
    pub fn owner(&self) -> Option<&str> {
        self.unit.as_deref()
    }

    /// An item of `spec` in a plan whose images are named under `root` with `tag`.
    pub fn of(spec: &crate::plan::BuildSpec, root: &str, tag: &str) -> Item {
        let path = spec
            .image
            .strip_prefix(root)
            .and_then(|r| r.strip_prefix('/'))
            .and_then(|r| r.strip_suffix(tag))
            .and_then(|r| r.strip_suffix(':'))
            .unwrap_or(&spec.image)
            .to_string();
        let label = |k: &str| {
            spec.labels
                .get(k)
                .filter(|v| !v.is_empty())
                .map(|v| v.to_string())
        };
        let kind = label(labels::TYPE).unwrap_or_else(|| "core".into());
        let benchmark = label(labels::BENCHMARK_NAME);
        let unit = match kind.as_str() {
            "benchmark" | "task" | "eval" => benchmark.clone(),
            _ => None,
        };
        Item {
            local: spec.image.clone(),
            path,
            kind,
            benchmark,
            agent: label(labels::AGENT_NAME),
            task: label(labels::TASK_ID),
            unit,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Selection {
    pub plan: Plan,
    pub items: Vec<Item>,
    /// The released benchmarks selected.
    pub benchmarks: Vec<Benchmark>,
    /// Benchmarks left out because they lack the label (for the dry run's notes).
    pub unreleased: Vec<String>,
    /// A Harbor dataset's selection: its units are tasks.
    pub harbor: Option<Tasks>,
}

/// A dataset's tasks in a release.
#[derive(Debug, Clone)]
pub struct Tasks {
    /// The tasks whose images are built, validated and (when valid) published.
    pub selected: Vec<String>,
    /// Tasks never published here, with why (they cannot run or build here).
    pub left_out: Vec<(String, String)>,
}

impl Selection {
    /// How messages name a unit: the benchmark, or a Harbor task.
    pub fn unit_name(&self, unit: &str) -> String {
        match self.harbor {
            Some(_) => format!("task {unit}"),
            None => unit.to_string(),
        }
    }
}

/// Selects the images of a release. `only` (benchmark or agent names) narrows it:
/// naming a benchmark without the released label is refused, naming the label.
pub fn select(fleet: &Fleet, info: &BuildInfo, only: &[String]) -> anyhow::Result<Selection> {
    for name in only {
        let is_benchmark = fleet.benchmark(name).ok();
        let is_agent = fleet.agent(name).is_ok();
        match (is_benchmark, is_agent) {
            (Some(b), _) if !b.released => {
                return Err(Failure::usage(format!(
                    "--only {name}: benchmark {name} is not released: its target {} lacks the label {}=\"true\" \
                     (add it once every task passes with oracle and fails with null; RULES.md, Released)",
                    b.target,
                    labels::BENCHMARK_RELEASED
                )))
            }
            (None, false) => {
                return Err(Failure::usage(format!("--only {name}: no benchmark or agent of that name")));
            }
            _ => {}
        }
    }
    let named_benchmarks: Vec<&String> =
        only.iter().filter(|n| fleet.benchmark(n).is_ok()).collect();
    let named_agents: Vec<&String> = only.iter().filter(|n| fleet.agent(n).is_ok()).collect();
    let benchmarks: Vec<Benchmark> = fleet
        .benchmarks
        .iter()
        .filter(|b| {
            b.released && (named_benchmarks.is_empty() || named_benchmarks.contains(&&b.name))
        })
        .cloned()
        .collect();
    let agents: Vec<String> = fleet
        .agents
        .iter()
        .filter(|a| named_agents.is_empty() || named_agents.contains(&&a.name))
        .map(|a| a.name.clone())
        .collect();
    let unreleased = fleet
        .benchmarks
        .iter()
        .filter(|b| !b.released)
        .map(|b| b.name.clone())
        .collect();
    let mut requests = Vec::new();
    for b in &benchmarks {
        requests.push(Request::Benchmark {
            benchmark: b.name.clone(),
            task: None,
        });
        for a in &agents {
            requests.push(Request::Eval {
                benchmark: b.name.clone(),
                agent: a.clone(),
                task: None,
            });
        }
    }
    for a in &agents {
        requests.push(Request::Agent { agent: a.clone() });
    }
    let plan = plan::plan_many(fleet, &requests, info)?;
    let items = plan
        .builds
        .iter()
        .map(|spec| Item::of(spec, &fleet.naming.registry, &fleet.naming.tag))
        .collect();
    Ok(Selection {
        plan,
        items,
        benchmarks,
        unreleased,
        harbor: None,
    })
}
