//! The bake backend: `docker buildx bake … --load`, into Docker's image store.
//!
//! How it builds depends on the builder ([`detect`](super::detect) probes it):
//!
//! - **named contexts** (BuildKit ≥ 0.10): one call per [`BakeRequest`], the fleet's
//!   bake files as they are, fleet images of the same request linked by `target:`.
//!   When the builder cannot read the engine's image store (any driver but `docker`),
//!   every base a build needs and the request does not build itself (an outside base
//!   such as `debian:bookworm-slim`, or a fleet image built earlier) is exported into
//!   an OCI layout under `.kiln/oci/` and handed over as a named context
//!   ([`handover`]): `--set <target>.contexts.<base>=oci-layout://…`.
//! - **no named contexts** (the `docker` driver of an engine whose BuildKit is older,
//!   such as Docker 20.10's v0.8): one call per image, bases first, each defined from
//!   its [`BuildSpec`] on stdin without `contexts` (`-f -`); the docker driver reads
//!   the engine's store, so `FROM ${BASE_IMAGE}` finds the base built just before.

pub mod handover;

use crate::printer::errln;
use std::collections::BTreeMap;

use crate::plan::{BakeRequest, BuildSpec, Definition};

use super::{child, path_word, shell, Built, Env, Stop};

/// How bake builds on the chosen builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One call per request; `handover`: local bases go to the builder as OCI layouts.
    Requests { handover: bool },
    /// One call per image, in dependency order, without named contexts.
    PerImage,
}

/// The builder bake runs on and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// `--builder <name>` when kiln was told one (otherwise buildx's own choice:
    /// `BUILDX_BUILDER`, then the current builder).
    pub builder: Option<String>,
    pub mode: Mode,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            builder: None,
            mode: Mode::Requests { handover: false },
        }
    }
}

fn bake_argv(setup: &Setup) -> Vec<String> {
    let mut argv: Vec<String> = vec!["docker".into(), "buildx".into()];
    if let Some(builder) = &setup.builder {
        argv.push("--builder".into());
        argv.push(builder.clone());
    }
    argv.push("bake".into());
    argv
}

/// The environment and argv of `docker buildx bake` for one request, exactly as the
/// bake executor runs it (working directory: the repository root).
///
/// Environment: the request's bake variables (for example `EVAL_TASK_ID`), set on top
/// of the inherited environment. Argv: `docker buildx bake -f <file>… --set <s>…
/// <target>… --load`. The executor adds one `--set <target>.labels.kiln.inputs.digest=…`
/// per image at build time (see [`crate::digest`]), and the hand-over `--set`s.
pub fn command(request: &BakeRequest, setup: &Setup) -> (BTreeMap<String, String>, Vec<String>) {
    let mut argv = bake_argv(setup);
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
pub fn display(request: &BakeRequest, setup: &Setup) -> String {
    let (env, argv) = command(request, setup);
    shell::join_with_env(&env, &argv)
}

/// One image as a bake file (JSON, buildx's own format) made from its spec: what the
/// per-image mode feeds to `docker buildx bake -f -`. No `contexts`: the base is read
/// from the engine's store by its reference.
pub fn image_definition(spec: &BuildSpec) -> String {
    serde_json::to_string(&Definition::new(spec)).expect("strings only")
}

/// The argv of the per-image mode: `docker buildx bake -f - <target> --load`, with
/// [`image_definition`] on stdin.
pub fn image_command(spec: &BuildSpec, setup: &Setup) -> Vec<String> {
    let mut argv = bake_argv(setup);
    argv.extend([
        "-f".into(),
        "-".into(),
        spec.bake_target.clone(),
        "--load".into(),
    ]);
    argv
}

/// [`image_command`] as a shell line with its stdin as a here-document, appended to
/// `text`. Into memory, not through `dyn Write`: JSON written straight into a `Vec` is
/// several times faster, and a dry run writes one definition per image.
fn display_image(text: &mut Vec<u8>, spec: &BuildSpec, setup: &Setup) {
    text.extend_from_slice(shell::join(&image_command(spec, setup)).as_bytes());
    text.extend_from_slice(b" <<'EOF'\n");
    serde_json::to_writer(&mut *text, &Definition::new(spec)).expect("text maps serialize");
    text.extend_from_slice(b"\nEOF\n");
}

/// The dry run for the plan: in per-image mode one bake per image, bases first;
/// otherwise, per request, the exports it needs (each base once) and its bake.
pub fn dry_run(
    out: &mut dyn std::io::Write,
    builds: &[BuildSpec],
    requests: &[BakeRequest],
    setup: &Setup,
) -> std::io::Result<()> {
    match setup.mode {
        Mode::PerImage => {
            writeln!(out, "# the builder has no named contexts: one bake per image, bases first, each base read from the engine's image store")?;
            let mut text = Vec::new();
            for spec in builds {
                text.clear();
                display_image(&mut text, spec, setup);
                out.write_all(&text)?;
            }
        }
        Mode::Requests { handover: false } => {
            for r in requests {
                writeln!(out, "{}", display(r, setup))?;
            }
        }
        Mode::Requests { handover: true } => {
            writeln!(
                out,
                "# the builder cannot read the engine's image store: each base it needs is exported to {}/<image id> (reused while the id is unchanged) and handed over as a named context",
                handover::DIR
            )?;
            let mut exported = std::collections::BTreeSet::new();
            for r in requests {
                let needs = handover::needs(r, builds);
                let mut sets = Vec::new();
                for (target, base) in &needs {
                    let layout = handover::layout_placeholder(base);
                    if exported.insert(base.clone()) {
                        writeln!(
                            out,
                            "{}",
                            shell::join(&handover::export_command(base, &layout))
                        )?;
                    }
                    sets.push(handover::context_set(target, base, &layout));
                }
                let mut r = r.clone();
                r.sets.extend(sets);
                writeln!(out, "{}", display(&r, setup))?;
            }
        }
    }
    Ok(())
}

/// Builds one image in per-image mode: [`image_definition`] on stdin, `--load`
/// names it in the engine's store.
pub async fn build_image(env: &Env, setup: &Setup, spec: &BuildSpec) -> Result<Built, Stop> {
    let argv = image_command(spec, setup);
    let definition = image_definition(spec);
    env.progress.step(&spec.name, "docker buildx bake -f -");
    let run = child::run(env, &spec.name, &BTreeMap::new(), &argv, Some(&definition)).await?;
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

/// What one request's bake call left behind.
pub struct RequestRun {
    /// The command as run, for messages.
    pub line: String,
    pub success: bool,
    pub output: String,
}

/// Builds one request (its `sets` already stamped with the input digests): hands
/// the bases over first when the setup says so, then runs bake.
pub async fn build_request(
    env: &Env,
    setup: &Setup,
    request: &BakeRequest,
    builds: &[BuildSpec],
) -> Result<RequestRun, Stop> {
    let mut request = request.clone();
    let label = request.targets.join(" ");
    if setup.mode == (Mode::Requests { handover: true }) {
        for (target, base) in handover::needs(&request, builds) {
            env.progress
                .step(&label, &format!("exporting {base} for the builder"));
            let layout = handover::export(env, &label, &base).await?;
            request
                .sets
                .push(handover::context_set(&target, &base, &layout));
        }
    }
    let (vars, argv) = command(&request, setup);
    let line = shell::join_with_env(&vars, &argv);
    env.progress.started(&label, &line);
    let run = child::run(env, &label, &vars, &argv, None).await?;
    Ok(RequestRun {
        line,
        success: run.success,
        output: run.output,
    })
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
        return Err(crate::error::Failure::no_backend(format!(
                "kiln bake builds with `docker buildx bake`, and {}; `kiln build --backend podman` or \
                 `--backend engine` builds the fleet without buildx, and `kiln bake --print` resolves without building",
                if docker.is_none() { "docker is not on PATH" } else { "`docker buildx version` failed (no buildx plugin)" }
            ),
        ));
    }
    let mut argv: Vec<String> = vec!["docker".into(), "buildx".into(), "bake".into()];
    argv.extend(args.iter().cloned());
    errln!("+ {}", shell::join_with_env(vars, &argv));
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
            display(&request, &Setup::default()),
            "EVAL_TASK_ID=Fix-Bug.1 docker buildx bake -f docker-bake.hcl -f benchmarks/demo/docker-bake.hcl \
             --set benchmark-demo.tags=kiln.local/benchmarks/demo-fix-bug.1:dev \
             --set 'benchmark-demo.labels.org.opencontainers.image.description=two words' benchmark-demo --load"
        );
    }

    #[test]
    fn per_image_definition_has_no_contexts_and_names_the_builder() {
        let spec = crate::backend::test_support::sample();
        let setup = Setup {
            builder: Some("old".into()),
            mode: Mode::PerImage,
        };
        let json: serde_json::Value = serde_json::from_str(&image_definition(&spec)).unwrap();
        let t = &json["target"]["benchmark-demo"];
        assert_eq!(t["context"], "benchmarks/demo");
        assert_eq!(t["dockerfile"], "Dockerfile");
        assert_eq!(t["target"], "final");
        assert_eq!(t["args"]["BASE_IMAGE"], "kiln.local/core/base:dev");
        assert_eq!(
            t["labels"]["org.opencontainers.image.description"],
            "A demo, with spaces"
        );
        assert_eq!(t["tags"][0], "kiln.local/benchmarks/demo:dev");
        assert_eq!(t["secret"][0], "id=hf,env=HF_TOKEN");
        assert!(t.get("contexts").is_none());
        assert_eq!(
            shell::join(&image_command(&spec, &setup)),
            "docker buildx --builder old bake -f - benchmark-demo --load"
        );
        let mut shown = Vec::new();
        display_image(&mut shown, &spec, &setup);
        assert!(shown.ends_with(b"\nEOF\n"));
    }
}
