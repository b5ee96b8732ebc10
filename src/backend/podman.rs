//! The podman backend: one `podman build` per image, into podman's image store.
//!
//! Isolation: podman's default (`oci`, runc) works on the machines kiln targets
//! (root and rootless podman 4.x), so no `--isolation=chroot` is passed; set
//! `BUILDAH_ISOLATION=chroot` in the environment where nested containers need it.

use crate::plan::BuildSpec;

use std::collections::BTreeMap;

use super::{build_argv, child, shell, Argv, Built, Env, Stop};

/// The argv of `podman build` for one image, exactly as the podman executor runs it
/// (working directory: the repository root, since `BuildSpec` paths are relative to it).
///
/// `-f <context>/<dockerfile>`, `-t <image>`, `--target`, one `--build-arg` per arg,
/// one `--label` per label (sorted), `--secret id=…,env=…` / `id=…,src=…` (never a
/// value), `--pull=never` (bases must already be in podman's store), then the context.
///
/// The executor adds one label of its own at build time, `kiln.inputs.digest`, before
/// rendering (see [`crate::digest`]); a dry run cannot know it since it depends on the
/// ids of bases not built yet.
pub fn command(spec: &BuildSpec) -> Vec<String> {
    let mut argv = Vec::new();
    push_command(&mut argv, spec);
    argv
}

fn push_command(argv: &mut impl Argv, spec: &BuildSpec) {
    build_argv(argv, "podman", spec);
    for secret in &spec.secrets {
        argv.word(&["--secret"]);
        argv.word(&[&secret.word()]);
    }
    argv.word(&["--pull=never"]);
    argv.word(&[&spec.context.to_string_lossy()]);
}

/// The dry run: one [`command`] per image, bases first, one line each, rendered
/// straight into `out` (no argv, no line list: the output of a large fleet is tens of MB).
pub fn dry_run(out: &mut dyn std::io::Write, builds: &[BuildSpec]) -> std::io::Result<()> {
    let mut line = shell::Line::default();
    for spec in builds {
        line.text.clear();
        push_command(&mut line, spec);
        line.text.push('\n');
        out.write_all(line.text.as_bytes())?;
    }
    Ok(())
}

/// Runs [`command`]; `-t` names the image on success (the scheduler takes the name
/// away again if the label check fails).
pub async fn build(env: &Env, spec: &BuildSpec) -> Result<Built, Stop> {
    let argv = command(spec);
    env.progress.step(&spec.name, "podman build");
    let run = child::run(env, &spec.name, &BTreeMap::new(), &argv, None).await?;
    if !run.success {
        return Err(Stop::Failed(format!(
            "{} failed:\n{}",
            shell::join(&argv),
            child::tail(&run.output, 15)
        )));
    }
    Ok(Built {
        reference: spec.image.clone(),
        tagged: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::test_support::sample;
    use crate::plan::Secret;

    #[test]
    fn renders_every_part_in_order() {
        assert_eq!(
            shell::join(&command(&sample())),
            "podman build -f benchmarks/demo/Dockerfile -t kiln.local/benchmarks/demo:dev --target final \
             --build-arg BASE_IMAGE=kiln.local/core/base:dev --label eval.type=benchmark \
             --label 'org.opencontainers.image.description=A demo, with spaces' \
             --secret id=hf,env=HF_TOKEN --pull=never benchmarks/demo"
        );
    }

    #[test]
    fn absolute_dockerfile_kept_and_file_secret() {
        let mut spec = sample();
        spec.dockerfile = "/abs/Dockerfile".into();
        spec.secrets = vec![Secret {
            id: "k".into(),
            env: None,
            src: Some("/run/k".into()),
        }];
        let argv = command(&spec);
        assert_eq!(argv[3], "/abs/Dockerfile");
        assert!(argv.contains(&"id=k,src=/run/k".to_string()));
    }
}
