//! The static runner in a real container: a `FROM scratch` image holding only a
//! static busybox, two tasks and a snooping agent. Opt-in: `KILN_TEST_DOCKER=1`
//! (needs a Docker engine and busybox-static at /bin/busybox).
//!
//! The static binary is built with the one documented command (see src/main.rs),
//! or taken from `KILN_RUNNER_STATIC`.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::write;
use serde_json::Value;

fn enabled() -> bool {
    if std::env::var("KILN_TEST_DOCKER").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("skipped: set KILN_TEST_DOCKER=1 to run the container tests");
    false
}

fn static_runner() -> PathBuf {
    if let Ok(p) = std::env::var("KILN_RUNNER_STATIC") {
        return PathBuf::from(p);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "-p",
            "kiln-runner",
            "--target",
            "x86_64-unknown-linux-gnu",
        ])
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .current_dir(&workspace)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "static build failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace.join("target"));
    target.join("x86_64-unknown-linux-gnu/release/kiln-runner")
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs")
}

struct TestImage {
    tag: String,
}

impl Drop for TestImage {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.tag]);
    }
}

const TASK_TOML: &str = r#"schema_version = "1"
id = "ID"
[agent]
timeout_sec = 60
[grading]
mode = "gated"
core_checks = ["process_exits_clean", "fixtures_unchanged"]
[grading.gated]
gates = ["functional", "correct"]
"#;

fn add_task(ctx: &Path, id: &str, expected: &str) {
    let dir = ctx.join("kiln/tasks").join(id);
    write(
        &dir.join("scenario.toml"),
        &TASK_TOML.replace("ID", id),
        false,
    );
    write(
        &dir.join("prompts/default.md"),
        "Write the answer to $WORKSPACE/out.txt\n",
        false,
    );
    write(&dir.join("workspace/in.txt"), "42\n", false);
    write(&dir.join("grading/data/expected.txt"), expected, false);
    write(
        &dir.join("grading/checks/functional/out_exists"),
        "#!/bin/sh\ntest -f \"$WORKSPACE/out.txt\"\n",
        true,
    );
    write(
        &dir.join("grading/checks/correct/answer_matches"),
        "#!/bin/sh\ncmp -s \"$WORKSPACE/out.txt\" \"$GRADING_DATA/expected.txt\" && echo '{\"passed\":true}' || echo '{\"passed\":false,\"message\":\"wrong answer\"}'\n",
        true,
    );
}

fn build_image() -> TestImage {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path();
    let bin = ctx.join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static at /bin/busybox");
    let applets = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&applets.stdout)
        .lines()
        .filter(|a| *a != "busybox")
    {
        symlink("busybox", bin.join(applet)).unwrap();
    }
    write(
        &ctx.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n",
        false,
    );
    fs::create_dir_all(ctx.join("opt/kiln")).unwrap();
    fs::copy(static_runner(), ctx.join("opt/kiln/runner")).unwrap();
    // "copy-ok": the answer is the fixture. "hidden-answer": the answer exists only in the
    // grading data, so the agent can pass only by reading the graders.
    add_task(ctx, "copy-ok", "42\n");
    add_task(ctx, "hidden-answer", "1337\n");
    write(
        &ctx.join("opt/agent/run"),
        "#!/bin/sh\n\
         if cat /kiln/tasks/$TASK_ID/grading/data/expected.txt > out.txt 2>/dev/null; then echo SNOOP-READ; exit 0; fi\n\
         echo SNOOP-DENIED\n\
         ls /kiln 2>&1 | head -1\n\
         if [ \"$TASK_ID\" = hidden-answer ]; then ln -sf /kiln/tasks/$TASK_ID/grading/data/expected.txt out.txt; else cp in.txt out.txt; fi\n",
        true,
    );
    write(&ctx.join("opt/agent/name"), "snoop\n", false);
    write(
        &ctx.join("Dockerfile"),
        "FROM scratch\nCOPY . /\nENTRYPOINT [\"/opt/kiln/runner\"]\nCMD [\"all\"]\n",
        false,
    );
    write(
        &ctx.join(".dockerignore"),
        "Dockerfile\n.dockerignore\n",
        false,
    );
    let tag = format!("kiln-runner-test:{}", std::process::id());
    let out = docker(&["build", "-q", "-t", &tag, ctx.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    TestImage { tag }
}

fn run_task(img: &TestImage, task: &str) -> (Output, Value, PathBuf, tempfile::TempDir) {
    let out_dir = tempfile::tempdir().unwrap();
    let mount = format!("{}:/output", out_dir.path().display());
    let out = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &mount,
        &img.tag,
        "all",
        "--task",
        task,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let printed = kiln_runner::result::extract(&stdout).unwrap_or_else(|| {
        panic!(
            "no result on stdout: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let result: Value = serde_json::from_str(printed).unwrap();
    common::assert_schema_valid(&result);
    let file: Value =
        serde_json::from_str(&fs::read_to_string(out_dir.path().join("result.json")).unwrap())
            .unwrap();
    assert_eq!(file, result);
    let path = out_dir.path().to_path_buf();
    (out, result, path, out_dir)
}

#[test]
fn static_runner_in_a_scratch_image() {
    if !enabled() {
        return;
    }
    let img = build_image();

    let (out, r, dir, _keep) = run_task(&img, "copy-ok");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        (
            r["status"].as_str(),
            r["score"]["value"].as_f64(),
            r["score"]["passed"].as_bool()
        ),
        (Some("completed"), Some(1.0), Some(true)),
        "{r:#}"
    );
    assert_eq!(r["agent"]["id"], "snoop");
    assert_eq!(r["agent"]["privileges_dropped"], true);
    let log = fs::read_to_string(dir.join("agent/stdout.log")).unwrap();
    assert!(
        log.contains("SNOOP-DENIED") && log.contains("Permission denied"),
        "{log}"
    );

    let (out, r, dir, _keep) = run_task(&img, "hidden-answer");
    assert_eq!(out.status.code(), Some(0));
    let log = fs::read_to_string(dir.join("agent/stdout.log")).unwrap();
    assert!(
        log.contains("SNOOP-DENIED") && !log.contains("SNOOP-READ"),
        "{log}"
    );
    assert_eq!(r["status"], "completed");
    assert_eq!(r["score"]["passed"], false);
    // The symlink the agent planted towards the answer was removed before grading.
    assert!(
        r["warnings"]
            .to_string()
            .contains("removed out.txt: a symlink into the hidden grading tree"),
        "{r:#}"
    );
    assert_eq!(r["score"]["value"], 0.25); // (0 + 1 of 2 in "functional") / 2 gates
    assert_eq!(r["score"]["highest_gate"], 0);

    // A plain `docker run` of a shared-env image without a task: usage error naming the tasks.
    let out = docker(&["run", "--rm", &img.tag]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("copy-ok, hidden-answer"));
    // ... and with KILN_TASK_ID, no volume, no arguments: `all` runs, the result is on stdout.
    let out = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/opt/kiln/runner",
        "-e",
        "KILN_TASK_ID=copy-ok",
        &img.tag,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: Value = serde_json::from_str(kiln_runner::result::extract(&stdout).unwrap()).unwrap();
    assert_eq!(r["score"]["passed"], true);
}
