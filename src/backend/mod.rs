//! Backends: the three ways kiln builds one image (or one bake request), and the
//! probes that choose between them. Each backend is one module that owns what it
//! prints (`--dry-run`), how it runs, and (later) how it pushes:
//!
//! - [`engine`]: the Docker Engine API through bollard, into Docker's image store;
//! - [`podman`]: `podman build`, into podman's store;
//! - [`bake`]: `docker buildx bake … --load`, into Docker's image store, one call per
//!   [`crate::plan::BakeRequest`] or (builders without named contexts) per image;
//! - [`detect`]: which of them this machine can use, the builder's capabilities, and
//!   the fallback causes;
//! - [`child`]: a build tool run as a child process; [`shell`]: argv → shell line.
//!
//! The scheduler ([`crate::build`]) sees one interface, [`Backend`]: it decides what
//! to build and when, checks labels and tags; a backend only turns one image (or one
//! bake request) into an image in its store.

pub mod bake;
pub mod child;
pub mod detect;
pub mod engine;
pub mod eval_containers;
pub mod podman;
pub mod shell;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::plan::BuildSpec;
use crate::progress::Progress;
use crate::store::Store;

/// A backend kiln can build with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// `docker buildx bake … --load`.
    Bake,
    /// `podman build`.
    Podman,
    /// The Docker Engine API (`POST /build`).
    Engine,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Bake => "bake",
            BackendKind::Podman => "podman",
            BackendKind::Engine => "engine",
        }
    }

    /// The image store a build with this backend lands in.
    pub fn store(self) -> crate::store::Store {
        match self {
            BackendKind::Podman => crate::store::Store::Podman,
            BackendKind::Bake | BackendKind::Engine => crate::store::Store::Docker,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a backend stopped before producing an image.
#[derive(Debug)]
pub enum Stop {
    Failed(String),
    Interrupted,
}

impl From<anyhow::Error> for Stop {
    fn from(e: anyhow::Error) -> Stop {
        Stop::Failed(format!("{e:#}"))
    }
}

/// What every backend gets from the run that calls it.
#[derive(Clone)]
pub struct Env {
    /// The repository root: children run here and relative spec paths resolve from here.
    pub repo: PathBuf,
    pub progress: Arc<Progress>,
    /// Becomes true on Ctrl-C: stop, leave nothing named.
    pub cancel: tokio::sync::watch::Receiver<bool>,
}

/// An image a backend built, before the scheduler's label check.
#[derive(Debug, Clone)]
pub struct Built {
    /// How the store finds it: the image id (engine: built untagged) or its name.
    pub reference: String,
    /// True when the backend already gave it its final name (podman `-t`, bake `--load`).
    pub tagged: bool,
}

/// The backend a run builds with, and how: the one interface the scheduler calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Engine,
    Podman,
    Bake(bake::Setup),
}

impl Backend {
    pub fn kind(&self) -> BackendKind {
        match self {
            Backend::Engine => BackendKind::Engine,
            Backend::Podman => BackendKind::Podman,
            Backend::Bake(_) => BackendKind::Bake,
        }
    }

    /// The store its images land in.
    pub fn store(&self) -> Store {
        self.kind().store()
    }

    /// True when the scheduler hands it one image at a time ([`Backend::build_image`]);
    /// false for bake on a builder with named contexts, which builds whole requests
    /// ([`bake::build_request`]).
    pub fn per_image(&self) -> bool {
        !matches!(self, Backend::Bake(setup) if setup.mode != bake::Mode::PerImage)
    }

    /// Why this backend cannot build `spec` at all, before anything runs.
    pub fn refusal(&self, spec: &BuildSpec) -> Option<String> {
        match self {
            Backend::Engine => engine::refusal(spec),
            _ => None,
        }
    }

    /// Writes what `--dry-run` prints for the plan, in order: commands, and `#` lines
    /// that explain, one per line.
    pub fn dry_run(
        &self,
        out: &mut dyn std::io::Write,
        builds: &[BuildSpec],
        requests: &[crate::plan::BakeRequest],
    ) -> std::io::Result<()> {
        match self {
            Backend::Engine => engine::dry_run(out, builds),
            Backend::Podman => podman::dry_run(out, builds),
            Backend::Bake(setup) => bake::dry_run(out, builds, requests, setup),
        }
    }

    /// Builds one image (`spec` already carries every label, the input digest
    /// included); `context` is the walked build context.
    pub async fn build_image(
        &self,
        env: &Env,
        spec: &BuildSpec,
        context: crate::context::Context,
    ) -> Result<Built, Stop> {
        match self {
            Backend::Engine => engine::build(env, spec, context).await,
            Backend::Podman => podman::build(env, spec).await,
            Backend::Bake(setup) => bake::build_image(env, setup, spec).await,
        }
    }
}

/// The Dockerfile path as a command line needs it: `-f` is relative to the working
/// directory, while `BuildSpec::dockerfile` is relative to the context.
pub(crate) fn dockerfile_arg(spec: &BuildSpec) -> PathBuf {
    if spec.dockerfile.is_absolute() {
        spec.dockerfile.clone()
    } else {
        spec.context.join(&spec.dockerfile)
    }
}

pub(crate) fn path_word(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// An argv as it is assembled: collected into words to run, or rendered straight into a
/// [`shell::Line`] to print (a dry run of 44,000 images then makes no per-word strings).
/// Both come from the same function, so what is printed and what runs cannot drift.
pub(crate) trait Argv {
    /// Appends one word made of `parts`, concatenated (`["k", "=", "v"]` is `k=v`).
    fn word(&mut self, parts: &[&str]);
}

impl Argv for Vec<String> {
    fn word(&mut self, parts: &[&str]) {
        self.push(parts.concat());
    }
}

impl Argv for shell::Line {
    fn word(&mut self, parts: &[&str]) {
        shell::Line::word(self, parts);
    }
}

/// The part `podman build` and `docker build` share: `<program> build -f <dockerfile>
/// -t <image> [--target <stage>]`, one `--build-arg` per arg and one `--label` per
/// label (both sorted). Each backend appends its own flags and the context.
pub(crate) fn build_argv(argv: &mut impl Argv, program: &str, spec: &BuildSpec) {
    argv.word(&[program]);
    argv.word(&["build"]);
    argv.word(&["-f"]);
    argv.word(&[&dockerfile_arg(spec).to_string_lossy()]);
    argv.word(&["-t"]);
    argv.word(&[&spec.image]);
    if let Some(target) = &spec.target {
        argv.word(&["--target"]);
        argv.word(&[target]);
    }
    for (k, v) in &spec.args {
        argv.word(&["--build-arg"]);
        argv.word(&[k, "=", v]);
    }
    for (k, v) in &spec.labels {
        argv.word(&["--label"]);
        argv.word(&[k.as_ref(), "=", v.as_ref()]);
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::plan::{BuildSpec, Secret};

    pub(crate) fn sample() -> BuildSpec {
        BuildSpec {
            name: "benchmark-demo".into(),
            bake_target: "benchmark-demo".into(),
            image: "kiln.local/benchmarks/demo:dev".into(),
            context: "benchmarks/demo".into(),
            dockerfile: "Dockerfile".into(),
            target: Some("final".into()),
            args: [("BASE_IMAGE".into(), "kiln.local/core/base:dev".into())]
                .into_iter()
                .collect(),
            labels: [
                ("eval.type".into(), "benchmark".into()),
                (
                    "org.opencontainers.image.description".into(),
                    "A demo, with spaces".into(),
                ),
            ]
            .into_iter()
            .collect(),
            secrets: vec![Secret {
                id: "hf".into(),
                env: Some("HF_TOKEN".into()),
                src: None,
            }],
            bases: vec!["kiln.local/core/base:dev".into()],
            deps: vec![],
        }
    }
}
