//! The bake backend: `docker buildx bake … --load`, one invocation per
//! [`BakeRequest`], into Docker's image store.

use std::collections::BTreeMap;

use crate::plan::BakeRequest;

use super::{path_word, shell};

/// The environment and argv of `docker buildx bake` for one request, exactly as the
/// bake executor runs it (working directory: the repository root).
///
/// Environment: the request's bake variables (for example `EVAL_TASK_ID`), set on top
/// of the inherited environment. Argv: `docker buildx bake -f <file>… --set <s>…
/// <target>… --load`. The executor adds one `--set <target>.labels.kiln.inputs.digest=…`
/// per image at build time (see [`crate::digest`]).
pub fn command(request: &BakeRequest) -> (BTreeMap<String, String>, Vec<String>) {
    let mut argv: Vec<String> = vec!["docker".into(), "buildx".into(), "bake".into()];
    for file in &request.files {
        argv.push("-f".into());
        argv.push(path_word(file));
    }
    for set in &request.sets {
        argv.push("--set".into());
        argv.push(set.clone());
    }
    argv.extend(request.targets.iter().cloned());
    argv.push("--load".into());
    (request.vars.clone(), argv)
}

/// [`command`] as one shell line: `NAME=value … docker buildx bake …`.
pub fn display(request: &BakeRequest) -> String {
    let (env, argv) = command(request);
    shell::join_with_env(&env, &argv)
}

/// Runs `docker buildx bake` as `kiln bake` was asked to (without `--print`): the
/// same files, `--set`s, flags and targets, the variables in the environment, output
/// to the terminal, its exit status passed through. buildx missing is exit status 3.
pub fn run_passthrough(
    repo: &std::path::Path,
    vars: &BTreeMap<String, String>,
    args: &[String],
) -> anyhow::Result<std::process::ExitCode> {
    let docker = which::which("docker").ok();
    let buildx = docker.as_ref().is_some_and(|d| {
        duct::cmd(d, ["buildx", "version"])
            .stdout_null()
            .stderr_null()
            .unchecked()
            .run()
            .is_ok_and(|o| o.status.success())
    });
    if !buildx {
        return Err(crate::error::Failure {
            code: 3,
            message: format!(
                "kiln bake builds with `docker buildx bake`, and {}; `kiln build --backend podman` or \
                 `--backend engine` builds the fleet without buildx, and `kiln bake --print` resolves without building",
                if docker.is_none() { "docker is not on PATH" } else { "`docker buildx version` failed (no buildx plugin)" }
            ),
        }
        .into());
    }
    let mut argv: Vec<String> = vec!["docker".into(), "buildx".into(), "bake".into()];
    argv.extend(args.iter().cloned());
    eprintln!("+ {}", shell::join_with_env(vars, &argv));
    let mut expr = duct::cmd(&argv[0], &argv[1..]).dir(repo).unchecked();
    for (k, v) in vars {
        expr = expr.env(k, v);
    }
    let status = expr.run()?.status;
    Ok(std::process::ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_env_files_sets_targets() {
        let request = BakeRequest {
            files: vec![
                "docker-bake.hcl".into(),
                "benchmarks/demo/docker-bake.hcl".into(),
            ],
            vars: BTreeMap::from([("EVAL_TASK_ID".into(), "Fix-Bug.1".into())]),
            sets: vec![
                "benchmark-demo.tags=kiln.local/benchmarks/demo-fix-bug.1:dev".into(),
                "benchmark-demo.labels.org.opencontainers.image.description=two words".into(),
            ],
            targets: vec!["benchmark-demo".into()],
            builds: vec![0],
        };
        assert_eq!(
            display(&request),
            "EVAL_TASK_ID=Fix-Bug.1 docker buildx bake -f docker-bake.hcl -f benchmarks/demo/docker-bake.hcl \
             --set benchmark-demo.tags=kiln.local/benchmarks/demo-fix-bug.1:dev \
             --set 'benchmark-demo.labels.org.opencontainers.image.description=two words' benchmark-demo --load"
        );
    }
}
