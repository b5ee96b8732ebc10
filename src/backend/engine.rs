//! The engine backend: builds through the Docker Engine API (bollard), into
//! Docker's image store.
//!
//! Secrets: the engine here runs the legacy builder, which has no build secrets, and
//! a secret must never become a build arg. A spec with secrets is therefore refused
//! before anything runs ([`refusal`]); use `--backend podman` (or bake) for it.

use crate::plan::BuildSpec;

use super::{dockerfile_arg, path_word};

/// The `docker build` command equivalent to the Engine API request kiln sends for
/// `spec`: same Dockerfile, context (after `.dockerignore`), build args, labels and
/// target; no pull (the legacy builder's default; bases must already be local).
///
/// kiln itself builds untagged and tags `spec.image` only after the build and the
/// label check succeeded; `docker build -t` likewise tags only on success. The
/// executor adds the `kiln.inputs.digest` label at build time (see [`crate::digest`]).
/// Specs with secrets are refused by the engine backend (see [`refusal`]), so no
/// `--secret` is rendered.
pub fn equivalent_docker_build(spec: &BuildSpec) -> Vec<String> {
    let mut argv: Vec<String> = vec!["docker".into(), "build".into()];
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
    argv.push(path_word(&spec.context));
    argv
}

/// Why the engine backend refuses `spec`, if it does: build secrets need BuildKit,
/// which kiln does not drive through the Engine API.
pub fn refusal(spec: &BuildSpec) -> Option<String> {
    if spec.secrets.is_empty() {
        return None;
    }
    let ids: Vec<&str> = spec.secrets.iter().map(|s| s.id.as_str()).collect();
    Some(format!(
        "{}: the engine backend cannot pass build secrets ({}): the Engine API's legacy builder has none, \
         and a secret is never sent as a build arg; use --backend podman or --backend bake",
        spec.name,
        ids.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::shell;

    #[test]
    fn equivalent_command() {
        let mut spec = crate::backend::test_support::sample();
        spec.secrets.clear();
        assert_eq!(
            shell::join(&equivalent_docker_build(&spec)),
            "docker build -f benchmarks/demo/Dockerfile -t kiln.local/benchmarks/demo:dev --target final \
             --build-arg BASE_IMAGE=kiln.local/core/base:dev --label eval.type=benchmark \
             --label 'org.opencontainers.image.description=A demo, with spaces' benchmarks/demo"
        );
        assert!(refusal(&spec).is_none());
    }

    #[test]
    fn secrets_refused_by_name() {
        let spec = crate::backend::test_support::sample();
        let msg = refusal(&spec).unwrap();
        assert!(msg.contains("(hf)"), "{msg}");
        assert!(!msg.contains("HF_TOKEN"));
    }
}
