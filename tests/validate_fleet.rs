//! Validation of every shipped benchmark on the real Docker Engine: for every task,
//! `kiln run` with the `oracle` agent passes with score 1.0 and the `null` agent does
//! not pass; every result.json follows docs/result.schema.json; an agent that tries
//! to read the graders during its phase is denied. Opt-in: `KILN_TEST_DOCKER=1` (CI
//! sets it; it needs the engine and the local bases of scripts/make-bases.sh with
//! `KILN_BASE_INCLUDE=postgresql`).
//!
//! Images are shared: each eval image is built once (by the first `kiln run` that
//! needs it) and every later run finds it up to date.

mod fleet_support;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Instant;

use serde_json::Value;

/// The tests of this file share images and the engine: one at a time.
static ENGINE: Mutex<()> = Mutex::new(());

fn enabled() -> bool {
    if std::env::var("KILN_TEST_DOCKER").as_deref() == Ok("1") {
        return true;
    }
    eprintln!(
        "skipped: set KILN_TEST_DOCKER=1 to run the fleet validation against the Docker Engine"
    );
    false
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kiln(runner: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .current_dir(repo())
        .env("KILN_RUNNER", runner)
        .output()
        .expect("kiln runs")
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo().join("docs/result.schema.json")).unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

/// Reads a result.json and checks it against the schema; errors say which file.
fn checked_result(path: &Path, schema: &jsonschema::Validator) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let problems: Vec<String> = schema
        .iter_errors(&value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if !problems.is_empty() {
        return Err(format!(
            "{} does not follow docs/result.schema.json: {}",
            path.display(),
            problems.join("; ")
        ));
    }
    Ok(value)
}

fn failed_checks(result: &Value) -> Vec<String> {
    result["checks"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter(|c| c["counted"] == true && c["passed"] == false && c["skipped"] == false)
                .map(|c| {
                    format!(
                        "{}: {}",
                        c["id"].as_str().unwrap_or("?"),
                        c["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn oracle_passes_and_null_does_not_on_every_task() {
    if !enabled() {
        return;
    }
    let _engine = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let runner = fleet_support::static_runner();
    let fleet = kiln::fleet::Fleet::load(&repo(), BTreeMap::new()).expect("the fleet loads");
    let schema = validator();
    let out = tempfile::tempdir().unwrap();
    let out_arg = out.path().to_str().unwrap();
    let mut problems = Vec::new();
    let mut table = vec![format!(
        "{:<26} {:<22} {:<7} {:<10} {:>7} {:>8}",
        "benchmark", "task", "agent", "status", "score", "seconds"
    )];
    let total = Instant::now();
    for benchmark in &fleet.benchmarks {
        for task in &benchmark.tasks {
            for agent in ["oracle", "null"] {
                let started = Instant::now();
                let run = kiln(
                    &runner,
                    &[
                        "run",
                        &benchmark.name,
                        "--agent",
                        agent,
                        "--task-id",
                        task,
                        "--output",
                        out_arg,
                        "--quiet",
                    ],
                );
                let secs = started.elapsed().as_secs_f64();
                let what = format!("{}/{task} × {agent}", benchmark.name);
                if !run.status.success() {
                    problems.push(format!(
                        "{what}: kiln run exited {:?}\n{}",
                        run.status.code(),
                        String::from_utf8_lossy(&run.stderr)
                    ));
                    continue;
                }
                let path = out
                    .path()
                    .join(&benchmark.name)
                    .join(task.to_lowercase())
                    .join(agent)
                    .join("result.json");
                let result = match checked_result(&path, &schema) {
                    Ok(r) => r,
                    Err(e) => {
                        problems.push(format!("{what}: {e}"));
                        continue;
                    }
                };
                let (score, passed) = (
                    result["score"]["value"].as_f64().unwrap(),
                    result["score"]["passed"] == true,
                );
                table.push(format!(
                    "{:<26} {:<22} {:<7} {:<10} {:>7.4} {:>8.1}",
                    benchmark.name,
                    task,
                    agent,
                    result["status"].as_str().unwrap_or("?"),
                    score,
                    secs
                ));
                if result["task"]["id"] != task.as_str() {
                    problems.push(format!(
                        "{what}: result.json is for task {}",
                        result["task"]["id"]
                    ));
                }
                match agent {
                    "oracle" if !(passed && score == 1.0 && result["status"] == "completed") => problems.push(format!(
                        "{what}: the oracle must pass with 1.0, got {score} (status {}); failed: {:?}",
                        result["status"],
                        failed_checks(&result)
                    )),
                    "null" if passed => problems.push(format!("{what}: the null agent passed (score {score})")),
                    _ => {}
                }
            }
        }
    }
    table.push(format!("total {:.1} s", total.elapsed().as_secs_f64()));
    eprintln!("{}", table.join("\n"));
    let report = kiln(&runner, &["report", out_arg]);
    eprintln!("kiln report:\n{}", String::from_utf8_lossy(&report.stdout));
    assert!(
        report.status.success(),
        "kiln report failed: {}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn an_agent_cannot_read_the_graders() {
    if !enabled() {
        return;
    }
    let _engine = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let runner = fleet_support::static_runner();
    let out = tempfile::tempdir().unwrap();
    // The null eval image, built (or found up to date) by kiln itself.
    let run = kiln(
        &runner,
        &[
            "run",
            "metric-definition-audit",
            "--agent",
            "null",
            "--task-id",
            "churn-dashboard",
            "--output",
            out.path().to_str().unwrap(),
            "--quiet",
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // The snooping agent replaces null's files in a throw-away image derived from it.
    let image = "kiln.test/evals/metric-definition-audit--snoop:validate";
    with_test_agent("metric-definition-audit", "null", "snoop", image);

    let spec = kiln::run::RunSpec {
        benchmark: "metric-definition-audit".into(),
        task: "churn-dashboard".into(),
        agent: "snoop".into(),
        image: image.into(),
        store: kiln::store::Store::Docker,
        model: None,
        pass_env: vec!["KILN_TEST_API_KEY".into()],
        agent_timeout: Some(120),
        solution: None,
        dir: kiln::run::result_dir(
            out.path(),
            "metric-definition-audit",
            "churn-dashboard",
            "snoop",
        ),
        echo_progress: false,
        container: kiln::run::container_name(
            0,
            "metric-definition-audit",
            "churn-dashboard",
            "snoop",
            1,
        ),
        labels: kiln::run::reap::Owner::current().labels(),
        made_from: None,
        gateway: None,
        keep_state: false,
    };
    let secret = "sk-kiln-test-0123456789abcdef";
    std::env::set_var("KILN_TEST_API_KEY", secret);
    let outcome = kiln::run::execute_blocking(&spec);
    let _ = Command::new("docker").args(["rmi", "-f", image]).output();
    let outcome = outcome.expect("the snooping run completes");
    let result = checked_result(&outcome.dir.join("result.json"), &validator()).unwrap();
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(result["score"]["passed"], false);
    let log = std::fs::read_to_string(outcome.dir.join("agent/snoop.log"))
        .expect("the agent wrote its log");
    assert!(
        log.contains("denied /kiln/tasks/churn-dashboard/grading/grade"),
        "{log}"
    );
    assert!(log.contains("denied /kiln/tasks/"), "{log}");
    assert!(log.contains("denied /opt/kiln/runner"), "{log}");
    assert!(
        log.trim_end().ends_with("done"),
        "the agent did not finish its sweep: {log}"
    );
    let leaks: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("READ") || l.starts_with("FOUND"))
        .collect();
    assert!(
        leaks.is_empty(),
        "the agent read grading material: {leaks:?}"
    );
}

#[test]
fn a_missing_readme_fails_only_the_production_gate() {
    if !enabled() {
        return;
    }
    let _engine = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let runner = fleet_support::static_runner();
    let out = tempfile::tempdir().unwrap();
    let run = kiln(
        &runner,
        &[
            "run",
            "metric-backfill",
            "--agent",
            "oracle",
            "--task-id",
            "orders-daily",
            "--output",
            out.path().to_str().unwrap(),
            "--quiet",
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let image = "kiln.test/evals/metric-backfill--partial:validate";
    with_test_agent("metric-backfill", "oracle", "partial", image);
    let spec = kiln::run::RunSpec {
        benchmark: "metric-backfill".into(),
        task: "orders-daily".into(),
        agent: "partial".into(),
        image: image.into(),
        store: kiln::store::Store::Docker,
        model: None,
        pass_env: Vec::new(),
        agent_timeout: Some(300),
        solution: Some(repo().join("benchmarks/metric-backfill/tasks/orders-daily/solution")),
        dir: kiln::run::result_dir(out.path(), "metric-backfill", "orders-daily", "partial"),
        echo_progress: false,
        container: kiln::run::container_name(0, "metric-backfill", "orders-daily", "partial", 1),
        labels: kiln::run::reap::Owner::current().labels(),
        made_from: None,
        gateway: None,
        keep_state: false,
    };
    let outcome = kiln::run::execute_blocking(&spec);
    let _ = Command::new("docker").args(["rmi", "-f", image]).output();
    let outcome = outcome.expect("the run completes");
    let result = checked_result(&outcome.dir.join("result.json"), &validator()).unwrap();
    // Production: no_secrets_in_workspace (core, required) + 4 scenario checks, one failed:
    // frac 3/4 < 0.8 fails the gate; the score is (4 + 4/5) / 5 = 0.96 (DEC-bench's formula).
    assert_eq!(result["score"]["highest_gate"], 4, "{result}");
    assert_eq!(result["score"]["passed"], false);
    assert_eq!(result["score"]["value"], 0.96, "{result}");
    assert_eq!(
        failed_checks(&result),
        vec!["readme_explains_rerun: no README in /workspace".to_string()]
    );
}

/// Builds `image`: the shared-env eval image of `benchmark` × `agent` with its
/// `/opt/agent` files replaced by the test agent `tests/fixtures/agents/<fixture>`.
fn with_test_agent(benchmark: &str, agent: &str, fixture: &str, image: &str) {
    let fleet = kiln::fleet::Fleet::load(&repo(), BTreeMap::new()).unwrap();
    let from = fleet.naming.eval(benchmark, None, agent);
    let ctx = tempfile::tempdir().unwrap();
    let dir = repo().join("tests/fixtures/agents").join(fixture);
    for file in ["run", "name"] {
        std::fs::copy(dir.join(file), ctx.path().join(file)).unwrap();
    }
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {from}\nCOPY run name /opt/agent/\n"),
    )
    .unwrap();
    let built = Command::new("docker")
        .args(["build", "-q", "-t", image])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
}
