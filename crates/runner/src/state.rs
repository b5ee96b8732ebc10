//! What one phase leaves for the next: kept in memory by `all`, and in
//! `<output>/state/state.json` when the phases run as separate invocations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::result::{ErrorEntry, Phase, PhaseTiming};

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct AgentRun {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub wall_sec: f64,
    pub privileges_dropped: bool,
    /// The agent could not be run at all (the reason is in `errors`).
    pub not_run: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct State {
    pub run_id: String,
    pub task_id: String,
    pub started_at: String,
    pub prepare_ok: bool,
    pub prepare: Option<PhaseTiming>,
    pub agent_phase: Option<PhaseTiming>,
    pub fixtures: BTreeMap<String, String>,
    pub prompt_variant: String,
    pub prompt_sha256: String,
    pub agent: Option<AgentRun>,
    pub warnings: Vec<String>,
    pub errors: Vec<ErrorEntry>,
}

impl State {
    pub fn path(output: &Path) -> PathBuf {
        output.join("state").join("state.json")
    }

    pub fn load(output: &Path) -> Result<State, String> {
        let path = State::path(output);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: {e} (run the earlier phases first)", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn save(&self, output: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).expect("state serializes");
        crate::fsutil::write_atomic(&State::path(output), text.as_bytes(), 0o644)
    }

    pub fn error(&mut self, phase: Phase, message: impl Into<String>) {
        let message = message.into();
        crate::log::info(&format!("error ({phase:?}): {message}"));
        self.errors.push(ErrorEntry { phase, message });
    }

    pub fn warn(&mut self, message: impl Into<String>) {
        let message = message.into();
        crate::log::info(&format!("warning: {message}"));
        self.warnings.push(message);
    }

    pub fn has_infra_error(&self) -> bool {
        self.errors.iter().any(|e| {
            matches!(
                e.phase,
                Phase::Config | Phase::Prepare | Phase::Agent | Phase::Output
            )
        })
    }
}
