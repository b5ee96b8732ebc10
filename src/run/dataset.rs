//! `kiln run` on Harbor datasets: every selected task × agent × repeat as one trial
//! ([`super::harbor`]), `--jobs` at a time, each leaving kiln's `result.json` under
//! `<output>/<dataset>/<task>/<agent>/[repeat-<k>/]` (so `kiln report` reads it).
//!
//! The agents are oracle and null, or the agents of the kiln repository that names the
//! dataset (`--dataset PATH`, or `[datasets]` in its `kiln.toml`): theirs run in an eval
//! image, the task's environment with the agent added ([`crate::plan::harbor_agents`]),
//! against a model gateway of their own (`--model`, `--replay`/`--record`), exactly as
//! in kiln's own evals. The task's network policy, user, limits, env tables, timeouts
//! and hidden tests hold as in `kiln validate`.

use crate::printer::{errln, outln};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context as _;

use super::harbor::{self, Agent, Keep, KilnAgent, Outcome, Trial};
use super::kept_state;
use super::model::{self, ModelNet};
use super::reap::Owner;
use super::Options;
use crate::error::Failure;
use crate::fleet::Fleet;
use crate::plan::base_map::BaseMap;
use crate::plan::harbor_agents::{self, AgentImage};

/// A dataset as the command names it.
pub struct Dataset {
    /// The name results are filed under (the `kiln.toml` key, or the dataset's own).
    pub name: String,
    pub fleet: Fleet,
}

/// What to run.
pub struct Selection<'a> {
    pub datasets: Vec<Dataset>,
    /// The kiln repository whose agents may run (none in a dataset of its own).
    pub kiln: Option<(&'a Path, &'a Fleet)>,
    pub agents: Vec<String>,
    pub tasks: Vec<String>,
    pub repeat: u32,
    pub base_map: BaseMap,
}

/// One trial to run.
struct Item<'a> {
    dataset: &'a Dataset,
    task: &'a crate::fleet::layout::harbor::Task,
    agent: &'a str,
    repeat: u32,
}

/// Runs the selection; the exit status as `kiln run`'s (0 every trial completed, 1 one
/// could not, 130 interrupted).
pub fn run(sel: &Selection, opts: &Options) -> anyhow::Result<u8> {
    let kiln_agents = check_agents(sel)?;
    let items = items(sel)?;
    if items.is_empty() {
        outln!("nothing to run");
        return Ok(0);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let agent_images = match (sel.kiln, opts.no_build) {
        (Some((repo, fleet)), false) if !kiln_agents.is_empty() => {
            build_agents(repo, fleet, &kiln_agents, opts, &runtime)?
        }
        (Some((_, fleet)), _) => kiln_agents
            .iter()
            .map(|a| agent_image(fleet, a))
            .collect::<anyhow::Result<_>>()?,
        (None, _) => Vec::new(),
    };
    if !opts.no_build {
        let info = opts
            .build_info
            .as_ref()
            .context("no build information to build with (a kiln bug)")?;
        for ds in &sel.datasets {
            let tasks: Vec<String> = items
                .iter()
                .filter(|i| std::ptr::eq(i.dataset, ds))
                .map(|i| i.task.id.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let plan = harbor_agents::plan(&ds.fleet, &tasks, &agent_images, info, &sel.base_map)
                .map_err(super::refused)?;
            if opts.progress != crate::printer::Mode::Quiet {
                for note in &plan.notes {
                    errln!("note: {note}");
                }
            }
            let images: Vec<String> = plan.builds.iter().map(|b| b.image.clone()).collect();
            super::images::ensure(&ds.fleet.root, plan, None, &images, opts, &runtime)?;
        }
    }
    harbor::catch_interrupts();
    let owner = Owner::current();
    let jobs = opts.jobs.unwrap_or_else(super::local::default_jobs).max(1);
    // The repeats of one task × agent run one after another: their containers share a name.
    let groups: Vec<&[Item]> = items
        .chunk_by(|a, b| {
            std::ptr::eq(a.dataset, b.dataset) && std::ptr::eq(a.task, b.task) && a.agent == b.agent
        })
        .collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(groups.len()) {
            scope.spawn(|| loop {
                let g = next.fetch_add(1, Ordering::SeqCst);
                let Some(group) = groups.get(g) else { break };
                for item in group.iter() {
                    if harbor::interrupted() {
                        return;
                    }
                    let ok = one(item, sel, opts, &owner).unwrap_or_else(|e| {
                        errln!(
                            "error: {} {} {}: {e:#}",
                            item.dataset.name,
                            item.task.id,
                            item.agent
                        );
                        false
                    });
                    if !ok {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    if harbor::interrupted() {
        return Err(Failure::interrupted(
            "interrupted: the running trials' containers were removed; finished results are kept",
        ));
    }
    outln!("results: {}", opts.output.display());
    Ok(if failed.load(Ordering::SeqCst) == 0 {
        0
    } else {
        1
    })
}

/// The kiln agents among `--agent` (oracle and null aside); an agent neither kind is refused.
fn check_agents(sel: &Selection) -> anyhow::Result<Vec<String>> {
    if sel.agents.is_empty() {
        return Err(Failure::usage("name at least one --agent"));
    }
    let mut kiln = Vec::new();
    for a in &sel.agents {
        if a == "oracle" || a == "null" {
            continue;
        }
        match sel.kiln {
            Some((_, fleet)) => {
                fleet.agent(a).map_err(|r| Failure::usage(r.0))?;
                kiln.push(a.clone());
            }
            None => {
                return Err(Failure::usage(format!(
                    "unknown agent {a:?}: a Harbor dataset runs oracle and null; a kiln repository's agents \
                     run on it from that repository (kiln run --dataset PATH --agent {a}, or [datasets] in its kiln.toml)"
                )))
            }
        }
    }
    Ok(kiln)
}

/// Every trial, in order: dataset, task, agent, repeat. Tasks that cannot run here
/// are said and left out; a `--task-id` in no dataset is refused.
fn items<'a>(sel: &'a Selection) -> anyhow::Result<Vec<Item<'a>>> {
    for t in &sel.tasks {
        let known = sel
            .datasets
            .iter()
            .any(|d| d.fleet.benchmarks[0].task(t).is_ok());
        if !known {
            return Err(Failure::usage(format!(
                "unknown task {t:?} in {}",
                sel.datasets
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let mut out = Vec::new();
    for ds in &sel.datasets {
        let set = ds.fleet.layout.dataset.as_ref().expect("a Harbor fleet");
        for task in &set.tasks {
            if !sel.tasks.is_empty() && !sel.tasks.iter().any(|t| t.eq_ignore_ascii_case(&task.id))
            {
                continue;
            }
            if let Some(why) = task.cannot_run(&ds.fleet.root) {
                outln!("{} {}: cannot run here: {why}", ds.name, task.id);
                continue;
            }
            for agent in &sel.agents {
                if agent == "oracle" && task.missing_solution(&ds.fleet.root).is_some() {
                    outln!(
                        "{} {}: no solution/solve.sh: oracle cannot run it",
                        ds.name,
                        task.id
                    );
                    continue;
                }
                for repeat in 1..=sel.repeat {
                    out.push(Item {
                        dataset: ds,
                        task,
                        agent,
                        repeat,
                    });
                }
            }
        }
    }
    Ok(out)
}

fn agent_image(fleet: &Fleet, name: &str) -> anyhow::Result<AgentImage> {
    let agent = fleet.agent(name).map_err(|r| Failure::usage(r.0))?;
    Ok(AgentImage {
        name: name.to_string(),
        image: fleet.naming.agent(name),
        labels: agent.labels.clone(),
    })
}

/// The kiln agents' images, built (or found current) in their own repository.
fn build_agents(
    repo: &Path,
    fleet: &Fleet,
    agents: &[String],
    opts: &Options,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<AgentImage>> {
    let info = opts
        .build_info
        .as_ref()
        .context("no build information to build with (a kiln bug)")?;
    let request = crate::plan::Request::Many(
        agents
            .iter()
            .map(|a| crate::plan::Request::Agent { agent: a.clone() })
            .collect(),
    );
    let plan = crate::plan::plan_without_bake(fleet, &request, info).map_err(super::refused)?;
    let images: Vec<AgentImage> = agents
        .iter()
        .map(|a| agent_image(fleet, a))
        .collect::<anyhow::Result<_>>()?;
    let names: Vec<String> = images.iter().map(|a| a.image.clone()).collect();
    super::images::ensure(repo, plan, Some(fleet), &names, opts, runtime)?;
    Ok(images)
}

/// One trial: its gateway when a kiln agent has a model, the trial, `result.json`.
/// False when the trial could not complete (no reward).
fn one(item: &Item, sel: &Selection, opts: &Options, owner: &Owner) -> anyhow::Result<bool> {
    let ds = item.dataset;
    let mut out = super::result_dir(&opts.output, &ds.name, &item.task.id, item.agent);
    if sel.repeat > 1 {
        out = out.join(format!("repeat-{}", item.repeat));
    }
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut images = crate::plan::harbor::images(&ds.fleet, item.task);
    let mut net: Option<ModelNet> = None;
    let mut secrets = Vec::new();
    let kiln_agent = match item.agent {
        "oracle" | "null" => None,
        name => {
            images.environment = harbor_agents::eval_image(&ds.fleet, &item.task.id, name);
            let mut env = Vec::new();
            if let Some(m) = &opts.gateway {
                env.push(("MODEL".to_string(), m.model.clone()));
                let base = format!("http://{}:{}", model::GATEWAY_HOST, model::GATEWAY_PORT);
                env.extend(ModelNet::agent_env(&base));
                let id = format!(
                    "kiln-harbor-{}-{}-{}-{}",
                    crate::naming::task_component(&item.task.id).replace('.', "_"),
                    name,
                    item.repeat,
                    std::process::id()
                );
                net = Some(ModelNet::start(&id, m, [&ds.name, &item.task.id, name])?);
            }
            for k in &opts.pass_env {
                let v = crate::env::named(k).unwrap_or_default();
                secrets.push((k.clone(), v.clone()));
                env.push((k.clone(), v));
            }
            Some(KilnAgent {
                name: name.to_string(),
                network: net.as_ref().map(|n| n.network.clone()),
                env,
            })
        }
    };
    let agent = match (&kiln_agent, item.agent) {
        (Some(a), _) => Agent::Kiln(a),
        (None, "oracle") => Agent::Oracle,
        (None, _) => Agent::Null,
    };
    let keep = opts.keep_state.then(|| {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let run_id = format!(
            "{:x}{:x}-{}",
            since.as_millis(),
            std::process::id(),
            item.repeat
        );
        Keep {
            image: kept_state::image_name(&ds.name, &item.task.id, item.agent, &run_id),
            run_id,
        }
    });
    let trial = Trial {
        root: &ds.fleet.root,
        task: item.task,
        agent,
        images,
        out: out.clone(),
        dry_run: false,
        labels: owner.labels(),
        keep,
    };
    let outcome = trial.run(&mut |_| {}).unwrap_or_else(|e| Outcome {
        error: Some(format!("{e:#}")),
        ..Outcome::default()
    });
    harbor::write_result(&out, &ds.name, item.task, agent, &outcome)?;
    if let Some(kept) = &outcome.kept {
        // run.json holds what `kiln regrade` and `kiln clean` look for.
        let run = serde_json::json!({ "kept_state": kept });
        std::fs::write(
            out.join("run.json"),
            serde_json::to_string_pretty(&run)? + "\n",
        )?;
        if let Some(why) = &kept.error {
            errln!(
                "note: {} {} {}: state not kept: {why}",
                ds.name,
                item.task.id,
                item.agent
            );
        }
    }
    if let (Some(net), Some(m)) = (net, &opts.gateway) {
        let stats = net.finish(outcome.reward, &out.join("gateway.log"))?;
        model::write_section(
            &out.join("result.json"),
            model::section(m, &stats, outcome.reward),
        )?;
    }
    super::scrub(&out, &secrets)?;
    let what = match (&outcome.reward, &outcome.error) {
        (Some(r), _) => format!(
            "reward {r} ({})",
            if *r >= 1.0 { "passed" } else { "failed" }
        ),
        (None, Some(e)) => format!("no reward: {e}"),
        (None, None) => "no reward".to_string(),
    };
    let rep = if sel.repeat > 1 {
        format!(" #{}", item.repeat)
    } else {
        String::new()
    };
    outln!("{} {} {}{rep}: {what}", ds.name, item.task.id, item.agent);
    Ok(outcome.reward.is_some())
}

/// The datasets a kiln repository names in `kiln.toml` (`[datasets] NAME = "PATH"`,
/// paths relative to the repository).
pub fn configured(repo: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let file = repo.join("kiln.toml");
    let Ok(text) = std::fs::read_to_string(&file) else {
        return Ok(Vec::new());
    };
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Config {
        #[serde(default)]
        datasets: std::collections::BTreeMap<String, PathBuf>,
    }
    let config: Config =
        toml::from_str(&text).map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
    Ok(config
        .datasets
        .into_iter()
        .map(|(name, path)| (name, repo.join(path)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kiln_toml_names_datasets_relative_to_the_repository() {
        let d = tempfile::tempdir().unwrap();
        assert!(configured(d.path()).unwrap().is_empty());
        std::fs::write(
            d.path().join("kiln.toml"),
            "[datasets]\ntb = \"../tb2\"\nabs = \"/data/x\"\n",
        )
        .unwrap();
        let got = configured(d.path()).unwrap();
        assert_eq!(
            got,
            vec![
                ("abs".to_string(), PathBuf::from("/data/x")),
                ("tb".to_string(), d.path().join("../tb2")),
            ]
        );
        std::fs::write(d.path().join("kiln.toml"), "[dataset]\ntb = 1\n").unwrap();
        let err = configured(d.path()).unwrap_err().to_string();
        assert!(
            err.contains("kiln.toml") && err.contains("dataset"),
            "{err}"
        );
    }
}
