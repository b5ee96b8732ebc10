//! The gateway's counters: what `kiln run` writes into result.json's `model` section
//! (docs/model-gateway.md, "Counters"). The gateway keeps them and writes them to a
//! file after every call; kiln reads that file when the run is over.

use serde::{Deserialize, Serialize};

/// A request that did not match the recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// The recorded turn (1-based) the request was compared with.
    pub turn: usize,
    pub reason: String,
}

/// Replay counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplayStats {
    pub fixture: String,
    pub turns_recorded: usize,
    /// Recorded answers handed out (divergent ones included with `--lenient`).
    pub turns_served: usize,
    pub lenient: bool,
    /// Every divergence, one per turn (the first reason).
    pub diverged: Vec<Divergence>,
    /// Requests after the last recorded turn.
    pub exhausted: usize,
    /// The recorded run's score, from the fixture's header.
    pub recorded_score: Option<f64>,
}

/// Everything the gateway counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// `replay` or `record`.
    pub mode: String,
    /// Model calls answered (errors included).
    pub calls: usize,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Time from a request's arrival to its answer, summed.
    pub wait_sec: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayStats>,
    /// Record mode: the fixture written and the upstream (its URL without credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

impl Stats {
    /// One line for people: `12 calls, 3400 in / 800 out tokens, 0.2 s waiting; replay: 12/12 turns`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} model calls, {} in / {} out tokens, {:.2}s waiting on the model",
            self.calls, self.input_tokens, self.output_tokens, self.wait_sec
        );
        if let Some(r) = &self.replay {
            s.push_str(&format!(
                "; replay: {}/{} turns served",
                r.turns_served, r.turns_recorded
            ));
            if let Some(d) = r.diverged.first() {
                s.push_str(&format!(", diverged at turn {}: {}", d.turn, d.reason));
            }
            if r.exhausted > 0 {
                s.push_str(&format!(
                    ", exhausted ({} requests after the last recorded turn)",
                    r.exhausted
                ));
            }
        }
        s
    }
}
