//! The one image operation every command builds through: a plan in hand → the CA
//! bundle handed to its builds → a backend chosen → what is out of date built (the
//! executor checks every image's labels) → the build's summary. `kiln build` brings the
//! backend it chose while planning; `kiln run`, `validate`, `regrade` and `release` let
//! this module choose one whose images land where containers run. Each command adds
//! only its own steps before or after (planning, the up-to-date shortcut of a run,
//! validation, pushing).

use std::path::{Path, PathBuf};

use crate::backend::detect::{self, Decision, Requested};
use crate::backend::{engine, BackendKind};
use crate::build::Summary;
use crate::error::Failure;
use crate::fleet::Fleet;
use crate::plan::{ca_bundle, Plan};
use crate::printer::{errln, Mode};

/// Every build setting a command can be given, in one value.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--backend`.
    pub backend: Requested,
    /// `--builder` (else buildx's own choice).
    pub builder: Option<String>,
    /// `--ca-bundle`: handed to every build as the secret `ca-bundle`.
    pub ca_bundle: Option<PathBuf>,
    /// Builds at once (`--jobs`); None: one per CPU.
    pub jobs: Option<usize>,
    /// `--force`: rebuild even what is up to date.
    pub force: bool,
    pub progress: Mode,
}

impl Settings {
    /// Defaults: the backend chosen, one build per CPU, nothing forced, progress auto.
    pub fn new(backend: Requested) -> Settings {
        Settings {
            backend,
            builder: None,
            ca_bundle: None,
            jobs: None,
            force: false,
            progress: Mode::Auto,
        }
    }
}

/// Where the built images are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Only built (`kiln build`): any store will do.
    Build,
    /// Run as containers next: the engine's store, when the engine answers.
    Run,
}

/// Hands the CA bundle to the plan's builds and prints the plan's notes: the part of
/// [`ensure`] a dry run shares.
pub fn prepare(repo: &Path, plan: &mut Plan, s: &Settings) {
    let quiet = s.progress == Mode::Quiet;
    if let Some(file) = &s.ca_bundle {
        let named = ca_bundle::apply(repo, &mut plan.builds, file);
        if !named.is_empty() && !quiet {
            errln!(
                "note: CA bundle {} handed as build secret `ca-bundle` to {}",
                file.display(),
                named.join(", ")
            );
        }
    }
    if !quiet {
        for note in &plan.notes {
            errln!("note: {note}");
        }
    }
}

/// Builds what of `plan` is out of date and returns the summary (each image's outcome
/// and store). `fleet` adds the bake requests a plan has none of yet; `decided` is a
/// backend the caller already chose, else one is chosen for `usage`.
pub fn ensure(
    repo: &Path,
    fleet: Option<&Fleet>,
    mut plan: Plan,
    s: &Settings,
    decided: Option<Decision>,
    usage: Use,
) -> anyhow::Result<Summary> {
    prepare(repo, &mut plan, s);
    ensure_prepared(repo, fleet, plan, s, decided, usage)
}

/// [`ensure`] of a plan [`prepare`] has seen (a caller that looks at the plan between).
pub fn ensure_prepared(
    repo: &Path,
    fleet: Option<&Fleet>,
    mut plan: Plan,
    s: &Settings,
    decided: Option<Decision>,
    usage: Use,
) -> anyhow::Result<Summary> {
    let decision = match decided {
        Some(d) => d,
        None => choose(&plan, s, usage)?,
    };
    // The executor may fall back from bake to podman, so it gets both forms.
    if let Some(fleet) = fleet.filter(|_| plan.bake.is_empty()) {
        plan = plan.with_bake_requests(fleet);
    }
    if let Some(file) = &s.ca_bundle {
        ca_bundle::apply_bake(&mut plan.bake, &plan.builds, file);
    }
    if decision.backend == BackendKind::Engine {
        if let Some(why) = plan.builds.iter().find_map(engine::refusal) {
            return Err(Failure::usage(why));
        }
    }
    let runner = crate::naming::core_target("runner");
    if plan.builds.iter().any(|b| b.bake_target == runner) {
        // The runner image holds the static runner binary, copied into its context first.
        crate::stage::stage_runner(repo)?;
    }
    let mut opts = crate::build::Options::new(repo);
    if let Some(jobs) = s.jobs {
        opts.jobs = jobs.max(1);
    }
    opts.force = s.force;
    opts.progress = s.progress;
    crate::build::run(&plan.builds, &plan.bake, &decision, &opts)
}

/// The backend for `plan`: as probed (`detect::choose_on`), except that images to be
/// run go straight into the engine's store when the engine answers and can build them
/// all: containers run there and its push API publishes from it, so nothing moves
/// between stores, and buildx and podman need not even be probed.
fn choose(plan: &Plan, s: &Settings, usage: Use) -> anyhow::Result<Decision> {
    if usage == Use::Run && s.backend == Requested::Auto {
        let answer = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(detect::ping_engine());
        if let Ok(version) = answer {
            if plan.builds.iter().all(|b| engine::refusal(b).is_none()) {
                return Ok(Decision::new(
                    BackendKind::Engine,
                    format!(
                        "the Docker Engine ({version}) answers: the containers run there and releases push from its store"
                    ),
                ));
            }
        }
    }
    detect::choose_on(s.backend, &plan.builds, s.builder.as_deref())
}
