//! `result.json` v1 (docs/scenario-format.md §9, docs/result.schema.json), written
//! atomically and printed between fixed markers.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::check::Check;
use crate::score::{GateOutcome, Score};

pub const SCHEMA_VERSION: &str = "2";
pub const BEGIN_MARKER: &str = "==== KILN RESULT BEGIN ====";
pub const END_MARKER: &str = "==== KILN RESULT END ====";

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Completed,
    AgentError,
    AgentTimeout,
    ExternalGrading,
    GraderError,
    InfraError,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::AgentError => "agent_error",
            Status::AgentTimeout => "agent_timeout",
            Status::ExternalGrading => "external_grading",
            Status::GraderError => "grader_error",
            Status::InfraError => "infra_error",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Config,
    Prepare,
    Agent,
    Grade,
    Output,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ErrorEntry {
    pub phase: Phase,
    pub message: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PhaseTiming {
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
}

#[derive(Serialize, Clone, Debug)]
pub struct TaskInfo {
    pub id: String,
    pub title: String,
    pub prompt_variant: String,
    pub prompt_sha256: String,
    pub scenario_sha256: String,
}

#[derive(Serialize, Clone, Debug)]
pub struct AgentInfo {
    pub id: String,
    pub model: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub wall_sec: Option<f64>,
    pub privileges_dropped: bool,
    pub metrics: Option<Map<String, Value>>,
}

#[derive(Serialize, Clone, Debug)]
pub struct Timing {
    pub started_at: String,
    pub finished_at: String,
    pub wall_sec: f64,
    pub prepare: Option<PhaseTiming>,
    pub agent: Option<PhaseTiming>,
    pub grade: Option<PhaseTiming>,
}

#[derive(Serialize, Clone, Debug)]
pub struct RunResult {
    pub schema_version: &'static str,
    pub runner_version: &'static str,
    pub run_id: String,
    pub status: Status,
    pub task: TaskInfo,
    pub agent: AgentInfo,
    pub score: Score,
    pub gates: Vec<GateOutcome>,
    pub checks: Vec<Check>,
    pub rewards: BTreeMap<String, f64>,
    pub fixtures: BTreeMap<String, String>,
    pub timing: Timing,
    pub warnings: Vec<String>,
    pub errors: Vec<ErrorEntry>,
    /// The model section: null from the runner; `kiln run` fills it from its model
    /// gateway's counters after the run (docs/model-gateway.md).
    pub model: Option<Value>,
}

impl RunResult {
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a result always serializes");
        text.push('\n');
        text
    }

    /// `<output>/result.json`, atomically.
    pub fn write(&self, output: &Path) -> std::io::Result<()> {
        crate::fsutil::write_atomic(
            &output.join("result.json"),
            self.to_json().as_bytes(),
            0o644,
        )
    }

    /// The result between the markers on stdout, the only thing the runner prints there.
    pub fn print(&self) {
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{BEGIN_MARKER}\n{}{END_MARKER}\n", self.to_json());
        let _ = out.flush();
    }
}

/// The JSON between the markers of a runner's stdout, if both markers are there.
pub fn extract(stdout: &str) -> Option<&str> {
    let start = stdout.find(BEGIN_MARKER)? + BEGIN_MARKER.len();
    let end = stdout[start..].find(END_MARKER)? + start;
    Some(stdout[start..end].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_between_markers() {
        let out = format!("noise\n{BEGIN_MARKER}\n{{\"a\":1}}\n{END_MARKER}\nmore\n");
        assert_eq!(extract(&out), Some("{\"a\":1}"));
        assert_eq!(extract("nothing"), None);
    }

    #[test]
    fn status_names_match_serde() {
        for s in [
            Status::Completed,
            Status::AgentError,
            Status::AgentTimeout,
            Status::ExternalGrading,
            Status::GraderError,
            Status::InfraError,
        ] {
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                Value::String(s.as_str().into())
            );
        }
    }
}
