//! `kiln release --registry HOST[:PORT][/PREFIX] [--tag TAG]... [--only NAME]...
//! [--manifest FILE] [--dry-run] [--force] [--allow-dirty] [--jobs N] [--backend ...]
//! [--base-map FILE] [--base PUBLIC=LOCAL]... [--pin]` (the last three: Harbor datasets).

use crate::printer::errln;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::backend::detect::Requested;
use crate::fleet::Fleet;
use crate::release::{self, Options};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to publish: HOST[:PORT][/PREFIX]. The login is the one `docker login HOST[:PORT]`
    /// stored ($DOCKER_CONFIG or ~/.docker/config.json: auths, credsStore, credHelpers).
    #[arg(long, value_name = "HOST[:PORT][/PREFIX]", value_parser = parse_registry)]
    pub registry: crate::registry::Registry,

    /// Another tag besides the version (repeatable; the version tag comes from
    /// `git describe --tags --always` and is immutable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,

    /// Publish only these benchmarks and/or agents (repeatable); a benchmark must be
    /// released. In a Harbor dataset: task ids.
    #[arg(long = "only", value_name = "NAME")]
    pub only: Vec<String>,

    /// The release manifest to write.
    #[arg(long, default_value = "release-manifest.json", value_name = "FILE")]
    pub manifest: PathBuf,

    /// Print the gates and the plain docker/podman commands; contact no registry, change
    /// nothing (with --pin: each task.toml edit as a diff).
    #[arg(long)]
    pub dry_run: bool,

    /// Overwrite a version tag that already names another image in the registry.
    #[arg(long)]
    pub force: bool,

    /// Release from a work tree with uncommitted changes (the manifest records it).
    #[arg(long)]
    pub allow_dirty: bool,

    /// Builds, runs and pushes at once (default: the number of CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,

    /// How to build missing images (as `kiln build --backend`).
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: Requested,

    /// A CA bundle (PEM): handed to builds as the build secret `ca-bundle` (as `kiln build
    /// --ca-bundle`) and trusted for the registry's TLS, besides the system's roots and
    /// /etc/docker/certs.d/HOST[:PORT]/*.crt.
    #[arg(long, env = crate::env::CA_BUNDLE.name, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,

    /// A registry reached without verified TLS: HOST[:PORT] or a CIDR (repeatable; the
    /// engine's own insecure-registries count too). Loopback registries need no flag.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]", value_parser = parse_insecure)]
    pub insecure_registries: Vec<String>,

    /// Public base images replaced by local ones, one `PUBLIC_REF=LOCAL_REF` a line (as
    /// `kiln build --base-map`; Harbor datasets).
    #[arg(long, value_name = "FILE")]
    pub base_map: Option<PathBuf>,

    /// One base map entry `PUBLIC_REF=LOCAL_REF` (repeatable; after --base-map).
    #[arg(long = "base", value_name = "PUBLIC=LOCAL")]
    pub bases: Vec<String>,

    /// Harbor datasets: write `docker_image = "REGISTRY/REPOSITORY@sha256:…"` (the pushed
    /// digest) into the [environment] table of each published task's task.toml, in place
    /// (comments and layout kept). kiln keeps building a pinned task from its Dockerfile.
    #[arg(long)]
    pub pin: bool,
}

pub(super) fn parse_insecure(s: &str) -> Result<String, String> {
    crate::registry::transport::check_insecure_entry(s)
        .map(|()| s.to_string())
        .map_err(|e| e.to_string())
}

fn parse_backend(s: &str) -> Result<Requested, String> {
    s.parse()
}

fn parse_registry(s: &str) -> Result<crate::registry::Registry, String> {
    crate::registry::Registry::parse(s).map_err(|e| e.to_string())
}

/// Exit status: 0 everything selected is published and verified; 1 a gate blocked
/// something, a push or verification failed, or fail-fast stopped the pushes; 2 refused
/// input; 3 no backend; 130 interrupted (SIGINT/SIGTERM) once the registry checks began.
pub fn run(repo: &Path, args: Args) -> anyhow::Result<ExitCode> {
    if let Some(file) = args.ca_bundle.as_ref().filter(|f| !f.is_file()) {
        return Err(super::Failure::usage(format!(
            "--ca-bundle {}: no such file",
            file.display()
        )));
    }
    let fleet = Fleet::load(repo, super::build::env_vars())?;
    let harbor = fleet.layout.dataset.is_some();
    if !harbor && (args.pin || args.base_map.is_some() || !args.bases.is_empty()) {
        return Err(super::Failure::usage(
            "--pin, --base-map and --base apply to a Harbor dataset (kiln's own fleet builds on local bases: scripts/make-bases.sh)",
        ));
    }
    for p in fleet.problems.iter().filter(|_| harbor) {
        errln!("note: left out: {p}");
    }
    let base_map =
        crate::plan::base_map::BaseMap::from_flags(args.base_map.as_deref(), &args.bases)
            .map_err(crate::fleet::refused_to_usage)?;
    let info = super::build::build_info(repo)?;
    let mut opts = Options {
        repo: repo.to_path_buf(),
        registry: args.registry,
        tags: args.tags,
        only: args.only,
        manifest: args.manifest,
        dry_run: args.dry_run,
        force: args.force,
        allow_dirty: args.allow_dirty,
        jobs: crate::build::Options::new(repo).jobs,
        backend: args.backend,
        progress: crate::printer::Mode::Auto,
        ca_bundle: args.ca_bundle,
        insecure_registries: args.insecure_registries,
        base_map,
        pin: args.pin,
    };
    if let Some(j) = args.jobs {
        opts.jobs = j.into();
    }
    let outcome = release::release(&fleet, &info, &opts)?;
    Ok(ExitCode::from(outcome.exit_code))
}
