//! `kiln run` refuses bad input before building or running anything (exit 2, a
//! message naming the value), and never needs an engine to do so.

use std::process::{Command, Output};

fn kiln(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("KILN_SECRET_FOR_TEST")
        .output()
        .unwrap()
}

fn refused(args: &[&str], needle: &str) {
    let out = kiln(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: expected {needle:?} in {stderr}"
    );
    assert!(
        !stderr.contains("running "),
        "{args:?} ran something: {stderr}"
    );
}

#[test]
fn unknown_benchmark_agent_and_task_are_refused() {
    refused(
        &[
            "run",
            "metric-backfil",
            "--agent",
            "oracle",
            "--task-id",
            "orders-daily",
        ],
        "metric-backfil",
    );
    refused(
        &[
            "run",
            "metric-backfill",
            "--agent",
            "orcale",
            "--task-id",
            "orders-daily",
        ],
        "orcale",
    );
    refused(
        &[
            "run",
            "metric-backfill",
            "--agent",
            "oracle",
            "--task-id",
            "orders-weekly",
        ],
        "orders-weekly",
    );
}

#[test]
fn task_ids_are_validated() {
    refused(
        &[
            "run",
            "terminal-lite",
            "--agent",
            "null",
            "--task-id",
            "../etc",
        ],
        "../etc",
    );
    refused(
        &[
            "run",
            "terminal-lite",
            "--agent",
            "null",
            "--task-id",
            "a;b",
        ],
        "a;b",
    );
}

#[test]
fn pass_env_must_name_a_set_variable() {
    refused(
        &[
            "run",
            "terminal-lite",
            "--agent",
            "null",
            "--task-id",
            "count-lines",
            "--pass-env",
            "KILN_SECRET_FOR_TEST",
        ],
        "KILN_SECRET_FOR_TEST is not set",
    );
    refused(
        &[
            "run",
            "terminal-lite",
            "--agent",
            "null",
            "--task-id",
            "count-lines",
            "--pass-env",
            "A-B",
        ],
        "\"A-B\"",
    );
}

#[test]
fn every_shipped_task_has_a_reference_solution_outside_the_image_context() {
    // Solutions reach only oracle runs: each task has solution/solve.sh, and the
    // benchmark's build context ignores it (.dockerignore at the context root).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benchmarks");
    for bench in std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()) {
        for task in std::fs::read_dir(bench.join("tasks"))
            .unwrap()
            .map(|e| e.unwrap().path())
        {
            assert!(
                task.join("solution/solve.sh").is_file(),
                "{} has no solution/solve.sh",
                task.display()
            );
            let ignore = if task.join("environment/Dockerfile").is_file() {
                task.join(".dockerignore")
            } else {
                bench.join(".dockerignore")
            };
            let text = std::fs::read_to_string(&ignore).unwrap_or_default();
            assert!(
                text.lines().any(|l| l.trim().ends_with("solution")),
                "{} does not keep solution/ out of the build context",
                ignore.display()
            );
        }
    }
}

#[test]
fn matrix_selections_are_checked_before_anything_runs() {
    refused(&["run", "terminal-lite"], "--agent");
    refused(&["run", "--agent", "null"], "--all");
    refused(
        &["run", "terminal-lite", "--agent", "null", "--repeat", "0"],
        "--repeat",
    );
    refused(
        &["run", "terminal-lite", "--agent", "null", "--jobs", "0"],
        "--jobs",
    );
    refused(
        &["run", "--all", "--agent", "null", "--agent", "nobody"],
        "nobody",
    );
    refused(
        &[
            "run",
            "terminal-lite",
            "metric-backfill",
            "--agent",
            "null",
            "--task-id",
            "no-such-task",
        ],
        "\"no-such-task\" is in none of the selected benchmarks (terminal-lite, metric-backfill)",
    );
}
