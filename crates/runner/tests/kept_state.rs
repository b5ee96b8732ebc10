//! The runner's side of kept state, end to end on a fake image root: `all
//! --keep-state` stops between the agent and the graders until kiln answers, and
//! `regrade` grades a kept state with other task definitions without running the agent.

mod common;

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use common::{check, stderr, Image};

/// A reward task: reward 1 when out.txt holds `want`; the grader leaves a mark in the
/// workspace (graders may change what they grade) and a service with a pid file.
fn task(img: &Image, dir: &std::path::Path, want: &str) {
    let pidfile = img.root.join("svc.pid");
    let write = |rel: &str, text: &str, exec: bool| common::write(&dir.join(rel), text, exec);
    write(
        "scenario.toml",
        &format!(
            r#"schema_version = "1"
id = "t"
[[environment.services]]
name = "svc"
command = "echo $$ > {p}; exec sleep 300"
ready = "kill -0 $(cat {p})"
ready_timeout_sec = 20
[grading]
mode = "reward"
core_checks = ["services_healthy"]
[grading.reward]
command = "grading/test.sh"
"#,
            p = pidfile.display()
        ),
        false,
    );
    write("prompts/default.md", "Write out.txt.\n", false);
    write(
        "grading/test.sh",
        &format!(
            "#!/bin/sh\ntouch \"$WORKSPACE/graded\"\n\
             if [ \"$(cat \"$WORKSPACE/out.txt\")\" = {want} ]; then echo 1; else echo 0; fi > \"$GRADER_OUT/reward.txt\"\n"
        ),
        true,
    );
}

#[test]
fn keep_state_waits_between_the_agent_and_the_graders() {
    let img = Image::new(64301);
    task(&img, &img.task_dir("t"), "done");
    common::write(
        &img.root.join("kiln/solutions/t/solve.sh"),
        "#!/bin/sh\n",
        true,
    );
    img.agent("#!/bin/sh\necho done > out.txt\n");
    let mut child = img
        .command(&[
            "all",
            "--keep-state",
            "--output",
            img.output().to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let run_id = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("no ready line in:\n{}", seen.join("\n")))
            .unwrap();
        if let Some(rest) = line.strip_prefix(kiln_runner::kept_state::READY_MARKER) {
            break rest.trim().trim_end_matches("====").trim().to_string();
        }
        seen.push(line);
    };
    // The state as the agent left it: nothing graded, the solution gone.
    let ws = img.workspace();
    assert_eq!(fs::read_to_string(ws.join("out.txt")).unwrap(), "done\n");
    assert!(
        !ws.join("graded").exists(),
        "a grader ran before the state was kept"
    );
    assert!(!img.output().join("grader").exists());
    assert!(img.output().join("state/state.json").is_file());
    assert!(!img.root.join("kiln/solutions/t").exists());
    assert!(!img.root.join("run/kiln/solution").exists());
    assert_eq!(run_id.len(), 32, "{run_id}");
    fs::write(img.root.join("run/kiln/state-kept"), "kept as test-image\n").unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", rest.join("\n"));
    let r: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(img.output().join("result.json")).unwrap())
            .unwrap();
    assert_eq!(r["run_id"], run_id.as_str());
    assert_eq!(r["score"]["passed"], true, "{r:#}");
    assert!(ws.join("graded").exists());
    let log = fs::read_to_string(img.output().join("runner.log")).unwrap();
    assert!(log.contains("keep-state: kept as test-image"), "{log}");
}

#[test]
fn regrade_grades_the_kept_state_with_other_graders_and_no_agent() {
    let img = Image::new(64302);
    task(&img, &img.task_dir("t"), "done");
    img.agent("#!/bin/sh\necho done > out.txt\necho ran >> \"$AGENT_OUTPUT_DIR/runs\"\n");
    let output = img.output();
    let out = img.run(&["all", "--output", output.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let first = img.result(&out);
    assert_eq!(first["score"]["passed"], true, "{first:#}");

    // The current fleet's graders want something else.
    let current = img.root.join("kiln/regrade/tasks");
    task(&img, &current.join("t"), "other");
    let out = img.run(&[
        "regrade",
        "--task",
        "t",
        "--tasks-dir",
        current.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let again = img.result(&out);
    assert_eq!(again["score"]["passed"], false, "{again:#}");
    assert_eq!(
        again["run_id"], first["run_id"],
        "the same run, graded again"
    );
    assert_eq!(
        again["agent"]["exit_code"], 0,
        "the agent's record is the run's"
    );
    // The service was started again (all stopped it at the end).
    assert_eq!(
        check(&again, "services_healthy")["passed"],
        true,
        "{again:#}"
    );
    let runs = fs::read_to_string(output.join("agent/runs")).unwrap();
    assert_eq!(runs, "ran\n", "the agent ran again");

    // Without the state the earlier phases leave, there is nothing to regrade.
    let fresh = Image::new(64303);
    task(&fresh, &fresh.task_dir("t"), "done");
    let out = fresh.run(&["regrade", "--output", fresh.output().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("state.json"), "{}", stderr(&out));
}
