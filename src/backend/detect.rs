//! Which backend this machine can build with, and why.
//!
//! [`probe`] looks (and only looks: every probe is read-only, so it runs during dry
//! runs too): `which docker` / `which podman`, `docker buildx version`, the active
//! builder's driver from `docker buildx inspect`, and the Docker Engine's ping.
//! [`decide`] turns those facts into a [`Decision`] with a human reason.
//!
//! Falling back from bake to podman happens only on a detected cause
//! ([`FallbackCause`]): buildx missing; a builder driver other than `docker` while a
//! base the plan needs exists only in the local image store; or bake's own failure
//! to resolve a base that exists locally ([`bake_resolve_failure`], read from bake's
//! stderr after it ran). Any other failure is reported as a failure, never retried
//! on another backend.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::BackendKind;
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
    /// The active builder's driver (`docker`, `docker-container`, `remote`, `kubernetes`, …).
    pub driver: Option<String>,
    /// Where the engine is expected (`DOCKER_HOST` or the default socket).
    pub engine_endpoint: String,
    /// `Ok(version)` when the engine answered its ping, `Err(why)` otherwise.
    pub engine: Result<String, String>,
    /// `podman` on PATH, when `podman --version` runs.
    pub podman: Option<PathBuf>,
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
}

fn endpoint() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string())
}

/// Runs a probe command, returning its stdout when it exited 0.
fn run_probe(program: &std::path::Path, args: &[&str]) -> Option<String> {
    let out = duct::cmd(program, args)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `Driver:` line of `docker buildx inspect`.
pub fn parse_driver(inspect: &str) -> Option<String> {
    inspect.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("Driver:")?;
        Some(rest.trim().to_string()).filter(|d| !d.is_empty())
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
pub async fn probe_async() -> Probes {
    let docker = which::which("docker").ok();
    let buildx = docker
        .as_deref()
        .and_then(|d| run_probe(d, &["buildx", "version"]))
        .map(|out| out.lines().next().unwrap_or("").trim().to_string());
    let driver = match (&docker, &buildx) {
        (Some(d), Some(_)) => {
            run_probe(d, &["buildx", "inspect"]).and_then(|out| parse_driver(&out))
        }
        _ => None,
    };
    let podman = which::which("podman")
        .ok()
        .filter(|p| run_probe(p, &["--version"]).is_some());
    Probes {
        docker,
        buildx,
        driver,
        engine_endpoint: endpoint(),
        engine: ping_engine().await,
        podman,
    }
}

/// [`probe_async`] for synchronous callers (must not be called inside a tokio runtime).
pub fn probe() -> Probes {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(probe_async())
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
    crate::error::Failure { code: 3, message }.into()
}

/// Chooses the backend. `local_only` lists the plan's bases that exist only in the
/// local image store ([`local_only_bases`]). Errors carry exit status 3 and name
/// what was looked for.
pub fn decide(
    requested: Requested,
    probes: &Probes,
    local_only: &[String],
) -> anyhow::Result<Decision> {
    let engine_ok = probes.engine.is_ok();
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
    };
    match requested {
        Requested::Bake => match &probes.buildx {
            Some(v) => Ok(decision(
                BackendKind::Bake,
                format!("requested; {v}"),
                None,
                None,
            )),
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
            if let Some(version) = &probes.buildx {
                let driver = probes.driver.clone().unwrap_or_else(|| "unknown".into());
                if driver != "docker" {
                    if let Some(base) = local_only.first() {
                        let cause = FallbackCause::DriverCannotSeeLocalStore {
                            driver: driver.clone(),
                            base: base.clone(),
                        };
                        if podman {
                            return Ok(decision(
                                BackendKind::Podman,
                                format!("fallback: {cause}"),
                                Some(cause),
                                None,
                            ));
                        }
                        if engine_ok {
                            return Ok(decision(
                                BackendKind::Engine,
                                format!("{cause}; podman is not installed, so the Docker Engine API builds"),
                                Some(cause),
                                None,
                            ));
                        }
                    }
                }
                let fallback = podman.then_some(BackendKind::Podman);
                return Ok(decision(
                    BackendKind::Bake,
                    format!("{version}, builder driver {driver:?}"),
                    None,
                    fallback,
                ));
            }
            if podman {
                let cause = FallbackCause::BuildxMissing;
                return Ok(decision(
                    BackendKind::Podman,
                    format!("fallback: {cause}"),
                    Some(cause),
                    None,
                ));
            }
            if let Ok(v) = &probes.engine {
                return Ok(decision(
                    BackendKind::Engine,
                    format!(
                        "neither docker buildx nor podman is installed; the Docker Engine {v} at {} answers",
                        probes.engine_endpoint
                    ),
                    None,
                    None,
                ));
            }
            Err(no_backend(format!(
                "no backend able to build: {}",
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

/// Probes, finds the plan's local-only bases when that matters (a non-`docker`
/// builder driver), and decides: what `kiln build` calls before a real build (and
/// `--dry-run` with `--backend auto`). Read-only; call outside a tokio runtime.
pub fn choose(requested: Requested, specs: &[BuildSpec]) -> anyhow::Result<Decision> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let probes = probe_async().await;
        let local_only = if probes.buildx.is_some() && probes.driver.as_deref() != Some("docker") {
            local_only_bases(&external_bases(specs)).await
        } else {
            Vec::new()
        };
        decide(requested, &probes, &local_only)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probes() -> Probes {
        Probes {
            docker: Some("/usr/bin/docker".into()),
            buildx: Some("github.com/docker/buildx v0.19.0".into()),
            driver: Some("docker".into()),
            engine_endpoint: "unix:///var/run/docker.sock".into(),
            engine: Ok("27.0".into()),
            podman: Some("/usr/bin/podman".into()),
        }
    }

    fn exit_code(err: &anyhow::Error) -> u8 {
        err.downcast_ref::<crate::error::Failure>()
            .map(|f| f.code)
            .unwrap()
    }

    #[test]
    fn docker_driver_keeps_bake_with_podman_for_resolve_failures() {
        let d = decide(
            Requested::Auto,
            &probes(),
            &["kiln.local/core/base:dev".into()],
        )
        .unwrap();
        assert_eq!(d.backend, BackendKind::Bake);
        assert_eq!(d.cause, None);
        assert_eq!(d.fallback, Some(BackendKind::Podman));
    }

    #[test]
    fn container_driver_with_local_only_base_falls_back() {
        for driver in ["docker-container", "remote", "kubernetes"] {
            let mut p = probes();
            p.driver = Some(driver.into());
            let d = decide(Requested::Auto, &p, &["debian:bookworm-slim".into()]).unwrap();
            assert_eq!(d.backend, BackendKind::Podman);
            assert_eq!(
                d.cause,
                Some(FallbackCause::DriverCannotSeeLocalStore {
                    driver: driver.into(),
                    base: "debian:bookworm-slim".into()
                })
            );
            assert!(
                d.reason.contains(driver) && d.reason.contains("debian:bookworm-slim"),
                "{}",
                d.reason
            );
        }
    }

    #[test]
    fn container_driver_without_local_only_base_keeps_bake() {
        let mut p = probes();
        p.driver = Some("docker-container".into());
        assert_eq!(
            decide(Requested::Auto, &p, &[]).unwrap().backend,
            BackendKind::Bake
        );
    }

    #[test]
    fn container_driver_without_podman_uses_engine() {
        let mut p = probes();
        p.driver = Some("docker-container".into());
        p.podman = None;
        let d = decide(Requested::Auto, &p, &["b:1".into()]).unwrap();
        assert_eq!(d.backend, BackendKind::Engine);
    }

    #[test]
    fn buildx_missing_falls_back_to_podman() {
        let mut p = probes();
        p.buildx = None;
        p.driver = None;
        let d = decide(Requested::Auto, &p, &[]).unwrap();
        assert_eq!(
            (d.backend, d.cause),
            (BackendKind::Podman, Some(FallbackCause::BuildxMissing))
        );
        assert!(d.reason.contains("buildx is not installed"));
    }

    #[test]
    fn neither_buildx_nor_podman_uses_engine() {
        let mut p = probes();
        p.buildx = None;
        p.podman = None;
        let d = decide(Requested::Auto, &p, &[]).unwrap();
        assert_eq!(d.backend, BackendKind::Engine);
        assert_eq!(d.cause, None);
    }

    #[test]
    fn nothing_is_exit_3_naming_what_was_looked_for() {
        let p = Probes {
            docker: None,
            buildx: None,
            driver: None,
            engine_endpoint: "unix:///var/run/docker.sock".into(),
            engine: Err("connection refused".into()),
            podman: None,
        };
        let err = decide(Requested::Auto, &p, &[]).unwrap_err();
        assert_eq!(exit_code(&err), 3);
        let msg = err.to_string();
        for needle in [
            "docker buildx",
            "podman",
            "unix:///var/run/docker.sock",
            "connection refused",
        ] {
            assert!(msg.contains(needle), "{msg}");
        }
    }

    #[test]
    fn explicit_backend_missing_is_exit_3() {
        let mut p = probes();
        p.podman = None;
        assert_eq!(
            exit_code(&decide(Requested::Podman, &p, &[]).unwrap_err()),
            3
        );
        p.engine = Err("refused".into());
        assert_eq!(
            exit_code(&decide(Requested::Engine, &p, &[]).unwrap_err()),
            3
        );
        p.buildx = None;
        assert_eq!(exit_code(&decide(Requested::Bake, &p, &[]).unwrap_err()), 3);
        // An explicit choice never falls back.
        assert_eq!(
            decide(Requested::Bake, &probes(), &[]).unwrap().fallback,
            None
        );
    }

    #[test]
    fn driver_parsed_from_inspect() {
        let out =
            "Name:          builder\nDriver:        docker-container\nNodes:\nName: builder0\n";
        assert_eq!(parse_driver(out).as_deref(), Some("docker-container"));
        assert_eq!(parse_driver("Name: x\n"), None);
    }

    #[test]
    fn resolve_failures_recognised_only_for_local_bases() {
        let local = |r: &str| r == "kiln.local/core/base:dev" || r == "debian:bookworm-slim";
        let e1 = "ERROR: failed to solve: kiln.local/core/base:dev: failed to resolve source metadata for kiln.local/core/base:dev: failed to do request: dial tcp: lookup kiln.local: no such host";
        assert_eq!(
            bake_resolve_failure(e1, local).as_deref(),
            Some("kiln.local/core/base:dev")
        );
        let e2 = "ERROR: failed to solve: failed to resolve source metadata for docker.io/library/debian:bookworm-slim: pull access denied";
        assert_eq!(
            bake_resolve_failure(e2, local).as_deref(),
            Some("debian:bookworm-slim")
        );
        let e3 = "ERROR: docker.io/library/debian:bookworm-slim: not found";
        assert_eq!(
            bake_resolve_failure(e3, local).as_deref(),
            Some("debian:bookworm-slim")
        );
        // A base that is not local, or an unrelated failure, is not a fallback cause.
        let e4 = "failed to resolve source metadata for docker.io/library/alpine:3: not found";
        assert_eq!(bake_resolve_failure(e4, local), None);
        let e5 = "ERROR: process \"/bin/sh -c make\" did not complete successfully: exit code: 2";
        assert_eq!(bake_resolve_failure(e5, local), None);
    }
}
