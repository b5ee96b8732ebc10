//! Running one eval image to completion: on the Docker Engine through its API
//! (bollard), or with the podman CLI when the image lives in podman's store.
//! Both do the same thing: create the container, copy files in (the solution of an
//! oracle run, the graders and runner of a regrade), start it and collect
//! stdout/stderr, wait, copy `/output` out as a tar, remove the container. On the
//! engine a run that keeps its state is committed when the runner says it is ready
//! ([`super::kept_state`]).

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::{StreamExt as _, TryStreamExt as _};
use tokio::sync::watch;

use crate::store::Store;

/// Where the runner writes inside the container (docs/scenario-format.md §2).
pub const OUTPUT_DIR: &str = "/output";
/// Where the runner looks for a task's reference solution.
pub const SOLUTIONS_DIR: &str = "/kiln/solutions";

/// One container to run.
#[derive(Debug, Clone)]
pub struct Container {
    pub image: String,
    pub store: Store,
    /// The container's name (unique per run).
    pub name: String,
    /// Arguments to the image's entry point (the runner).
    pub args: Vec<String>,
    /// Plain environment, `NAME=value`: shown nowhere, but not secret either.
    pub env: Vec<(String, String)>,
    /// Secret environment (API keys): names and values; values never reach a command
    /// line or a log (podman reads them from kiln's own environment).
    pub secret_env: Vec<(String, String)>,
    /// A tar extracted at `/` before start: the solution under [`SOLUTIONS_DIR`]
    /// (oracle runs only), or a regrade's task files and runner.
    pub inject_tar: Option<Vec<u8>>,
    /// Instead of the image's entry point (a regrade runs the runner it brought).
    pub entrypoint: Option<String>,
    /// Commit the container when the runner's state is ready (`--keep-state`; engine only).
    pub keep_state: Option<super::kept_state::KeepState>,
    /// Copy the runner's stderr (its progress lines) to ours as it comes.
    pub echo_progress: bool,
    /// Labels on the container: which kiln process and run started it (see [`super::reap`]).
    pub labels: Vec<(String, String)>,
    /// The network to attach the container to (the run's model network), else the default.
    pub network: Option<String>,
}

/// The run was stopped by SIGINT/SIGTERM; its container is stopped and removed.
#[derive(Debug, thiserror::Error)]
#[error("interrupted: container {0} stopped and removed")]
pub struct Interrupted(pub String);

/// What came out of a container.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The runner's exit status.
    pub exit_code: i64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `/output` as a tar (its entries start with `output/`); None if it could not be copied.
    pub output_tar: Option<Vec<u8>>,
    /// Why `/output` could not be copied out, when it could not.
    pub output_error: Option<String>,
    pub wall: Duration,
    /// The kept state, when it was asked for ([`Container::keep_state`]).
    pub kept: Option<super::kept_state::Kept>,
}

/// Runs `c` to completion. Errors are infrastructure failures (no engine, no image,
/// the container could not start); the runner's own exit status is in [`Finished`].
/// `cancel` turning true stops the container and removes it ([`Interrupted`]).
pub async fn run(c: &Container, cancel: watch::Receiver<bool>) -> anyhow::Result<Finished> {
    match c.store {
        Store::Docker => run_engine(c, cancel).await,
        Store::Podman => run_podman(c, cancel).await,
    }
}

/// Resolves when `cancel` is (or turns) true; never when its sender is gone.
pub async fn cancelled(mut cancel: watch::Receiver<bool>) {
    loop {
        if *cancel.borrow_and_update() {
            return;
        }
        if cancel.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

fn echo(c: &Container, bytes: &[u8]) {
    if c.echo_progress {
        crate::printer::err_bytes(bytes);
    }
}

async fn run_engine(c: &Container, cancel: watch::Receiver<bool>) -> anyhow::Result<Finished> {
    let docker = bollard::Docker::connect_with_local_defaults()
        .context("connecting to the Docker Engine")?;
    let env: Vec<String> = c
        .env
        .iter()
        .chain(&c.secret_env)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let body = bollard::models::ContainerCreateBody {
        image: Some(c.image.clone()),
        cmd: Some(c.args.clone()),
        entrypoint: c.entrypoint.clone().map(|e| vec![e]),
        env: Some(env),
        labels: Some(c.labels.iter().cloned().collect()),
        host_config: c.network.as_ref().map(|n| bollard::models::HostConfig {
            network_mode: Some(n.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default()
        .name(&c.name)
        .build();
    docker
        .create_container(Some(options), body)
        .await
        .with_context(|| format!("creating a container of {} on the Docker Engine", c.image))?;
    let outcome = tokio::select! {
        finished = drive_engine(&docker, c) => finished,
        () = cancelled(cancel) => Err(Interrupted(c.name.clone()).into()),
    };
    // Removed whatever happened (force: a running one is killed), so an interrupted or
    // failed run leaves nothing behind.
    let remove = RemoveContainerOptionsBuilder::default().force(true).build();
    let removed = docker.remove_container(&c.name, Some(remove)).await;
    let finished = outcome?;
    removed.with_context(|| format!("removing container {}", c.name))?;
    Ok(finished)
}

async fn drive_engine(docker: &bollard::Docker, c: &Container) -> anyhow::Result<Finished> {
    if let Some(tar) = &c.inject_tar {
        upload(docker, &c.name, tar)
            .await
            .with_context(|| format!("copying files into {}", c.name))?;
    }
    let mut kept = None;
    let started = Instant::now();
    docker
        .start_container(&c.name, None)
        .await
        .with_context(|| format!("starting container {} of {}", c.name, c.image))?;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let options = LogsOptionsBuilder::default()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .build();
    let mut logs = docker.logs(&c.name, Some(options));
    while let Some(chunk) = logs.next().await {
        match chunk {
            Ok(bollard::container::LogOutput::StdOut { message }) => {
                stdout.extend_from_slice(&message)
            }
            Ok(bollard::container::LogOutput::StdErr { message }) => {
                echo(c, &message);
                stderr.extend_from_slice(&message);
                if let (Some(keep), None) = (&c.keep_state, &kept) {
                    if let Some(run_id) = super::kept_state::ready_run_id(&stderr) {
                        kept = Some(keep_state(docker, c, keep, &run_id).await?);
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("reading the output of container {}", c.name))
            }
        }
    }
    let exit_code = match docker.wait_container(&c.name, None).next().await {
        Some(Ok(r)) => r.status_code,
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
        Some(Err(e)) => return Err(e).with_context(|| format!("waiting for container {}", c.name)),
        None => bail!(
            "the Docker Engine ended the wait for container {} without a status",
            c.name
        ),
    };
    let wall = started.elapsed();
    let options = DownloadFromContainerOptionsBuilder::default()
        .path(OUTPUT_DIR)
        .build();
    let (output_tar, output_error) = match docker
        .download_from_container(&c.name, Some(options))
        .map_ok(|b| b.to_vec())
        .try_concat()
        .await
    {
        Ok(tar) => (Some(tar), None),
        Err(e) => (
            None,
            Some(format!("copying {OUTPUT_DIR} out of {}: {e}", c.name)),
        ),
    };
    if c.keep_state.is_some() && kept.is_none() {
        kept = Some(super::kept_state::Kept::failed(
            "the runner did not get past the agent phase (see the result's errors): no state to keep",
        ));
    }
    Ok(Finished {
        exit_code,
        stdout,
        stderr,
        output_tar,
        output_error,
        wall,
        kept,
    })
}

async fn upload(docker: &bollard::Docker, name: &str, tar: &[u8]) -> anyhow::Result<()> {
    let options = UploadToContainerOptionsBuilder::default().path("/").build();
    docker
        .upload_to_container(name, Some(options), bollard::body_full(tar.to_vec().into()))
        .await?;
    Ok(())
}

/// Commits the paused-for-it container and lets the runner go on: a commit that fails
/// is recorded (the run goes on, graded as usual), a go file that cannot be written is
/// an error (the runner would wait for it).
async fn keep_state(
    docker: &bollard::Docker,
    c: &Container,
    keep: &super::kept_state::KeepState,
    run_id: &str,
) -> anyhow::Result<super::kept_state::Kept> {
    let owner: Vec<String> = c.labels.iter().map(|(k, _)| k.clone()).collect();
    let kept = match super::kept_state::commit(docker, &c.name, keep, run_id, &owner).await {
        Ok(k) => k,
        Err(e) => super::kept_state::Kept::failed(format!("{e:#}")),
    };
    let answer = match (&kept.image, &kept.error) {
        (Some(image), _) => format!("kept as {image}"),
        (None, why) => format!("not kept: {}", why.as_deref().unwrap_or("unknown")),
    };
    upload(docker, &c.name, &super::kept_state::go_tar(&answer)?)
        .await
        .with_context(|| format!("telling the runner in {} to go on", c.name))?;
    Ok(kept)
}

fn podman(args: &[&str]) -> duct::Expression {
    duct::cmd("podman", args)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
}

fn checked(
    what: &str,
    out: std::io::Result<std::process::Output>,
) -> anyhow::Result<std::process::Output> {
    let out = out.with_context(|| format!("running podman to {what}"))?;
    if !out.status.success() {
        bail!(
            "podman could not {what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

async fn run_podman(c: &Container, cancel: watch::Receiver<bool>) -> anyhow::Result<Finished> {
    let owned = c.clone();
    let created = tokio::task::spawn_blocking(move || create_podman(&owned));
    created.await.context("creating the podman container")??;
    let owned = c.clone();
    let drive = tokio::task::spawn_blocking(move || drive_podman(&owned));
    let outcome = tokio::select! {
        finished = drive => finished.context("running the podman container").and_then(|r| r),
        () = cancelled(cancel) => Err(Interrupted(c.name.clone()).into()),
    };
    let name = c.name.clone();
    let removed = tokio::task::spawn_blocking(move || {
        checked(
            &format!("remove container {name}"),
            podman(&["rm", "--force", &name]).run(),
        )
    })
    .await
    .context("removing the podman container")?;
    let finished = outcome?;
    removed?;
    Ok(finished)
}

fn create_podman(c: &Container) -> anyhow::Result<()> {
    let mut create: Vec<String> = vec!["create".into(), "--name".into(), c.name.clone()];
    for (k, v) in &c.labels {
        create.extend(["--label".into(), format!("{k}={v}")]);
    }
    for (k, v) in &c.env {
        create.extend(["--env".into(), format!("{k}={v}")]);
    }
    if let Some(n) = &c.network {
        create.extend(["--network".into(), n.clone()]);
    }
    if let Some(e) = &c.entrypoint {
        create.extend(["--entrypoint".into(), e.clone()]);
    }
    // `--env NAME` alone: podman takes the value from its own environment (set below),
    // so a secret never appears in a command line.
    for (k, _) in &c.secret_env {
        create.extend(["--env".into(), k.clone()]);
    }
    create.push(c.image.clone());
    create.extend(c.args.iter().cloned());
    let mut expr = duct::cmd("podman", &create)
        .stdout_capture()
        .stderr_capture()
        .unchecked();
    for (k, v) in &c.secret_env {
        expr = expr.env(k, v);
    }
    checked(&format!("create a container of {}", c.image), expr.run())?;
    Ok(())
}

fn drive_podman(c: &Container) -> anyhow::Result<Finished> {
    if let Some(tar) = &c.inject_tar {
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        tar::Archive::new(tar.as_slice())
            .unpack(dir.path())
            .context("unpacking the files to copy in")?;
        // `/<top>/<entry>` of the tar goes into `/<top>` (which the image has, as it has
        // `/kiln`), so `podman cp` creates `<entry>` there whole.
        for top in std::fs::read_dir(dir.path())? {
            let top = top?.path();
            let into = format!(
                "{}:/{}",
                c.name,
                top.file_name().unwrap_or_default().to_string_lossy()
            );
            for entry in std::fs::read_dir(&top)? {
                let from = entry?.path();
                checked(
                    "copy files in",
                    podman(&["cp", &from.to_string_lossy(), &into]).run(),
                )?;
            }
        }
    }
    let started = Instant::now();
    // stdout holds only the result between markers; stderr (progress) is echoed as it comes.
    let mut child = std::process::Command::new("podman")
        .args(["start", "--attach", &c.name])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running podman start")?;
    let mut err_pipe = child.stderr.take().expect("piped");
    let echo_progress = c.echo_progress;
    let err_reader = std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match std::io::Read::read(&mut err_pipe, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if echo_progress {
                        crate::printer::err_bytes(&buf[..n]);
                    }
                    kept.extend_from_slice(&buf[..n]);
                }
            }
        }
        kept
    });
    let mut stdout = Vec::new();
    std::io::Read::read_to_end(&mut child.stdout.take().expect("piped"), &mut stdout)?;
    let status = child.wait().context("waiting for podman start")?;
    let stderr = err_reader.join().unwrap_or_default();
    let wall = started.elapsed();
    if !status.success()
        && !String::from_utf8_lossy(&stdout).contains("==== KILN RESULT BEGIN ====")
    {
        bail!(
            "podman could not run container {} of {} (podman start exited {:?}): {}",
            c.name,
            c.image,
            status.code(),
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    // `podman start --attach` exits with the container's status, or with its own when
    // the container never ran: ask podman which.
    let inspect = podman(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &c.name,
    ])
    .run()?;
    let state = String::from_utf8_lossy(&inspect.stdout).trim().to_string();
    let exit_code = match state.split_once(' ') {
        Some(("exited", code)) => code.parse::<i64>().unwrap_or(-1),
        _ => bail!(
            "podman could not run container {} of {} (state {state:?}, podman exited {:?}): {}",
            c.name,
            c.image,
            status.code(),
            String::from_utf8_lossy(&stderr).trim()
        ),
    };
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let copied = podman(&[
        "cp",
        &format!("{}:{OUTPUT_DIR}", c.name),
        &dir.path().join("output").to_string_lossy(),
    ])
    .run()?;
    let (output_tar, output_error) = if copied.status.success() {
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        builder.append_dir_all("output", dir.path().join("output"))?;
        (Some(builder.into_inner()?), None)
    } else {
        (
            None,
            Some(format!(
                "copying {OUTPUT_DIR} out of {}: {}",
                c.name,
                String::from_utf8_lossy(&copied.stderr).trim()
            )),
        )
    };
    Ok(Finished {
        exit_code,
        stdout,
        stderr,
        output_tar,
        output_error,
        wall,
        kept: None,
    })
}

/// The `docker` CLI with `args`, its output captured (the caller reads the status).
pub(crate) fn docker_cli(args: &[&str]) -> anyhow::Result<std::process::Output> {
    duct::cmd("docker", args)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .context("running docker")
}
