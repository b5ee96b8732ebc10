//! Backends: the three ways kiln builds one image (or one bake request), and the
//! probes that choose between them.
//!
//! - [`engine`]: the Docker Engine API through bollard (legacy builder or BuildKit daemon),
//!   into Docker's image store;
//! - [`podman`]: `podman build`, into podman's store;
//! - [`bake`]: `docker buildx bake … --load`, into Docker's image store;
//! - [`detect`]: which of them this machine can use, and the fallback causes;
//! - [`shell`]: the one place an argv becomes a printable shell line.
//!
//! The argv functions here are pure: they render a [`crate::plan::BuildSpec`] /
//! [`crate::plan::BakeRequest`] and are what both `--dry-run` prints and the
//! executors in [`crate::build`] run.

pub mod bake;
pub mod detect;
pub mod engine;
pub mod podman;
pub mod shell;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::plan::BuildSpec;

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

/// The part `podman build` and `docker build` share: `<program> build -f <dockerfile>
/// -t <image> [--target <stage>]`, one `--build-arg` per arg and one `--label` per
/// label (both sorted). Each backend appends its own flags and the context.
pub(crate) fn build_argv(program: &str, spec: &BuildSpec) -> Vec<String> {
    let mut argv: Vec<String> = vec![program.into(), "build".into()];
    argv.push("-f".into());
    argv.push(path_word(&dockerfile_arg(spec)));
    argv.push("-t".into());
    argv.push(spec.image.clone());
    if let Some(target) = &spec.target {
        argv.push("--target".into());
        argv.push(target.clone());
    }
    for (k, v) in &spec.args {
        argv.push("--build-arg".into());
        argv.push(format!("{k}={v}"));
    }
    for (k, v) in &spec.labels {
        argv.push("--label".into());
        argv.push(format!("{k}={v}"));
    }
    argv
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::plan::{BuildSpec, Secret};
    use std::collections::BTreeMap;

    pub(crate) fn sample() -> BuildSpec {
        BuildSpec {
            name: "benchmark-demo".into(),
            bake_target: "benchmark-demo".into(),
            image: "kiln.local/benchmarks/demo:dev".into(),
            context: "benchmarks/demo".into(),
            dockerfile: "Dockerfile".into(),
            target: Some("final".into()),
            args: BTreeMap::from([("BASE_IMAGE".into(), "kiln.local/core/base:dev".into())]),
            labels: BTreeMap::from([
                ("eval.type".into(), "benchmark".into()),
                (
                    "org.opencontainers.image.description".into(),
                    "A demo, with spaces".into(),
                ),
            ]),
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
