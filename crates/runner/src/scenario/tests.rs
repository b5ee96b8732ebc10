use super::*;
use std::os::unix::fs::PermissionsExt;

fn write(path: &Path, text: &str, exec: bool) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    if exec {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn task(toml: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t1");
    write(&dir.join("scenario.toml"), toml, false);
    write(&dir.join("prompts/default.md"), "do it", false);
    (tmp, dir)
}

#[test]
fn minimal_gated_task_with_defaults() {
    let (_t, dir) = task("schema_version = \"1\"\nid = \"t1\"\n[grading]\nmode = \"gated\"\ncore_checks = [\"process_exits_clean\", { id = \"fixtures_unchanged\", required = false, paths = [\"in/*\"] }]\n");
    write(
        &dir.join("grading/checks/correct/rows.sh"),
        "#!/bin/sh\n",
        true,
    );
    write(
        &dir.join("grading/checks/functional/table_exists"),
        "#!/bin/sh\n",
        true,
    );
    let t = load(&dir).unwrap();
    assert_eq!(t.gated().gates.len(), 5);
    assert_eq!(t.gated().threshold, 0.8);
    assert_eq!(t.core_checks[0].group, "functional");
    assert!(t.core_checks[0].required);
    assert_eq!(t.core_checks[1].group, "correct");
    assert!(!t.core_checks[1].required);
    let ids: Vec<_> = t
        .check_files
        .iter()
        .map(|c| (c.group.as_str(), c.id.as_str()))
        .collect();
    assert_eq!(
        ids,
        vec![("correct", "rows"), ("functional", "table_exists")]
    );
    assert_eq!(t.scenario.environment.workspace, "/workspace");
    assert_eq!(t.scenario.agent.timeout_sec, 1800);
}

#[test]
fn unknown_keys_are_rejected_with_file_and_line() {
    let (_t, dir) = task(
        "schema_version = \"1\"\nid = \"t1\"\n[grading]\nmode = \"gated\"\nnetwork = \"none\"\n",
    );
    let errs = load(&dir).unwrap_err();
    assert!(
        errs[0].contains("scenario.toml")
            && errs[0].contains("line 5")
            && errs[0].contains("network"),
        "{errs:?}"
    );
}

#[test]
fn every_problem_is_listed() {
    let (_t, dir) = task("schema_version = \"2\"\nid = \"other\"\n[agent]\nprompt_variant = \"informed\"\n[grading]\nmode = \"weighted\"\ncore_checks = [\"nope\"]\n[grading.gated]\n[grading.weighted]\n[[grading.weighted.caps]]\nwhen_any_failed = \"a[\"\nmax = 1.5\n");
    write(&dir.join("grading/grade"), "#!/bin/sh\n", false);
    write(&dir.join("setup/01-init.sql"), "select 1;", false);
    let errs = load(&dir).unwrap_err().join("\n");
    for needle in [
        "schema_version",
        "must equal the task directory name",
        "informed.md",
        "grading.gated: section given",
        "unknown core check \"nope\"",
        "bad glob",
        "caps[0].max",
        "grading/grade: not an executable",
        "setup entries must be executable",
    ] {
        assert!(errs.contains(needle), "missing {needle:?} in\n{errs}");
    }
}

#[test]
fn gated_check_groups_must_be_gates_and_reward_needs_a_command() {
    let (_t, dir) = task("schema_version = \"1\"\nid = \"t1\"\n[grading]\nmode = \"gated\"\n");
    write(&dir.join("grading/checks/corect/x"), "#!/bin/sh\n", true);
    assert!(load(&dir).unwrap_err()[0].contains("\"corect\" is not a gate"));
    let (_t, dir) = task("schema_version = \"1\"\nid = \"t1\"\n[grading]\nmode = \"reward\"\n[grading.reward]\ncommand = \"grading/test.sh\"\n");
    assert!(load(&dir).unwrap_err()[0].contains("test.sh is missing or not executable"));
    write(&dir.join("grading/test.sh"), "#!/bin/sh\n", true);
    assert_eq!(load(&dir).unwrap().mode(), Mode::Reward);
}
