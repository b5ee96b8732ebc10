//! End-to-end runs of the real runner binary on a fake image root (a temp dir).
//! As root (CI), the agent really runs as an unprivileged uid and graders are
//! really hidden from it; each test uses its own uid because the runner kills
//! every process of the agent's uid after the agent phase.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::{check, is_root, stderr, Image};
use serde_json::Value;

const GATED: &str = r#"
schema_version = "1"
id = "copy-file"
title = "Copy the input"
[environment]
env = { GREETING = "hello" }
[agent]
timeout_sec = 60
[grading]
mode = "gated"
timeout_sec = 20
core_checks = ["process_exits_clean", { id = "fixtures_unchanged", paths = ["in/*"] }]
[grading.gated]
gates = ["functional", "correct"]
"#;

/// A gated task: the agent must copy in/data.txt to out.txt.
fn gated_task(img: &Image) {
    let id = "copy-file";
    img.task_file(id, "scenario.toml", GATED, false);
    img.task_file(
        id,
        "prompts/default.md",
        "Copy $WORKSPACE/in/data.txt to ${WORKSPACE}/out.txt.\n",
        false,
    );
    img.task_file(id, "workspace/in/data.txt", "42\n", false);
    img.task_file(id, "grading/data/expected.txt", "42\n", false);
    img.task_file(
        id,
        "grading/checks/functional/out_exists.sh",
        "#!/bin/sh\ntest -f \"$WORKSPACE/out.txt\"\n",
        true,
    );
    img.task_file(
        id,
        "grading/checks/correct/out_matches",
        "#!/bin/sh\nif cmp -s \"$WORKSPACE/out.txt\" \"$GRADING_DATA/expected.txt\"; then\n  echo '{\"passed\": true, \"message\": \"same bytes\"}'\nelse\n  echo '{\"passed\": false, \"message\": \"differs\"}'\nfi\n",
        true,
    );
}

#[test]
fn gated_pass_and_fail() {
    let img = Image::new(64101);
    gated_task(&img);
    img.agent("#!/bin/sh\nset -e\ncat \"$PROMPT_FILE\"\ncp in/data.txt out.txt\n");
    let out = img.run(&[
        "all",
        "--output",
        img.output().to_str().unwrap(),
        "--agent-id",
        "copier",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = img.result(&out);
    assert_eq!(r["status"], "completed");
    assert_eq!(r["score"]["mode"], "gated");
    assert_eq!(r["score"]["value"], 1.0);
    assert_eq!(r["score"]["passed"], true);
    assert_eq!(r["score"]["highest_gate"], 2);
    assert_eq!(r["agent"]["id"], "copier");
    assert_eq!(r["agent"]["exit_code"], 0);
    assert_eq!(r["agent"]["privileges_dropped"], is_root());
    assert_eq!(check(&r, "out_matches")["message"], "same bytes");
    assert_eq!(check(&r, "fixtures_unchanged")["passed"], true);
    assert_eq!(r["fixtures"]["in/data.txt"].as_str().unwrap().len(), 64);
    // The prompt was given with $WORKSPACE substituted.
    let agent_log = fs::read_to_string(img.output().join("agent/stdout.log")).unwrap();
    let ws = img.workspace().display().to_string();
    assert!(
        agent_log.contains(&format!("Copy {ws}/in/data.txt to {ws}/out.txt.")),
        "{agent_log}"
    );

    // The same task, an agent that does nothing: the first gate fails.
    let img = Image::new(64102);
    gated_task(&img);
    img.agent("#!/bin/sh\nexit 0\n");
    let out = img.run(&[
        "all",
        "--task",
        "copy-file",
        "--output",
        img.output().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = img.result(&out);
    assert_eq!(r["status"], "completed");
    assert_eq!(r["score"]["passed"], false);
    assert_eq!(r["score"]["highest_gate"], 0);
    // (0 + frac_all(functional) = 1 of 2) / 2 gates
    assert_eq!(r["score"]["value"], 0.25);
    assert_eq!(r["gates"][1]["evaluated"], false);
    // The correct gate's grader never ran; its core check is listed but not counted.
    assert!(r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["id"] != "out_matches"));
    assert_eq!(check(&r, "fixtures_unchanged")["counted"], false);
    assert!(!img.output().join("grader/checks/correct").exists());
}

#[test]
fn agent_cannot_read_graders_and_gets_a_scrubbed_environment() {
    if !is_root() {
        eprintln!("skipped: hiding graders needs root (the runner switches to the agent uid)");
        return;
    }
    let img = Image::new(64103);
    gated_task(&img);
    let grading = img.task_dir("copy-file").join("grading");
    // Even if the image build left everything world-readable, the runner closes /kiln.
    for p in [
        img.root.join("kiln"),
        img.root.join("kiln/tasks"),
        img.task_dir("copy-file"),
        grading.clone(),
    ] {
        fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    img.agent(&format!(
        "#!/bin/sh\n\
         if cat {g}/data/expected.txt > stolen.txt 2>/dev/null; then echo READ-GRADING; else echo DENIED-GRADING; fi\n\
         if ls {k} >/dev/null 2>&1; then echo LISTED-KILN; else echo DENIED-KILN; fi\n\
         env | sort > \"$AGENT_OUTPUT_DIR/env.txt\"\n\
         id -u > \"$AGENT_OUTPUT_DIR/uid.txt\"\n\
         ln -s {g}/data/expected.txt out.txt\n",
        g = grading.display(),
        k = img.root.join("kiln").display()
    ));
    let out = img
        .command(&[
            "all",
            "--output",
            img.output().to_str().unwrap(),
            "--pass-env",
            "ALLOWED_KEY",
        ])
        .env("KILN_SECRET_SHOULD_NOT_LEAK", "s3cret")
        .env("ALLOWED_KEY", "k")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = img.result(&out);
    let log = fs::read_to_string(img.output().join("agent/stdout.log")).unwrap();
    assert!(
        log.contains("DENIED-GRADING") && log.contains("DENIED-KILN"),
        "{log}"
    );
    assert!(!log.contains("READ-GRADING"));
    assert_eq!(
        fs::read_to_string(img.output().join("agent/uid.txt"))
            .unwrap()
            .trim(),
        "64103"
    );
    let env = fs::read_to_string(img.output().join("agent/env.txt")).unwrap();
    let names: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    for wanted in [
        "PATH",
        "HOME",
        "WORKSPACE",
        "PROMPT_FILE",
        "TASK_ID",
        "MODEL",
        "AGENT_ID",
        "AGENT_OUTPUT_DIR",
        "GREETING",
        "ALLOWED_KEY",
    ] {
        assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
    }
    for banned in [
        "KILN_SECRET_SHOULD_NOT_LEAK",
        "GRADING_DIR",
        "GRADING_DATA",
        "GRADER_OUT",
    ] {
        assert!(!names.contains(&banned), "{banned} leaked to the agent");
    }
    assert!(
        !env.contains(&grading.display().to_string()),
        "the grading path leaked: {env}"
    );
    assert_eq!(r["score"]["passed"], false);
    // The planted link to the answer was removed before the (root) graders ran.
    assert!(
        r["warnings"]
            .to_string()
            .contains("removed out.txt: a symlink into the hidden grading tree"),
        "{r:#}"
    );
    assert!(!img.workspace().join("out.txt").exists());
    assert_eq!(check(&r, "out_exists")["passed"], false);
    // The mode the runner forced on /kiln.
    let mode = fs::metadata(img.root.join("kiln")).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o700
    );
}

#[test]
fn agent_timeout_kills_everything_the_agent_started() {
    let img = Image::new(64104);
    gated_task(&img);
    // The agent daemonizes a child out of its process group, then hangs.
    img.agent("#!/bin/sh\nsetsid sh -c 'sleep 300' &\ncp in/data.txt out.txt\nsleep 300\n");
    let start = Instant::now();
    let out = img.run(&[
        "all",
        "--output",
        img.output().to_str().unwrap(),
        "--agent-timeout",
        "1",
    ]);
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = img.result(&out);
    assert_eq!(r["status"], "agent_timeout");
    assert_eq!(r["agent"]["timed_out"], true);
    assert_eq!(check(&r, "process_exits_clean")["passed"], false);
    assert_eq!(r["score"]["passed"], false);
    if is_root() {
        assert!(
            kiln_runner::process::pids_of_uid(img.uid).is_empty(),
            "agent processes survived"
        );
        assert!(
            r["warnings"].to_string().contains("left running"),
            "{}",
            r["warnings"]
        );
    }
}

const WEIGHTED: &str = r#"
schema_version = "1"
id = "audit"
[grading]
mode = "weighted"
expected = ["output_exists", "exact_rows", "equivalence_audit_keys", "equivalence_audit_reason_classes"]
core_checks = [{ id = "fixtures_unchanged", weight = 0.08 }]
[grading.weighted]
pass_threshold = 1.0
[[grading.weighted.caps]]
when_any_failed = "equivalence_audit_*"
max = 0.69
"#;

fn weighted_task(img: &Image, grade: &str) {
    img.task_file("audit", "scenario.toml", WEIGHTED, false);
    img.task_file("audit", "prompts/default.md", "Audit.\n", false);
    img.task_file("audit", "workspace/in/defs.md", "defs\n", false);
    img.task_file("audit", "grading/grade", grade, true);
}

#[test]
fn weighted_cap_and_a_grader_that_omits_checks() {
    let img = Image::new(64105);
    weighted_task(
        &img,
        "#!/bin/sh\ncat > \"$GRADER_OUT/checks.jsonl\" <<EOF\n\
         {\"id\": \"output_exists\", \"passed\": true, \"weight\": 0.10}\n\
         {\"id\": \"exact_rows\", \"passed\": true, \"weight\": 0.32}\n\
         {\"id\": \"equivalence_audit_keys\", \"passed\": true, \"weight\": 0.04}\n\
         {\"id\": \"equivalence_audit_reason_classes\", \"passed\": false, \"weight\": 0.16, \"message\": \"wrong class for ARPU\"}\n\
         EOF\n",
    );
    img.agent("#!/bin/sh\ntrue\n");
    let out = img.run(&["all", "--output", img.output().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = img.result(&out);
    assert_eq!(r["status"], "completed");
    assert_eq!(r["score"]["value"], 0.69);
    assert_eq!(r["score"]["raw_value"], 0.7714); // 0.54 / 0.70
    assert_eq!(
        r["score"]["caps_applied"][0]["failed_checks"][0],
        "equivalence_audit_reason_classes"
    );
    assert_eq!(check(&r, "fixtures_unchanged")["group"], "core");

    // The grader forgets a promised check: it is a failed check, and the run says grader_error.
    let img = Image::new(64106);
    weighted_task(&img, "#!/bin/sh\necho '{\"checks\": [{\"id\": \"output_exists\", \"passed\": true}, {\"id\": \"exact_rows\", \"passed\": true}, {\"id\": \"equivalence_audit_keys\", \"passed\": true}]}'\n");
    img.agent("#!/bin/sh\ntrue\n");
    let r = img.result(&img.run(&["all", "--output", img.output().to_str().unwrap()]));
    assert_eq!(r["status"], "grader_error");
    let missing = check(&r, "equivalence_audit_reason_classes");
    assert_eq!(missing["passed"], false);
    assert_eq!(missing["details"]["error"], "not reported by any grader");
    assert_eq!(r["score"]["value"], 0.69);
}

#[test]
fn crashed_and_timed_out_graders_fail_closed() {
    let img = Image::new(64107);
    let toml = "schema_version = \"1\"\nid = \"t\"\n[grading]\nmode = \"weighted\"\ntimeout_sec = 1\n[grading.weighted]\npass_threshold = 0.5\n";
    img.task_file("t", "scenario.toml", toml, false);
    img.task_file("t", "prompts/default.md", "x", false);
    img.task_file(
        "t",
        "grading/checks/default/ok",
        "#!/bin/sh\nexit 0\n",
        true,
    );
    img.task_file(
        "t",
        "grading/checks/default/slow",
        "#!/bin/sh\necho '{\"passed\": true}' > \"$GRADER_OUT/checks.jsonl\"\nsleep 30\n",
        true,
    );
    img.task_file(
        "t",
        "grading/checks/default/crash",
        "#!/bin/sh\nkill -SEGV $$\n",
        true,
    );
    img.task_file(
        "t",
        "grading/checks/default/garbage",
        "#!/bin/sh\necho '{\"passed\": tru'\n",
        true,
    );
    img.task_file(
        "t",
        "grading/checks/default/plain_fail",
        "#!/bin/sh\necho 'row 3 differs' >&2\nexit 1\n",
        true,
    );
    img.agent("#!/bin/sh\ntrue\n");
    let start = Instant::now();
    let out = img.run(&["all", "--output", img.output().to_str().unwrap()]);
    assert!(start.elapsed() < Duration::from_secs(20));
    let r = img.result(&out);
    assert_eq!(r["status"], "grader_error");
    assert_eq!(check(&r, "ok")["passed"], true);
    for (id, reason) in [
        ("slow", "timed out after 1 s"),
        ("crash", "killed by signal 11"),
        ("garbage", "unreadable output"),
    ] {
        let c = check(&r, id);
        assert_eq!(c["passed"], false, "{id}");
        assert!(
            c["details"]["error"].as_str().unwrap().contains(reason),
            "{id}: {c}"
        );
    }
    // A plain non-zero exit is an honest failure, not a grader error.
    let plain = check(&r, "plain_fail");
    assert_eq!(plain["passed"], false);
    assert_eq!(plain["message"], "row 3 differs");
    assert!(plain["details"].get("error").is_none());
    assert_eq!(r["score"]["value"], 0.2);
    assert_eq!(r["errors"].as_array().unwrap().len(), 3);
}

fn reward_task(img: &Image, test_sh: &str) {
    let toml = "schema_version = \"1\"\nid = \"r\"\n[grading]\nmode = \"reward\"\ncore_checks = [\"process_exits_clean\"]\n[grading.reward]\ncommand = \"grading/test.sh\"\n";
    img.task_file("r", "scenario.toml", toml, false);
    img.task_file(
        "r",
        "prompts/default.md",
        "Write hello to answer.txt",
        false,
    );
    img.task_file("r", "grading/test.sh", test_sh, true);
}

#[test]
fn reward_mode_pass_missing_and_oracle_solution() {
    let test_sh = "#!/bin/sh\nif [ \"$(cat answer.txt 2>/dev/null)\" = hello ]; then echo 1 > \"$GRADER_OUT/reward.txt\"; else echo 0 > \"$GRADER_OUT/reward.txt\"; fi\n";
    // The oracle: the solution reaches the agent only because /kiln/solutions/<id> exists.
    let img = Image::new(64108);
    reward_task(&img, test_sh);
    common::write(
        &img.root.join("kiln/solutions/r/solve.sh"),
        "#!/bin/sh\necho hello > \"$WORKSPACE/answer.txt\"\n",
        true,
    );
    img.agent("#!/bin/sh\nexec \"$SOLUTION_DIR/solve.sh\"\n");
    let out = img.run(&["all", "--output", img.output().to_str().unwrap()]);
    let r = img.result(&out);
    assert_eq!(
        (
            r["status"].as_str(),
            r["score"]["value"].as_f64(),
            r["score"]["passed"].as_bool()
        ),
        (Some("completed"), Some(1.0), Some(true)),
        "{r:#}"
    );
    assert_eq!(r["rewards"]["reward"], 1.0);

    // No solution in the image: SOLUTION_DIR is unset and the agent fails.
    let img = Image::new(64109);
    reward_task(&img, test_sh);
    img.agent("#!/bin/sh\nexec \"$SOLUTION_DIR/solve.sh\"\n");
    let r = img.result(&img.run(&["all", "--output", img.output().to_str().unwrap()]));
    assert_eq!(r["status"], "agent_error");
    assert_eq!(
        (r["score"]["value"].as_f64(), r["score"]["passed"].as_bool()),
        (Some(0.0), Some(false))
    );

    // A test script that writes no reward: score 0, grader_error.
    let img = Image::new(64110);
    reward_task(&img, "#!/bin/sh\necho tests ran\n");
    img.agent("#!/bin/sh\ntrue\n");
    let r = img.result(&img.run(&["all", "--output", img.output().to_str().unwrap()]));
    assert_eq!(r["status"], "grader_error");
    assert_eq!(r["score"]["value"], 0.0);
    assert!(r["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("neither reward.json nor reward.txt"));
}

#[test]
fn services_are_started_ready_gated_and_exported() {
    let img = Image::new(64111);
    let state = img.root.join("svc-state");
    let toml = format!(
        r#"schema_version = "1"
id = "svc"
[[environment.services]]
name = "fake-db"
command = "sleep 1; touch {s}; exec sleep 300"
ready = "test -f {s}"
ready_timeout_sec = 20
env = {{ FAKE_DB_URL = "fake://localhost:1" }}
[grading]
mode = "gated"
core_checks = ["services_healthy", "process_exits_clean"]
[grading.gated]
gates = ["functional", "robust"]
"#,
        s = state.display()
    );
    img.task_file("svc", "scenario.toml", &toml, false);
    img.task_file("svc", "prompts/default.md", "x", false);
    img.task_file(
        "svc",
        "grading/checks/functional/url_used",
        "#!/bin/sh\ngrep -q \"$FAKE_DB_URL\" \"$WORKSPACE/url.txt\"\n",
        true,
    );
    img.task_file(
        "svc",
        "setup/01-seed.sh",
        "#!/bin/sh\necho seeded > \"$WORKSPACE/seed.txt\"\n",
        true,
    );
    img.agent("#!/bin/sh\ntest -f seed.txt && echo \"$FAKE_DB_URL\" > url.txt\n");
    let out = img.run(&["all", "--output", img.output().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = img.result(&out);
    assert_eq!(r["score"]["passed"], true, "{r:#}");
    assert_eq!(check(&r, "services_healthy")["group"], "robust");
    assert!(img.output().join("setup/01-seed.sh.log").exists());

    // A service that never becomes ready: infra_error, exit 1, the agent never runs.
    let img = Image::new(64112);
    let toml = "schema_version = \"1\"\nid = \"svc\"\n[[environment.services]]\nname = \"never\"\ncommand = \"exec sleep 300\"\nready = \"false\"\nready_timeout_sec = 1\n[grading]\nmode = \"gated\"\ncore_checks = [\"process_exits_clean\"]\n";
    img.task_file("svc", "scenario.toml", toml, false);
    img.task_file("svc", "prompts/default.md", "x", false);
    img.agent("#!/bin/sh\ntouch \"$WORKSPACE/ran\"\n");
    let out = img.run(&["all", "--output", img.output().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let r = img.result(&out);
    assert_eq!(r["status"], "infra_error");
    assert_eq!(
        (r["score"]["value"].as_f64(), r["score"]["passed"].as_bool()),
        (Some(0.0), Some(false))
    );
    assert!(r["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("never not ready after 1 s"));
    assert!(!img.workspace().join("ran").exists());
}

#[test]
fn separate_phases_give_the_same_result_as_all() {
    let img = Image::new(64113);
    gated_task(&img);
    img.agent("#!/bin/sh\ncp in/data.txt out.txt\n");
    let o = img.output();
    let o = o.to_str().unwrap();
    for phase in ["prepare", "agent"] {
        let out = img.run(&[phase, "--output", o]);
        assert_eq!(out.status.code(), Some(0), "{phase}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{phase} printed a result");
    }
    let out = img.run(&["grade", "--output", o]);
    let r = img.result(&out);
    assert_eq!(
        (r["status"].as_str(), r["score"]["value"].as_f64()),
        (Some("completed"), Some(1.0))
    );
    assert!(
        r["timing"]["prepare"].is_object()
            && r["timing"]["agent"].is_object()
            && r["timing"]["grade"].is_object()
    );
}

#[test]
fn usage_errors_exit_2_and_name_the_problem() {
    let img = Image::new(64114);
    gated_task(&img);
    img.task_file(
        "other",
        "scenario.toml",
        "schema_version = \"1\"\nid = \"other\"\n[grading]\nmode = \"gated\"\nthreshhold = 1\n",
        false,
    );
    img.task_file("other", "prompts/default.md", "x", false);
    let out = img.run(&["all"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("choose a task with --task or KILN_TASK_ID"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("copy-file, other"));
    let out = img.run(&["all", "--task", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let out = img.run(&["all", "--task", "other"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("other/scenario.toml") && err.contains("threshhold"),
        "{err}"
    );
    let out = img
        .command(&["all"])
        .env("KILN_TASK_ID", "copy-file")
        .arg("--agent-timeout")
        .arg("0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // No result.json for usage errors.
    assert!(!img.output().join("result.json").exists());
}

#[test]
fn validate_and_list() {
    let img = Image::new(64115);
    gated_task(&img);
    let tasks = img.root.join("kiln/tasks");
    let out = std::process::Command::new(common::RUNNER)
        .args(["validate", "--tasks-dir", tasks.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok copy-file (gated)\n"
    );
    let list = std::process::Command::new(common::RUNNER)
        .args(["list", "--tasks-dir", tasks.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&list.stdout), "copy-file\n");
    img.task_file("copy-file", "grading/checks/correct/not_exec", "x", false);
    let out = std::process::Command::new(common::RUNNER)
        .args(["validate", "--tasks-dir", tasks.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not_exec: not an executable file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn agent_entry_missing_is_an_infra_error() {
    let img = Image::new(64116);
    gated_task(&img);
    let out = img.run(&["all", "--output", img.output().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let r: Value = img.result(&out);
    assert_eq!(r["status"], "infra_error");
    assert_eq!(r["agent"]["exit_code"], Value::Null);
    assert!(r["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("opt/agent/run"));
}

#[test]
fn a_task_tree_readable_by_the_agent_is_refused() {
    if !is_root() {
        eprintln!("skipped: the read probe switches users (needs root)");
        return;
    }
    let img = Image::new(64117);
    gated_task(&img);
    // /kiln/tasks is a link to a world-readable tree: closing /kiln does not hide it.
    let outside = img.root.join("public-tasks");
    fs::rename(img.root.join("kiln/tasks"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, img.root.join("kiln/tasks")).unwrap();
    for p in [
        outside.clone(),
        outside.join("copy-file"),
        outside.join("copy-file/grading"),
    ] {
        fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    img.agent("#!/bin/sh\ntouch \"$WORKSPACE/ran\"\n");
    let out = img.run(&["all", "--output", img.output().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = img.result(&out);
    assert_eq!(r["status"], "infra_error");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("is readable by the agent user"),
        "{r:#}"
    );
    assert!(
        !img.workspace().join("ran").exists(),
        "the agent ran although it could read the graders"
    );
}

#[test]
fn metrics_output_owner_and_external_grading() {
    let img = Image::new(64118);
    let toml = "schema_version = \"1\"\nid = \"r\"\n[grading]\nmode = \"reward\"\n[grading.reward]\ncommand = \"grading/test.sh\"\n";
    img.task_file("r", "scenario.toml", toml, false);
    img.task_file("r", "prompts/default.md", "x", false);
    img.task_file("r", "grading/test.sh", "#!/bin/sh\necho '{\"reward\": -1, \"note\": \"needs a human\"}' > \"$GRADER_OUT/reward.json\"\n", true);
    img.agent("#!/bin/sh\necho '{\"steps\": 3, \"tokens_in\": 100, \"cost_usd\": 0.01}' > \"$AGENT_OUTPUT_DIR/metrics.json\"\n");
    let mut cmd = img.command(&["--output", img.output().to_str().unwrap(), "--model", "m-1"]);
    if is_root() {
        cmd.env("KILN_OUTPUT_OWNER", "4242:4343");
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = img.result(&out);
    assert_eq!(r["status"], "external_grading");
    assert_eq!(
        (r["score"]["value"].as_f64(), r["score"]["passed"].as_bool()),
        (Some(0.0), Some(false))
    );
    assert_eq!(r["agent"]["model"], "m-1");
    assert_eq!(r["agent"]["metrics"]["steps"], 3);
    if is_root() {
        use std::os::unix::fs::MetadataExt;
        for p in [
            "result.json",
            "agent/metrics.json",
            "grader/reward/reward.json",
        ] {
            let meta = fs::metadata(img.output().join(p)).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (4242, 4343), "{p}");
        }
    }
}

#[test]
fn sigterm_stops_the_agent_and_still_writes_a_result() {
    let img = Image::new(64119);
    gated_task(&img);
    img.agent("#!/bin/sh\nsleep 300\n");
    let child = img
        .command(&["all", "--output", img.output().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on the runner we just spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let start = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = img.result(&out);
    assert_eq!(r["status"], "infra_error");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{r:#}"
    );
    if is_root() {
        assert!(kiln_runner::process::pids_of_uid(img.uid).is_empty());
    }
}
