//! `kiln regrade` of an eval-containers fleet's runs (`kiln run --keep-state` there):
//! the benchmark's grader as the fleet builds it now, run on the kept state, without the
//! agent or a model.
//!
//! The fleet's grader lives in its benchmark image: `/grade.sh` (the reward contract),
//! the shared `/eval-grade` of the code benchmarks, what it reads at grading time under
//! `/tests/` (grader dependencies) and `/tasks/` (the expected answers), and
//! `/entrypoint.sh`, which derives `EXPECTED_ANSWER` from them. So the current benchmark image is built (as `kiln build benchmark` builds it,
//! on `--builder` with the base map; BuildKit's cache makes an unchanged one quick;
//! `--no-build` takes it as it is), those paths are copied from it into a container
//! of the kept image, and that container grades as upstream's `run` does after the
//! agent: `bash /grade.sh`, then `write-result`, behind the entrypoint, with no network.
//! The eval image is not rebuilt: the agent's part is the run's.
//!
//! The new result goes beside the run's own, never over it: `regraded-<n>/` (grader
//! logs, upstream's `output/task/`, regrade.json), then `result.regraded-<n>.json` with
//! the run's own `agent` and `model` sections.

use crate::printer::errln;
use crate::run::container::docker_cli;
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Context as _};

use super::{grade, runs, End, Options};
use crate::error::Failure;
use crate::fleet::{Env, Fleet};
use crate::plan::base_map::BaseMap;
use crate::report::{self, regraded};
use crate::run::eval_containers::{kiln_result, read_upstream, Item, UPSTREAM_RESULT};
use crate::run::reap::Owner;

/// What is copied from the current benchmark image (absent ones are skipped, but the
/// grader itself): the grader, the entrypoint that derives `EXPECTED_ANSWER`, the
/// shared grader of the code benchmarks (`/eval-grade`, their rule 22), the grader's
/// dependencies and the tasks' expected answers.
const GRADING: [&str; 5] = [
    "/grade.sh",
    "/entrypoint.sh",
    "/eval-grade",
    "/tests",
    "/tasks",
];

/// The regrade container's program: upstream `run`'s tail after the agent.
const PROGRAM: &str = "rm -rf /logs/verifier; mkdir -p /logs/verifier /output/task\n\
bash /grade.sh || true\nexec /usr/local/bin/write-result";

/// How the current benchmark images are built.
pub struct Build<'a> {
    pub base_map: &'a BaseMap,
    pub builder: Option<String>,
}

/// kiln's record of one regrade: `regraded-<n>/regrade.json`.
#[derive(Debug, serde::Serialize)]
struct Record<'a> {
    n: u32,
    kept_state: &'a str,
    /// The benchmark image the grader came from.
    grader_image: &'a str,
    runner_exit: i32,
    wall_sec: f64,
    kiln_version: &'static str,
    container: &'a str,
}

/// Regrades the selected runs of `opts.results` against `fleet`; the exit status.
pub fn run(
    fleet: &Fleet,
    opts: &Options,
    build: &Build,
    build_info: impl FnOnce() -> anyhow::Result<crate::labels::BuildInfo>,
) -> anyhow::Result<u8> {
    let selected = runs::selected(opts)?;
    // Which runs can be regraded: kept state in the store, a benchmark and task the
    // fleet still has; and from which benchmark image.
    let mut plan: Vec<Result<(String, String), String>> = Vec::new();
    for run in &selected {
        let verdict = runs::kept_image(run).and_then(|kept| {
            let b = fleet
                .benchmark(&run.benchmark)
                .map_err(|_| format!("the fleet has no benchmark {} any more", run.benchmark))?;
            let task = b
                .task(&run.task)
                .map_err(|_| format!("{} has no task {} any more", b.name, run.task))?;
            let per_task = (b.env == Env::PerTask).then_some(task);
            match crate::run::eval_containers::keep::is_kept_state(&kept) {
                Some(true) => Ok((kept, fleet.naming.benchmark(&b.name, per_task))),
                Some(false) => Err(format!("{kept} is not a kept-state image")),
                None => Err(format!(
                    "its kept state {kept} is no longer in Docker's image store (kiln clean removes it)"
                )),
            }
        });
        plan.push(verdict);
    }
    let mut requests = Vec::new();
    for (run, _) in selected.iter().zip(&plan).filter(|(_, p)| p.is_ok()) {
        let b = fleet
            .benchmark(&run.benchmark)
            .map_err(|r| Failure::usage(r.0))?;
        let request = crate::plan::Request::Benchmark {
            benchmark: b.name.clone(),
            task: (b.env == Env::PerTask).then(|| run.task.clone()),
        };
        if !requests.contains(&request) {
            requests.push(request);
        }
    }
    if !requests.is_empty() {
        if opts.build.no_build {
            for (_, image) in plan.iter().flatten() {
                if !crate::run::eval_containers::image_exists(image) {
                    return Err(Failure::usage(format!(
                        "--no-build: {image} is not in the engine's store"
                    )));
                }
            }
        } else {
            build_graders(fleet, requests, opts, build, build_info()?)?;
        }
    }
    crate::run::harbor::catch_interrupts();
    let owner = Owner::current();
    let mut ends = Vec::new();
    for (seq, (run, verdict)) in selected.iter().zip(plan).enumerate() {
        let end = match verdict {
            Err(why) => End::NotRegradable(why),
            Ok(_) if crate::run::harbor::interrupted() => End::Interrupted,
            Ok((kept, image)) => match regrade(fleet, run, &kept, &image, &owner, seq) {
                Ok(done) => End::Done(Box::new(done)),
                Err(_) if crate::run::harbor::interrupted() => End::Interrupted,
                Err(e) => End::Failed(format!("{e:#}")),
            },
        };
        ends.push(end);
    }
    Ok(super::print(&selected, &ends))
}

/// Builds the benchmark images of `requests` as `kiln build benchmark` does.
fn build_graders(
    fleet: &Fleet,
    requests: Vec<crate::plan::Request>,
    opts: &Options,
    build: &Build,
    info: crate::labels::BuildInfo,
) -> anyhow::Result<()> {
    use crate::plan::eval_containers as ec;
    let site = ec::Site::new(build.base_map, opts.build.ca_bundle.as_deref());
    let request = crate::plan::Request::Many(requests);
    let plan = ec::plan(fleet, &request, &info, build.base_map, &site)
        .map_err(crate::fleet::refused_to_usage)?;
    let started = Instant::now();
    let outcomes =
        crate::backend::eval_containers::build(&fleet.root, &plan, build.builder.as_deref())
            .map_err(|e| Failure::usage(format!("{e:#}")))?;
    if let Some(bad) = outcomes.iter().find(|o| !o.ok) {
        return Err(anyhow!(
            "building {} (the current grader) failed: {}",
            bad.image,
            bad.log.display()
        ));
    }
    if outcomes.len() < plan.steps.len() {
        return Err(anyhow!("building the current graders stopped early"));
    }
    errln!(
        "current graders: {} image(s) built in {:.1}s",
        outcomes.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn must(args: &[&str]) -> anyhow::Result<std::process::Output> {
    let out = docker_cli(args)?;
    if !out.status.success() {
        return Err(anyhow!(
            "docker {}: {}",
            args.first().unwrap_or(&""),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out)
}

/// Removes the containers however a regrade ends.
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = docker_cli(&["rm", "--force", name]);
        }
    }
}

/// One run's regrade, placed beside its result.
fn regrade(
    fleet: &Fleet,
    run: &runs::Found,
    kept: &str,
    grader_image: &str,
    owner: &Owner,
    seq: usize,
) -> anyhow::Result<grade::Done> {
    let name = format!(
        "kiln-{}-{seq}-regrade-{}",
        std::process::id(),
        crate::naming::task_component(&run.task)
    );
    let files = format!("{name}-files");
    let _cleanup = Containers(vec![name.clone(), files.clone()]);
    let labels: Vec<String> = owner
        .labels()
        .into_iter()
        .flat_map(|(k, v)| ["--label".to_string(), format!("{k}={v}")])
        .collect();
    let mut create: Vec<&str> = vec!["create", "--name", &files];
    create.extend(labels.iter().map(String::as_str));
    create.push(grader_image);
    must(&create)?;
    let mut create: Vec<&str> = vec!["create", "--name", &name, "--network", "none"];
    create.extend(labels.iter().map(String::as_str));
    create.extend([kept, "bash", "-c", PROGRAM]);
    must(&create)?;

    let staging = tempfile::Builder::new()
        .prefix(".regraded.partial-")
        .tempdir_in(&run.dir)
        .with_context(|| format!("creating a directory in {}", run.dir.display()))?;
    let carry = staging.path().join(".grading");
    std::fs::create_dir_all(&carry)?;
    for path in GRADING {
        let base = Path::new(path)
            .file_name()
            .expect("an absolute path")
            .to_string_lossy()
            .to_string();
        let out = docker_cli(&[
            "cp",
            &format!("{files}:{path}"),
            &carry.display().to_string(),
        ])?;
        if !out.status.success() {
            if path == "/grade.sh" {
                return Err(anyhow!(
                    "{grader_image} has no /grade.sh: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            continue;
        }
        let local = carry.join(&base);
        // A directory's contents go into the one there (`/.`), a file over the one there.
        let source = if local.is_dir() {
            format!("{}/.", local.display())
        } else {
            local.display().to_string()
        };
        must(&["cp", &source, &format!("{name}:{path}")])?;
    }
    std::fs::remove_dir_all(&carry)?;

    let started = Instant::now();
    let ran = docker_cli(&["start", "--attach", &name])?;
    let wall_sec = started.elapsed().as_secs_f64();
    std::fs::write(staging.path().join("runner.stdout.log"), &ran.stdout)?;
    std::fs::write(staging.path().join("runner.stderr.log"), &ran.stderr)?;
    let output = staging.path().join("output");
    std::fs::create_dir_all(&output)?;
    let _ = docker_cli(&[
        "cp",
        &format!("{name}:/logs/verifier"),
        &staging.path().join("grader").display().to_string(),
    ]);
    let _ = docker_cli(&[
        "cp",
        &format!("{name}:/output/task"),
        &output.join("task").display().to_string(),
    ]);
    let task_result = output.join("task");
    if task_result.join("result.json").is_file() {
        std::fs::rename(
            task_result.join("result.json"),
            task_result.join(UPSTREAM_RESULT),
        )?;
    }
    if crate::run::harbor::interrupted() {
        anyhow::bail!("interrupted");
    }
    let upstream = read_upstream(&output);
    let exit = ran.status.code().unwrap_or(-1);
    let (n, logs) = grade::place(staging, &run.dir, |n| Record {
        n,
        kept_state: kept,
        grader_image,
        runner_exit: exit,
        wall_sec: (wall_sec * 1000.0).round() / 1000.0,
        kiln_version: env!("CARGO_PKG_VERSION"),
        container: &name,
    })?;
    if let Err(e) = &upstream {
        return Ok(grade::Done {
            n,
            result: None,
            logs,
            runner_exit: exit.into(),
            error: Some(format!("{e:#}")),
        });
    }
    let bench = fleet.benchmark(&run.benchmark).map_err(|r| anyhow!(r.0))?;
    let item = Item {
        benchmark: bench,
        task: run.task.clone(),
        agent: run.agent.clone(),
        repeat: run.repeat.unwrap_or(1),
        image: kept.to_string(),
    };
    let own = std::fs::read_to_string(run.dir.join("result.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .unwrap_or_default();
    let run_id = own["run_id"].as_str().unwrap_or_default().to_string();
    let mut result = kiln_result(&item, None, wall_sec, &upstream, &run_id);
    // The agent's part is the run's: its agent and model sections and timing stay.
    for key in ["agent", "model", "timing"] {
        if !own[key].is_null() {
            result[key] = own[key].clone();
        }
    }
    let path = regraded::result_file(&run.dir, n);
    let partial = run.dir.join(format!(".result.regraded-{n}.json.partial"));
    std::fs::write(&partial, serde_json::to_string_pretty(&result)? + "\n")?;
    std::fs::rename(&partial, &path).with_context(|| format!("writing {}", path.display()))?;
    let read = report::read_result(&path)?;
    Ok(grade::Done {
        n,
        result: Some((path, read)),
        logs,
        runner_exit: exit.into(),
        error: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_grades_and_writes_the_result_as_run_does_after_the_agent() {
        assert!(PROGRAM.contains("bash /grade.sh || true"));
        assert!(PROGRAM.ends_with("exec /usr/local/bin/write-result"));
        assert_eq!(GRADING[0], "/grade.sh");
    }
}
