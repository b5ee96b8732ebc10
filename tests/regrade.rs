//! `kiln run --keep-state`, `kiln regrade` and `kiln clean` on the real Docker Engine:
//! an oracle run keeps its state, a grader of the fleet copy changes so that the
//! verdict flips, and the regrade says so without touching the run's result.json; a
//! run without kept state is listed as not regradable; `kiln clean RESULTS` removes
//! the kept image. Opt-in: `KILN_TEST_DOCKER=1`. Bad input needs no engine.
//!
//! The fleet is a copy of this repository's, built under a tag of its own
//! ([`TAG`]), so that its images (changed grader included) are this test's only and
//! are removed at the end.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

mod fleet_support;

const TAG: &str = "kiln-regrade-test";
const TASK: &str = "count-lines";

fn kiln(fleet: &Path, runner: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .current_dir(fleet)
        .envs(fleet_support::FIXED_ENV.iter().copied())
        .env("TAG", TAG)
        .env("KILN_RUNNER", runner)
        .args(args)
        .output()
        .expect("running kiln")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes this test's images at the end, however it ends: the fleet built under
/// [`TAG`], and kept state labelled with this test's run ids.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut images: Vec<String> = docker(&[
            "image",
            "ls",
            "--filter",
            &format!("reference=kiln.local/*/*:{TAG}"),
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ])
        .lines()
        .map(str::to_string)
        .collect();
        for run_id in &self.0 {
            images.extend(
                docker(&[
                    "image",
                    "ls",
                    "-q",
                    "--filter",
                    &format!("label=kiln.kept-state={run_id}"),
                ])
                .lines()
                .map(str::to_string),
            );
        }
        if !images.is_empty() {
            let _ = Command::new("docker")
                .arg("rmi")
                .args(&images)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[test]
fn regrade_flips_with_a_changed_grader_and_clean_removes_the_kept_state() {
    if std::env::var_os("KILN_TEST_DOCKER").is_none() {
        eprintln!("skipped: set KILN_TEST_DOCKER=1 to regrade on the Docker Engine");
        return;
    }
    let runner = fleet_support::static_runner();
    let fleet = fleet_support::fleet_copy();
    let fleet = fleet.path();
    let out_dir = tempfile::tempdir().unwrap();
    let results = out_dir.path().join("results");
    let results_arg = results.to_str().unwrap();
    let mut cleanup = Cleanup(Vec::new());
    let run = |agent: &str, keep: bool| {
        let mut args = vec![
            "run",
            "terminal-lite",
            "--task-id",
            TASK,
            "--agent",
            agent,
            "--backend",
            "engine",
            "--output",
            results_arg,
        ];
        if keep {
            args.push("--keep-state");
        }
        kiln(fleet, &runner, &args)
    };

    // The oracle keeps its state; null does not.
    let out = run("oracle", true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("state kept as kiln.local/kept-state/"),
        "{}",
        text(&out)
    );
    let oracle = results.join("terminal-lite").join(TASK).join("oracle");
    let record = json(&oracle.join("run.json"));
    let image = record["kept_state"]["image"].as_str().unwrap().to_string();
    let run_id = json(&oracle.join("result.json"))["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    cleanup.0.push(run_id.clone());
    assert_eq!(record["kept_state"]["run_id"], run_id.as_str());
    assert_eq!(
        docker(&[
            "image",
            "inspect",
            "--format",
            "{{index .Config.Labels \"kiln.kept-state\"}} {{index .Config.Labels \"eval.type\"}}",
            &image,
        ]),
        format!("{run_id} kept-state")
    );
    // The image holds the state before any grader ran, and no solution.
    let listing = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        &image,
        "-c",
        "ls /workspace /output; ls /kiln/solutions/count-lines 2>&1",
    ]);
    assert!(listing.contains("line_counts.tsv"), "{listing}");
    assert!(
        !listing.contains("grader"),
        "graded before it was kept: {listing}"
    );
    assert!(
        listing.contains("No such file"),
        "the solution was kept: {listing}"
    );
    let out = run("null", false);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(json(
        &results
            .join("terminal-lite")
            .join(TASK)
            .join("null/run.json")
    )["kept_state"]
        .is_null());

    // The author changes the grader: whatever the agent did, reward 0.
    let test_sh = fleet.join("benchmarks/terminal-lite/tasks/count-lines/grading/test.sh");
    let script = std::fs::read_to_string(&test_sh).unwrap().replace(
        "\n[ -f \"$got\" ]",
        "\nreward 0 \"the grader changed\"\n[ -f \"$got\" ]",
    );
    std::fs::write(&test_sh, script).unwrap();
    let original = std::fs::read(oracle.join("result.json")).unwrap();

    let started = std::time::Instant::now();
    let out = kiln(fleet, &runner, &["regrade", results_arg]);
    eprintln!(
        "regrade (with the eval image rebuilt) took {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "terminal-lite/count-lines × oracle: 1.0000 passed → 0.0000 not passed  pass→fail"
        ),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains("terminal-lite/count-lines × null: not regradable: no kept state"),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains("flipped: 1 (1 pass→fail, 0 fail→pass)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  pass→fail  terminal-lite/count-lines × oracle"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(oracle.join("result.json")).unwrap(),
        original,
        "result.json changed"
    );
    let regraded = json(&oracle.join("result.regraded-1.json"));
    assert_eq!(regraded["score"]["value"], 0.0);
    assert_eq!(regraded["score"]["passed"], false);
    assert_eq!(regraded["run_id"], run_id.as_str());
    assert_eq!(
        json(&oracle.join("regraded-1/regrade.json"))["kept_state"],
        image.as_str()
    );
    let grader_log =
        std::fs::read_to_string(oracle.join("regraded-1/grader/reward/stdout.log")).unwrap();
    assert!(grader_log.contains("the grader changed"), "{grader_log}");
    assert!(!oracle.join("regraded-1/result.json").exists());
    assert!(!oracle.join("regraded-1/agent").exists());

    // The report counts the regrade and says so.
    let out = kiln(fleet, &runner, &["report", results_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("0.0000 (regraded)"), "{table}");
    assert!(
        table.contains("terminal-lite/count-lines × oracle: 1.0000 passed → 0.0000 not passed (regrade 1) pass→fail"),
        "{table}"
    );
    let out = kiln(fleet, &runner, &["report", results_arg, "--format", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["agent"] == "oracle")
        .unwrap();
    assert_eq!(row["regraded"]["n"], 1);
    assert_eq!(row["regraded"]["original_score"], 1.0);
    assert_eq!(row["passed"], false);

    // Clean: the dry run names the image, the real one removes it.
    let out = kiln(fleet, &runner, &["clean", results_arg, "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("docker image rm {image}\n")
    );
    let out = kiln(fleet, &runner, &["clean", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("docker image rm {image}")),
        "{}",
        text(&out)
    );
    assert!(!docker(&[
        "image",
        "ls",
        "-q",
        "--filter",
        &format!("label=kiln.kept-state={run_id}")
    ])
    .is_empty());
    let out = kiln(fleet, &runner, &["clean", results_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("removed {image}")),
        "{}",
        text(&out)
    );
    assert_eq!(
        docker(&[
            "image",
            "ls",
            "-q",
            "--filter",
            &format!("label=kiln.kept-state={run_id}")
        ]),
        ""
    );
    assert_eq!(std::fs::read(oracle.join("result.json")).unwrap(), original);

    // Without its image nothing is regradable any more: said per run, exit 1.
    let out = kiln(fleet, &runner, &["regrade", results_arg]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("is no longer in Docker's image store"),
        "{}",
        text(&out)
    );
    assert!(!oracle.join("result.regraded-2.json").exists());

    // --keep-state runs a current result again when its state was not kept.
    let null = results.join("terminal-lite").join(TASK).join("null");
    let out = run("null", true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    cleanup.0.push(
        json(&null.join("result.json"))["run_id"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let kept = json(&null.join("run.json"))["kept_state"]["image"].clone();
    assert!(kept.is_string(), "{}", text(&out));
    let out = kiln(fleet, &runner, &["clean", results_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        docker(&[
            "image",
            "ls",
            "-q",
            "--filter",
            "label=kiln.kept-state",
            "--filter",
            &format!("reference={}", kept.as_str().unwrap())
        ]),
        ""
    );
}

#[test]
fn bad_input_is_refused_naming_it_before_anything_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let missing = tmp.path().join("missing");
    let repo = fleet_support::manifest_dir();
    for (args, needle) in [
        (vec!["regrade", empty.to_str().unwrap()], "holds no results"),
        (
            vec!["regrade", missing.to_str().unwrap()],
            "is not a directory",
        ),
        (vec!["clean", empty.to_str().unwrap()], "holds no results"),
    ] {
        // PATH is empty: nothing could be started even by mistake.
        let out = fleet_support::kiln(&repo, &args, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle) && err.contains(args[1]),
            "{args:?}: {err}"
        );
    }
    // A results directory with a run, and names it does not have.
    let run = tmp.path().join("results/terminal-lite/count-lines/null");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("result.json"),
        r#"{"schema_version": "2", "run_id": "r", "status": "completed", "task": {"id": "count-lines"},
            "agent": {"id": "null", "exit_code": 0, "timed_out": false, "wall_sec": 1.0},
            "score": {"mode": "reward", "value": 0.0, "passed": false, "raw_value": 0.0},
            "timing": {"started_at": "2026-01-01T00:00:00Z", "wall_sec": 1.0}}"#,
    )
    .unwrap();
    let results = tmp.path().join("results");
    for (flag, value) in [("--benchmark", "terminal-lit"), ("--task-id", "count-line")] {
        let out = fleet_support::kiln(
            &repo,
            &["regrade", results.to_str().unwrap(), flag, value],
            &[],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {err}");
        assert!(
            err.contains(&format!("{flag} {value}: no results of it")),
            "{err}"
        );
    }
}
