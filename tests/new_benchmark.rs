//! `kiln new benchmark` and `kiln new task`: in a copy of the shipped fleet, a scaffolded
//! benchmark of either kind and a task added to it pass `kiln lint`; with the real
//! engine (`KILN_TEST_DOCKER=1`) `kiln validate` finds oracle passing and null failing
//! every scaffolded task. Refusals write nothing.

mod fleet_support;

use std::path::Path;
use std::process::Output;

use fleet_support::{fleet_copy, kiln};

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(root: &Path, args: &[&str]) -> Output {
    let out = kiln(root, args, &[]);
    assert!(out.status.success(), "kiln {args:?}: {}", text(&out));
    out
}

fn scaffold_both(root: &Path) {
    ok(
        root,
        &["new", "benchmark", "hello-shared", "--task", "first"],
    );
    ok(root, &["new", "task", "hello-shared", "Second.Task"]);
    ok(root, &["new", "benchmark", "hello-per-task", "--per-task"]);
    ok(root, &["new", "task", "hello-per-task", "two"]);
}

#[test]
fn scaffolds_lint_clean_and_are_counted() {
    let fleet = fleet_copy();
    let root = fleet.path();
    scaffold_both(root);
    ok(root, &["lint"]);
    let bake = std::fs::read_to_string(root.join("docker-bake.hcl")).unwrap();
    assert!(bake.contains("\"benchmark-hello-shared\""), "{bake}");
    assert!(!bake.contains("benchmark-hello-per-task"), "{bake}");
    let list = ok(root, &["list", "tasks", "hello-shared", "--json"]);
    let tasks = String::from_utf8_lossy(&list.stdout);
    assert!(
        tasks.contains("first") && tasks.contains("Second.Task"),
        "{tasks}"
    );
    // Executables as the runner wants them, and the solution kept out of images.
    use std::os::unix::fs::PermissionsExt as _;
    for rel in ["grading/test.sh", "solution/solve.sh"] {
        let p = root.join("benchmarks/hello-per-task/tasks/two").join(rel);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o111,
            0o111,
            "{rel}"
        );
    }
    let ignore =
        std::fs::read_to_string(root.join("benchmarks/hello-shared/.dockerignore")).unwrap();
    assert!(ignore.contains("tasks/*/solution"));
}

#[test]
fn refusals_write_nothing() {
    let fleet = fleet_copy();
    let root = fleet.path();
    let snapshot = |root: &Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = walkdir::WalkDir::new(root)
            .into_iter()
            .map(Result::unwrap)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                (
                    e.path().display().to_string(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = snapshot(root);
    for (args, want) in [
        (vec!["new", "benchmark", "terminal-lite"], "already exists"),
        (vec!["new", "benchmark", "Bad_Name"], "Bad_Name"),
        (vec!["new", "benchmark", "fine", "--task", "../up"], "../up"),
        (
            vec!["new", "task", "terminal-lite", "count-lines"],
            "already exists",
        ),
        (vec!["new", "task", "terminal-lite", "a b"], "a b"),
        (
            vec!["new", "task", "no-such-benchmark", "x"],
            "no-such-benchmark",
        ),
    ] {
        let out = kiln(root, &args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(want), "{args:?}: {}", text(&out));
    }
    assert_eq!(snapshot(root), before);
}

#[test]
fn oracle_passes_and_null_fails_every_scaffolded_task() {
    if std::env::var("KILN_TEST_DOCKER").as_deref() != Ok("1") {
        eprintln!("skipped: set KILN_TEST_DOCKER=1 to validate scaffolds on the Docker Engine");
        return;
    }
    let fleet = fleet_copy();
    let root = fleet.path();
    scaffold_both(root);
    let runner = fleet_support::static_runner();
    let path = std::env::var("PATH").unwrap_or_default();
    let runner = runner.display().to_string();
    let env = [("PATH", path.as_str()), ("KILN_RUNNER", runner.as_str())];
    let out = kiln(
        root,
        &[
            "validate",
            "hello-shared",
            "hello-per-task",
            "--backend",
            "engine",
        ],
        &env,
    );
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    let record = std::fs::read_to_string(root.join(".kiln/validation.json")).unwrap();
    for task in ["first", "Second.Task", "hello", "two"] {
        assert!(
            record.contains(task),
            "{task} not validated: {record}\n{report}"
        );
    }
}
