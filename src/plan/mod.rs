//! The build plan: the images a request needs, bases first, as [`BuildSpec`]s for the
//! podman and engine backends and [`BakeRequest`]s for the bake backend.
//!
//! Everything a request refers to (benchmark, agent, task id, flag combination) is
//! checked in [`plan`] before a single target is resolved, so refused input never
//! leaves anything half done.

pub mod base_map;
pub mod ca_bundle;
pub mod ec_site;
pub mod eval_containers;
mod graph;
pub mod harbor;
pub mod harbor_agents;
mod requests;
pub mod shared_dockerfile;
mod spec;
mod template;

pub use spec::{Args, BakeRequest, BuildSpec, Definition, Labels, Secret};

use crate::fleet::{Env, Fleet, Refused};
use crate::labels::BuildInfo;

/// Where kiln keeps what it writes for the fleet at `root` of a layout it cannot write
/// into (`kind`: `harbor`, `eval-containers`):
/// `$XDG_CACHE_HOME/kiln/<kind>/<digest of the fleet's absolute path>`.
pub fn fleet_cache_dir(kind: &str, root: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context as _;
    use sha2::{Digest as _, Sha256};
    use std::path::PathBuf;
    let abs = std::fs::canonicalize(root).with_context(|| format!("reading {}", root.display()))?;
    let cache = crate::env::XDG_CACHE_HOME.path().unwrap_or_else(|| {
        crate::env::HOME
            .path()
            .unwrap_or_else(|| PathBuf::from("/tmp"))
            .join(".cache")
    });
    let digest = Sha256::digest(abs.as_os_str().as_encoded_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Ok(cache.join("kiln").join(kind).join(hex))
}

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A benchmark image; for a per-task benchmark the base of one task, or of every task.
    Benchmark {
        benchmark: String,
        task: Option<String>,
    },
    Agent {
        agent: String,
    },
    /// The eval image of benchmark × agent; for a per-task benchmark one task's, or every task's.
    Eval {
        benchmark: String,
        agent: String,
        task: Option<String>,
    },
    /// Every image: core, agents, benchmarks and per-task bases, and every eval image.
    All,
    /// Several requests planned as one (each image once): what a `kiln run` matrix needs.
    Many(Vec<Request>),
}

/// The ordered builds of a request.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// In dependency order: every build comes after the builds in its `deps`.
    pub builds: Vec<BuildSpec>,
    /// The same images as `docker buildx bake` invocations, in order.
    pub bake: Vec<BakeRequest>,
    /// Things the user should know about the request (printed to stderr, never silent).
    pub notes: Vec<String>,
    /// Per build, what the bake requests are made from (see [`Plan::with_bake_requests`]).
    extras: Vec<graph::Extra>,
}

impl Plan {
    /// Fills `bake` when [`plan_without_bake`] left it empty (for a plan that turns out to
    /// be built by bake).
    pub fn with_bake_requests(mut self, fleet: &Fleet) -> Plan {
        if self.bake.is_empty() && !self.builds.is_empty() {
            self.bake = requests::bake_requests(fleet, &self.builds, &self.extras);
        }
        self
    }
}

/// One image of the fleet, before resolution.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Node {
    Core(String),
    Agent(String),
    /// A shared-env benchmark, or (with a task) one task's base of a per-task benchmark.
    Benchmark(String, Option<String>),
    Eval {
        benchmark: String,
        agent: String,
        task: Option<String>,
    },
}

/// Checks `request` against the fleet and computes its builds.
pub fn plan(fleet: &Fleet, request: &Request, info: &BuildInfo) -> anyhow::Result<Plan> {
    Ok(plan_without_bake(fleet, request, info)?.with_bake_requests(fleet))
}

/// [`plan`] without the bake requests (they cost as much as the builds on a large fleet;
/// only the bake backend needs them).
pub fn plan_without_bake(
    fleet: &Fleet,
    request: &Request,
    info: &BuildInfo,
) -> anyhow::Result<Plan> {
    check(fleet, request)?.plan(fleet, info)
}

/// A request checked against the fleet (every name and task it refers to exists), not yet
/// planned: what a caller needs before it does anything else, such as probing the machine.
pub struct Checked {
    roots: Vec<Node>,
    notes: Vec<String>,
}

/// Checks `request` against the fleet.
pub fn check(fleet: &Fleet, request: &Request) -> anyhow::Result<Checked> {
    let (roots, notes) = roots(fleet, request)?;
    Ok(Checked { roots, notes })
}

impl Checked {
    /// The builds, without the bake requests (see [`plan_without_bake`]).
    pub fn plan(self, fleet: &Fleet, info: &BuildInfo) -> anyhow::Result<Plan> {
        let mut g = graph::Graph::new(fleet, info);
        g.reserve(self.roots.len());
        for root in &self.roots {
            g.add(root)?;
        }
        let (builds, extras) = g.into_builds();
        Ok(Plan {
            builds,
            bake: Vec::new(),
            notes: self.notes,
            extras,
        })
    }
}

/// [`plan_without_bake`] for several requests at once: one plan, every image once
/// (validation and release build many eval images that share their bases).
pub fn plan_many(fleet: &Fleet, requests: &[Request], info: &BuildInfo) -> anyhow::Result<Plan> {
    let mut g = graph::Graph::new(fleet, info);
    let mut notes = Vec::new();
    for request in requests {
        let (roots, n) = roots(fleet, request)?;
        notes.extend(n);
        for root in &roots {
            g.add(root)?;
        }
    }
    let (builds, extras) = g.into_builds();
    Ok(Plan {
        builds,
        bake: Vec::new(),
        notes,
        extras,
    })
}

/// The images `request` asks for, checked, in the order they are planned.
fn roots(fleet: &Fleet, request: &Request) -> anyhow::Result<(Vec<Node>, Vec<String>)> {
    let mut notes = Vec::new();
    let mut roots = Vec::new();
    // For a per-task benchmark: the given task or all of them; for a shared-env one: none
    // (a given task is checked, and a note says the image is the same for every task).
    let tasks_of = |benchmark: &str,
                    task: &Option<String>,
                    notes: &mut Vec<String>|
     -> anyhow::Result<Vec<Option<String>>> {
        let b = fleet.benchmark(benchmark)?;
        let task = match task {
            Some(t) => Some(b.task(t)?.to_string()),
            None => None,
        };
        Ok(match (b.env, task) {
            (Env::PerTask, Some(t)) => vec![Some(t)],
            (Env::PerTask, None) => {
                if b.tasks.is_empty() {
                    return Err(Refused(format!(
                        "per-task benchmark {:?} has no tasks (benchmarks/{}/tasks/ is empty)",
                        b.name, b.name
                    ))
                    .into());
                }
                b.tasks.iter().cloned().map(Some).collect()
            }
            (Env::SharedEnv, Some(t)) => {
                notes.push(format!(
                    "{} is a shared-env benchmark: one image holds every task; task {t:?} is chosen when the eval runs",
                    b.name
                ));
                vec![None]
            }
            (Env::SharedEnv, None) => vec![None],
        })
    };
    match request {
        Request::Benchmark { benchmark, task } => {
            for t in tasks_of(benchmark, task, &mut notes)? {
                roots.push(Node::Benchmark(benchmark.clone(), t));
            }
        }
        Request::Agent { agent } => {
            fleet.agent(agent)?;
            roots.push(Node::Agent(agent.clone()));
        }
        Request::Eval {
            benchmark,
            agent,
            task,
        } => {
            // Both names are checked before either is used.
            let b = fleet.benchmark(benchmark);
            let a = fleet.agent(agent);
            b?;
            a?;
            for t in tasks_of(benchmark, task, &mut notes)? {
                roots.push(Node::Eval {
                    benchmark: benchmark.clone(),
                    agent: agent.clone(),
                    task: t,
                });
            }
        }
        Request::All => {
            for c in &fleet.cores {
                if c.target != crate::naming::EVAL_TARGET {
                    roots.push(Node::Core(c.name.clone()));
                }
            }
            for b in &fleet.benchmarks {
                for t in tasks_of(&b.name, &None, &mut notes)? {
                    roots.push(Node::Benchmark(b.name.clone(), t));
                }
            }
            for a in &fleet.agents {
                roots.push(Node::Agent(a.name.clone()));
            }
            for b in &fleet.benchmarks {
                for t in tasks_of(&b.name, &None, &mut notes)? {
                    for a in &fleet.agents {
                        roots.push(Node::Eval {
                            benchmark: b.name.clone(),
                            agent: a.name.clone(),
                            task: t.clone(),
                        });
                    }
                }
            }
        }
        Request::Many(requests) => {
            for r in requests {
                let (more, more_notes) = self::roots(fleet, r)?;
                roots.extend(more);
                for n in more_notes {
                    if !notes.contains(&n) {
                        notes.push(n);
                    }
                }
            }
        }
    }
    Ok((roots, notes))
}
