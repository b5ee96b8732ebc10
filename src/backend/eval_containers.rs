//! Real builds of an eval-containers plan ([`crate::plan::eval_containers`]): its steps
//! in order, each `docker buildx bake … --load` as the dry run prints it, on a builder
//! with named contexts.
//!
//! Why not the engine's own builder: the fleet binds its images to one another with
//! bake named contexts (`target:agent-base-python`) and its Dockerfiles use heredocs;
//! Docker 20.10's BuildKit v0.8 has neither, and no newer frontend can be pulled on an
//! air-gapped site. A BuildKit builder of another driver (`remote`, `docker-container`,
//! `kubernetes`) has both but cannot read the engine's image store, so every local image
//! a step starts from — a base-map entry `docker-image://LOCAL`, or an image an earlier
//! step built and `--load`ed (the eval's benchmark and agent) — is handed over as an OCI
//! layout ([`super::bake::handover`]): `--set T.contexts.REF=oci-layout://DIR:image`.

use crate::printer::errln;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;

use super::bake::handover;
use super::{shell, Env, Stop};
use crate::plan::eval_containers::{Plan, Step};

/// The driver of the buildx builder `name` (the current one when `None`).
fn driver(builder: Option<&str>) -> anyhow::Result<String> {
    let mut cmd = std::process::Command::new("docker");
    cmd.args(["buildx", "inspect"]);
    if let Some(b) = builder {
        cmd.arg(b);
    }
    let out = cmd.output().context("running docker buildx inspect")?;
    if !out.status.success() {
        anyhow::bail!(
            "docker buildx inspect {}: {}",
            builder.unwrap_or(""),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Driver:"))
        .map(|d| d.trim().to_string())
        .unwrap_or_default())
}

/// The outcome of one step.
pub struct Outcome {
    pub image: String,
    pub seconds: f64,
    pub ok: bool,
    pub log: PathBuf,
}

/// Builds `plan`'s steps in order on `builder`, stopping at the first failure (later
/// steps build on earlier ones). Each step's output goes to a log under `.kiln/logs/`.
pub fn build(root: &Path, plan: &Plan, builder: Option<&str>) -> anyhow::Result<Vec<Outcome>> {
    let driver = driver(builder)?;
    if driver == "docker" {
        anyhow::bail!(
            "the builder {} uses the docker driver (the engine's own BuildKit): an eval-containers fleet needs named contexts and heredocs, which Docker 20.10's BuildKit v0.8 lacks; pass --builder NAME of a BuildKit builder (docs/layouts.md)",
            builder.unwrap_or("(current)")
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (_cancel_tx, cancel) = tokio::sync::watch::channel(false);
    let env = Env {
        repo: root.to_path_buf(),
        progress: Arc::new(crate::progress::Progress::new(crate::printer::Mode::Quiet)),
        cancel,
    };
    let logs = root.join(".kiln/logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let mut outcomes = Vec::new();
    for step in &plan.steps {
        let image = step.image().to_string();
        let (vars, argv) = match step {
            Step::Bake { built, .. } => {
                let (vars, argv) = step.command();
                let argv =
                    rt.block_on(bake_argv(&env, argv, built, builder))
                        .map_err(|e| match e {
                            Stop::Failed(m) => anyhow::anyhow!(m),
                            Stop::Interrupted => anyhow::anyhow!("interrupted"),
                        })?;
                (vars, argv)
            }
            Step::Script { .. } => step.command(),
        };
        let log = logs.join(format!("build-{}.log", image.replace(['/', ':'], "_")));
        errln!("building {image}: {}", shell::join(&argv));
        let started = Instant::now();
        let file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let status = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .current_dir(root)
            .stdout(file.try_clone()?)
            .stderr(file)
            .status()
            .with_context(|| format!("running {}", argv[0]))?;
        let seconds = started.elapsed().as_secs_f64();
        let ok = status.success();
        if ok {
            errln!("built {image} in {seconds:.1}s");
        } else {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            errln!(
                "failed: {image} after {seconds:.1}s (log {}):\n{}",
                log.display(),
                super::child::tail(&text, 25)
            );
        }
        outcomes.push(Outcome {
            image,
            seconds,
            ok,
            log,
        });
        if !ok {
            break;
        }
    }
    Ok(outcomes)
}

/// The step's argv for the builder: `--builder`, plain progress, and every local image
/// it starts from handed over as an OCI layout.
async fn bake_argv(
    env: &Env,
    argv: Vec<String>,
    built: &[(String, String)],
    builder: Option<&str>,
) -> Result<Vec<String>, Stop> {
    let mut out: Vec<String> = Vec::with_capacity(argv.len() + 8);
    let mut it = argv.into_iter().peekable();
    // `docker buildx` then the builder.
    for _ in 0..2 {
        out.extend(it.next());
    }
    if let Some(b) = builder {
        out.push("--builder".into());
        out.push(b.into());
    }
    let layout = |dir: String| format!("oci-layout://{}:image", env.repo.join(dir).display());
    while let Some(word) = it.next() {
        if word != "--set" {
            // The target comes last: the hand-overs and progress go before it.
            if it.peek().is_none() {
                for (target, image) in built {
                    let dir = handover::export(env, image, image).await?;
                    out.push("--set".into());
                    let key = crate::plan::base_map::context_key(image);
                    out.push(format!("{target}.contexts.{key}={}", layout(dir)));
                }
                out.push("--progress=plain".into());
            }
            out.push(word);
            continue;
        }
        out.push(word);
        let Some(set) = it.next() else { break };
        let mapped = match set.split_once("=docker-image://") {
            Some((lhs, local)) if lhs.contains(".contexts.") => {
                let dir = handover::export(env, local, local).await?;
                format!("{lhs}={}", layout(dir))
            }
            _ => set,
        };
        out.push(mapped);
    }
    Ok(out)
}
