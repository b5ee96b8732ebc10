//! The engine backend: builds through the Docker Engine API (bollard), into
//! Docker's image store.
//!
//! Builders: where the engine offers BuildKit over its session API (a Linux Docker
//! Engine, API 1.40 or later: Docker 19.03+, which has `/session` and `/grpc`; not
//! podman's Docker-compatible service) kiln builds with it ([`offers_buildkit`]);
//! otherwise with the legacy builder. `KILN_ENGINE_BUILDER=legacy` (or `buildkit`)
//! overrides the detection.
//!
//! - BuildKit, no secrets: `POST /build` with `version=2` and a session (bollard's
//!   `build_image`), so progress, step output and the image id stream back and the
//!   image is built untagged, as with the legacy builder.
//! - BuildKit, with secrets: bollard 0.21's `build_image` session serves no secrets
//!   (a `--mount=type=secret` finds nothing: "secret s not found"), so kiln solves
//!   through the engine's BuildKit controller instead (`/session` + `/grpc`, bollard's
//!   `grpc::driver::moby`), which serves them from the environment variable or file
//!   the spec names. That call returns no progress and no image id: the image comes
//!   out named `spec.image` (like podman's `-t`), and a failure reports BuildKit's
//!   message (the step and its exit code) without the step's output.
//! - Legacy: every `labels` entry of the API request becomes a `LABEL` step of its
//!   own (about a second each here, an image has twenty), so kiln appends them to the
//!   built stage as one `LABEL` instruction of a copy of the Dockerfile
//!   ([`labelled_dockerfile`]; the copy travels as `.kiln.Dockerfile`, dropped from
//!   the context by the engine). The image config is the same as `docker build
//!   --label …` gives; only the history has one step instead of many. Where the
//!   Dockerfile cannot be read safely (an `escape` directive, a missing target stage,
//!   a value with a newline) the labels go through the API as usual. The legacy
//!   builder has no build secrets, and a secret must never become a build arg: on an
//!   engine without BuildKit a spec with secrets is refused before anything runs
//!   ([`refusal`]).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use anyhow::Context as _;
use futures_util::StreamExt;

use crate::plan::BuildSpec;

use super::{build_argv, path_word, Built, Env, Stop};

/// The `docker build` command equivalent to the Engine API request kiln sends for
/// `spec`: same Dockerfile, context (after `.dockerignore`), build args, labels and
/// target; no pull (the legacy builder's default; bases must already be local).
///
/// kiln itself builds untagged and tags `spec.image` only after the build and the
/// label check succeeded; `docker build -t` likewise tags only on success. The
/// executor adds the `kiln.inputs.digest` label at build time (see [`crate::digest`]).
/// Secrets render as `--secret` (BuildKit engines only; elsewhere such a spec is
/// refused, see [`refusal`]).
pub fn equivalent_docker_build(spec: &BuildSpec) -> Vec<String> {
    let mut argv = Vec::new();
    build_argv(&mut argv, "docker", spec);
    for secret in &spec.secrets {
        argv.push("--secret".into());
        argv.push(secret.word());
    }
    argv.push(path_word(&spec.context));
    argv
}

/// The dry run: the `docker build` equivalent of each Engine API request, bases first.
pub fn dry_run(out: &mut dyn std::io::Write, builds: &[BuildSpec]) -> std::io::Result<()> {
    writeln!(
        out,
        "# the Engine API requests kiln sends are equivalent to:"
    )?;
    for spec in builds {
        writeln!(
            out,
            "{}",
            super::shell::join(&equivalent_docker_build(spec))
        )?;
    }
    Ok(())
}

/// `text` with one `LABEL` instruction holding `labels` appended to the stage that
/// gets built (`target`, or the last stage). `None` when that cannot be done safely.
pub fn labelled_dockerfile(
    text: &str,
    target: Option<&str>,
    labels: &BTreeMap<String, String>,
) -> Option<String> {
    if labels.is_empty() {
        return None;
    }
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut stages: Vec<(usize, Option<String>)> = Vec::new(); // (line of FROM, stage name)
    let mut continued = false;
    let mut seen_instruction = false;
    for (n, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if !continued {
            if let Some(comment) = trimmed.strip_prefix('#') {
                // Parser directives come before any instruction; kiln's scan assumes the default escape.
                let directive = comment.trim().to_ascii_lowercase().replace(' ', "");
                if !seen_instruction && directive.starts_with("escape=") {
                    return None;
                }
                continue;
            }
            if trimmed.is_empty() {
                continue;
            }
            seen_instruction = true;
            let words: Vec<&str> = trimmed.split_whitespace().collect();
            if words[0].eq_ignore_ascii_case("FROM") {
                let name = words
                    .iter()
                    .position(|w| w.eq_ignore_ascii_case("AS"))
                    .and_then(|i| words.get(i + 1))
                    .map(|w| w.to_ascii_lowercase());
                stages.push((n, name));
            }
        } else if trimmed.starts_with('#') {
            continue; // a comment inside a continued instruction
        }
        continued = trimmed.ends_with('\\');
    }
    if continued || stages.is_empty() {
        return None;
    }
    let stage = match target {
        Some(t) => stages
            .iter()
            .position(|(_, name)| name.as_deref() == Some(&t.to_ascii_lowercase()))?,
        None => stages.len() - 1,
    };
    let insert_at = stages.get(stage + 1).map_or(lines.len(), |(line, _)| *line);
    let quote = |s: &str| -> Option<String> {
        if s.contains(['\n', '\r']) {
            return None;
        }
        Some(format!(
            "\"{}\"",
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('$', "\\$")
        ))
    };
    let mut label = String::from("LABEL");
    for (k, v) in labels {
        label.push_str(&format!(" {}={}", quote(k)?, quote(v)?));
    }
    label.push('\n');
    let mut out = String::with_capacity(text.len() + label.len() + 1);
    for line in &lines[..insert_at] {
        out.push_str(line);
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&label);
    for line in &lines[insert_at..] {
        out.push_str(line);
    }
    Some(out)
}

/// Builds `spec` through the Engine API, untagged (the scheduler names it after the
/// label check) except for BuildKit builds with secrets (see the module doc);
/// dropping the connection on cancel makes the engine stop the build.
pub async fn build(
    env: &Env,
    spec: &BuildSpec,
    ctx: crate::context::Context,
) -> Result<Built, Stop> {
    let docker = bollard::Docker::connect_with_local_defaults()
        .context("connecting to the Docker Engine")?;
    if !buildkit_here(&docker).await {
        return build_legacy(env, spec, ctx, &docker).await;
    }
    if !spec.secrets.is_empty() {
        return build_with_secrets(env, spec, ctx, &docker).await;
    }
    env.progress.step(&spec.name, "sending context (BuildKit)");
    let (tar, dockerfile) = tokio::task::spawn_blocking(move || ctx.tar(None))
        .await
        .map_err(|e| Stop::Failed(format!("packing the context: {e}")))??;
    let session = format!(
        "kiln-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let options = bollard::query_parameters::BuildImageOptions {
        labels: Some(text_map(&spec.labels)),
        version: bollard::query_parameters::BuilderVersion::BuilderBuildKit,
        session: Some(session),
        ..build_options(spec, dockerfile)
    };
    let stream = docker.build_image(options, None, Some(bollard::body_full(tar.into())));
    follow(env, spec, stream).await
}

async fn build_legacy(
    env: &Env,
    spec: &BuildSpec,
    ctx: crate::context::Context,
    docker: &bollard::Docker,
) -> Result<Built, Stop> {
    env.progress.step(&spec.name, "sending context");
    // One LABEL instruction instead of one legacy-builder step per label (see the module doc).
    let text = std::fs::read_to_string(&ctx.dockerfile).ok();
    let labels: BTreeMap<String, String> = text_map(&spec.labels);
    let labelled = text.and_then(|t| labelled_dockerfile(&t, spec.target.as_deref(), &labels));
    let api_labels = labelled.is_none().then(|| labels.into_iter().collect());
    let (tar, dockerfile) = tokio::task::spawn_blocking(move || ctx.tar(labelled.as_deref()))
        .await
        .map_err(|e| Stop::Failed(format!("packing the context: {e}")))??;
    let options = bollard::query_parameters::BuildImageOptions {
        labels: api_labels,
        version: bollard::query_parameters::BuilderVersion::BuilderV1,
        ..build_options(spec, dockerfile)
    };
    let stream = docker.build_image(options, None, Some(bollard::body_full(tar.into())));
    follow(env, spec, stream).await
}

/// What either builder's `POST /build` takes from the spec (the tag is set after the
/// label check, not here).
fn build_options(
    spec: &BuildSpec,
    dockerfile: String,
) -> bollard::query_parameters::BuildImageOptions {
    bollard::query_parameters::BuildImageOptions {
        dockerfile,
        t: None,
        buildargs: Some(text_map(&spec.args)),
        target: spec.target.clone().unwrap_or_default(),
        rm: true,
        forcerm: true,
        pull: None,
        ..Default::default()
    }
}

/// A spec's args or labels as the owned text bollard takes.
fn text_map<M: FromIterator<(String, String)>>(m: &crate::plan::Labels) -> M {
    m.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Follows a `POST /build` response (either builder) to the image id.
async fn follow(
    env: &Env,
    spec: &BuildSpec,
    stream: impl futures_util::Stream<Item = Result<bollard::models::BuildInfo, bollard::errors::Error>>,
) -> Result<Built, Stop> {
    use bollard::models::BuildInfoAux;
    let mut stream = Box::pin(stream);
    let mut cancel = env.cancel.clone();
    let mut id: Option<String> = None;
    let mut tail: Vec<String> = Vec::new();
    let mut output: Vec<String> = Vec::new(); // BuildKit's step output (the legacy builder's is in `tail`)
    loop {
        tokio::select! {
            item = stream.next() => {
                let Some(item) = item else { break };
                let info = match item {
                    Ok(info) => info,
                    Err(bollard::errors::Error::DockerStreamError { error }) => {
                        let mut message = format!("{}: {error}", last_step(&tail));
                        if !output.is_empty() {
                            message = format!("{message}\nlast output:\n{}", output.join("\n"));
                        }
                        return Err(Stop::Failed(message));
                    }
                    Err(e) => return Err(Stop::Failed(format!("the Docker Engine build failed or went away: {e}"))),
                };
                if let Some(detail) = info.error_detail {
                    return Err(Stop::Failed(format!("{}: {}", last_step(&tail), detail.message.unwrap_or_default())));
                }
                match info.aux {
                    Some(BuildInfoAux::Default(image)) => {
                        if let Some(found) = image.id { id = Some(found); }
                    }
                    Some(BuildInfoAux::BuildKit(status)) => {
                        let started = status.vertexes.iter().filter(|v| v.started.is_some() && v.completed.is_none());
                        for vertex in started.filter(|v| !v.name.starts_with("[internal]")) {
                            env.progress.step(&spec.name, &vertex.name);
                            tail.push(format!("STEP {}", vertex.name));
                        }
                        for log in &status.logs {
                            let text = String::from_utf8_lossy(&log.msg);
                            output.extend(text.lines().map(str::trim_end).filter(|l| !l.is_empty()).map(String::from));
                        }
                        let excess = output.len().saturating_sub(20);
                        output.drain(..excess);
                        let excess = tail.len().saturating_sub(20);
                        tail.drain(..excess);
                    }
                    None => {}
                }
                if let Some(text) = info.stream {
                    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                        if line.starts_with("Step ") {
                            env.progress.step(&spec.name, line);
                        }
                        if let Some(short) = line.strip_prefix("Successfully built ") {
                            id.get_or_insert_with(|| short.to_string());
                        }
                        tail.push(line.to_string());
                        if tail.len() > 20 { tail.remove(0); }
                    }
                }
            }
            _ = cancel.changed() => {
                drop(stream); // closing the connection makes the engine cancel the build
                return Err(Stop::Interrupted);
            }
        }
    }
    let id = id.ok_or_else(|| {
        Stop::Failed(format!(
            "the engine reported no image id; last output:\n{}",
            tail.join("\n")
        ))
    })?;
    Ok(Built {
        reference: id,
        tagged: false,
    })
}

/// A BuildKit build with secrets, through the engine's BuildKit controller (see the
/// module doc): the image comes out named `spec.image`.
async fn build_with_secrets(
    env: &Env,
    spec: &BuildSpec,
    ctx: crate::context::Context,
    docker: &bollard::Docker,
) -> Result<Built, Stop> {
    use bollard::grpc::build::{ImageBuildFrontendOptions, ImageBuildLoadInput, SecretSource};
    use bollard::grpc::driver::Build as _;
    env.progress
        .step(&spec.name, "sending context (BuildKit, with secrets)");
    let (tar, dockerfile) = tokio::task::spawn_blocking(move || ctx.tar(None))
        .await
        .map_err(|e| Stop::Failed(format!("packing the context: {e}")))??;
    let mut options =
        ImageBuildFrontendOptions::builder().dockerfile(std::path::Path::new(&dockerfile));
    if let Some(target) = &spec.target {
        options = options.target(target);
    }
    for (k, v) in &spec.args {
        options = options.buildarg(k, v);
    }
    for (k, v) in &spec.labels {
        options = options.label(k.as_ref(), v.as_ref());
    }
    for secret in &spec.secrets {
        let source = match (&secret.env, &secret.src) {
            (Some(var), _) => SecretSource::Env(var.clone()),
            (None, Some(path)) => SecretSource::File(path.clone()),
            (None, None) => SecretSource::Env(secret.id.clone()),
        };
        options = options.set_secret(&secret.id, &source);
    }
    let options = options.build();
    env.progress.step(
        &spec.name,
        "building (BuildKit; no step output on this path)",
    );
    // bollard's solve future is not `Send` (boxed futures inside), and kiln's builds
    // run as tasks of a multi-threaded runtime: it runs on a blocking thread of its
    // own, still on this runtime's I/O.
    let handle = tokio::runtime::Handle::current();
    let docker = docker.clone();
    let image = spec.image.clone();
    let mut cancel = env.cancel.clone();
    let result = tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            let driver = bollard::grpc::driver::moby::Moby::new(&docker);
            let solve = driver.docker_build(
                &image,
                options,
                ImageBuildLoadInput::Upload(tar.into()),
                None,
                None,
            );
            tokio::select! {
                result = solve => Some(result),
                // Dropping the solve closes the session, and BuildKit cancels the build.
                _ = cancel.changed() => None,
            }
        })
    })
    .await
    .map_err(|e| Stop::Failed(format!("the BuildKit session thread failed: {e}")))?;
    match result {
        None => Err(Stop::Interrupted),
        Some(Ok(())) => Ok(Built {
            reference: spec.image.clone(),
            tagged: true,
        }),
        Some(Err(bollard::grpc::error::GrpcError::TonicStatus { err })) => {
            Err(Stop::Failed(format!("BuildKit: {}", err.message())))
        }
        Some(Err(e)) => Err(Stop::Failed(format!(
            "the engine's BuildKit failed or went away: {e}"
        ))),
    }
}

/// Which builder `KILN_ENGINE_BUILDER` asks for: `Some(true)` BuildKit, `Some(false)`
/// legacy, `None` (unset or `auto`) whichever the engine offers.
fn builder_override() -> Option<bool> {
    match crate::env::ENGINE_BUILDER.get()?.as_str() {
        "buildkit" => Some(true),
        "legacy" => Some(false),
        _ => None,
    }
}

/// The engine's answer, asked once a process.
static OFFERED: OnceLock<bool> = OnceLock::new();

/// Whether the engine builds with BuildKit over its session API: a Linux engine
/// with API 1.40 or later (Docker 19.03+: `/session`, `/grpc`) that is not podman's
/// Docker-compatible service (its `/build` takes no BuildKit session).
pub async fn offers_buildkit(docker: &bollard::Docker) -> bool {
    let Ok(version) = docker.version().await else {
        return false;
    };
    let api = version.api_version.as_deref().and_then(|v| {
        let (major, minor) = v.split_once('.')?;
        Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
    });
    let podman = version
        .components
        .iter()
        .flatten()
        .any(|c| c.name.to_ascii_lowercase().contains("podman"));
    version.os.as_deref() == Some("linux") && api >= Some((1, 40)) && !podman
}

async fn buildkit_here(docker: &bollard::Docker) -> bool {
    if let Some(forced) = builder_override() {
        return forced;
    }
    if let Some(offered) = OFFERED.get() {
        return *offered;
    }
    let offered = offers_buildkit(docker).await;
    *OFFERED.get_or_init(|| offered)
}

/// [`buildkit_here`] for synchronous callers ([`refusal`]), on a thread of its own.
fn buildkit_here_blocking() -> bool {
    if let Some(forced) = builder_override() {
        return forced;
    }
    if let Some(offered) = OFFERED.get() {
        return *offered;
    }
    let offered = std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        let docker = bollard::Docker::connect_with_local_defaults().ok()?;
        Some(runtime.block_on(offers_buildkit(&docker)))
    })
    .join()
    .ok()
    .flatten()
    .unwrap_or(false);
    *OFFERED.get_or_init(|| offered)
}

fn last_step(tail: &[String]) -> String {
    tail.iter()
        .rev()
        .find(|l| l.starts_with("Step ") || l.starts_with("STEP "))
        .cloned()
        .unwrap_or_else(|| "build".into())
}

/// Why the engine backend refuses `spec`, if it does: build secrets need BuildKit,
/// and this engine builds with the legacy builder (see the module doc).
pub fn refusal(spec: &BuildSpec) -> Option<String> {
    if spec.secrets.is_empty() || buildkit_here_blocking() {
        return None;
    }
    Some(secrets_refusal(spec))
}

fn secrets_refusal(spec: &BuildSpec) -> String {
    let ids: Vec<&str> = spec.secrets.iter().map(|s| s.id.as_str()).collect();
    format!(
        "{}: the engine backend cannot pass build secrets ({}): this engine offers no BuildKit, \
         its legacy builder has no secrets, and a secret is never sent as a build arg; \
         use --backend podman or --backend bake",
        spec.name,
        ids.join(", ")
    )
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
    fn labels_join_the_built_stage() {
        let labels = BTreeMap::from([
            ("a.b".to_string(), "x y".to_string()),
            ("c".to_string(), r#"q"$HOME\"#.to_string()),
        ]);
        let df = "FROM x AS build\nRUN make \\\n  # a comment\n  FROM-not-a-stage\nFrom y as Final\nCOPY --from=build /a /a\n\nFROM z AS test\nRUN true";
        let want_label = r#"LABEL "a.b"="x y" "c"="q\"\$HOME\\""#;
        assert_eq!(
            labelled_dockerfile(df, Some("final"), &labels).unwrap(),
            format!("FROM x AS build\nRUN make \\\n  # a comment\n  FROM-not-a-stage\nFrom y as Final\nCOPY --from=build /a /a\n\n{want_label}\nFROM z AS test\nRUN true")
        );
        assert_eq!(
            labelled_dockerfile(df, None, &labels).unwrap(),
            format!("{df}\n{want_label}\n")
        );
        assert_eq!(labelled_dockerfile(df, Some("missing"), &labels), None);
        assert_eq!(
            labelled_dockerfile("# escape=`\nFROM x\n", None, &labels),
            None
        );
        assert_eq!(
            labelled_dockerfile(
                "FROM x\n",
                None,
                &BTreeMap::from([("k".into(), "a\nb".into())])
            ),
            None
        );
        assert_eq!(
            labelled_dockerfile("FROM x\nRUN a \\\n", None, &labels),
            None
        );
    }

    #[test]
    fn secrets_refused_by_name() {
        let spec = crate::backend::test_support::sample();
        let msg = secrets_refusal(&spec);
        assert!(msg.contains("(hf)"), "{msg}");
        assert!(!msg.contains("HF_TOKEN"));
    }
}
