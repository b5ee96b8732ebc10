//! Fleet layouts: the eval-containers fleet at `../shared/fleets/eval-containers` (a
//! fleet kiln did not write) lists, resolves and survives damage; detection and
//! `--layout` say what they looked for.

mod fleet_support;

use std::path::{Path, PathBuf};

use fleet_support::*;
use serde_json::Value;

fn upstream() -> PathBuf {
    manifest_dir().join("../shared/fleets/eval-containers")
}

fn json(repo: &Path, args: &[&str]) -> Value {
    let out = kiln(repo, args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(args, &out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_benchmark_and_agent_lists_with_its_labels() {
    let repo = upstream();
    let benchmarks = json(&repo, &["list", "benchmarks", "--json"]);
    let listed = names(&benchmarks);
    // Every directory holding a docker-bake.hcl is a benchmark (`_chart` holds none).
    let dirs: Vec<String> = std::fs::read_dir(repo.join("containers/benchmarks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("docker-bake.hcl").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed.len(), 102);
    assert_eq!(listed.len(), dirs.len());
    let aime = benchmarks
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "aime")
        .unwrap();
    assert_eq!(aime["env"], "shared-env");
    assert_eq!(aime["tasks"], 90);
    assert_eq!(aime["released"], true);
    assert_eq!(aime["image"], "ghcr.io/exgentic/benchmarks/aime:latest");
    assert_eq!(
        aime["labels"]["eval.benchmark.data_revision"],
        "13f9e12f613e720c2a2b2f345dd04b998a29494d"
    );
    let cybench = benchmarks
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "cybench")
        .unwrap();
    assert_eq!(cybench["env"], "per-task");
    assert_eq!(cybench["tasks_listed"], false);

    let agents = json(&repo, &["list", "agents", "--json"]);
    assert_eq!(names(&agents).len(), 22);
    let aider = &agents.as_array().unwrap()[0];
    assert_eq!(aider["name"], "aider");
    // `eval.agent.version="${AGENT_VERSION}"`: the ARG default substituted.
    assert_eq!(aider["version"], "0.86.2");
    assert_eq!(aider["labels"]["eval.agent.runtime"], "python");

    // tasks.txt is the task list of a per-task benchmark; shared-env tasks are 0..n-1.
    let tasks = json(&repo, &["list", "tasks", "swe-bench", "--json"]);
    assert_eq!(tasks.as_array().unwrap().len(), 500);
    assert_eq!(
        tasks[0]["image"],
        "ghcr.io/exgentic/benchmarks/swe-bench-astropy__astropy-12907:latest"
    );
    let tasks = json(&repo, &["list", "tasks", "aime", "--json"]);
    assert_eq!(tasks.as_array().unwrap().len(), 90);
    let out = kiln(&repo, &["list", "tasks", "cybench"], &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        transcript(&["list"], &out)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("tasks.txt"));
}

#[test]
fn bake_print_uses_the_layouts_files() {
    let out = kiln(&upstream(), &["bake", "--print", "agent-aider"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        transcript(&["bake"], &out)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["target"]["agent-aider"]["context"],
        "containers/agents/aider"
    );
    assert_eq!(
        v["target"]["agent-base-python"]["tags"][0],
        "ghcr.io/exgentic/core/agent-base-python:latest"
    );
    // The eval image recipe comes from combination.docker-bake.hcl.
    let out = kiln(
        &upstream(),
        &["bake", "--print", "eval"],
        &[("EVAL_BENCHMARK", "aime"), ("EVAL_AGENT", "aider")],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["target"]["eval"]["tags"][0],
        "ghcr.io/exgentic/evals/aime--aider:latest"
    );
}

/// A copy of the fleet's `containers/` in a temporary directory.
fn copy() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("kiln-evalfleet-")
        .tempdir()
        .unwrap();
    copy_tree(
        &upstream().join("containers"),
        &dir.path().join("containers"),
    );
    dir
}

#[test]
fn a_damaged_fleet_still_lists_the_rest_and_names_each_file() {
    let dir = copy();
    let c = dir.path().join("containers");
    // A per-artifact bake file that does not parse.
    std::fs::write(
        c.join("agents/goose/docker-bake.hcl"),
        "target \"agent-goose\" {\n  context = \n",
    )
    .unwrap();
    // A benchmark without tasks.
    let df = c.join("benchmarks/gsm8k/Dockerfile");
    let text = std::fs::read_to_string(&df).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.contains("eval.benchmark.tasks"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&df, text).unwrap();
    // An agent name used twice: a copied directory whose image still says `aider`.
    copy_tree(&c.join("agents/aider"), &c.join("agents/aider-copy"));
    let bake = c.join("agents/aider-copy/docker-bake.hcl");
    let text = std::fs::read_to_string(&bake)
        .unwrap()
        .replace("agent-aider\"", "agent-aider-copy\"")
        .replace("agents/aider\"", "agents/aider-copy\"")
        .replace("agents/aider:", "agents/aider-copy:");
    std::fs::write(&bake, text).unwrap();
    // A bake file that defines another directory's target (bake would merge the two).
    std::fs::write(
        c.join("agents/crush/docker-bake.hcl"),
        "target \"agent-crush\" {\n  context = \"containers/agents/crush\"\n}\ntarget \"agent-codex\" {\n  context = \"containers/agents/crush\"\n}\n",
    )
    .unwrap();

    let out = kiln(dir.path(), &["list", "agents", "--json"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        transcript(&["list"], &out)
    );
    assert!(
        stderr.contains("containers/agents/goose/docker-bake.hcl: left out"),
        "{stderr}"
    );
    assert!(
        stderr.contains("containers/agents/aider-copy/Dockerfile: agent name \"aider\""),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "containers/agents/codex/docker-bake.hcl: target \"agent-codex\" is defined in"
        ),
        "{stderr}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let agents = names(&v);
    assert_eq!(agents.len(), 22 - 2, "{agents:?}"); // goose and codex out; aider-copy out
    assert!(agents.contains(&"aider".to_string()));
    assert!(agents.contains(&"crush".to_string()));
    assert!(!agents.contains(&"goose".to_string()));

    let out = kiln(dir.path(), &["list", "benchmarks", "--json"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("containers/benchmarks/gsm8k/Dockerfile: benchmark \"gsm8k\" has no tasks"),
        "{stderr}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(names(&v).len(), 101);

    // lint reports each left-out directory as a finding on its file.
    let out = kiln(dir.path(), &["lint"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("containers/agents/goose/docker-bake.hcl:1: left out"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("containers/benchmarks/gsm8k/Dockerfile:1: benchmark \"gsm8k\" has no tasks"),
        "{stdout}"
    );
}

#[test]
fn lint_uses_the_fleets_own_label_rules() {
    let out = kiln(&upstream(), &["lint"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let findings: Vec<&str> = stdout
        .lines()
        .filter(|l| l.ends_with("[eval-containers-labels]"))
        .collect();
    // What the fleet's benchmark rules require and some Dockerfiles lack: a handful, no flood.
    assert!(findings.len() <= 20, "{stdout}");
    assert!(findings.contains(
        &"containers/benchmarks/terminal-bench/Dockerfile:1: label eval.benchmark.description is missing (every benchmark image carries it) [eval-containers-labels]"
    ));
    // The carrier benchmark has no dataset, so no revision to record.
    assert!(!stdout.contains("agents-smoke"), "{stdout}");

    // A name label that disagrees with its directory, and a credential-shaped ARG.
    let dir = copy();
    let df = dir.path().join("containers/agents/aider/Dockerfile");
    let text = std::fs::read_to_string(&df)
        .unwrap()
        .replace(
            "eval.agent.name=\"aider\"",
            "eval.agent.name=\"aider-chat\"",
        )
        .replace(
            "ARG AGENT_VERSION=0.86.2",
            "ARG AGENT_VERSION=0.86.2\nARG OPENAI_API_KEY",
        );
    std::fs::write(&df, text).unwrap();
    let out = kiln(dir.path(), &["lint"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("containers/agents/aider/Dockerfile:9: eval.agent.name is \"aider-chat\", but the directory is \"aider\""), "{stdout}");
    assert!(
        stdout.contains(
            "containers/agents/aider/Dockerfile:7: ARG OPENAI_API_KEY looks like a credential"
        ),
        "{stdout}"
    );
}

#[test]
fn detection_says_what_it_looked_for_and_layout_forces() {
    let empty = tempfile::tempdir().unwrap();
    let out = kiln(empty.path(), &["list", "agents"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("docker-bake.hcl (kiln), containers/docker-bake.hcl (eval-containers)"),
        "{stderr}"
    );
    // Forcing kiln's layout on the eval-containers fleet: kiln's own error.
    let out = kiln(&upstream(), &["--layout", "kiln", "list", "agents"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a kiln repository"));
    // Forcing the layout it has: the same as detected.
    let v = json(
        &upstream(),
        &["--layout", "eval-containers", "list", "agents", "--json"],
    );
    assert_eq!(names(&v).len(), 22);
    let out = kiln(&upstream(), &["--layout", "harbour", "list", "agents"], &[]);
    assert_eq!(out.status.code(), Some(2));
    // kiln's own fleet is still kiln's layout.
    let v = json(&fixture("small"), &["list", "agents", "--json"]);
    assert_eq!(names(&v), ["null", "oracle"]);
}

#[test]
fn base_map_and_build_hosts_in_the_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("bases");
    std::fs::write(
        &map,
        "# the site's mirror\npython:3.12-slim=site.local/python:3.12-slim\n",
    )
    .unwrap();
    let map_arg = map.display().to_string();
    let args = [
        "build",
        "eval",
        "agents-smoke",
        "--agent",
        "aider",
        "--base-map",
        &map_arg,
        "--base",
        "debian:trixie-slim=site.local/debian:13",
        "--dry-run",
    ];
    let out = kiln(&upstream(), &args, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&args, &out));
    // The agent's base (agent-base-python, in its bake graph) and the benchmark both
    // start FROM python:3.12-slim: each gets the named context, nothing else changes.
    assert!(stdout.contains("--set agent-base-python.contexts.python:3.12-slim=docker-image://site.local/python:3.12-slim "), "{stdout}");
    assert!(stdout.contains("--set benchmark-agents-smoke.contexts.python:3.12-slim=docker-image://site.local/python:3.12-slim "), "{stdout}");
    // With a base map, the builds read kiln's copies without `# syntax=` (src/plan/ec_site.rs).
    assert!(
        stdout.contains("--set agent-aider.dockerfile=/"),
        "{stdout}"
    );
    assert!(!stdout.contains("debian:trixie-slim"), "{stdout}");
    assert!(
        stdout.contains("# ghcr.io/exgentic/agents/aider:latest: its build reaches apt mirrors of the base image, files.pythonhosted.org, pypi.org"),
        "{stdout}"
    );
    // A bad line: refused before anything, naming the file and line.
    std::fs::write(&map, "python:3.12-slim=site.local/python\nnode 22\n").unwrap();
    let out = kiln(&upstream(), &args, &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2: no '='", map.display())),
        "{stderr}"
    );
    // kiln's own layout says where the flag applies.
    let out = kiln(
        &fixture("small"),
        &["build", "agent", "null", "--base", "a=b", "--dry-run"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn run_refuses_what_an_eval_image_cannot_be() {
    let dir = copy();
    let fleet = dir.path();
    for (args, says) in [
        (
            &["run", "agents-smoke", "--agent", "nope"][..],
            "unknown agent \"nope\"",
        ),
        (
            &["run", "no-such-bench", "--agent", "mini-swe-agent"][..],
            "unknown benchmark \"no-such-bench\"",
        ),
        (
            &["run", "agents-smoke", "--agent", "mini-swe-agent", "--all"][..],
            "--all does not apply",
        ),
        (&["run", "agents-smoke"][..], "name a benchmark and --agent"),
    ] {
        let out = kiln(fleet, args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}", transcript(args, &out));
        assert!(stderr.contains(says), "{stderr}");
    }
}

#[test]
fn validate_dry_run_prints_each_tasks_two_gradings() {
    let repo = upstream();
    let args = ["validate", "aime", "--task-id", "3", "--dry-run"];
    let out = kiln(&repo, &args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&args, &out));
    let text = String::from_utf8_lossy(&out.stdout);
    let runs: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("docker run"))
        .collect();
    assert_eq!(runs.len(), 2, "{text}");
    for (line, mode) in runs.iter().zip(["reference", "empty"]) {
        assert!(
            line.contains(&format!(
                "--network none -e EVAL_TASK_ID=3 -e KILN_ORACLE={mode}"
            )),
            "{line}"
        );
        assert!(
            line.contains("--entrypoint /entrypoint.sh ghcr.io/exgentic/benchmarks/aime:latest"),
            "{line}"
        );
    }
    for (args, says) in [
        (
            &["validate", "nope", "--dry-run"][..],
            "unknown benchmark \"nope\"",
        ),
        (
            &["validate", "aime", "--task-id", "zz", "--dry-run"][..],
            "no selected benchmark has task \"zz\"",
        ),
    ] {
        let out = kiln(&repo, args, &[]);
        assert_eq!(out.status.code(), Some(2), "{}", transcript(args, &out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{}",
            transcript(args, &out)
        );
    }
}
