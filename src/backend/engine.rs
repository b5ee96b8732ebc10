//! The engine backend: builds through the Docker Engine API (bollard), into
//! Docker's image store.
//!
//! Labels: the legacy builder turns every `labels` entry of the API request into a
//! `LABEL` step of its own (about a second each here, an image has twenty), so kiln
//! appends them to the built stage as one `LABEL` instruction of a copy of the
//! Dockerfile ([`labelled_dockerfile`]; the copy travels as `.kiln.Dockerfile`,
//! dropped from the context by the engine). The image config is the same as
//! `docker build --label …` gives; only the history has one step instead of many.
//! Where the Dockerfile cannot be read safely (an `escape` directive, a missing
//! target stage, a value with a newline) the labels go through the API as usual.
//!
//! Secrets: the engine here runs the legacy builder, which has no build secrets, and
//! a secret must never become a build arg. A spec with secrets is therefore refused
//! before anything runs ([`refusal`]); use `--backend podman` (or bake) for it.

use std::collections::BTreeMap;

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
/// Specs with secrets are refused by the engine backend (see [`refusal`]), so no
/// `--secret` is rendered.
pub fn equivalent_docker_build(spec: &BuildSpec) -> Vec<String> {
    let mut argv = Vec::new();
    build_argv(&mut argv, "docker", spec);
    argv.push(path_word(&spec.context));
    argv
}

/// The dry run: the `docker build` equivalent of each Engine API request, bases first.
pub fn dry_run(builds: &[BuildSpec]) -> Vec<String> {
    let mut lines = vec!["# the Engine API requests kiln sends are equivalent to:".to_string()];
    lines.extend(
        builds
            .iter()
            .map(|spec| super::shell::join(&equivalent_docker_build(spec))),
    );
    lines
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
/// label check); dropping the connection on cancel makes the engine stop the build.
pub async fn build(
    env: &Env,
    spec: &BuildSpec,
    ctx: crate::context::Context,
) -> Result<Built, Stop> {
    let docker = bollard::Docker::connect_with_local_defaults()
        .context("connecting to the Docker Engine")?;
    env.progress.step(&spec.name, "sending context");
    // One LABEL instruction instead of one legacy-builder step per label (see the module doc).
    let text = std::fs::read_to_string(&ctx.dockerfile).ok();
    let labels: BTreeMap<String, String> = spec
        .labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let labelled = text.and_then(|t| labelled_dockerfile(&t, spec.target.as_deref(), &labels));
    let api_labels = labelled.is_none().then(|| labels.into_iter().collect());
    let (tar, dockerfile) = tokio::task::spawn_blocking(move || ctx.tar(labelled.as_deref()))
        .await
        .map_err(|e| Stop::Failed(format!("packing the context: {e}")))??;
    let options = bollard::query_parameters::BuildImageOptions {
        dockerfile,
        t: None,
        buildargs: Some(spec.args.clone().into_iter().collect()),
        labels: api_labels,
        target: spec.target.clone().unwrap_or_default(),
        rm: true,
        forcerm: true,
        pull: None,
        version: bollard::query_parameters::BuilderVersion::BuilderV1,
        ..Default::default()
    };
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(tar.into())));
    let mut cancel = env.cancel.clone();
    let mut id: Option<String> = None;
    let mut tail: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            item = stream.next() => {
                let Some(item) = item else { break };
                let info = match item {
                    Ok(info) => info,
                    Err(bollard::errors::Error::DockerStreamError { error }) => {
                        return Err(Stop::Failed(format!("{}: {error}", last_step(&tail))));
                    }
                    Err(e) => return Err(Stop::Failed(format!("the Docker Engine build failed or went away: {e}"))),
                };
                if let Some(detail) = info.error_detail {
                    return Err(Stop::Failed(format!("{}: {}", last_step(&tail), detail.message.unwrap_or_default())));
                }
                if let Some(aux) = info.aux {
                    if let Some(found) = aux.id { id = Some(found); }
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

fn last_step(tail: &[String]) -> String {
    tail.iter()
        .rev()
        .find(|l| l.starts_with("Step ") || l.starts_with("STEP "))
        .cloned()
        .unwrap_or_else(|| "build".into())
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
        let msg = refusal(&spec).unwrap();
        assert!(msg.contains("(hf)"), "{msg}");
        assert!(!msg.contains("HF_TOKEN"));
    }
}
