//! `kiln run … --on kubernetes`: the same selection as a local run, then
//! `run::kubernetes::run`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::run::kubernetes::{self, Options};
use crate::run::matrix::Selection;

use super::Args;
use crate::error::Failure;

pub fn run(repo: &Path, args: Args) -> anyhow::Result<ExitCode> {
    if !args.pass_env.is_empty() {
        return Err(Failure::usage(
            "--pass-env is not supported with --on kubernetes yet (API keys would need a Secret)",
        ));
    }
    if args.keep_state {
        return Err(Failure::usage(
            "--keep-state runs locally only: kiln commits the containers of the local Docker Engine",
        ));
    }
    if args.record.is_some() {
        return Err(Failure::usage(
            "--record runs locally only: on a cluster the gateway could not write the fixture back (--replay works)",
        ));
    }
    let gateway = super::model_spec(&args)?;
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
    for t in &args.tasks {
        crate::naming::validate_task_id(t).map_err(|e| Failure::usage(e.to_string()))?;
    }
    let selection = Selection {
        benchmarks: args.benchmarks,
        all: args.all,
        agents: args.agents,
        tasks: args.tasks,
        repeat: args.repeat,
        model: args.model.clone(),
        replay: args
            .replay
            .as_deref()
            .map(crate::run::matrix::fixture_identity)
            .transpose()?,
    };
    let progress = if args.quiet {
        crate::printer::Mode::Quiet
    } else {
        args.progress
    };
    let local = crate::run::Options {
        output: args.output.clone(),
        jobs: None,
        force: args.force,
        no_build: false,
        backend: args.backend,
        pass_env: Vec::new(),
        agent_timeout: args.agent_timeout,
        gateway: None,
        ca_bundle: args.ca_bundle.clone(),
        progress,
        vars: crate::cli::build::env_vars(),
        build_info: if args.dry_run {
            None
        } else {
            Some(crate::cli::build::build_info(repo)?)
        },
        keep_state: false,
    };
    let opts = Options {
        registry,
        namespace: args.namespace,
        parallelism: args.parallelism,
        output: args.output,
        model: args.model,
        gateway,
        agent_timeout: args.agent_timeout,
        dry_run: args.dry_run,
        poll: Duration::from_secs_f64(args.poll_interval),
        force: args.force,
        ca_bundle: args.ca_bundle.clone(),
        insecure_registries: args.insecure_registries.clone(),
    };
    Ok(ExitCode::from(kubernetes::run(
        repo, &selection, &local, &opts,
    )?))
}
