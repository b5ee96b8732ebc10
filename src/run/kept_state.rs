//! Kept state (`kiln run --keep-state`): a run's filesystem as the agent left it,
//! committed as an image of Docker's store, so that `kiln regrade` can grade it again
//! with other graders and `kiln clean` can remove it.
//!
//! Why a committed layer and not an archive of the changed files: a commit is the
//! container's own upper layer, taken by the engine while the container is paused, so
//! it is exact (deletions, modes, owners, special files, the services' data files)
//! without kiln walking or repacking anything; it costs only the bytes the run
//! changed and shares every other layer with the eval image; and a regrade is a
//! plain container of it. An archive would have to rebuild all of that by hand.
//!
//! The runner tells kiln when (crates/runner/src/kept_state.rs): after the agent
//! phase it prints [`READY_MARKER`] with its run id on stderr and waits; kiln commits
//! the paused container ([`commit`]) and writes the runner's go file ([`go_tar`]).
//!
//! An image is named `kiln.local/kept-state/<benchmark>--<agent>:<task>-<run id>` and
//! labelled [`LABEL`] = the run id (result.json `run_id`) and `eval.type=kept-state`;
//! `kiln clean` finds kept state by that label and nothing else. The container's
//! labels naming the kiln process are blanked (a container made from the image later
//! is nobody's to reap) and so are the values of secret environment variables.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// The label every kept-state image carries; its value is the run id.
pub const LABEL: &str = "kiln.kept-state";
/// The task of a kept-state image (per-task images carry `eval.task.id` too, shared-env ones do not).
pub const LABEL_TASK: &str = "kiln.kept-state.task";
/// `eval.type` of a kept-state image: neither `kiln list images` nor a release takes it for an eval image.
pub const TYPE: &str = "kept-state";
/// The repository kept-state images live under: kiln's own, never pushed.
pub const REPOSITORY: &str = "kiln.local/kept-state";
/// What the runner prints on stderr when the state is ready (then the run id and `====`).
pub const READY_MARKER: &str = "==== KILN STATE READY";
/// The runner's go file, relative to `/` (crates/runner/src/kept_state.rs `go_file`).
const GO_FILE: &str = "run/kiln/state-kept";

/// What `run.json`'s `kept_state` says: the image, or why there is none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// The image reference (`kiln.local/kept-state/…`), null when nothing was kept.
    pub image: Option<String>,
    /// Its id (`sha256:…`).
    pub image_id: Option<String>,
    /// The runner's run id (result.json `run_id`), also the value of [`LABEL`].
    pub run_id: Option<String>,
    /// Why the state was not kept, when it was asked for and is not there.
    pub error: Option<String>,
}

impl Kept {
    pub fn failed(why: impl Into<String>) -> Kept {
        Kept {
            error: Some(why.into()),
            ..Kept::default()
        }
    }
}

/// What a run needs to commit its container.
#[derive(Debug, Clone)]
pub struct KeepState {
    pub benchmark: String,
    pub task: String,
    pub agent: String,
    /// Names of the secret environment variables: blanked in the image's config.
    pub secret_names: Vec<String>,
}

/// Image names allow `[a-z0-9]` separated by `.`, `_`, `__` or runs of `-`; fleet
/// names and task ids lowercased already are that (RULES.md).
fn component(s: &str) -> String {
    crate::naming::task_component(s)
}

/// `kiln.local/kept-state/<benchmark>--<agent>:<task>-<run id>` (a tag is at most 128
/// characters: the task is cut to fit, the run id never).
pub fn image_name(benchmark: &str, task: &str, agent: &str, run_id: &str) -> String {
    let id: String = run_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(64)
        .collect::<String>()
        .to_ascii_lowercase();
    let room = 127usize.saturating_sub(id.len());
    let task: String = component(task).chars().take(room).collect();
    let task = task.trim_end_matches(['.', '-', '_']);
    format!(
        "{REPOSITORY}/{}--{}:{task}-{id}",
        component(benchmark),
        component(agent)
    )
}

/// The run id in the runner's ready line, once `stderr` holds the whole line (the
/// marker starts a line: a progress line that merely quotes it does not count).
pub fn ready_run_id(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let at = if text.starts_with(READY_MARKER) {
        0
    } else {
        text.find(&format!("\n{READY_MARKER}"))? + 1
    } + READY_MARKER.len();
    let line = text[at..].split('\n').next()?;
    if !text[at..].contains('\n') {
        return None;
    }
    let id = line.trim().trim_end_matches("====").trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric())).then(|| id.to_string())
}

/// The labels and environment the image's config overrides (the engine merges the
/// container's config under them).
fn config(
    keep: &KeepState,
    run_id: &str,
    owner_labels: &[String],
) -> bollard::models::ContainerConfig {
    let mut labels: HashMap<String, String> = owner_labels
        .iter()
        .map(|k| (k.clone(), String::new()))
        .collect();
    labels.insert(LABEL.into(), run_id.into());
    labels.insert(LABEL_TASK.into(), keep.task.clone());
    labels.insert(crate::labels::TYPE.into(), TYPE.into());
    labels.insert(crate::labels::BENCHMARK_RELEASED.into(), String::new());
    bollard::models::ContainerConfig {
        labels: Some(labels),
        env: Some(keep.secret_names.iter().map(|n| format!("{n}=")).collect()),
        // `docker run IMAGE` regrades with the graders the image holds.
        cmd: Some(vec!["regrade".into(), "--task".into(), keep.task.clone()]),
        ..Default::default()
    }
}

/// Commits container `name` (paused while it is committed) as the kept state of
/// `run_id`.
pub async fn commit(
    docker: &bollard::Docker,
    name: &str,
    keep: &KeepState,
    run_id: &str,
    owner_labels: &[String],
) -> anyhow::Result<Kept> {
    let image = image_name(&keep.benchmark, &keep.task, &keep.agent, run_id);
    let (repo, tag) = crate::store::split_ref(&image);
    let options = bollard::query_parameters::CommitContainerOptionsBuilder::default()
        .container(name)
        .repo(&repo)
        .tag(&tag)
        .comment("kiln run --keep-state: the filesystem as the agent left it")
        .pause(true)
        .build();
    let id = docker
        .commit_container(options, config(keep, run_id, owner_labels))
        .await
        .with_context(|| format!("committing container {name} as {image}"))?
        .id;
    Ok(Kept {
        image: Some(image),
        image_id: Some(id),
        run_id: Some(run_id.to_string()),
        error: None,
    })
}

/// The tar (extracted at `/`) that writes the runner's go file with `answer`.
pub fn go_tar(answer: &str) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(answer.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(0);
    header.set_cksum();
    builder.append_data(&mut header, GO_FILE, answer.as_bytes())?;
    Ok(builder.into_inner()?)
}

/// `kept_state` of the run.json in `dir`, if it says anything.
pub fn recorded(dir: &Path) -> Option<Kept> {
    #[derive(Deserialize)]
    struct View {
        #[serde(default)]
        kept_state: Option<Kept>,
    }
    let text = std::fs::read_to_string(dir.join("run.json")).ok()?;
    serde_json::from_str::<View>(&text).ok()?.kept_state
}

/// What became of one kept-state image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// Not in the store (removed before).
    Gone,
    /// The reference names an image without [`LABEL`]: never kiln's to remove.
    NotKiln,
}

/// Whether `image` is in Docker's store and is kept state: `Some(true)` kept state,
/// `Some(false)` another image, `None` not there.
pub async fn is_kept_state(image: &str) -> anyhow::Result<Option<bool>> {
    Ok(crate::store::inspect(crate::store::Store::Docker, image)
        .await?
        .map(|info| info.labels.contains_key(LABEL)))
}

/// Removes the kept-state image `image` from Docker's store (an image without
/// [`LABEL`] is left alone).
pub async fn remove(image: &str) -> anyhow::Result<Removal> {
    match is_kept_state(image).await? {
        None => return Ok(Removal::Gone),
        Some(false) => return Ok(Removal::NotKiln),
        Some(true) => {}
    }
    let docker = bollard::Docker::connect_with_local_defaults()
        .context("connecting to the Docker Engine")?;
    docker
        .remove_image(
            image,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await
        .with_context(|| format!("removing {image}"))?;
    Ok(Removal::Removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_image_reference_rules() {
        assert_eq!(
            image_name("terminal-lite", "Fix.Config", "oracle", "0a1b2c"),
            "kiln.local/kept-state/terminal-lite--oracle:fix.config-0a1b2c"
        );
        let long = "a".repeat(128);
        let name = image_name("b", &long, "null", &"f".repeat(32));
        let tag = name.rsplit(':').next().unwrap();
        assert!(tag.len() <= 128, "{}", tag.len());
        assert!(tag.ends_with(&"f".repeat(32)));
    }

    #[test]
    fn the_ready_line_counts_once_complete() {
        let line = b"[kiln-runner] progress\n==== KILN STATE READY 0a1b ====\nmore";
        assert_eq!(ready_run_id(line).as_deref(), Some("0a1b"));
        assert_eq!(ready_run_id(b"==== KILN STATE READY 0a1b ="), None);
        assert_eq!(ready_run_id(b"nothing\n"), None);
        assert_eq!(ready_run_id(b"==== KILN STATE READY ../x ====\n"), None);
        assert_eq!(
            ready_run_id(b"==== KILN STATE READY 0a ====\n").as_deref(),
            Some("0a")
        );
        assert_eq!(
            ready_run_id(b"[kiln-runner] removed ==== KILN STATE READY 0a ====\n"),
            None
        );
    }

    #[test]
    fn the_config_blanks_owners_and_secrets() {
        let keep = KeepState {
            benchmark: "b".into(),
            task: "t".into(),
            agent: "a".into(),
            secret_names: vec!["API_KEY".into()],
        };
        let c = config(&keep, "r1", &["kiln.pid".into()]);
        let labels = c.labels.unwrap();
        assert_eq!(labels[LABEL], "r1");
        assert_eq!(labels["kiln.pid"], "");
        assert_eq!(labels[crate::labels::TYPE], TYPE);
        assert_eq!(c.env.unwrap(), vec!["API_KEY=".to_string()]);
    }

    #[test]
    fn the_go_file_lands_in_run_kiln() {
        let tar = go_tar("kept x").unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some("run/kiln/state-kept"));
    }
}
