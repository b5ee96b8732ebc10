//! The task author's loop on an eval-containers fleet (a copy of
//! `../shared/fleets/eval-containers`'s `containers/`), without an engine: `kiln new`
//! writes benchmarks and tasks in that fleet's own layout that list, lint clean and
//! plan; refusals write nothing; `kiln shell --dry-run` prints the agent's place and bad
//! input starts nothing; `kiln regrade` of a directory without results is refused.
//! The real builds, validation, shell sessions and regrades are in
//! tests/eval_containers_build.rs (gated).

mod fleet_support;

use std::path::Path;

use fleet_support::*;

fn copy() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("kiln-ec-loop-")
        .tempdir()
        .unwrap();
    let fleet = manifest_dir()
        .ancestors()
        .map(|d| d.join("shared/fleets/eval-containers/containers"))
        .find(|p| p.is_dir())
        .expect("../shared/fleets/eval-containers");
    copy_tree(&fleet, &dir.path().join("containers"));
    dir
}

fn ok(root: &Path, args: &[&str]) -> std::process::Output {
    let out = kiln(root, args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(args, &out));
    out
}

fn refused(root: &Path, args: &[&str], needle: &str) {
    let out = kiln(root, args, &[]);
    let said = transcript(args, &out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains(needle), "{needle:?}: {said}");
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .map(|e| {
            let data = if e.file_type().is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            (e.path().display().to_string(), data)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn scaffolds_follow_the_fleets_layout_lint_clean_and_plan() {
    let fleet = copy();
    let root = fleet.path();
    ok(root, &["new", "benchmark", "hello-ec"]);
    ok(root, &["new", "task", "hello-ec", "Second.Task"]);
    ok(
        root,
        &[
            "new",
            "benchmark",
            "hello-ec-pt",
            "--per-task",
            "--task",
            "first",
        ],
    );
    ok(root, &["new", "task", "hello-ec-pt", "second"]);
    let b = root.join("containers/benchmarks/hello-ec");
    for f in [
        "docker-bake.hcl",
        "Dockerfile",
        "grade.sh",
        "entrypoint.sh",
        "solution.sh",
        "compose.yaml",
        "README.md",
        ".dockerignore",
        "tasks/0/problem.txt",
        "tasks/1/id.txt",
    ] {
        assert!(b.join(f).is_file(), "{f}");
    }
    assert_eq!(
        std::fs::read_to_string(b.join("tasks/1/id.txt")).unwrap(),
        "Second.Task\n"
    );
    let df = std::fs::read_to_string(b.join("Dockerfile")).unwrap();
    assert!(df.contains("LABEL eval.benchmark.tasks=\"2\""), "{df}");
    let pt = root.join("containers/benchmarks/hello-ec-pt");
    assert_eq!(
        std::fs::read_to_string(pt.join("tasks.txt")).unwrap(),
        "first\nsecond\n"
    );
    assert!(std::fs::read_to_string(b.join(".dockerignore"))
        .unwrap()
        .contains("solution.sh"));

    let tasks = json(&ok(root, &["list", "tasks", "hello-ec", "--json"])).to_string();
    assert!(
        tasks.contains("\"0\"") && tasks.contains("\"1\""),
        "{tasks}"
    );
    let tasks = json(&ok(root, &["list", "tasks", "hello-ec-pt", "--json"])).to_string();
    assert!(
        tasks.contains("first") && tasks.contains("second"),
        "{tasks}"
    );
    let list = json(&ok(root, &["list", "benchmarks", "--json"]));
    let pt_row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "hello-ec-pt")
        .unwrap();
    assert_eq!(pt_row["env"], "per-task");

    // The fleet's own findings stay; none is about the new benchmarks.
    let lint = kiln(root, &["lint", "--json"], &[]);
    let findings = json(&lint);
    let ours: Vec<_> = findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"].as_str().unwrap_or("").contains("hello-ec"))
        .collect();
    assert!(ours.is_empty(), "{ours:?}");

    // Both plan: the per-task image of one task, the shared one with an agent.
    let plan = ok(
        root,
        &[
            "build",
            "benchmark",
            "hello-ec-pt",
            "--task-id",
            "second",
            "--dry-run",
        ],
    );
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.contains("benchmark-hello-ec-pt.args.EVAL_TASK_ID=second"),
        "{plan}"
    );
    ok(
        root,
        &[
            "build",
            "eval",
            "hello-ec",
            "--agent",
            "mini-swe-agent",
            "--dry-run",
        ],
    );
}

#[test]
fn refusals_write_nothing() {
    let fleet = copy();
    let root = fleet.path();
    ok(root, &["new", "benchmark", "hello-ec"]);
    ok(root, &["new", "benchmark", "hello-ec-pt", "--per-task"]);
    let before = snapshot(&root.join("containers"));
    refused(root, &["new", "benchmark", "hello-ec"], "already exists");
    refused(root, &["new", "benchmark", "aime"], "already exists");
    refused(root, &["new", "benchmark", "Bad_Name"], "Bad_Name");
    refused(
        root,
        &["new", "benchmark", "x-y", "--task", "../up"],
        "../up",
    );
    refused(root, &["new", "task", "hello-ec", "../up"], "../up");
    refused(root, &["new", "task", "hello-ec", "a;b"], "a;b");
    refused(
        root,
        &["new", "task", "hello-ec", "hello"],
        "has a task \"hello\"",
    );
    refused(
        root,
        &["new", "task", "hello-ec-pt", "hello"],
        "has a task \"hello\"",
    );
    refused(root, &["new", "task", "aime", "x"], "not folders");
    refused(root, &["new", "task", "no-such", "x"], "unknown benchmark");
    assert!(
        before == snapshot(&root.join("containers")),
        "a refusal wrote"
    );
}

#[test]
fn the_shell_dry_run_is_the_agents_place_and_bad_input_starts_nothing() {
    let fleet = copy();
    let root = fleet.path();
    ok(root, &["new", "benchmark", "hello-ec"]);
    let args = [
        "shell",
        "hello-ec",
        "--task-id",
        "0",
        "--agent",
        "mini-swe-agent",
        "--dry-run",
    ];
    let out = ok(root, &args);
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        line.starts_with("docker run --rm -it --name kiln-shell-"),
        "{line}"
    );
    for want in [
        "--label kiln.run=true --network none",
        "-e EVAL_TASK_ID=0 ",
        "-e ANTHROPIC_BASE_URL=http://kiln-gateway:8080 ",
        " ghcr.io/exgentic/evals/hello-ec--mini-swe-agent:latest bash -c ",
        "exec gosu agent env -i PATH=",
    ] {
        assert!(line.contains(want), "{want:?}: {line}");
    }
    assert!(
        !line.contains("--mount") && !line.contains("a+rX"),
        "{line}"
    );
    assert!(!line.contains("kiln.pid"), "{line}");
    let mut with = args.to_vec();
    with.extend(["--with-solution", "--with-tests"]);
    let line = String::from_utf8_lossy(&ok(root, &with).stdout).to_string();
    let solution = root
        .join("containers/benchmarks/hello-ec/solution.sh")
        .canonicalize()
        .unwrap();
    assert!(
        line.contains(&format!(
            "--mount type=bind,source={},target=/solution/solution.sh,readonly",
            solution.display()
        )),
        "{line}"
    );
    assert!(line.contains("chmod -R a+rX /grade.sh /tests"), "{line}");

    // Refused before anything starts (PATH is empty: nothing could).
    for (args, needle) in [
        (
            vec![
                "shell",
                "hello-ec",
                "--task-id",
                "7",
                "--agent",
                "mini-swe-agent",
            ],
            "unknown task",
        ),
        (
            vec![
                "shell",
                "hello-e",
                "--task-id",
                "0",
                "--agent",
                "mini-swe-agent",
            ],
            "closest: hello-ec",
        ),
        (
            vec![
                "shell",
                "hello-ec",
                "--task-id",
                "0",
                "--agent",
                "mini-swe-agen",
            ],
            "unknown agent",
        ),
        (
            vec![
                "shell",
                "aime",
                "--task-id",
                "0",
                "--agent",
                "aider",
                "--with-solution",
                "--dry-run",
            ],
            "no reference solution",
        ),
        (
            vec!["shell", "hello-ec", "--task-id", "0"],
            "no eval image of hello-ec is built",
        ),
        (
            vec!["shell", "hello-ec", "--task-id", "0", "--agent", "aider"],
            "kiln build eval hello-ec --agent aider",
        ),
    ] {
        let out = kiln(root, &args, &[]);
        let said = transcript(&args, &out);
        assert_eq!(out.status.code(), Some(2), "{said}");
        assert!(said.contains(needle), "{needle:?}: {said}");
        assert!(!said.contains("shell: task"), "{said}");
    }
}

#[test]
fn regrade_and_keep_state_refuse_bad_input() {
    let fleet = copy();
    let root = fleet.path();
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().display().to_string();
    refused(root, &["regrade", &dir], "holds no results");
    // No eval image: refused with the command that builds it, before anything runs.
    refused(
        root,
        &[
            "run",
            "agents-smoke",
            "--agent",
            "mini-swe-agent",
            "--keep-state",
            "--no-build",
        ],
        "kiln build eval agents-smoke --agent mini-swe-agent",
    );
}
