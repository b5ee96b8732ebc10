//! `kiln new`: scaffolds a fleet member that passes `kiln lint` as written; a new
//! benchmark or task is a working trivial task (oracle passes, null fails).

use crate::printer::{errln, outln};
use std::path::Path;
use std::process::ExitCode;

use crate::fleet::{Env, Fleet};
use crate::scaffold::{self, Api, BenchmarkKind, PipAgent};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// An agent installed from PyPI at a pinned version (containers/agents/NAME), listed
    /// in the root bake file's `agents` group.
    Agent {
        /// The agent's name (lowercase letters, digits, single `-`).
        name: String,
        /// The package and its exact version.
        #[arg(long, value_name = "PACKAGE==VERSION")]
        pip: String,
        /// The shell command line that runs the agent on the task: `$PROMPT_FILE` holds
        /// the prompt, `$MODEL` the model, `$OPENAI_BASE_URL` / `$ANTHROPIC_BASE_URL` the
        /// gateway, `$AGENT_OUTPUT_DIR` is kept with the results; the venv is on PATH.
        #[arg(long, value_name = "COMMAND")]
        cmd: String,
        /// The API the agent speaks to the gateway (its run script requires that one's
        /// endpoint).
        #[arg(long, value_enum, default_value = "openai")]
        api: ApiArg,
        /// The image description (default: "PACKAGE VERSION (PyPI)").
        #[arg(long)]
        description: Option<String>,
    },
    /// A benchmark (benchmarks/NAME) with one trivial task; a shared-env one is added to
    /// the root bake file's `benchmarks` group. In an eval-containers fleet:
    /// containers/benchmarks/NAME in that fleet's layout (docs/authoring.md).
    Benchmark {
        /// The benchmark's name (lowercase letters, digits, single `-`).
        name: String,
        /// One base image per task (`tasks/<id>/environment/Dockerfile`) instead of one
        /// image for every task.
        #[arg(long)]
        per_task: bool,
        /// The first task's id.
        #[arg(long, value_name = "ID", default_value = "hello")]
        task: String,
        /// The benchmark's description.
        #[arg(long, default_value = "TODO: what this benchmark measures")]
        description: String,
    },
    /// A trivial task in an existing benchmark (its kind's files), counted in the
    /// benchmark's `eval.benchmark.tasks` label (eval-containers: a folder under the
    /// benchmark's tasks/; per-task, listed in tasks.txt).
    Task {
        /// The benchmark.
        benchmark: String,
        /// The task id (its directory name).
        id: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ApiArg {
    Openai,
    Anthropic,
}

pub fn run(repo: &Path, args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        What::Benchmark {
            name,
            per_task,
            task,
            description,
        } => {
            if crate::fleet::layout::detect(repo)
                .is_ok_and(|l| l.name() == crate::fleet::layout::harbor::NAME)
            {
                return Err(super::Failure::usage(format!(
                    "a Harbor dataset is one benchmark (its folder): add tasks with `kiln new task <dataset> ID`; \
                     a new dataset is a new folder: mkdir {name} && kiln -C {name} --layout harbor new task {name} ID"
                )));
            }
            let kind = if per_task {
                BenchmarkKind::PerTask
            } else {
                BenchmarkKind::SharedEnv
            };
            let written = if is_eval_containers(repo) {
                scaffold::eval_containers::write_benchmark(repo, &name, kind, &task, &description)
            } else {
                scaffold::write_benchmark(repo, &name, kind, &task, &description)
            }
            .map_err(|e| super::Failure::usage(format!("{e:#}")))?;
            report(&written);
            if is_eval_containers(repo) {
                let t = if per_task {
                    format!(" --task-id {task}")
                } else {
                    String::new()
                };
                errln!(
                    "created benchmark {name} with task {task}; next: kiln lint, kiln build benchmark {name}{t}, kiln validate {name}{t}"
                );
            } else {
                errln!(
                    "created benchmark {name} with task {task}; next: kiln lint, kiln validate {name}"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        What::Task { benchmark, id } => {
            let fleet = Fleet::load(repo, super::build::env_vars())?;
            if fleet.layout.dataset.is_some() {
                fleet
                    .benchmark(&benchmark)
                    .map_err(|e| super::Failure::usage(e.0.clone()))?;
                let written = scaffold::write_harbor_task(repo, &benchmark, &id)
                    .map_err(|e| super::Failure::usage(format!("{e:#}")))?;
                report(&written);
                errln!(
                    "created Harbor task {id} in {benchmark}; next: kiln lint, kiln validate --task-id {id} (--base ubuntu:24.04=<local image> where nothing can be pulled)"
                );
                return Ok(ExitCode::SUCCESS);
            }
            let b = fleet
                .benchmark(&benchmark)
                .map_err(|e| super::Failure::usage(e.0.clone()))?;
            let kind = match b.env {
                Env::SharedEnv => BenchmarkKind::SharedEnv,
                Env::PerTask => BenchmarkKind::PerTask,
            };
            let written = if is_eval_containers(repo) {
                scaffold::eval_containers::write_task(repo, &benchmark, kind, b.task_count, &id)
            } else {
                scaffold::write_task(repo, &benchmark, kind, b.tasks.len(), &id)
            }
            .map_err(|e| super::Failure::usage(format!("{e:#}")))?;
            report(&written);
            // An eval-containers shared-env benchmark numbers its tasks (the id is in id.txt).
            let listed = if is_eval_containers(repo) && kind == BenchmarkKind::SharedEnv {
                b.task_count.to_string()
            } else {
                id.clone()
            };
            let named = if listed == id {
                String::new()
            } else {
                format!(" as task {listed}")
            };
            errln!(
                "created task {id} in {benchmark}{named}; next: kiln lint, kiln validate {benchmark} --task-id {listed}"
            );
            Ok(ExitCode::SUCCESS)
        }
        What::Agent {
            name,
            pip,
            cmd,
            api,
            description,
        } => {
            let api = match api {
                ApiArg::Openai => Api::OpenAi,
                ApiArg::Anthropic => Api::Anthropic,
            };
            let mut agent = PipAgent::new(&name, &pip, &cmd, api)
                .map_err(|e| super::Failure::usage(format!("{e:#}")))?;
            if let Some(d) = description {
                agent.description = d;
            }
            let written = scaffold::write_agent(repo, &agent)
                .map_err(|e| super::Failure::usage(format!("{e:#}")))?;
            report(&written);
            errln!(
                "created agent {name}; next: kiln lint, then kiln build agent {name} --ca-bundle /etc/ssl/certs/ca-certificates.crt \
                 (the bundle only behind a TLS-intercepting proxy)"
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Whether `repo` is an eval-containers fleet (its own benchmark layout).
fn is_eval_containers(repo: &Path) -> bool {
    crate::fleet::layout::detect(repo)
        .is_ok_and(|l| l.name() == crate::fleet::layout::eval_containers::NAME)
}

/// The files written, one per line on stdout.
fn report(written: &[std::path::PathBuf]) {
    for path in written {
        outln!("{}", path.display());
    }
}
