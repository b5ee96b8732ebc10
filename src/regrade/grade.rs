//! One regrade: the current task files and runner taken out of the current eval image,
//! a container of the kept state with them copied in (no network: nothing there can
//! reach a model), the runner's `regrade` phase, and the result written beside the
//! run's own ([`crate::report::regraded`]): never over it.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use futures_util::TryStreamExt as _;
use serde::Serialize;
use tokio::sync::watch;

use super::runs::Found;
use crate::report::{self, regraded, RunnerResult};
use crate::run::container::{self, Container, Finished};
use crate::store::Store;

/// Where the current task definitions go in the regrade container (under `/kiln`,
/// which the runner keeps 0700).
const TASKS_DIR: &str = "/kiln/regrade/tasks";
/// The current runner, run instead of the one the kept image holds.
const RUNNER: &str = "/kiln/regrade/runner";
/// Where the eval image holds them.
const IMAGE_TASKS_DIR: &str = "/kiln/tasks";
const IMAGE_RUNNER: &str = "/opt/kiln/runner";
/// Copies of the run's own output that a regrade does not change: left out of its logs.
const UNCHANGED: [&str; 3] = ["agent", "setup", "state"];

/// One run to regrade.
#[derive(Debug, Clone)]
pub struct Job {
    pub run: Found,
    /// The kept-state image.
    pub kept_image: String,
    /// The current eval image (its graders and runner are used) and its input digest.
    pub eval_image: String,
    pub inputs_digest: String,
    /// The regrade container's name; `<name>-files` is the one the files come out of.
    pub container: String,
    /// The labels naming this kiln process (so a killed regrade is reaped).
    pub labels: Vec<(String, String)>,
}

/// What a regrade left.
#[derive(Debug)]
pub struct Done {
    pub n: u32,
    /// `result.regraded-<n>.json`, when the runner completed.
    pub result: Option<(PathBuf, RunnerResult)>,
    /// `regraded-<n>/`.
    pub logs: PathBuf,
    pub runner_exit: i64,
    /// Why there is no regraded result, when there is none.
    pub error: Option<String>,
}

/// kiln's record of a regrade: `regraded-<n>/regrade.json`.
#[derive(Debug, Serialize)]
struct Record<'a> {
    n: u32,
    kept_state: &'a str,
    /// The eval image the graders and runner came from.
    image: &'a str,
    inputs_digest: &'a str,
    runner_exit: i64,
    wall_sec: f64,
    kiln_version: &'static str,
    output_error: Option<&'a str>,
    container: &'a str,
}

fn docker() -> anyhow::Result<bollard::Docker> {
    bollard::Docker::connect_with_local_defaults().context("connecting to the Docker Engine")
}

/// Regrades `job`; errors are infrastructure failures (a [`container::Interrupted`]
/// when `cancel` turned true), with nothing written.
pub async fn regrade(job: &Job, cancel: watch::Receiver<bool>) -> anyhow::Result<Done> {
    let files = current_files(job).await?;
    let c = Container {
        image: job.kept_image.clone(),
        store: Store::Docker,
        name: job.container.clone(),
        args: vec![
            "regrade".into(),
            "--task".into(),
            job.run.task.clone(),
            "--tasks-dir".into(),
            TASKS_DIR.into(),
        ],
        env: Vec::new(),
        secret_env: Vec::new(),
        inject_tar: Some(files),
        entrypoint: Some(RUNNER.into()),
        keep_state: None,
        echo_progress: false,
        labels: job.labels.clone(),
        network: Some("none".into()),
    };
    let finished = container::run(&c, cancel).await?;
    write(job, &finished)
}

/// The task's directory and the runner from the current eval image, as one tar that
/// puts them at [`TASKS_DIR`]`/<task>` and [`RUNNER`].
async fn current_files(job: &Job) -> anyhow::Result<Vec<u8>> {
    let docker = docker()?;
    let name = format!("{}-files", job.container);
    let body = bollard::models::ContainerCreateBody {
        image: Some(job.eval_image.clone()),
        labels: Some(job.labels.iter().cloned().collect()),
        ..Default::default()
    };
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(&name).build()),
            body,
        )
        .await
        .with_context(|| format!("creating a container of {}", job.eval_image))?;
    let task_dir = format!("{IMAGE_TASKS_DIR}/{}", job.run.task);
    let copied = async {
        let tasks = download(&docker, &name, &task_dir).await?;
        let runner = download(&docker, &name, IMAGE_RUNNER).await?;
        Ok::<_, anyhow::Error>((tasks, runner))
    }
    .await;
    let remove = RemoveContainerOptionsBuilder::default().force(true).build();
    let removed = docker.remove_container(&name, Some(remove)).await;
    let (tasks, runner) =
        copied.with_context(|| format!("taking the graders out of {}", job.eval_image))?;
    removed.with_context(|| format!("removing container {name}"))?;
    inject_tar(&tasks, &runner)
}

async fn download(docker: &bollard::Docker, name: &str, path: &str) -> anyhow::Result<Vec<u8>> {
    let options = DownloadFromContainerOptionsBuilder::default()
        .path(path)
        .build();
    docker
        .download_from_container(name, Some(options))
        .map_ok(|b| b.to_vec())
        .try_concat()
        .await
        .with_context(|| format!("copying {path} out"))
}

/// One tar for `/`: the task directory (a tar rooted at `<task>/`) under [`TASKS_DIR`],
/// the runner (a tar of `runner`) at [`RUNNER`], the directories root-only.
fn inject_tar(tasks: &[u8], runner: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = tar::Builder::new(Vec::new());
    let tasks_dir = Path::new(TASKS_DIR.trim_start_matches('/'));
    for dir in tasks_dir.ancestors().filter(|d| !d.as_os_str().is_empty()) {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o700);
        header.set_size(0);
        header.set_mtime(0);
        out.append_data(&mut header, dir, std::io::empty())?;
    }
    copy_entries(&mut out, tasks, tasks_dir)?;
    let runner_dir = Path::new(RUNNER.trim_start_matches('/'))
        .parent()
        .expect("RUNNER has a parent");
    copy_entries(&mut out, runner, runner_dir)?;
    Ok(out.into_inner()?)
}

/// Appends every entry of `tar` under `under` (hard links follow them there; an entry
/// that would leave `under` is refused).
fn copy_entries(out: &mut tar::Builder<Vec<u8>>, tar: &[u8], under: &Path) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            bail!("refusing {} from the eval image", path.display());
        }
        let mut header = entry.header().clone();
        let dest = under.join(&path);
        match header.entry_type() {
            tar::EntryType::Link => {
                let target = entry
                    .link_name()?
                    .map(|t| under.join(t))
                    .context("a hard link without a target")?;
                out.append_link(&mut header, &dest, target)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()?
                    .context("a symbolic link without a target")?
                    .into_owned();
                out.append_link(&mut header, &dest, target)?;
            }
            _ => out.append_data(&mut header, &dest, &mut entry)?,
        }
    }
    Ok(())
}

/// Writes what `finished` produced beside the run's own result: `regraded-<n>/` (logs,
/// regrade.json) first, then `result.regraded-<n>.json` when the runner completed.
fn write(job: &Job, finished: &Finished) -> anyhow::Result<Done> {
    let dir = &job.run.dir;
    let staging = tempfile::Builder::new()
        .prefix(".regraded.partial-")
        .tempdir_in(dir)
        .with_context(|| format!("creating a directory in {}", dir.display()))?;
    let mut output_error = finished.output_error.clone();
    if let Some(tar) = &finished.output_tar {
        if let Err(e) = crate::run::unpack_output(tar, staging.path()) {
            output_error = Some(format!("{e:#}"));
        }
    }
    for name in UNCHANGED {
        let _ = std::fs::remove_dir_all(staging.path().join(name));
    }
    std::fs::write(staging.path().join("runner.stdout.log"), &finished.stdout)?;
    std::fs::write(staging.path().join("runner.stderr.log"), &finished.stderr)?;
    // Nothing named result.json stays in the logs: that name is a run's.
    let inside = staging.path().join("result.json");
    let text = match std::fs::read_to_string(&inside) {
        Ok(t) => Some(t),
        Err(_) => crate::run::between_markers(&String::from_utf8_lossy(&finished.stdout))
            .map(|j| format!("{j}\n")),
    };
    let _ = std::fs::remove_file(&inside);
    let completed = finished.exit_code == 0 && text.is_some();
    if let (false, Some(t)) = (completed, &text) {
        std::fs::write(staging.path().join("result.incomplete.json"), t)?;
    }
    let (n, logs) = place(staging, dir, |n| Record {
        n,
        kept_state: &job.kept_image,
        image: &job.eval_image,
        inputs_digest: &job.inputs_digest,
        runner_exit: finished.exit_code,
        wall_sec: (finished.wall.as_secs_f64() * 1000.0).round() / 1000.0,
        kiln_version: env!("CARGO_PKG_VERSION"),
        output_error: output_error.as_deref(),
        container: &job.container,
    })?;
    let Some(text) = text.filter(|_| completed) else {
        let error = match (finished.exit_code, output_error) {
            (0, Some(why)) => why,
            (0, None) => "the runner wrote no result.json and printed none".into(),
            (code, _) => format!(
                "the runner did not complete (exit {code}; see {})",
                logs.display()
            ),
        };
        return Ok(Done {
            n,
            result: None,
            logs,
            runner_exit: finished.exit_code,
            error: Some(error),
        });
    };
    let path = regraded::result_file(dir, n);
    let text = with_model_section(&text, &dir.join("result.json"))?;
    let partial = dir.join(format!(".result.regraded-{n}.json.partial"));
    std::fs::write(&partial, text).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &path).with_context(|| format!("writing {}", path.display()))?;
    let result = report::read_result(&path)?;
    Ok(Done {
        n,
        result: Some((path, result)),
        logs,
        runner_exit: finished.exit_code,
        error: None,
    })
}

/// Renames `staging` to the next free `regraded-<n>/` of `dir` (another regrade of the
/// same run may take a number at the same time), with `record(n)` as its regrade.json.
/// Every layout's regrade places its logs through here.
pub(super) fn place<R: serde::Serialize>(
    staging: tempfile::TempDir,
    dir: &Path,
    record: impl Fn(u32) -> R,
) -> anyhow::Result<(u32, PathBuf)> {
    let staging = staging.keep();
    let mut n = regraded::next_number(dir);
    for _ in 0..100 {
        std::fs::write(
            staging.join("regrade.json"),
            serde_json::to_string_pretty(&record(n))? + "\n",
        )?;
        let logs = regraded::log_dir(dir, n);
        if !logs.exists() && std::fs::rename(&staging, &logs).is_ok() {
            return Ok((n, logs));
        }
        n = regraded::next_number(dir).max(n + 1);
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!(
        "no free regrade number in {} (left in {})",
        dir.display(),
        staging.display()
    )
}

/// The regraded result with the run's `model` section (the gateway's counters, which
/// kiln wrote after the run): the agent's model calls are the run's, regraded or not.
fn with_model_section(text: &str, original: &Path) -> anyhow::Result<String> {
    let mut result: serde_json::Value =
        serde_json::from_str(text).context("the regraded result.json is not JSON")?;
    let model = std::fs::read_to_string(original)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .map(|r| r["model"].clone())
        .filter(|m| !m.is_null());
    if let Some(model) = model {
        result["model"] = model;
    }
    Ok(serde_json::to_string_pretty(&result)? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, text) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(text.len() as u64);
            h.set_mode(0o755);
            b.append_data(&mut h, path, text.as_bytes()).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn the_files_land_under_kiln_regrade() {
        let tasks = tar_of(&[("count-lines/grading/test.sh", "#!/bin/sh\n")]);
        let runner = tar_of(&[("runner", "\x7fELF")]);
        let tar = inject_tar(&tasks, &runner).unwrap();
        let mut paths = Vec::new();
        for e in tar::Archive::new(tar.as_slice()).entries().unwrap() {
            let e = e.unwrap();
            paths.push((
                e.path().unwrap().display().to_string(),
                e.header().mode().unwrap(),
            ));
        }
        assert!(paths.contains(&(
            "kiln/regrade/tasks/count-lines/grading/test.sh".into(),
            0o755
        )));
        assert!(paths.contains(&("kiln/regrade/runner".into(), 0o755)));
        assert!(paths.contains(&("kiln/regrade".into(), 0o700)), "{paths:?}");
        // An entry leaving its directory (the tar crate will not write one: by hand).
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_old();
        let name = b"../etc/passwd";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_size(1);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let evil = b.into_inner().unwrap();
        assert!(inject_tar(&evil, &runner).is_err());
    }

    #[test]
    fn the_model_section_of_the_run_stays() {
        let tmp = tempfile::tempdir().unwrap();
        let original = tmp.path().join("result.json");
        std::fs::write(&original, r#"{"model": {"calls": 3}}"#).unwrap();
        let out = with_model_section(r#"{"score": 1, "model": null}"#, &original).unwrap();
        assert!(out.contains("\"calls\": 3"), "{out}");
        std::fs::write(&original, r#"{"model": null}"#).unwrap();
        let out = with_model_section(r#"{"score": 1, "model": null}"#, &original).unwrap();
        assert!(out.contains("\"model\": null"), "{out}");
    }
}
