//! The runner's `shell` phase (what `kiln shell` runs) on a fake image root: the command
//! runs in the agent's place with exactly what the agent of a normal run gets. As root
//! (CI) only: the phase switches to the agent uid.

mod common;

use std::fs;

use common::{is_root, stderr, Image};

const TASK: &str = r#"
schema_version = "1"
id = "copy-file"
title = "Copy the input"
[environment]
env = { GREETING = "hello" }
[grading]
mode = "gated"
core_checks = ["process_exits_clean"]
"#;

fn gated_task(img: &Image) {
    let id = "copy-file";
    img.task_file(id, "scenario.toml", TASK, false);
    img.task_file(
        id,
        "prompts/default.md",
        "Copy $WORKSPACE/in/data.txt.\n",
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
}

#[test]
fn shell_runs_in_the_agents_place_with_what_the_agent_gets() {
    if !is_root() {
        eprintln!("skipped: the shell phase switches to the agent uid, which needs root");
        return;
    }
    let img = Image::new(64120);
    gated_task(&img);
    let grading = img.task_dir("copy-file").join("grading");
    let probe = format!(
        "env | sort; echo UID=$(id -u); echo CWD=$(pwd); \
         if cat {g}/data/expected.txt >/dev/null 2>&1; then echo READ-GRADING; else echo DENIED-GRADING; fi",
        g = grading.display()
    );
    // The agent of a normal run records the same probe.
    img.agent(&format!(
        "#!/bin/sh\n({probe}) > \"$AGENT_OUTPUT_DIR/probe.txt\"\n"
    ));
    let all = img
        .command(&["all", "--output", img.output().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(all.status.code(), Some(0), "{}", stderr(&all));
    let agent_saw = fs::read_to_string(img.output().join("agent/probe.txt")).unwrap();

    let out = std::process::Command::new(common::RUNNER)
        .args(["shell", "--task", "copy-file", "--output"])
        .arg(img.output())
        .arg("--unsafe-test-root")
        .arg(&img.root)
        .args(["--unsafe-test-agent-uid", "64120"])
        .args(["--", "/bin/sh", "-c", &probe])
        .env_remove("KILN_TASK_ID")
        .env("KILN_SECRET_SHOULD_NOT_LEAK", "s3cret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shell_saw = String::from_utf8_lossy(&out.stdout);
    assert_eq!(shell_saw, agent_saw, "the shell and the agent differ");
    for line in [
        "UID=64120",
        &format!("CWD={}", img.workspace().display()),
        "DENIED-GRADING",
        "GREETING=hello",
    ] {
        assert!(
            shell_saw.lines().any(|l| l == line),
            "{line} not in {shell_saw}"
        );
    }
    assert!(!shell_saw.contains("s3cret"));
    // Prepare ran: the fixtures are in the workspace, owned by the agent.
    let meta = fs::metadata(img.workspace().join("in/data.txt")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 64120);
}

#[test]
fn shell_without_a_command_starts_an_interactive_shell() {
    if !is_root() {
        eprintln!("skipped: the shell phase switches to the agent uid, which needs root");
        return;
    }
    let img = Image::new(64121);
    gated_task(&img);
    let mut child = std::process::Command::new(common::RUNNER)
        .args(["shell", "--task", "copy-file", "--output"])
        .arg(img.output())
        .arg("--unsafe-test-root")
        .arg(&img.root)
        .args(["--unsafe-test-agent-uid", "64121"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"cat in/data.txt; echo sum=$((40+2))\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\nsum=42\n");
}
