//! Turning a finished pod into the results layout of a local run: the runner's
//! result.json (from between the markers in the pod's log), the log beside it and
//! kiln's run.json; a pod without a result becomes an `infra_error` result that says why.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use crate::report::{self, RunnerResult};

/// What kiln knows of a task from its scenario.toml, for deadlines and for the results
/// of runs that produced none.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInfo {
    pub title: String,
    /// `[grading].mode`.
    pub mode: String,
    /// Setup, services, agent and grading timeouts added up (seconds).
    pub timeouts_sec: u64,
}

impl TaskInfo {
    /// Reads `<task dir>/scenario.toml` (defaults as in docs/scenario-format.md §3).
    pub fn read(task_dir: &Path, agent_timeout: Option<u64>) -> anyhow::Result<TaskInfo> {
        let path = task_dir.join("scenario.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let doc: toml::Value =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let int = |table: &str, key: &str, default: u64| -> u64 {
            doc.get(table)
                .and_then(|t| t.get(key))
                .and_then(toml::Value::as_integer)
                .map(|v| v.max(0) as u64)
                .unwrap_or(default)
        };
        let ready: u64 = doc
            .get("environment")
            .and_then(|e| e.get("services"))
            .and_then(toml::Value::as_array)
            .map(|services| {
                services
                    .iter()
                    .map(|s| {
                        s.get("ready_timeout_sec")
                            .and_then(toml::Value::as_integer)
                            .unwrap_or(60)
                            .max(0) as u64
                    })
                    .sum()
            })
            .unwrap_or(0);
        let agent = agent_timeout.unwrap_or_else(|| int("agent", "timeout_sec", 1800));
        Ok(TaskInfo {
            title: doc
                .get("title")
                .and_then(toml::Value::as_str)
                .unwrap_or_default()
                .to_string(),
            mode: doc
                .get("grading")
                .and_then(|g| g.get("mode"))
                .and_then(toml::Value::as_str)
                .unwrap_or("gated")
                .to_string(),
            timeouts_sec: int("setup", "timeout_sec", 300)
                + ready
                + agent
                + int("grading", "timeout_sec", 300),
        })
    }
}

/// kiln's own record of a pod's run, `run.json` beside result.json.
#[derive(Debug, Serialize)]
pub struct PodRecord<'a> {
    pub benchmark: &'a str,
    pub task: &'a str,
    pub agent: &'a str,
    pub image: &'a str,
    pub on: &'static str,
    pub namespace: &'a str,
    pub job: &'a str,
    pub pod: Option<&'a str>,
    pub completion_index: usize,
    /// The pod's phase and, when it failed, why.
    pub pod_phase: &'a str,
    pub pod_reason: Option<&'a str>,
    /// The runner container's exit status; -1 when it has none (never ran, killed).
    pub runner_exit: i64,
    /// From the container's start to its end, as the kubelet saw it (whole seconds).
    pub wall_sec: Option<f64>,
    pub kiln_version: &'static str,
    /// What the result is made from (`matrix::existing` compares it on the next run).
    pub made_from: Option<crate::run::matrix::MadeFrom>,
}

/// A result.json for a run that produced none (docs/result.schema.json, status infra_error).
pub fn infra_error_result(
    task: &str,
    info: &TaskInfo,
    agent: &str,
    model: Option<&str>,
    run_id: &str,
    reason: &str,
) -> serde_json::Value {
    let now = now_rfc3339();
    serde_json::json!({
        "schema_version": "2",
        "runner_version": "none (kiln on kubernetes)",
        "run_id": run_id,
        "status": "infra_error",
        "task": {"id": task, "title": info.title, "prompt_variant": "", "prompt_sha256": "", "scenario_sha256": ""},
        "agent": {"id": agent, "model": model.unwrap_or(""), "exit_code": null, "signal": null,
                  "timed_out": false, "wall_sec": null, "privileges_dropped": false, "metrics": null},
        "score": {"mode": info.mode, "value": 0.0, "passed": false, "raw_value": 0.0, "threshold": 0.0,
                  "highest_gate": null, "n_gates": null, "caps_applied": []},
        "gates": [], "checks": [], "rewards": {}, "fixtures": {},
        "timing": {"started_at": now, "finished_at": now, "wall_sec": 0.0,
                   "prepare": null, "agent": null, "grade": null},
        "warnings": [],
        "errors": [{"phase": "output", "message": reason}],
        "model": null,
    })
}

fn now_rfc3339() -> String {
    k8s_openapi::chrono::Utc::now().to_rfc3339_opts(k8s_openapi::chrono::SecondsFormat::Secs, true)
}

/// The runner's progress lines on stderr start with this.
const RUNNER_LOG_PREFIX: &str = "[kiln-runner ";

/// The result JSON between the markers of a pod log. The log interleaves stdout and
/// stderr line by line, so a progress line of the runner may sit inside the JSON: such
/// lines are dropped.
pub fn result_in_log(log: &str) -> Option<String> {
    let block = super::super::between_markers(log)?;
    let json: String = block
        .lines()
        .filter(|l| !l.starts_with(RUNNER_LOG_PREFIX))
        .collect::<Vec<_>>()
        .join("\n");
    serde_json::from_str::<serde_json::Value>(&json).ok()?;
    Some(json)
}

/// Writes a run's results into `dir` (replacing what was there only once complete) and
/// returns the result as read back. `log` is the pod's log (stdout and stderr together);
/// `fallback` is the result to write when the log holds none.
pub fn write(
    dir: &Path,
    log: Option<&str>,
    fallback: impl FnOnce() -> serde_json::Value,
    record: &PodRecord<'_>,
) -> anyhow::Result<(PathBuf, RunnerResult)> {
    let parent = dir.parent().expect("result dirs have a parent");
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}.partial-", record.agent))
        .tempdir_in(parent)
        .with_context(|| format!("creating a directory in {}", parent.display()))?;
    if let Some(log) = log {
        std::fs::write(staging.path().join("pod.log"), log)?;
    }
    let json = match log.and_then(result_in_log) {
        Some(json) => json,
        None => serde_json::to_string_pretty(&fallback())?,
    };
    std::fs::write(staging.path().join("result.json"), format!("{json}\n"))?;
    std::fs::write(
        staging.path().join("run.json"),
        serde_json::to_string_pretty(record)? + "\n",
    )?;
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("removing the previous results in {}", dir.display()))?;
    }
    let kept = staging.keep();
    std::fs::rename(&kept, dir).with_context(|| format!("moving results to {}", dir.display()))?;
    let result = report::read_result(&dir.join("result.json"))?;
    Ok((dir.to_path_buf(), result))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> TaskInfo {
        TaskInfo {
            title: "T".into(),
            mode: "reward".into(),
            timeouts_sec: 10,
        }
    }

    fn record() -> PodRecord<'static> {
        PodRecord {
            benchmark: "b",
            task: "t",
            agent: "null",
            image: "i",
            on: "kubernetes",
            namespace: "ns",
            job: "j",
            pod: Some("p"),
            completion_index: 0,
            pod_phase: "Failed",
            pod_reason: Some("Evicted"),
            runner_exit: -1,
            wall_sec: None,
            kiln_version: "0",
            made_from: None,
        }
    }

    #[test]
    fn infra_error_result_matches_the_schema() {
        let v = infra_error_result("t", &info(), "null", None, "r1", "pod evicted");
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/result.schema.json")).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn pod_without_result_becomes_infra_error_and_is_not_complete() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("b/t/null");
        let (_, r) = write(
            &dir,
            Some("runner died\n"),
            || infra_error_result("t", &info(), "null", None, "r1", "pod evicted"),
            &record(),
        )
        .unwrap();
        assert_eq!(r.status, "infra_error");
        assert_eq!(r.errors[0].message, "pod evicted");
        assert!(dir.join("pod.log").is_file() && dir.join("run.json").is_file());
        let want = crate::run::matrix::MadeFrom {
            inputs_digest: "d".into(),
            model: None,
            replay: None,
            repeat: 1,
        };
        assert!(matches!(
            crate::run::matrix::existing(&dir, &want),
            crate::run::matrix::Existing::Redo(_)
        ));
    }

    #[test]
    fn progress_lines_inside_the_result_are_dropped() {
        let log = "[kiln-runner t] start\n==== KILN RESULT BEGIN ====\n{\n  \"a\": 1,\n\
                   [kiln-runner t] result: done\n  \"b\": 2\n}\n==== KILN RESULT END ====\n";
        let json = result_in_log(log).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["b"], 2);
        assert!(
            result_in_log("==== KILN RESULT BEGIN ====\n{\n==== KILN RESULT END ====").is_none()
        );
    }

    #[test]
    fn scenario_timeouts_add_up() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("scenario.toml"),
            "title = \"x\"\n[agent]\ntimeout_sec = 600\n[grading]\nmode = \"reward\"\ntimeout_sec = 60\n\
             [[environment.services]]\nname = \"db\"\ncommand = \"x\"\n",
        )
        .unwrap();
        let i = TaskInfo::read(d.path(), None).unwrap();
        assert_eq!(i.timeouts_sec, 300 + 60 + 600 + 60);
        assert_eq!(i.mode, "reward");
        assert_eq!(
            TaskInfo::read(d.path(), Some(5)).unwrap().timeouts_sec,
            300 + 60 + 5 + 60
        );
    }
}
