//! `kiln lint` over fixture fleets: the deliberately broken one (every violation with
//! file:line, exit 1), the clean one and the shipped repository (exit 0).
//! Regenerate the golden file: `KILN_BLESS=1 cargo test -p kiln --test lint_fixtures`.

mod fleet_support;

use fleet_support::*;

#[test]
fn broken_fleet_reports_every_violation_with_file_and_line() {
    let out = kiln(&fixture("broken"), &["lint"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines() {
        let (file_line, _) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("no file:line in {line:?}"));
        let (_, n) = file_line.rsplit_once(':').unwrap();
        assert!(n.parse::<usize>().is_ok_and(|n| n >= 1), "{line}");
    }
    // One per rule of RULES.md that the fixture breaks.
    for needle in [
        "invalid agent name \"Bad_Agent\"",
        "no target \"benchmark-misnamed\"",
        "has no tasks",
        "does not belong in",
        "missing label \"eval.benchmark.data_revision\"",
        "eval.benchmark.env is \"sometimes\"",
        "eval.benchmark.tasks is \"5\", expected \"2\"",
        "released may only be \"true\"",
        "invalid task id \"bad id\"",
        "differ only in case",
        "has no environment/Dockerfile",
        "containers/agents/null/Dockerfile:2: kiln.local/core/runner:dev is the in-fleet image",
        "containers/agents/oracle/Dockerfile:3: ARG GITHUB_TOKEN looks like a secret",
        "containers/agents/oracle/Dockerfile:4: ENV DB_PASSWORD looks like a secret",
        "build arg API_KEY looks like a secret",
        "only per-task benchmarks and core-eval may use EVAL_TASK_ID",
        "should include \"kiln.local/agents/oracle:dev\"",
        "eval.agent.name is \"oracle2\"",
        "context key \"kiln.local/core/base\"",
        "cannot be built without EVAL_* variables",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    assert!(
        !stdout.contains("hunter2") && !stdout.contains("sk-not-here"),
        "lint printed a secret value"
    );
    golden("lint/broken.txt", &transcript(&["lint"], &out));
}

#[test]
fn clean_fixture_passes() {
    let out = kiln(&fixture("small"), &["lint"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        transcript(&["lint"], &out)
    );
    assert!(out.stdout.is_empty());
}

/// The repository's own fleet follows its rules.
#[test]
fn shipped_fleet_passes() {
    let out = kiln(&manifest_dir(), &["lint"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        transcript(&["lint"], &out)
    );
}

#[test]
fn not_a_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let out = kiln(tmp.path(), &["lint"], &[]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("looked for docker-bake.hcl (kiln)"));
}
