//! `kiln run` on Harbor datasets, on the real Docker Engine (`KILN_TEST_DOCKER=1`):
//! oracle and null in a dataset of its own, results `kiln report` reads; a kiln
//! repository's agent (mini-swe-agent, replaying a recorded fixture through kiln's
//! model gateway) on a dataset named in its kiln.toml and by path, the tests hidden
//! from it; bad input refused with nothing started and nothing left behind.

mod fleet_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fleet_support::copy_tree;
use serde_json::Value;

const BASE: &str = "--base=ubuntu:24.04=debian:bookworm-slim";
const FIXTURE: &str = "fixtures/harbor-replay/hello-user/mini-swe-agent.jsonl";

/// The tests run containers one at a time: each checks that nothing of kiln's is left.
static ENGINE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn engine() -> std::sync::MutexGuard<'static, ()> {
    ENGINE.lock().unwrap_or_else(|e| e.into_inner())
}

fn enabled() -> bool {
    if std::env::var("KILN_TEST_DOCKER").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("skipped: set KILN_TEST_DOCKER=1 to run Harbor trials");
    false
}

fn kiln(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .env("KILN_REPLAY_SPEED", "max")
        .env_remove("REGISTRY")
        .env_remove("TAG")
        .output()
        .expect("running kiln")
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A dataset folder holding copies of Harbor's example tasks.
fn dataset(root: &Path, tasks: &[&str]) -> PathBuf {
    let examples = fleet_support::manifest_dir().join("../shared/fleets/harbor/examples/tasks");
    let ds = root.join("ds");
    for t in tasks {
        copy_tree(&examples.join(t), &ds.join(t));
    }
    ds
}

fn result(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// No trial container, gateway or network of kiln's is left.
fn nothing_left() {
    for what in [&["ps", "-a"][..], &["network", "ls"][..]] {
        let out = Command::new("docker")
            .args(what)
            .args(["--format", "{{.Names}}{{.Name}}"])
            .output()
            .unwrap();
        let names = String::from_utf8_lossy(&out.stdout);
        let left: Vec<&str> = names
            .lines()
            .filter(|n| n.starts_with("kiln-harbor-"))
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

#[test]
fn a_dataset_runs_oracle_and_null_into_results_report_reads() {
    if !enabled() {
        return;
    }
    let _g = engine();
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), &["hello-user", "hello-workdir"]);
    let out_dir = tmp.path().join("results");
    let out = kiln(
        &ds,
        tmp.path(),
        &[
            "run",
            "--agent",
            "oracle",
            "--agent",
            "null",
            BASE,
            "--backend",
            "engine",
            "--output",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    for task in ["hello-user", "hello-workdir"] {
        let oracle = result(out_dir.join(format!("ds/{task}/oracle/result.json")));
        assert_eq!(oracle["score"]["passed"], true, "{oracle}");
        let null = result(out_dir.join(format!("ds/{task}/null/result.json")));
        assert_eq!(null["score"]["passed"], false, "{null}");
        assert_eq!(null["status"], "completed");
    }
    let report = kiln(
        &ds,
        tmp.path(),
        &["report", out_dir.to_str().unwrap(), "--format", "json"],
    );
    assert!(report.status.success(), "{}", show(&report));
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(text.contains("hello-workdir"), "{text}");
    nothing_left();

    // Bad input: an agent a dataset does not have, an unknown task: refused, nothing run.
    let out = kiln(&ds, tmp.path(), &["run", "--agent", "mini-swe-agent", BASE]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(show(&out).contains("--dataset PATH"), "{}", show(&out));
    let out = kiln(
        &ds,
        tmp.path(),
        &["run", "--agent", "oracle", "--task-id", "nope", BASE],
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(show(&out).contains("\"nope\""), "{}", show(&out));
}

/// A kiln repository of its own: the agents and core of this one, and a kiln.toml
/// naming the dataset.
fn kiln_repo(root: &Path, dataset: &Path) -> PathBuf {
    let repo = root.join("repo");
    let here = fleet_support::manifest_dir();
    copy_tree(&here.join("containers"), &repo.join("containers"));
    std::fs::copy(here.join("docker-bake.hcl"), repo.join("docker-bake.hcl")).unwrap();
    std::fs::create_dir_all(repo.join("benchmarks")).unwrap();
    std::fs::write(
        repo.join("kiln.toml"),
        format!("[datasets]\nhello = {:?}\n", dataset.display().to_string()),
    )
    .unwrap();
    repo
}

#[test]
fn a_kiln_agent_solves_a_harbor_task_through_replay_without_seeing_its_tests() {
    if !enabled() {
        return;
    }
    let _g = engine();
    let runner = fleet_support::static_runner();
    let built = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(fleet_support::BUILD_MINI_SWE_AGENT)
        .current_dir(fleet_support::manifest_dir())
        .env("KILN_RUNNER", &runner)
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", show(&built));
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), &["hello-user"]);
    let repo = kiln_repo(tmp.path(), &ds);
    let fixture = fleet_support::manifest_dir().join(FIXTURE);
    let out_dir = tmp.path().join("results");
    // Named in kiln.toml. The fixture is strict: had the agent seen /tests, its first
    // observation would differ from the recorded one and the replay would diverge.
    let out = kiln(
        &repo,
        tmp.path(),
        &[
            "run",
            "hello",
            "--agent",
            "mini-swe-agent",
            "--model",
            "gpt-test",
            "--replay",
            fixture.to_str().unwrap(),
            BASE,
            "--backend",
            "engine",
            "--output",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let r = result(out_dir.join("hello/hello-user/mini-swe-agent/result.json"));
    assert_eq!(r["score"]["passed"], true, "{r}");
    assert_eq!(r["agent"]["model"], "gpt-test", "{r}");
    assert_eq!(
        r["model"]["replay"]["diverged"],
        serde_json::json!([]),
        "{r}"
    );
    assert_eq!(r["model"]["replay"]["score_equals_recorded"], true, "{r}");
    assert!(out_dir
        .join("hello/hello-user/mini-swe-agent/agent/trajectory.json")
        .is_file());
    nothing_left();

    // By path, the eval image now up to date: the same reward.
    let out = kiln(
        &repo,
        tmp.path(),
        &[
            "run",
            ds.to_str().unwrap(),
            "--agent",
            "mini-swe-agent",
            "--model",
            "gpt-test",
            "--replay",
            fixture.to_str().unwrap(),
            BASE,
            "--backend",
            "engine",
            "--output",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        !show(&out).contains("built kiln.local/evals"),
        "{}",
        show(&out)
    );
    let r = result(out_dir.join("ds/hello-user/mini-swe-agent/result.json"));
    assert_eq!(r["score"]["passed"], true, "{r}");

    // Bad input: a dataset path that is none, kiln's benchmarks mixed with a dataset.
    let out = kiln(
        &repo,
        tmp.path(),
        &["run", "--dataset", "/nonexistent/ds", "--agent", "null"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(show(&out).contains("/nonexistent/ds"), "{}", show(&out));
    let out = kiln(
        &repo,
        tmp.path(),
        &["run", "hello", "terminal-lite", "--agent", "null"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(show(&out).contains("separate commands"), "{}", show(&out));
    nothing_left();
}

#[test]
fn kept_state_regrades_with_changed_tests_and_cleans_up() {
    if !enabled() {
        return;
    }
    let _g = engine();
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), &["hello-user"]);
    let out_dir = tmp.path().join("results");
    let results = out_dir.to_str().unwrap();
    let out = kiln(
        &ds,
        tmp.path(),
        &[
            "run",
            "--agent",
            "oracle",
            "--agent",
            "null",
            "--keep-state",
            BASE,
            "--backend",
            "engine",
            "--output",
            results,
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let run = result(out_dir.join("ds/hello-user/oracle/run.json"));
    let image = run["kept_state"]["image"].as_str().unwrap().to_string();
    assert!(
        image.starts_with("kiln.local/kept-state/ds--oracle:"),
        "{run}"
    );
    let inspect = Command::new("docker")
        .args([
            "image",
            "inspect",
            &image,
            "--format",
            "{{json .Config.Labels}}",
        ])
        .output()
        .unwrap();
    let labels = String::from_utf8_lossy(&inspect.stdout);
    assert!(labels.contains("\"eval.type\":\"kept-state\""), "{labels}");

    // The tests now want another greeting: oracle's kept state fails them; nothing ran
    // the solution again (its hello.txt is the one it wrote).
    let test = ds.join("hello-user/tests/test.sh");
    let text = std::fs::read_to_string(&test).unwrap();
    std::fs::write(&test, text.replace("Hello, world!", "Goodbye, world!")).unwrap();
    let out = kiln(&ds, tmp.path(), &["regrade", results]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout.contains("pass→fail  ds/hello-user × oracle"),
        "{}",
        show(&out)
    );
    assert!(stdout.contains("flipped: 1 "), "{}", show(&out));
    let own = result(out_dir.join("ds/hello-user/oracle/result.json"));
    assert_eq!(
        own["score"]["passed"], true,
        "the run's own result changed: {own}"
    );
    let again = result(out_dir.join("ds/hello-user/oracle/result.regraded-1.json"));
    assert_eq!(again["score"]["passed"], false, "{again}");
    assert_eq!(again["agent"]["id"], "oracle", "{again}");
    assert!(out_dir
        .join("ds/hello-user/oracle/regraded-1/regrade.json")
        .is_file());
    nothing_left();

    // A run without kept state is listed as such, and nothing is regraded.
    let plain = tmp.path().join("plain");
    let out = kiln(
        &ds,
        tmp.path(),
        &[
            "run",
            "--agent",
            "null",
            BASE,
            "--backend",
            "engine",
            "--output",
            plain.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let out = kiln(&ds, tmp.path(), &["regrade", plain.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        show(&out).contains("not regradable: no kept state"),
        "{}",
        show(&out)
    );

    let out = kiln(&ds, tmp.path(), &["clean", results]);
    assert!(out.status.success(), "{}", show(&out));
    let gone = Command::new("docker")
        .args(["image", "inspect", &image])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "{image} is still there");
}
