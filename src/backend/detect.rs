//! Which backend this machine can build with, and why.
//!
//! [`probe`] looks (and only looks: every probe is read-only, so it runs during dry
//! runs too): `which docker` / `which podman` / `which skopeo`, `docker buildx
//! version`, the active builder (`--builder`, else `BUILDX_BUILDER`, else the current
//! one) from `docker buildx inspect`: its driver and BuildKit version, and the Docker
//! Engine's ping. [`decide`] turns those facts into a [`Decision`] with a human reason.
//!
//! Capabilities, not names: named contexts (the fleet's `target:` links, and
//! `oci-layout://` hand-overs) need BuildKit ≥ 0.10 (Dockerfile frontend 1.4); only
//! the `docker` driver reads the engine's image store. So bake runs
//!
//! - per request on a `docker`-driver builder with named contexts;
//! - per image, bases first, on a `docker`-driver builder without them (Docker 20.10's
//!   BuildKit v0.8): its `FROM ${BASE_IMAGE}` reads the base from the store;
//! - per request with local bases handed over as OCI layouts (skopeo) on any other
//!   builder with named contexts.
//!
//! Falling back from bake to podman happens only on a detected cause
//! ([`FallbackCause`]): buildx missing; a builder that cannot read the local store
//! and cannot be handed the bases (no named contexts, no skopeo, or the hand-over
//! turned off with `KILN_BAKE_HANDOVER=0`) while a base the plan needs exists only
//! there; or bake's own failure to resolve a base that exists locally
//! ([`bake_resolve_failure`], read from bake's output after it ran). Any other
//! failure is reported as a failure, never retried on another backend.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::bake::{Mode, Setup};
use super::{Backend, BackendKind};
use crate::plan::BuildSpec;

/// The `--backend` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    Auto,
    Bake,
    Podman,
    Engine,
}

impl std::str::FromStr for Requested {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Requested::Auto),
            "bake" => Ok(Requested::Bake),
            "podman" => Ok(Requested::Podman),
            "engine" => Ok(Requested::Engine),
            other => Err(format!(
                "unknown backend {other:?}: expected auto, bake, podman or engine"
            )),
        }
    }
}

/// What the probes found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probes {
    /// `docker` on PATH.
    pub docker: Option<PathBuf>,
    /// The first line of `docker buildx version`, when it succeeded.
    pub buildx: Option<String>,
    /// The builder kiln was told to use (`--builder`), passed to every buildx call.
    pub builder_flag: Option<String>,
    /// The active builder, from `docker buildx inspect`, when buildx answered.
    pub builder: Option<Builder>,
    /// `skopeo` on PATH (it exports local bases for builders that cannot read the store).
    pub skopeo: Option<PathBuf>,
    /// False when `KILN_BAKE_HANDOVER=0` turned the hand-over of local bases off.
    pub handover: bool,
    /// Where the engine is expected (`DOCKER_HOST` or the default socket).
    pub engine_endpoint: String,
    /// `Ok(version)` when the engine answered its ping, `Err(why)` otherwise.
    pub engine: Result<String, String>,
    /// `podman` on PATH, when `podman --version` runs.
    pub podman: Option<PathBuf>,
}

/// A buildx builder, as `docker buildx inspect` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Builder {
    pub name: String,
    /// `docker`, `docker-container`, `remote`, `kubernetes`, …
    pub driver: String,
    /// As reported, e.g. `v0.8+unknown`, `v0.26-dev-73ed682`; `None` when not reported.
    pub buildkit: Option<String>,
}

impl Builder {
    /// Only the `docker` driver builds inside the engine and reads its image store.
    pub fn reads_engine_store(&self) -> bool {
        self.driver == "docker"
    }

    /// Named contexts need BuildKit ≥ 0.10 (Dockerfile frontend 1.4). An unknown
    /// version counts as without.
    pub fn named_contexts(&self) -> bool {
        self.buildkit
            .as_deref()
            .and_then(parse_buildkit_version)
            .is_some_and(|v| v >= (0, 10))
    }

    /// `builder "default" (driver docker, BuildKit v0.8+unknown)`.
    pub fn describe(&self) -> String {
        format!(
            "builder {:?} (driver {}, BuildKit {})",
            self.name,
            self.driver,
            self.buildkit.as_deref().unwrap_or("version unknown")
        )
    }
}

/// `v0.8+unknown` → (0, 8); `v0.26-dev-73ed682` → (0, 26); `0.12.5` → (0, 12).
pub fn parse_buildkit_version(text: &str) -> Option<(u32, u32)> {
    let t = text.trim().trim_start_matches('v');
    let mut parts = t.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Why bake was set aside for podman.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FallbackCause {
    /// `docker buildx` is not installed (or `docker` itself is missing).
    BuildxMissing,
    /// The active builder cannot read the local image store, and the plan needs a base
    /// that exists only there.
    DriverCannotSeeLocalStore { driver: String, base: String },
    /// bake ran and could not resolve a base image that exists in the local store.
    BakeCannotResolveLocalBase { base: String },
    /// The builder cannot do what the fleet's bake files need: named contexts.
    NoNamedContexts { builder: String },
}

impl fmt::Display for FallbackCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FallbackCause::BuildxMissing => write!(f, "docker buildx is not installed"),
            FallbackCause::DriverCannotSeeLocalStore { driver, base } => write!(
                f,
                "the buildx builder uses the {driver:?} driver, which cannot read the local image store, \
                 and base {base} exists only there"
            ),
            FallbackCause::NoNamedContexts { builder } => write!(
                f,
                "{builder} has no named contexts (they need BuildKit 0.10 or later), which the fleet's \
                 bake files use, and cannot read the local image store to build without them"
            ),
            FallbackCause::BakeCannotResolveLocalBase { base } => {
                write!(
                    f,
                    "docker buildx bake could not resolve base {base}, which exists in the local image store"
                )
            }
        }
    }
}

/// The backend to use and why; for bake, the backend bake's own resolve failure
/// would fall back to (podman, when present and the choice was automatic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub backend: BackendKind,
    pub reason: String,
    pub cause: Option<FallbackCause>,
    pub fallback: Option<BackendKind>,
    /// For bake: the builder and how bake runs on it.
    pub bake: Setup,
}

impl Decision {
    /// `backend` for `reason`, no fallback, bake's default set-up.
    pub fn new(backend: BackendKind, reason: impl Into<String>) -> Decision {
        Decision {
            backend,
            reason: reason.into(),
            cause: None,
            fallback: None,
            bake: Setup::default(),
        }
    }

    /// The backend as the scheduler drives it.
    pub fn backend(&self) -> Backend {
        match self.backend {
            BackendKind::Engine => Backend::Engine,
            BackendKind::Podman => Backend::Podman,
            BackendKind::Bake => Backend::Bake(self.bake.clone()),
        }
    }
}

fn endpoint() -> String {
    crate::env::DOCKER_HOST
        .get()
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string())
}

/// Runs a probe command, returning its stdout when it exited 0. Probes run while the
/// plan is made; niced, docker's and buildx's threads leave kiln's planning its core (on
/// two cores, planning a 44k-image fleet took 0.47–0.59 s beside them, 0.38–0.43 s niced).
fn run_probe(program: &std::path::Path, args: &[&str]) -> Option<String> {
    let out = duct::cmd(program, args)
        .before_spawn(|command| {
            use std::os::unix::process::CommandExt as _;
            // SAFETY: nice(2) is async-signal-safe and touches nothing of the parent's.
            unsafe {
                command.pre_exec(|| {
                    libc::nice(10);
                    Ok(())
                })
            };
            Ok(())
        })
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The builder `docker buildx inspect` describes: its first `Name:`, `Driver:` and
/// the first node's `BuildKit version:` (older buildx: `Buildkit:`).
pub fn parse_builder(inspect: &str) -> Option<Builder> {
    let field = |key: &str| {
        inspect.lines().find_map(|line| {
            let rest = line.trim().strip_prefix(key)?;
            Some(rest.trim().to_string()).filter(|v| !v.is_empty())
        })
    };
    Some(Builder {
        name: field("Name:").unwrap_or_else(|| "unnamed".into()),
        driver: field("Driver:")?,
        buildkit: field("BuildKit version:").or_else(|| field("Buildkit:")),
    })
}

/// Pings the engine (at most 3 s).
pub async fn ping_engine() -> Result<String, String> {
    let docker = bollard::Docker::connect_with_local_defaults().map_err(|e| e.to_string())?;
    let version = tokio::time::timeout(Duration::from_secs(3), async {
        docker.ping().await?;
        docker.version().await
    })
    .await
    .map_err(|_| "no answer within 3 s".to_string())?
    .map_err(|e| e.to_string())?;
    Ok(version.version.unwrap_or_else(|| "unknown version".into()))
}

/// Probes this machine; read-only. Call from async code (the engine ping is async).
/// `builder`: the builder kiln was told to use (else buildx's own choice). The probes
/// run at once, not one after another: buildx's two calls alone take about 200 ms.
pub async fn probe_async(builder: Option<&str>) -> Probes {
    let docker = which::which("docker").ok();
    let command = |program: Option<PathBuf>, args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_probe(program.as_deref()?, &args)
        })
    };
    let mut inspect = vec!["buildx".to_string()];
    if let Some(name) = builder {
        inspect.extend(["--builder".to_string(), name.to_string()]);
    }
    inspect.push("inspect".into());
    let podman = which::which("podman").ok();
    let (version, inspect, podman_version, engine) = tokio::join!(
        command(docker.clone(), vec!["buildx".into(), "version".into()]),
        command(docker.clone(), inspect),
        command(podman.clone(), vec!["--version".into()]),
        ping_engine()
    );
    let buildx = version
        .ok()
        .flatten()
        .map(|out| out.lines().next().unwrap_or("").trim().to_string());
    // The builder counts only when buildx itself answered.
    let active = buildx
        .as_ref()
        .and(inspect.ok().flatten())
        .and_then(|out| parse_builder(&out));
    Probes {
        docker,
        buildx,
        builder_flag: builder.map(str::to_string),
        builder: active,
        skopeo: which::which("skopeo").ok(),
        handover: !crate::env::BAKE_HANDOVER.off(),
        engine_endpoint: endpoint(),
        engine,
        podman: podman.filter(|_| matches!(podman_version, Ok(Some(_)))),
    }
}

/// Probes with nothing looked at yet (filled in by the narrow probes of [`choose_on`]).
fn unprobed(builder: Option<&str>) -> Probes {
    Probes {
        docker: None,
        buildx: None,
        builder_flag: builder.map(str::to_string),
        builder: None,
        skopeo: None,
        handover: true,
        engine_endpoint: endpoint(),
        engine: Err("not probed".into()),
        podman: None,
    }
}

/// [`probe_async`] for synchronous callers (must not be called inside a tokio runtime).
pub fn probe(builder: Option<&str>) -> Probes {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(probe_async(builder))
}

/// The bases the plan needs but does not build itself (e.g. `debian:bookworm-slim`).
pub fn external_bases(specs: &[BuildSpec]) -> Vec<String> {
    let built: std::collections::HashSet<&str> = specs.iter().map(|s| s.image.as_str()).collect();
    let mut out: Vec<String> = Vec::new();
    for base in specs.iter().flat_map(|s| s.bases.iter()) {
        if !built.contains(base.as_str()) && !out.contains(base) {
            out.push(base.clone());
        }
    }
    out
}

/// Of `bases`, those that exist only in Docker's local image store: present there
/// and with no registry digest (never pulled from or pushed to a registry), so a
/// builder that resolves bases from registries cannot see them. Read-only.
pub async fn local_only_bases(bases: &[String]) -> Vec<String> {
    let Ok(docker) = bollard::Docker::connect_with_local_defaults() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for base in bases {
        if let Ok(Ok(info)) =
            tokio::time::timeout(Duration::from_secs(3), docker.inspect_image(base)).await
        {
            if info.repo_digests.unwrap_or_default().is_empty() {
                out.push(base.clone());
            }
        }
    }
    out
}

fn no_backend(message: String) -> anyhow::Error {
    crate::error::Failure::no_backend(message)
}

/// How bake can run on the probed builder, or the cause that rules it out.
/// `local_only`: the plan's bases that exist only in the local image store.
fn bake_setup(
    probes: &Probes,
    local_only: &[String],
) -> Result<(Setup, String), (FallbackCause, String)> {
    let unknown = Builder {
        name: probes
            .builder_flag
            .clone()
            .unwrap_or_else(|| "(current)".into()),
        driver: "unknown (docker buildx inspect failed)".into(),
        buildkit: None,
    };
    let builder = probes.builder.clone().unwrap_or(unknown);
    let setup = |mode| Setup {
        builder: probes.builder_flag.clone(),
        mode,
    };
    let about = builder.describe();
    match (builder.reads_engine_store(), builder.named_contexts()) {
        (true, true) => Ok((
            setup(Mode::Requests { handover: false }),
            format!("{about}: named contexts, reads the engine's image store"),
        )),
        (true, false) => Ok((
            setup(Mode::PerImage),
            format!(
                "{about}: no named contexts (BuildKit < 0.10), so one bake per image, bases first, \
                 each base read from the engine's image store"
            ),
        )),
        (false, false) => Err((
            FallbackCause::NoNamedContexts { builder: about },
            String::new(),
        )),
        (false, true) => {
            if probes.handover && probes.skopeo.is_some() {
                return Ok((
                    setup(Mode::Requests { handover: true }),
                    format!(
                        "{about}: cannot read the engine's image store, so local bases are handed over \
                         as OCI layouts (skopeo)"
                    ),
                ));
            }
            let why = if probes.handover {
                "; skopeo, which would hand it over, is not installed"
            } else {
                "; the hand-over of local bases is off (KILN_BAKE_HANDOVER=0)"
            };
            match local_only.first() {
                Some(base) => Err((
                    FallbackCause::DriverCannotSeeLocalStore {
                        driver: builder.driver.clone(),
                        base: base.clone(),
                    },
                    why.to_string(),
                )),
                None => Ok((
                    setup(Mode::Requests { handover: false }),
                    format!("{about}: every outside base is in a registry{why}"),
                )),
            }
        }
    }
}

/// Chooses the backend. `local_only` lists the plan's bases that exist only in the
/// local image store ([`local_only_bases`]). Errors carry exit status 3 and name
/// what was looked for, or the capability the builder lacks.
pub fn decide(
    requested: Requested,
    probes: &Probes,
    local_only: &[String],
) -> anyhow::Result<Decision> {
    let looked_for = || {
        format!(
            "looked for docker buildx ({}), podman on PATH ({}), and a Docker Engine at {} ({})",
            match (&probes.docker, &probes.buildx) {
                (None, _) => "no docker on PATH".to_string(),
                (Some(_), None) => "`docker buildx version` failed".to_string(),
                (Some(_), Some(v)) => v.clone(),
            },
            probes
                .podman
                .as_ref()
                .map_or("not found".to_string(), |p| p.display().to_string()),
            probes.engine_endpoint,
            match &probes.engine {
                Ok(v) => format!("answered, version {v}"),
                Err(e) => format!("no answer: {e}"),
            }
        )
    };
    let decision = |backend, reason: String, cause, fallback| Decision {
        backend,
        reason,
        cause,
        fallback,
        bake: Setup::default(),
    };
    match requested {
        Requested::Bake => match &probes.buildx {
            Some(v) => match bake_setup(probes, local_only) {
                Ok((setup, why)) => Ok(Decision {
                    bake: setup,
                    ..decision(
                        BackendKind::Bake,
                        format!("requested; {v}, {why}"),
                        None,
                        None,
                    )
                }),
                Err((cause, why)) => Err(no_backend(format!(
                    "--backend bake cannot build this plan: {cause}{why}; nothing was built"
                ))),
            },
            None => Err(no_backend(format!(
                "--backend bake: docker buildx is not available; {}",
                looked_for()
            ))),
        },
        Requested::Podman => match &probes.podman {
            Some(p) => Ok(decision(
                BackendKind::Podman,
                format!("requested; podman at {}", p.display()),
                None,
                None,
            )),
            None => Err(no_backend(format!(
                "--backend podman: podman is not available; {}",
                looked_for()
            ))),
        },
        Requested::Engine => match &probes.engine {
            Ok(v) => Ok(decision(
                BackendKind::Engine,
                format!("requested; Docker Engine {v} at {}", probes.engine_endpoint),
                None,
                None,
            )),
            Err(_) => Err(no_backend(format!(
                "--backend engine: the Docker Engine does not answer; {}",
                looked_for()
            ))),
        },
        Requested::Auto => {
            let podman = probes.podman.is_some();
            let cause = match (&probes.buildx, bake_setup(probes, local_only)) {
                (Some(version), Ok((setup, why))) => {
                    // One bake per image reads every base from the engine's store, so
                    // bake's resolve failure (the run-time cause) cannot arise there.
                    let fallback =
                        (podman && setup.mode != Mode::PerImage).then_some(BackendKind::Podman);
                    return Ok(Decision {
                        bake: setup,
                        ..decision(
                            BackendKind::Bake,
                            format!("{version}, {why}"),
                            None,
                            fallback,
                        )
                    });
                }
                (Some(_), Err((cause, why))) => (cause, why),
                (None, _) => (FallbackCause::BuildxMissing, String::new()),
            };
            let (cause, why) = cause;
            if podman {
                return Ok(decision(
                    BackendKind::Podman,
                    format!("fallback: {cause}{why}"),
                    Some(cause),
                    None,
                ));
            }
            if let Ok(v) = &probes.engine {
                return Ok(decision(
                    BackendKind::Engine,
                    format!(
                        "{cause}{why}; podman is not installed, so the Docker Engine {v} at {} builds",
                        probes.engine_endpoint
                    ),
                    Some(cause),
                    None,
                ));
            }
            Err(no_backend(format!(
                "no backend able to build: {cause}{why}; {}",
                looked_for()
            )))
        }
    }
}

/// Reads bake's stderr for a failure to resolve a base image, and returns that base
/// when `exists_locally` says the local store has it (the third fallback cause).
/// Recognised shapes: `failed to resolve source metadata for <ref>`, `pull access
/// denied for <ref>`, `<ref>: not found`.
pub fn bake_resolve_failure(stderr: &str, exists_locally: impl Fn(&str) -> bool) -> Option<String> {
    let mut candidates: Vec<String> = Vec::new();
    for line in stderr.lines() {
        for marker in [
            "failed to resolve source metadata for ",
            "pull access denied for ",
        ] {
            let mut rest = line;
            while let Some(at) = rest.find(marker) {
                rest = &rest[at + marker.len()..];
                let end = rest.find([',', ' ']).unwrap_or(rest.len());
                candidates.push(rest[..end].trim_end_matches(':').to_string());
            }
        }
        let mut rest = line;
        while let Some(at) = rest.find(": not found") {
            let before = &rest[..at];
            let word = before.rsplit([' ', '"']).next().unwrap_or("");
            if !word.is_empty() {
                candidates.push(word.to_string());
            }
            rest = &rest[at + 1..];
        }
    }
    for candidate in candidates {
        for form in ref_forms(&candidate) {
            if exists_locally(&form) {
                return Some(form);
            }
        }
    }
    None
}

/// The spellings under which a reference from a resolver message may exist locally.
fn ref_forms(reference: &str) -> Vec<String> {
    let short = reference
        .strip_prefix("docker.io/library/")
        .or_else(|| reference.strip_prefix("docker.io/"))
        .unwrap_or(reference)
        .to_string();
    let mut forms = vec![short.clone()];
    let last = short.rsplit('/').next().unwrap_or(&short);
    if !last.contains(':') && !last.contains('@') {
        forms.push(format!("{short}:latest"));
    }
    if short != reference {
        forms.push(reference.to_string());
    }
    forms
}

/// Probes, finds the plan's local-only bases when that matters (a builder that
/// cannot read the engine's store), and decides: what `kiln build` calls before a
/// real build (and `--dry-run` with `--backend auto`). Read-only; call outside a
/// tokio runtime. The builder is buildx's own choice (`BUILDX_BUILDER`, the current one).
pub fn choose(requested: Requested, specs: &[BuildSpec]) -> anyhow::Result<Decision> {
    choose_on(requested, specs, None)
}

/// [`choose`] with the builder kiln was told to use (`--builder`), if any.
pub fn choose_on(
    requested: Requested,
    specs: &[BuildSpec],
    builder: Option<&str>,
) -> anyhow::Result<Decision> {
    Probing::start(requested, builder).decide(specs)
}

/// The probes [`choose_on`] needs, running on their own thread so that a caller can
/// plan meanwhile (buildx's probes cost about as much as planning a large fleet).
pub struct Probing {
    requested: Requested,
    thread: std::thread::JoinHandle<Probes>,
}

impl Probing {
    pub fn start(requested: Requested, builder: Option<&str>) -> Probing {
        let builder = builder.map(str::to_string);
        let thread = std::thread::spawn(move || {
            let builder = builder.as_deref();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            runtime.block_on(async {
                // An explicit podman or engine needs only its own probe; when that fails,
                // everything is probed for the message.
                let narrow = match requested {
                    // Asked for by name, podman is only looked up: a podman that is there
                    // but broken fails the build with its own error, and `podman
                    // --version` would cost every build about 20 ms.
                    Requested::Podman => Some(Probes {
                        podman: which::which("podman").ok(),
                        ..unprobed(builder)
                    }),
                    Requested::Engine => Some(Probes {
                        engine: ping_engine().await,
                        ..unprobed(builder)
                    }),
                    Requested::Auto | Requested::Bake => None,
                };
                match narrow {
                    Some(p) if decide(requested, &p, &[]).is_ok() => p,
                    _ => probe_async(builder).await,
                }
            })
        });
        Probing { requested, thread }
    }

    /// The probes, once they are done.
    pub fn probes(self) -> Probes {
        self.thread.join().expect("probing does not panic")
    }

    /// Waits for the probes and decides for `specs`. Read-only; call outside a tokio runtime.
    pub fn decide(self, specs: &[BuildSpec]) -> anyhow::Result<Decision> {
        let requested = self.requested;
        decide_for(requested, &self.probes(), specs)
    }
}

/// [`decide`] for `specs`, once they are known: when the builder cannot read the engine's
/// store, which of their bases exist only there.
pub fn decide_for(
    requested: Requested,
    probes: &Probes,
    specs: &[BuildSpec],
) -> anyhow::Result<Decision> {
    let store_blind = probes
        .builder
        .as_ref()
        .is_none_or(|b| !b.reads_engine_store());
    let local_only = if probes.buildx.is_some() && store_blind {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(local_only_bases(&external_bases(specs)))
    } else {
        Vec::new()
    };
    decide(requested, probes, &local_only)
}

#[cfg(test)]
mod tests;
