//! `kiln run … --on kubernetes`: the selection flags become a list of runs, their eval
//! images are built as for a local run, and `run::kubernetes::execute` does the rest.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::fleet::{Env, Fleet};
use crate::run::kubernetes::{self, Options, Run, TaskInfo};
use crate::run::ORACLE;
use crate::store::Store;

use super::run::Args;
use super::Failure;

pub fn run(repo: &Path, args: Args) -> anyhow::Result<ExitCode> {
    if !args.pass_env.is_empty() {
        return Err(Failure::usage(
            "--pass-env is not supported with --on kubernetes yet (API keys would need a Secret)",
        ));
    }
    if args.no_build {
        return Err(Failure::usage(
            "--no-build is not supported with --on kubernetes (kiln pushes the images it builds)",
        ));
    }
    let registry = match &args.registry {
        Some(r) if !r.trim().is_empty() && !r.contains("://") => r.trim().to_string(),
        Some(r) => {
            return Err(Failure::usage(format!(
                "--registry {r:?}: give HOST[:PORT][/PREFIX], without a scheme"
            )))
        }
        None => {
            return Err(Failure::usage(
                "--on kubernetes needs --registry HOST[:PORT][/PREFIX] (where the cluster pulls eval images from)",
            ))
        }
    };
    if !(args.poll_interval > 0.0 && args.poll_interval <= 600.0) {
        return Err(Failure::usage(format!(
            "--poll-interval {}: give seconds between 0 and 600",
            args.poll_interval
        )));
    }
    for t in &args.task_id {
        crate::naming::validate_task_id(t).map_err(|e| Failure::usage(e.to_string()))?;
    }
    let fleet = Fleet::load(repo, super::build::env_vars())?;
    for a in &args.agent {
        fleet.agent(a).map_err(|r| Failure::usage(r.0))?;
    }
    let mut runs = Vec::new();
    let mut tasks_used = std::collections::BTreeSet::new();
    for b in &args.benchmarks {
        let benchmark = fleet.benchmark(b).map_err(|r| Failure::usage(r.0))?.clone();
        let tasks: Vec<String> = if args.task_id.is_empty() {
            benchmark.tasks.clone()
        } else {
            // A task id given applies to the benchmarks that have it.
            let mine: Vec<String> = args
                .task_id
                .iter()
                .filter_map(|t| benchmark.task(t).ok().map(str::to_string))
                .collect();
            tasks_used.extend(mine.iter().map(|t| t.to_lowercase()));
            mine
        };
        let per_task = benchmark.env == Env::PerTask;
        for task in &tasks {
            let task_dir = repo
                .join("benchmarks")
                .join(&benchmark.name)
                .join("tasks")
                .join(task);
            let info = TaskInfo::read(&task_dir, args.agent_timeout)?;
            for agent in &args.agent {
                let solution = if agent == ORACLE {
                    let dir = task_dir.join("solution");
                    if !dir.join("solve.sh").is_file() {
                        return Err(Failure::usage(format!(
                            "task {task} of {} has no reference solution ({}/solve.sh): the oracle cannot run it",
                            benchmark.name,
                            dir.display()
                        )));
                    }
                    Some(dir)
                } else {
                    None
                };
                runs.push(Run {
                    benchmark: benchmark.name.clone(),
                    task: task.clone(),
                    agent: agent.clone(),
                    shared_env: !per_task,
                    local_image: fleet.naming.eval(
                        &benchmark.name,
                        per_task.then_some(task.as_str()),
                        agent,
                    ),
                    solution,
                    info: info.clone(),
                });
            }
        }
    }
    if let Some(t) = args
        .task_id
        .iter()
        .find(|t| !tasks_used.contains(&t.to_lowercase()))
    {
        return Err(Failure::usage(format!(
            "task {t:?} is in none of the benchmarks {}",
            args.benchmarks.join(", ")
        )));
    }

    let opts = Options {
        registry,
        namespace: args.namespace.clone(),
        parallelism: args.parallelism,
        output: args.output.clone(),
        model: args.model.clone(),
        agent_timeout: args.agent_timeout,
        dry_run: args.dry_run,
        poll: Duration::from_secs_f64(args.poll_interval),
    };
    if !args.dry_run {
        // Build every image a run that is not complete yet needs (up-to-date ones are skipped).
        let mut built = std::collections::BTreeSet::new();
        for r in &runs {
            let dir = crate::run::result_dir(&opts.output, &r.benchmark, &r.task, &r.agent);
            if kubernetes::collect::is_complete(&dir) || !built.insert(r.local_image.clone()) {
                continue;
            }
            let store = super::run::build(
                repo,
                &fleet,
                &args,
                &r.agent,
                &r.benchmark,
                (!r.shared_env).then(|| r.task.clone()),
                &r.local_image,
            )?;
            if store != Store::Docker {
                anyhow::bail!(
                    "{} was built into {store}'s store; --on kubernetes pushes from Docker's (use --backend bake or engine)",
                    r.local_image
                );
            }
        }
    }
    let summary = kubernetes::execute(runs, &opts)?;
    if args.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    let t = &summary.timing;
    eprintln!(
        "kubernetes: {} passed, {} not passed, {} infra errors, {} already complete{}; wall {:.1}s \
         (kiln: push {:.1}s, create {:.2}s, poll {:.2}s in {} polls, collect {:.2}s, cleanup {:.2}s; pods ran {:.1}s in all) → {}",
        summary.passed,
        summary.not_passed,
        summary.infra_errors,
        summary.skipped,
        if summary.interrupted { ", interrupted" } else { "" },
        t.wall.as_secs_f64(),
        t.push.as_secs_f64(),
        t.create.as_secs_f64(),
        t.poll.as_secs_f64(),
        t.polls,
        t.collect.as_secs_f64(),
        t.cleanup.as_secs_f64(),
        t.pods.as_secs_f64(),
        opts.output.display()
    );
    if summary.interrupted {
        return Ok(ExitCode::from(130));
    }
    Ok(if summary.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
