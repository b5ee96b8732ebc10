//! `kiln run` as a matrix on the real Docker Engine: an interrupted matrix (SIGINT to
//! kiln mid-run) leaves none of kiln's containers and nothing half-written, and the
//! same command again runs only what was missing; after a SIGKILL, the next `kiln run`
//! removes the dead process's containers and says so. Opt-in: `KILN_TEST_DOCKER=1`.
//!
//! The fleet is a throw-away copy of this repository with one more agent, `sleepy`
//! (tests/fixtures/agents/sleepy: it sleeps until its timeout), so that runs are
//! reliably still going when the signal comes. Its images (`kiln.local/agents/sleepy:dev`
//! and the terminal-lite count-lines eval) are removed at the end; the images it shares
//! with the shipped fleet are built once and kept.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod backend_support;

const AGENT: &str = "sleepy";
const TASK: &str = "count-lines";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from).min_depth(1) {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// This repository's fleet plus the `sleepy` agent, in a temporary directory.
fn fleet_with_sleepy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("docker-bake.hcl"),
        dir.path().join("docker-bake.hcl"),
    )
    .unwrap();
    copy_tree(&repo().join("containers"), &dir.path().join("containers"));
    copy_tree(&repo().join("benchmarks"), &dir.path().join("benchmarks"));
    let agent = dir.path().join("containers/agents").join(AGENT);
    std::fs::create_dir_all(agent.join("agent")).unwrap();
    std::fs::copy(
        repo().join("containers/agents/null/Dockerfile"),
        agent.join("Dockerfile"),
    )
    .unwrap();
    let bake = std::fs::read_to_string(repo().join("containers/agents/null/docker-bake.hcl"))
        .unwrap()
        .replace("null", AGENT)
        .replace(
            "Does nothing (the floor every benchmark must not pass)",
            "Sleeps until its timeout (a kiln test agent)",
        );
    std::fs::write(agent.join("docker-bake.hcl"), bake).unwrap();
    for file in ["run", "name"] {
        std::fs::copy(
            repo().join("tests/fixtures/agents").join(AGENT).join(file),
            agent.join("agent").join(file),
        )
        .unwrap();
    }
    dir
}

fn kiln(fleet: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
    c.current_dir(fleet)
        .env("KILN_SOURCE", "https://example.invalid/kiln-test")
        .env("KILN_REVISION", "0000000")
        .env("KILN_VERSION", "0.0.0-test")
        .env("SOURCE_DATE_EPOCH", "0");
    if let Ok(runner) = std::env::var("KILN_RUNNER") {
        c.env("KILN_RUNNER", runner);
    } else {
        c.env(
            "KILN_RUNNER",
            repo().join("target/x86_64-unknown-linux-gnu/release/kiln-runner"),
        );
    }
    c
}

fn matrix_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "terminal-lite",
        "--task-id",
        TASK,
        "--agent",
        "null",
        "--agent",
        AGENT,
        "--repeat",
        "3",
        "--jobs",
        "2",
        "--backend",
        "engine",
        "--progress",
        "plain",
        "--output",
        out,
    ];
    args.extend_from_slice(extra);
    args
}

/// Names of the containers whose kiln.pid label is `pid` (any state).
fn containers_of(pid: u32) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=kiln.pid={pid}"),
            "--format",
            "{{.Names}} {{.State}}",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn results(out: &Path, agent: &str) -> Vec<u32> {
    (1..=3)
        .filter(|k| {
            out.join("terminal-lite")
                .join(TASK)
                .join(agent)
                .join(format!("repeat-{k}/result.json"))
                .is_file()
        })
        .collect()
}

/// Waits (at most `secs`) until `ready` holds, failing with kiln's output if kiln exits first.
fn wait_for(child: &mut Child, secs: u64, what: &str, ready: impl Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("kiln exited ({status}) before {what}:\n{err}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

fn finish(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

fn hidden_dirs(out: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(out)
        .into_iter()
        .flatten()
        .filter(|e| e.depth() > 0 && e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path().to_path_buf())
        .collect()
}

struct RemoveImages;

impl Drop for RemoveImages {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args([
                "rmi",
                "kiln.local/evals/terminal-lite-count-lines--sleepy:dev",
                "kiln.local/agents/sleepy:dev",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn interrupted_matrix_leaves_nothing_and_resumes_and_dead_kilns_are_reaped() {
    if !backend_support::gate("KILN_TEST_DOCKER") {
        return;
    }
    let fleet = fleet_with_sleepy();
    let _images = RemoveImages;
    let out = tempfile::tempdir().unwrap();
    let out_arg = out.path().to_str().unwrap().to_string();
    let started = Instant::now();

    // 1. SIGINT mid-run: the three null runs are done, two sleepy runs are running.
    let mut child = kiln(fleet.path())
        .args(matrix_args(&out_arg, &[]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_for(
        &mut child,
        600,
        "three null results and two running containers",
        || {
            results(out.path(), "null").len() == 3
                && containers_of(pid)
                    .iter()
                    .filter(|c| c.ends_with("running"))
                    .count()
                    == 2
        },
    );
    let interrupted_at = Instant::now();
    signal(pid, "-INT");
    let first = finish(child);
    let stderr = String::from_utf8_lossy(&first.stderr);
    eprintln!("--- interrupted run (SIGINT) ---\n{stderr}");
    assert_eq!(first.status.code(), Some(130), "{stderr}");
    assert!(
        interrupted_at.elapsed() < Duration::from_secs(30),
        "clean-up took {:?}",
        interrupted_at.elapsed()
    );
    assert!(
        stderr.contains("interrupted: stopping and removing 2 running container(s)"),
        "{stderr}"
    );
    assert_eq!(
        containers_of(pid),
        Vec::<String>::new(),
        "containers left behind"
    );
    assert_eq!(results(out.path(), "null"), vec![1, 2, 3]);
    assert_eq!(
        results(out.path(), AGENT),
        Vec::<u32>::new(),
        "an interrupted run wrote a result"
    );
    assert_eq!(
        hidden_dirs(out.path()),
        Vec::<PathBuf>::new(),
        "half-written directories"
    );
    let null_record = out
        .path()
        .join("terminal-lite")
        .join(TASK)
        .join("null/repeat-1/run.json");
    let before = std::fs::read_to_string(&null_record).unwrap();

    // 2. The same command again (sleepy now times out after 1 s): only the missing runs.
    let again = kiln(fleet.path())
        .args(matrix_args(&out_arg, &["--agent-timeout", "1"]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr);
    let stdout = String::from_utf8_lossy(&again.stdout);
    eprintln!("--- resumed run ---\n{stderr}{stdout}");
    assert_eq!(again.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("3 of 6 runs already have a complete, current result: kept"),
        "{stderr}"
    );
    assert!(stderr.contains("running 3 of 6 runs"), "{stderr}");
    assert!(
        !stderr.contains("null #"),
        "a kept null run ran again: {stderr}"
    );
    assert_eq!(results(out.path(), AGENT), vec![1, 2, 3]);
    assert_eq!(
        std::fs::read_to_string(&null_record).unwrap(),
        before,
        "a kept result was rewritten"
    );
    // The summary: BENCHMARK AGENT MODEL TASKS RUNS …: one task, three runs.
    assert!(
        stdout.lines().any(|l| l.split_whitespace().take(5).eq([
            "terminal-lite",
            "sleepy",
            "-",
            "1",
            "3"
        ])),
        "summary: {stdout}"
    );

    // 3. SIGKILL: kiln cannot clean up; the next kiln run removes its containers.
    let out2 = tempfile::tempdir().unwrap();
    let out2_arg = out2.path().to_str().unwrap().to_string();
    let mut child = kiln(fleet.path())
        .args(matrix_args(&out2_arg, &[]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_for(&mut child, 120, "two running containers", || {
        containers_of(pid)
            .iter()
            .filter(|c| c.ends_with("running"))
            .count()
            == 2
    });
    signal(pid, "-KILL");
    finish(child);
    let left = containers_of(pid);
    assert!(!left.is_empty(), "SIGKILL left no container to reap");
    let reaper = kiln(fleet.path())
        .args([
            "run",
            "terminal-lite",
            "--task-id",
            TASK,
            "--agent",
            "null",
            "--no-build",
            "--output",
            &out2_arg,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&reaper.stderr);
    eprintln!("--- run after SIGKILL ---\n{stderr}");
    assert_eq!(reaper.status.code(), Some(0), "{stderr}");
    for line in &left {
        let name = line.split_whitespace().next().unwrap();
        assert!(
            stderr.contains(&format!(
                "removed container {name} (docker store) left by kiln process {pid}"
            )),
            "{name} not reported: {stderr}"
        );
    }
    assert_eq!(
        containers_of(pid),
        Vec::<String>::new(),
        "the dead kiln's containers remain"
    );
    eprintln!(
        "matrix interrupt test took {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
