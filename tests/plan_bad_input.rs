//! Bad input is refused before anything runs: exit status 2, a message naming the value
//! and the rule (or the closest existing names), nothing on stdout, and nothing run.
//!
//! "Nothing run" is checked for real: the refused commands are given without --dry-run,
//! with PATH holding `podman` and `docker` stand-ins that record any call in a file.

mod fleet_support;

use std::path::Path;

use fleet_support::*;

/// (arguments after `kiln`, a fragment the error must contain)
fn cases() -> Vec<(Vec<String>, &'static str)> {
    let eval = |task: &str| -> Vec<String> {
        [
            "build",
            "eval",
            "terminal-lite",
            "--agent",
            "oracle",
            &format!("--task-id={task}"),
        ]
        .map(String::from)
        .to_vec()
    };
    let long = "a".repeat(129);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        // Task ids: every rule of RULES.md, "Task ids".
        (eval(""), "must not be empty"),
        (eval("a/b"), "path separator"),
        (eval("a\\b"), "path separator"),
        (eval(".."), "'..'"),
        (eval("a..b"), "'..'"),
        (eval("../etc"), "path separator"),
        (eval("a b"), "whitespace"),
        (eval("a\tb"), "whitespace"),
        (eval("a\nb"), "whitespace"),
        (eval("a;rm"), "shell metacharacter ';'"),
        (eval("$(id)"), "shell metacharacter '$'"),
        (eval("`id`"), "shell metacharacter '`'"),
        (eval("a|b"), "shell metacharacter '|'"),
        (eval("a&b"), "shell metacharacter '&'"),
        (eval("a>b"), "shell metacharacter '>'"),
        (eval("a*"), "shell metacharacter '*'"),
        (eval("a'b"), "shell metacharacter"),
        (eval("a\"b"), "shell metacharacter"),
        (eval(&long), "at most 128 characters"),
        (eval("-a"), "start and end with a letter or digit"),
        (eval("a._b"), "separated only by"),
        (eval("tâche"), "only ASCII letters"),
        // Unknown names, with the closest existing ones.
        (
            s(&["build", "benchmark", "metric-bakfill"]),
            "unknown benchmark \"metric-bakfill\"; closest: metric-backfill",
        ),
        (
            s(&["build", "eval", "terminal-lite", "--agent", "orcale"]),
            "unknown agent \"orcale\"; closest: oracle",
        ),
        (
            s(&["build", "agent", "nul"]),
            "unknown agent \"nul\"; closest: null",
        ),
        (
            s(&[
                "build",
                "eval",
                "terminal-lite",
                "--agent",
                "oracle",
                "--task-id",
                "fix.config",
            ]),
            "closest: Fix.Config",
        ),
        (
            s(&[
                "build",
                "benchmark",
                "terminal-lite",
                "--task-id",
                "count-line",
            ]),
            "closest: count-lines",
        ),
        (
            s(&[
                "build",
                "eval",
                "metric-backfill",
                "--agent",
                "null",
                "--task-id",
                "orders",
            ]),
            "closest: orders-daily",
        ),
        (
            s(&["list", "tasks", "terminl-lite"]),
            "closest: terminal-lite",
        ),
        // Flags that make no sense together.
        (
            s(&["build", "agent", "oracle", "--task-id", "Fix.Config"]),
            "--task-id makes no sense with `kiln build agent`",
        ),
        (
            s(&["build", "benchmark", "metric-backfill", "--agent", "oracle"]),
            "--agent makes no sense with `kiln build benchmark`",
        ),
        (
            s(&["build", "agent", "oracle", "--agent", "null"]),
            "--agent makes no sense with `kiln build agent",
        ),
        (s(&["build", "eval", "metric-backfill"]), "needs --agent"),
        (
            s(&["build", "all", "--agent", "oracle"]),
            "make no sense with `kiln build all`",
        ),
        (
            s(&["build", "all", "--task-id", "Fix.Config"]),
            "make no sense with `kiln build all`",
        ),
        // Flag values.
        (s(&["build", "all", "--jobs", "0"]), "--jobs"),
        (
            s(&["build", "all", "--backend", "docker"]),
            "unknown backend \"docker\"",
        ),
        (s(&["build", "all", "--progress", "loud"]), "--progress"),
    ]
}

fn recording_path(dir: &Path, log: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    for tool in ["podman", "docker"] {
        let script = format!(
            "#!/bin/sh\necho \"{tool} $*\" >> {}\nexit 0\n",
            log.display()
        );
        let p = dir.join(tool);
        std::fs::write(&p, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir.display().to_string()
}

#[test]
fn every_bad_input_is_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("calls.log");
    let path = recording_path(&tmp.path().join("bin"), &log);
    let repo = fixture("small");
    let cases = cases();
    let mut failures = Vec::new();
    for (args, fragment) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = kiln(
            &repo,
            &args,
            &[
                ("PATH", &path),
                ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(2) || !err.contains(fragment) || !out.stdout.is_empty() {
            failures.push(format!(
                "{}\n  expected exit 2 and {fragment:?}",
                transcript(&args, &out)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        !log.exists(),
        "a refused command ran something: {}",
        std::fs::read_to_string(&log).unwrap()
    );
    eprintln!("{} bad inputs refused", cases.len());
}

/// Good ids of every shape pass the same checks (uppercase, dots, underscores, dashes, 128 chars).
#[test]
fn good_task_ids_are_accepted() {
    for id in [
        "Fix.Config",
        "count-lines",
        "a__b",
        "A---B",
        "x1.y2_z3",
        &"a".repeat(128),
    ] {
        assert!(kiln::naming::validate_task_id(id).is_ok(), "{id}");
    }
}

/// Refusal happens before the repository is needed at all for task-id rules.
#[test]
fn bad_task_id_refused_even_without_a_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let out = kiln(
        tmp.path(),
        &["build", "eval", "x", "--agent", "y", "--task-id", "a/b"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"a/b\""));
}
