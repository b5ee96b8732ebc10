//! `kiln build benchmark|agent|eval|all`: checks the request, computes the plan, and
//! either prints the exact commands (`--dry-run`) or hands the plan to the executor.

use crate::printer::errln;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use crate::backend::detect::{self, Decision, Requested};
use crate::backend::{self, shell, BackendKind};
use crate::fleet::Fleet;
use crate::labels::{BuildInfo, BuildInfoOverrides};
use crate::plan::{self, Plan, Request};

use super::Failure;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,

    /// The agent of an eval image (only with `build eval`).
    #[arg(long, global = true, value_name = "AGENT")]
    pub agent: Option<String>,

    /// One task: a per-task benchmark's base or eval image for that task (only with
    /// `build benchmark` and `build eval`).
    #[arg(long, global = true, value_name = "ID")]
    pub task_id: Option<String>,

    /// How to build: `docker buildx bake`, `podman build`, the Docker Engine API, or
    /// `auto` (probe this machine and say why).
    #[arg(long, global = true, default_value = "auto", value_parser = parse_backend)]
    pub backend: Requested,

    /// The buildx builder bake runs on (default: `BUILDX_BUILDER`, else the current one).
    #[arg(long, global = true, value_name = "NAME")]
    pub builder: Option<String>,

    /// Print the exact commands, in order, and change nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,

    /// How many independent images build at once (default: the number of CPUs).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,

    #[arg(long, global = true, value_enum, default_value_t = Progress::Auto)]
    pub progress: Progress,

    /// Rebuild even images whose inputs did not change.
    #[arg(long, global = true)]
    pub force: bool,

    /// A CA bundle for builds behind a TLS-intercepting proxy: handed as the build
    /// secret `ca-bundle` to images whose Dockerfile mounts it (never a layer or history
    /// entry). Needs a backend with build secrets (bake or podman).
    #[arg(long, global = true, env = crate::env::CA_BUNDLE.name, value_name = "FILE")]
    pub ca_bundle: Option<std::path::PathBuf>,

    /// Public base images replaced by local ones, one `PUBLIC_REF=LOCAL_REF` a line
    /// (LOCAL_REF: an image, or `oci-layout://DIR`), never by editing the fleet: bake
    /// named contexts (eval-containers layout), a rewritten copy of the Dockerfile
    /// (Harbor layout). docs/layouts.md.
    #[arg(long, global = true, value_name = "FILE")]
    pub base_map: Option<std::path::PathBuf>,

    /// One base map entry `PUBLIC_REF=LOCAL_REF` (repeatable; after --base-map).
    #[arg(long = "base", global = true, value_name = "PUBLIC=LOCAL")]
    pub bases: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum What {
    /// A benchmark image; for a per-task benchmark, every task's base (or one, with --task-id).
    Benchmark { name: String },
    /// An agent image.
    Agent { name: String },
    /// An eval image: benchmark × agent (for a per-task benchmark, per task), and whatever it builds on.
    Eval { benchmark: String },
    /// Every image of the fleet, eval images included.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    Auto,
    Tty,
    Plain,
    Quiet,
}

fn parse_backend(s: &str) -> Result<Requested, String> {
    s.parse()
}

/// Turns the subcommand and flags into a plan request, refusing combinations that make no sense.
fn request(args: &Args) -> anyhow::Result<Request> {
    let refuse = |msg: String| Err(Failure::usage(msg));
    match &args.what {
        What::Benchmark { name } => {
            if args.agent.is_some() {
                return refuse(format!(
                    "--agent makes no sense with `kiln build benchmark`: a benchmark image has no agent \
                     (for benchmark × agent use `kiln build eval {name} --agent <agent>`)"
                ));
            }
            Ok(Request::Benchmark {
                benchmark: name.clone(),
                task: args.task_id.clone(),
            })
        }
        What::Agent { name } => {
            if args.task_id.is_some() {
                return refuse(format!(
                    "--task-id makes no sense with `kiln build agent`: agent {name:?} has one image for every task"
                ));
            }
            if args.agent.is_some() {
                return refuse(
                    "--agent makes no sense with `kiln build agent <name>`: the agent is the name"
                        .into(),
                );
            }
            Ok(Request::Agent {
                agent: name.clone(),
            })
        }
        What::Eval { benchmark } => match &args.agent {
            Some(agent) => Ok(Request::Eval {
                benchmark: benchmark.clone(),
                agent: agent.clone(),
                task: args.task_id.clone(),
            }),
            None => refuse(format!(
                "`kiln build eval {benchmark}` needs --agent <agent>"
            )),
        },
        What::All => {
            if args.agent.is_some() || args.task_id.is_some() {
                return refuse(
                    "--agent and --task-id make no sense with `kiln build all`, which builds every image".into(),
                );
            }
            Ok(Request::All)
        }
    }
}

/// Bake variables taken from the environment, as `docker buildx bake` would: the fleet-wide ones.
pub(crate) fn env_vars() -> BTreeMap<String, String> {
    [crate::env::REGISTRY, crate::env::TAG]
        .into_iter()
        .filter_map(|v| crate::env::named(v.name).map(|value| (v.name.to_string(), value)))
        .collect()
}

/// Build-time label values the environment fixes instead of git (RULES.md, Labels).
pub(crate) fn build_info(repo: &Path) -> anyhow::Result<BuildInfo> {
    use crate::env;
    let source_date_epoch = match env::SOURCE_DATE_EPOCH.get() {
        Some(s) => Some(s.parse::<i64>().map_err(|_| {
            Failure::usage(format!(
                "SOURCE_DATE_EPOCH={s:?} is not a number of seconds"
            ))
        })?),
        None => None,
    };
    let overrides = BuildInfoOverrides {
        source: env::SOURCE.get(),
        revision: env::REVISION.get(),
        version: env::VERSION.get(),
        source_date_epoch,
    };
    BuildInfo::from_git(repo, &overrides)
}

pub(crate) use crate::fleet::refused_to_usage;

/// The bake requests' share of `--ca-bundle` (the specs got theirs when planned).
fn with_ca_bundle(mut plan: plan::Plan, ca: Option<&Path>) -> plan::Plan {
    if let Some(file) = ca {
        plan::ca_bundle::apply_bake(&mut plan.bake, &plan.builds, file);
    }
    plan
}

pub fn run(repo: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let request = request(&args)?;
    if let Some(task) = &args.task_id {
        // Checked before the repository is even read.
        crate::naming::validate_task_id(task).map_err(|e| Failure::usage(e.to_string()))?;
    }
    if let Some(file) = args.ca_bundle.as_ref().filter(|f| !f.is_file()) {
        return Err(Failure::usage(format!(
            "--ca-bundle {}: no such file",
            file.display()
        )));
    }
    let fleet = Fleet::load(repo, env_vars())?;
    if fleet.layout.kind.name() == plan::eval_containers::LAYOUT {
        return eval_containers(repo, &fleet, &request, &args);
    }
    let harbor = fleet.layout.dataset.is_some();
    if !harbor && (args.base_map.is_some() || !args.bases.is_empty()) {
        return Err(Failure::usage(
            "--base-map and --base apply to the eval-containers and Harbor layouts (kiln's own fleet builds on local bases: scripts/make-bases.sh)".to_string(),
        ));
    }
    let info = build_info(repo)?;
    let (plan, choosing) = if harbor {
        for p in &fleet.problems {
            errln!("note: left out: {p}");
        }
        let base_map = base_map(&args)?;
        plan::harbor::check(&fleet, &request).map_err(refused_to_usage)?;
        // The request is good: probing overlaps planning, as for kiln's own fleet.
        let choosing = Choosing::start(args.backend, args.dry_run, args.builder.as_deref());
        let plan =
            plan::harbor::plan(&fleet, &request, &info, &base_map).map_err(refused_to_usage)?;
        (plan, choosing)
    } else {
        let checked = plan::check(&fleet, &request).map_err(refused_to_usage)?;
        // The request is good: probing this machine (buildx, podman, the engine) now
        // overlaps planning. Refused input runs nothing, not even a probe.
        let choosing = Choosing::start(args.backend, args.dry_run, args.builder.as_deref());
        (
            checked.plan(&fleet, &info).map_err(refused_to_usage)?,
            choosing,
        )
    };
    execute(repo, &fleet, plan, choosing, &args)
}

/// `--base-map` and `--base` as one map.
fn base_map(args: &Args) -> anyhow::Result<plan::base_map::BaseMap> {
    plan::base_map::BaseMap::from_flags(args.base_map.as_deref(), &args.bases)
        .map_err(refused_to_usage)
}

/// Decides the backend, then prints the plan's commands (`--dry-run`) or builds it.
fn execute(
    repo: &Path,
    fleet: &Fleet,
    mut plan: Plan,
    choosing: Choosing,
    args: &Args,
) -> anyhow::Result<ExitCode> {
    let settings = settings(args);
    crate::ensure::prepare(repo, &mut plan, &settings);
    if !args.dry_run {
        // A real build: probe, decide (explained by the executor), build.
        let decision = choosing.finish(&plan)?;
        let summary = crate::ensure::ensure_prepared(
            repo,
            Some(fleet),
            plan,
            &settings,
            Some(decision),
            crate::ensure::Use::Build,
        )?;
        // The executor has printed the per-image outcomes and the summary line.
        return Ok(ExitCode::from(summary.exit_code()));
    }
    // The dry run: the commands the build would run.
    let decision = choosing.finish(&plan)?;
    // Requests are what bake builds on a builder with named contexts; in per-image
    // mode the dry run prints one bake per image and needs none.
    let plan = if decision.backend == BackendKind::Bake && !decision.backend().per_image() {
        with_ca_bundle(plan.with_bake_requests(fleet), args.ca_bundle.as_deref())
    } else {
        plan
    };
    if decision.backend == BackendKind::Engine {
        if let Some(why) = plan.builds.iter().find_map(backend::engine::refusal) {
            // What the real build would do: refuse before anything runs.
            return Err(Failure::usage(why));
        }
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 16, crate::printer::stdout());
    match print_dry_run(&mut out, &plan, &decision).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e.into()),
    }
    // The process ends here: freeing a large plan image by image (tens of thousands
    // of label maps) would only add to its run time.
    std::mem::forget(plan);
    Ok(ExitCode::SUCCESS)
}

/// The build settings of `kiln build`'s flags.
fn settings(args: &Args) -> crate::ensure::Settings {
    crate::ensure::Settings {
        builder: args.builder.clone(),
        ca_bundle: args.ca_bundle.clone(),
        jobs: args.jobs.map(usize::from),
        force: args.force,
        progress: match args.progress {
            Progress::Auto => crate::printer::Mode::Auto,
            Progress::Tty => crate::printer::Mode::Tty,
            Progress::Plain => crate::printer::Mode::Plain,
            Progress::Quiet => crate::printer::Mode::Quiet,
        },
        ..crate::ensure::Settings::new(args.backend)
    }
}

/// `kiln build` in an eval-containers fleet: the bake commands its own CLI runs, bases
/// first (docs/layouts.md): printed with `--dry-run`, else built on `--builder`.
fn eval_containers(
    repo: &Path,
    fleet: &Fleet,
    request: &Request,
    args: &Args,
) -> anyhow::Result<ExitCode> {
    for p in &fleet.problems {
        errln!("note: left out: {p}");
    }
    let info = build_info(repo)?;
    let base_map = base_map(args)?;
    let site = plan::eval_containers::Site::new(&base_map, args.ca_bundle.as_deref());
    let plan = plan::eval_containers::plan(fleet, request, &info, &base_map, &site)
        .map_err(refused_to_usage)?;
    for note in &plan.notes {
        errln!("note: {note}");
    }
    if !args.dry_run {
        let builder = args
            .builder
            .clone()
            .or_else(|| crate::env::BUILDX_BUILDER.get());
        let started = std::time::Instant::now();
        let outcomes = backend::eval_containers::build(repo, &plan, builder.as_deref())
            .map_err(|e| Failure::usage(format!("{e:#}")))?;
        let built = outcomes.iter().filter(|o| o.ok).count();
        errln!(
            "{built} of {} image(s) built in {:.1}s",
            plan.steps.len(),
            started.elapsed().as_secs_f64()
        );
        return Ok(if built == plan.steps.len() {
            ExitCode::SUCCESS
        } else {
            super::Exit::Failed.into()
        });
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 16, crate::printer::stdout());
    let mut write = || -> std::io::Result<()> {
        writeln!(
            out,
            "# layout: eval-containers; {} build(s), bases first; run from the repository root",
            plan.steps.len()
        )?;
        for step in &plan.steps {
            if let plan::eval_containers::Step::Bake { hosts, image, .. } = step {
                if !hosts.is_empty() {
                    writeln!(out, "# {image}: its build reaches {}", hosts.join(", "))?;
                }
            }
            let (env, argv) = step.command();
            let mut line = String::new();
            for (k, v) in &env {
                line.push_str(&format!("{k}={} ", shell::quote(v)));
            }
            line.push_str(&shell::join(&argv));
            writeln!(out, "{line}")?;
        }
        out.flush()
    };
    match write() {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e.into()),
    }
}

/// How the backend is chosen, started before planning. For a dry run, an explicit
/// `--backend podman|engine` is taken as given (the commands are printed, not run, so
/// the tool need not be installed); bake probes its builder whenever buildx answers,
/// since how bake runs depends on it (without buildx the dry run shows the per-request
/// form). Otherwise, and for `auto`, this machine is probed (read-only) and the choice
/// explained.
enum Choosing {
    Given(Decision),
    Probing {
        requested: Requested,
        dry_run: bool,
        builder: Option<String>,
        probing: detect::Probing,
    },
}

impl Choosing {
    fn start(requested: Requested, dry_run: bool, builder: Option<&str>) -> Choosing {
        let given = match requested {
            Requested::Podman if dry_run => BackendKind::Podman,
            Requested::Engine if dry_run => BackendKind::Engine,
            _ => {
                return Choosing::Probing {
                    requested,
                    dry_run,
                    builder: builder.map(str::to_string),
                    probing: detect::Probing::start(requested, builder),
                }
            }
        };
        Choosing::Given(Decision::new(given, "requested"))
    }

    fn finish(self, plan: &Plan) -> anyhow::Result<Decision> {
        match self {
            Choosing::Given(decision) => Ok(decision),
            Choosing::Probing {
                requested,
                dry_run,
                builder,
                probing,
            } => {
                let probes = probing.probes();
                if dry_run && requested == Requested::Bake && probes.buildx.is_none() {
                    let mut d = Decision::new(
                        BackendKind::Bake,
                        "requested; docker buildx does not answer here, so this is the form for a \
                         builder with named contexts that reads the engine's image store",
                    );
                    d.bake.builder = builder;
                    return Ok(d);
                }
                detect::decide_for(requested, &probes, &plan.builds)
            }
        }
    }
}

/// Prints the commands of `plan` for the decided backend, in order. Lines starting with
/// `#` explain; every other line is a command to run from the repository root.
pub(crate) fn print_dry_run(
    out: &mut impl std::io::Write,
    plan: &Plan,
    decision: &Decision,
) -> std::io::Result<()> {
    writeln!(out, "# backend: {} ({})", decision.backend, decision.reason)?;
    writeln!(
        out,
        "# {} image(s); run from the repository root",
        plan.builds.len()
    )?;
    writeln!(
        out,
        "# at build time kiln also stamps the label {}=<digest of the image's inputs> and skips images already up to date",
        crate::labels::INPUTS_DIGEST
    )?;
    decision.backend().dry_run(out, &plan.builds, &plan.bake)?;
    if let Some(fallback) = decision.fallback {
        writeln!(
            out,
            "# if bake cannot resolve a base that exists only in the local image store, kiln falls back to {fallback}:"
        )?;
        for spec in &plan.builds {
            let argv = match fallback {
                BackendKind::Podman => backend::podman::command(spec),
                _ => backend::engine::equivalent_docker_build(spec),
            };
            writeln!(out, "#   {}", shell::join(&argv))?;
        }
    }
    Ok(())
}
