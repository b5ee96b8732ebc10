//! Kiln agents on a Harbor dataset: per task × agent an eval image, the task's
//! environment with the agent's `/opt/agent/` added (as kiln's combination recipe adds
//! it to a benchmark image). It is one more [`BuildSpec`] after the task's environment
//! build, with both images as bases, so an unchanged task and agent are not rebuilt and
//! `--dry-run` and every backend work as for the dataset's own images.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::{harbor, BuildSpec, Plan, Request};
use crate::fleet::Fleet;
use crate::labels::{self, BuildInfo};
use crate::plan::base_map::BaseMap;

/// The recipe, written once into kiln's cache for the dataset.
const RECIPE: &str = "\
# kiln: a Harbor task's environment with a kiln agent added (nothing else changes:
# user, working directory and entrypoint stay the task's).
ARG ENVIRONMENT_IMAGE
ARG AGENT_IMAGE
FROM ${AGENT_IMAGE} AS agent
FROM ${ENVIRONMENT_IMAGE}
COPY --from=agent /opt/agent/ /opt/agent/
";

/// A kiln agent's image, as its own fleet built it.
#[derive(Debug, Clone)]
pub struct AgentImage {
    pub name: String,
    pub image: String,
    /// The agent's labels (`eval.agent.*` reach the eval image).
    pub labels: BTreeMap<String, String>,
}

/// The eval image of `task` × `agent` in `fleet` (a Harbor dataset).
pub fn eval_image(fleet: &Fleet, task: &str, agent: &str) -> String {
    fleet
        .naming
        .eval(&fleet.benchmarks[0].name, Some(task), agent)
}

/// The builds of `tasks` (their environments, as [`harbor::plan`] makes them) and of
/// each one's eval image with each of `agents`.
pub fn plan(
    fleet: &Fleet,
    tasks: &[String],
    agents: &[AgentImage],
    info: &BuildInfo,
    base_map: &BaseMap,
) -> anyhow::Result<Plan> {
    let benchmark = fleet.benchmarks[0].name.clone();
    let request = Request::Many(
        tasks
            .iter()
            .map(|t| Request::Benchmark {
                benchmark: benchmark.clone(),
                task: Some(t.clone()),
            })
            .collect(),
    );
    let mut plan = harbor::plan(fleet, &request, info, base_map)?;
    if agents.is_empty() {
        return Ok(plan);
    }
    let dir = harbor::state_dir(&fleet.root)?.join("agent-eval");
    let dockerfile = dir.join("Dockerfile");
    if std::fs::read_to_string(&dockerfile).ok().as_deref() != Some(RECIPE) {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(&dockerfile, RECIPE)?;
    }
    let ds = fleet.layout.dataset.as_ref().expect("a Harbor fleet");
    let arc = |s: &str| -> Arc<str> { Arc::from(s) };
    for id in tasks {
        let Some(task) = ds.task(id) else { continue };
        let environment = harbor::images(fleet, task).environment;
        // A task left out of the plan (it cannot be built here) gets no eval image.
        let Some(env_index) = plan.builds.iter().position(|b| b.image == environment) else {
            continue;
        };
        let env_labels = plan.builds[env_index].labels.clone();
        for agent in agents {
            let mut l = env_labels.clone();
            for (k, v) in agent
                .labels
                .iter()
                .filter(|(k, _)| k.starts_with("eval.agent."))
            {
                l.insert(arc(k), arc(v));
            }
            l.insert(arc(labels::TYPE), arc("eval"));
            l.insert(
                arc(labels::OCI_TITLE),
                arc(&format!("{} with {}", task.name(), agent.name)),
            );
            let target = format!(
                "eval-{benchmark}-{}--{}",
                task.id.replace('.', "_"),
                agent.name
            );
            plan.builds.push(BuildSpec {
                name: target.clone(),
                bake_target: target,
                image: eval_image(fleet, &task.id, &agent.name),
                context: dir.clone(),
                dockerfile: PathBuf::from("Dockerfile"),
                target: None,
                args: [
                    (arc("AGENT_IMAGE"), arc(&agent.image)),
                    (arc("ENVIRONMENT_IMAGE"), arc(&environment)),
                ]
                .into_iter()
                .collect(),
                labels: l,
                secrets: Vec::new(),
                bases: vec![agent.image.clone(), environment.clone()],
                deps: vec![env_index],
            });
        }
    }
    plan.bake = harbor::bake_requests(&harbor::state_dir(&fleet.root)?, &plan.builds)?;
    Ok(plan)
}

/// The builds of the separate verifiers of `tasks` only: what grading a kept state
/// needs besides the state itself (`kiln regrade`).
pub fn verifiers_plan(
    fleet: &Fleet,
    tasks: &[String],
    info: &BuildInfo,
    base_map: &BaseMap,
) -> anyhow::Result<Plan> {
    let mut plan = plan(fleet, tasks, &[], info, base_map)?;
    let ds = fleet.layout.dataset.as_ref().expect("a Harbor fleet");
    let verifiers: Vec<String> = tasks
        .iter()
        .filter_map(|t| ds.task(t))
        .flat_map(|t| {
            harbor::images(fleet, t)
                .verifiers
                .into_values()
                .map(|(i, _)| i)
        })
        .collect();
    // Environment and verifier builds of a dataset depend on nothing of the plan.
    plan.builds.retain(|b| verifiers.contains(&b.image));
    plan.bake = harbor::bake_requests(&harbor::state_dir(&fleet.root)?, &plan.builds)?;
    Ok(plan)
}
