//! `kiln report`: reads every `result.json` under a results directory (the layout
//! `kiln run` writes: `<dir>/<benchmark>/<task lowercased>/<agent>/result.json`) and
//! aggregates them as a table, JSON or CSV.
//!
//! A row holds fields the runner writes (docs/scenario-format.md §9), read with serde
//! into [`RunnerResult`], a documented subset of result.json v1; the only field that
//! does not come from result.json is the benchmark, which the runner does not know
//! and which comes from the directory layout. Beside it, kiln's `run.json` gives the
//! run's wall time and what it was made from (the eval image's input digest).
//!
//! The per-cell figures are in [`cells`], their estimators in [`stats`], prices in
//! [`cost`], two-sided comparisons in [`compare`]. A run regraded by `kiln regrade`
//! counts by its newest regraded result and is marked so ([`regraded`]).

pub mod cells;
pub mod compare;
pub mod cost;
mod format;
pub mod html;
pub mod regraded;
pub mod stats;
mod trajectory;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

pub use cells::{problems, summarize, Problem, Summary};
pub use format::{render, render_comparison, summary_table, Format};

/// The subset of result.json v1 the report reads. Unknown fields are ignored, so a
/// later runner that only adds fields stays readable; `schema_version` is checked.
#[derive(Debug, Clone, Deserialize)]
pub struct RunnerResult {
    pub schema_version: String,
    pub run_id: String,
    pub status: String,
    pub task: TaskPart,
    pub agent: AgentPart,
    pub score: ScorePart,
    #[serde(default)]
    pub checks: Vec<CheckPart>,
    pub timing: TimingPart,
    #[serde(default)]
    pub errors: Vec<ErrorPart>,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// v2: the model gateway's counters (null without a gateway).
    #[serde(default)]
    pub model: Option<ModelPart>,
}

/// The part of result.json's `model` section the report reads (docs/model-gateway.md).
#[derive(Debug, Clone, Deserialize)]
pub struct ModelPart {
    #[serde(default)]
    pub model: String,
    pub calls: u64,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub replay: Option<ReplayPart>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReplayPart {
    pub turns_served: u64,
    pub turns_recorded: u64,
    #[serde(default)]
    pub diverged: Vec<DivergencePart>,
    #[serde(default)]
    pub exhausted: u64,
    pub recorded_score: Option<f64>,
    pub score_equals_recorded: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DivergencePart {
    pub turn: u64,
    pub reason: String,
}

impl ReplayPart {
    /// What a person must know about a replay, or "" when it matched its recording:
    /// a score that differs from the recorded one, a divergence, an exhausted fixture.
    pub fn note(&self, score: f64) -> String {
        let mut notes = Vec::new();
        if let (Some(false), Some(recorded)) = (self.score_equals_recorded, self.recorded_score) {
            notes.push(format!(
                "replay score {score:.4} differs from the recorded {recorded:.4}"
            ));
        }
        if let Some(d) = self.diverged.first() {
            notes.push(format!("replay: diverged at turn {}: {}", d.turn, d.reason));
        }
        if self.exhausted > 0 {
            notes.push(format!(
                "replay: exhausted after {} recorded turns",
                self.turns_recorded
            ));
        }
        notes.join("; ")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct TaskPart {
    pub id: String,
    #[serde(default)]
    pub title: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AgentPart {
    pub id: String,
    #[serde(default)]
    pub model: String,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub wall_sec: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ScorePart {
    pub mode: String,
    pub value: f64,
    pub passed: bool,
    /// Before caps (weighted) or clamping (reward).
    pub raw_value: f64,
    pub highest_gate: Option<u32>,
    pub n_gates: Option<u32>,
    #[serde(default)]
    pub caps_applied: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckPart {
    pub id: String,
    pub passed: bool,
    #[serde(default)]
    pub skipped: bool,
    /// False for checks of gates that were not evaluated (they do not count).
    #[serde(default = "yes")]
    pub counted: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
pub struct TimingPart {
    pub started_at: String,
    pub wall_sec: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorPart {
    pub phase: String,
    pub message: String,
}

/// One run, as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub benchmark: String,
    pub task: String,
    pub agent: String,
    pub model: String,
    pub status: String,
    pub mode: String,
    pub score: f64,
    pub passed: bool,
    pub highest_gate: Option<u32>,
    pub n_gates: Option<u32>,
    /// A cap lowered the score (weighted mode).
    pub capped: bool,
    pub checks_passed: usize,
    pub checks_total: usize,
    pub agent_exit_code: Option<i32>,
    pub agent_timed_out: bool,
    pub agent_wall_sec: Option<f64>,
    pub wall_sec: f64,
    pub started_at: String,
    pub run_id: String,
    /// The runner's first error, if any (`phase: message`).
    pub error: String,
    /// A replay that did not match its recording (see [`ReplayPart::note`]), else "".
    pub replay: String,
    pub path: PathBuf,
    /// The repeat index, for results in a `repeat-<k>/` directory (`kiln run --repeat`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
    /// Tokens the model gateway counted (null: the run had no gateway record).
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// The tokens at the price table's prices (null: no record, or no price for the model).
    pub cost_usd: Option<f64>,
    /// kiln's wall time of the whole run (run.json), null without run.json.
    pub run_wall_sec: Option<f64>,
    /// The eval image's input digest (run.json `made_from`), null without it.
    pub inputs_digest: Option<String>,
    /// Why this run is left out of its cell's figures, or a figure it lacks; else "".
    pub problem: String,
    /// Left out of its cell's figures (the reason is in `problem`).
    pub left_out: bool,
    /// The row is a regraded result (`kiln regrade`): which one, and the run's own verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regraded: Option<regraded::Regraded>,
    /// run.json says the run had a model gateway.
    #[serde(skip)]
    pub had_gateway: bool,
    /// The model the tokens are priced as (the gateway's, else the agent's).
    #[serde(skip)]
    pub price_model: String,
}

/// The part of kiln's run.json the report reads (docs/results.md).
#[derive(Debug, Default, Deserialize)]
struct RunJson {
    #[serde(default)]
    wall_sec: Option<f64>,
    #[serde(default)]
    made_from: Option<MadeFromView>,
}

#[derive(Debug, Deserialize)]
struct MadeFromView {
    inputs_digest: String,
    #[serde(default)]
    model: Option<String>,
}

/// Everything under a results directory.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub results: Vec<Row>,
    pub summary: Vec<Summary>,
    /// Everything that is not a clean figure: unreadable files, tasks with results from
    /// two versions, runs without gateway records, tokens without a price.
    pub problems: Vec<Problem>,
    /// Files named result.json that could not be read, with the reason.
    #[serde(skip)]
    pub unreadable: Vec<(PathBuf, String)>,
}

impl Row {
    /// Builds a row from a parsed result and where it was found (run.json, when beside
    /// it, adds the run's wall time and input digest).
    pub fn new(benchmark: String, result: RunnerResult, path: PathBuf) -> Row {
        // A run.json that cannot be read leaves its fields null: it only adds to a result.
        let run: RunJson = path
            .parent()
            .and_then(|d| std::fs::read_to_string(d.join("run.json")).ok())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let made_from = run.made_from.as_ref();
        let model = result.model.as_ref();
        let counted: Vec<&CheckPart> = result
            .checks
            .iter()
            .filter(|c| c.counted && !c.skipped)
            .collect();
        Row {
            benchmark,
            task: result.task.id,
            agent: result.agent.id,
            model: result.agent.model.clone(),
            status: result.status,
            mode: result.score.mode,
            score: result.score.value,
            passed: result.score.passed,
            highest_gate: result.score.highest_gate,
            n_gates: result.score.n_gates,
            // A cap that applied but did not lower the score changed nothing.
            capped: !result.score.caps_applied.is_empty()
                && result.score.raw_value > result.score.value,
            checks_passed: counted.iter().filter(|c| c.passed).count(),
            checks_total: counted.len(),
            agent_exit_code: result.agent.exit_code,
            agent_timed_out: result.agent.timed_out,
            agent_wall_sec: result.agent.wall_sec,
            wall_sec: result.timing.wall_sec,
            started_at: result.timing.started_at,
            run_id: result.run_id,
            replay: result
                .model
                .as_ref()
                .and_then(|m| m.replay.as_ref())
                .map(|r| r.note(result.score.value))
                .unwrap_or_default(),
            error: result
                .errors
                .first()
                .map(|e| format!("{}: {}", e.phase, e.message))
                .unwrap_or_default(),
            repeat: repeat_of(&path),
            input_tokens: model.map(|m| m.input_tokens),
            output_tokens: model.map(|m| m.output_tokens),
            cost_usd: None,
            run_wall_sec: run.wall_sec,
            inputs_digest: made_from.map(|m| m.inputs_digest.clone()),
            problem: String::new(),
            had_gateway: made_from.is_some_and(|m| m.model.is_some()),
            left_out: false,
            regraded: None,
            price_model: model
                .map(|m| m.model.clone())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| result.agent.model.clone()),
            path,
        }
    }
}

/// The agent-directory level of repeat `k` (`kiln run --repeat N`, N > 1): `repeat-<k>`.
pub const REPEAT_PREFIX: &str = "repeat-";

/// `repeat-3` → 3.
pub fn repeat_of_dir_name(name: &str) -> Option<u32> {
    name.strip_prefix(REPEAT_PREFIX)?
        .parse()
        .ok()
        .filter(|k| *k > 0)
}

/// The repeat a result.json belongs to, from its directory (`…/repeat-<k>/result.json`).
fn repeat_of(path: &Path) -> Option<u32> {
    path.parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .and_then(repeat_of_dir_name)
}

/// Reads and checks one result.json.
pub fn read_result(path: &Path) -> anyhow::Result<RunnerResult> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let result: RunnerResult = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a result.json v1 or v2", path.display()))?;
    if !matches!(result.schema_version.as_str(), "1" | "2") {
        anyhow::bail!(
            "{}: schema_version {:?} is not supported (this kiln reads \"1\" and \"2\")",
            path.display(),
            result.schema_version
        );
    }
    Ok(result)
}

/// The benchmark a result belongs to: the third directory above result.json
/// (`<benchmark>/<task>/<agent>/result.json`), or the fourth for a repeat
/// (`<benchmark>/<task>/<agent>/repeat-<k>/result.json`), whatever directory the report
/// started from.
fn benchmark_of(path: &Path) -> String {
    let leaf = if repeat_of(path).is_some() {
        path.parent()
    } else {
        Some(path)
    };
    leaf.and_then(Path::parent)
        .and_then(Path::parent)
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `row` (from the result.json at `path`) as its newest regrade shows it, if the run was
/// regraded; a regraded result that cannot be read is listed as such and the run's own
/// result stands.
fn newest_grade(row: Row, path: &Path, unreadable: &mut Vec<(PathBuf, String)>) -> Row {
    let Some((n, file)) = path.parent().and_then(regraded::newest) else {
        return row;
    };
    let shown = row
        .path
        .parent()
        .map_or_else(|| file.clone(), |d| regraded::result_file(d, n));
    match read_result(&file) {
        // The run's own times stay: a regrade timed only its graders.
        Ok(result) => Row {
            wall_sec: row.wall_sec,
            started_at: row.started_at.clone(),
            regraded: Some(regraded::Regraded {
                n,
                original: row.path.clone(),
                original_status: row.status.clone(),
                original_score: row.score,
                original_passed: row.passed,
            }),
            ..Row::new(row.benchmark.clone(), result, shown)
        },
        Err(err) => {
            unreadable.push((shown, format!("{err:#}")));
            row
        }
    }
}

/// Collects every result.json under `dir` with the built-in prices ([`collect_priced`]).
pub fn collect(dir: &Path) -> anyhow::Result<Report> {
    collect_priced(dir, &cost::Prices::builtin())
}

/// Collects every result.json under `dir`, prices the tokens with `prices` and sums
/// the cells. A missing directory is an error; a file that cannot be read is kept in
/// `unreadable` (and in `problems`) so the caller can name it.
pub fn collect_priced(dir: &Path, prices: &cost::Prices) -> anyhow::Result<Report> {
    if !dir.is_dir() {
        anyhow::bail!(
            "{} is not a directory (no results there; `kiln run` writes them)",
            dir.display()
        );
    }
    let absolute = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    let mut report = Report::default();
    // Hidden directories hold runs being written (`.<name>.partial-*`): not results yet.
    let walk = walkdir::WalkDir::new(&absolute)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walk {
        let entry = entry.with_context(|| format!("walking {}", dir.display()))?;
        if !entry.file_type().is_file() || entry.file_name() != "result.json" {
            continue;
        }
        // Shown relative to the directory the user gave.
        let shown = dir.join(entry.path().strip_prefix(&absolute).unwrap_or(entry.path()));
        let row = match read_result(entry.path()) {
            Ok(result) => Row::new(benchmark_of(entry.path()), result, shown),
            Err(err) => {
                report.unreadable.push((shown, format!("{err:#}")));
                continue;
            }
        };
        report
            .results
            .push(newest_grade(row, entry.path(), &mut report.unreadable));
    }
    report.results.sort_by(|a, b| {
        (
            &a.benchmark,
            a.task.to_lowercase(),
            &a.agent,
            a.repeat,
            &a.path,
        )
            .cmp(&(
                &b.benchmark,
                b.task.to_lowercase(),
                &b.agent,
                b.repeat,
                &b.path,
            ))
    });
    for row in &mut report.results {
        if let (Some(i), Some(o)) = (row.input_tokens, row.output_tokens) {
            row.cost_usd = prices.cost(&row.price_model, i, o);
        }
    }
    report.problems = cells::problems(&mut report.results, &report.unreadable);
    report.summary = summarize(&report.results);
    Ok(report)
}

/// A run for unit tests: benchmark `b`, reward mode, no model.
/// `s` with `& < > " '` escaped, for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub(crate) fn test_row(task: &str, agent: &str, score: f64, passed: bool) -> Row {
    Row {
        benchmark: "b".into(),
        task: task.into(),
        agent: agent.into(),
        model: String::new(),
        status: "completed".into(),
        mode: "reward".into(),
        score,
        passed,
        highest_gate: None,
        n_gates: None,
        capped: false,
        checks_passed: 0,
        checks_total: 0,
        agent_exit_code: Some(0),
        agent_timed_out: false,
        agent_wall_sec: None,
        wall_sec: 1.0,
        started_at: String::new(),
        run_id: String::new(),
        error: String::new(),
        replay: String::new(),
        path: PathBuf::new(),
        repeat: None,
        input_tokens: None,
        output_tokens: None,
        cost_usd: None,
        run_wall_sec: None,
        inputs_digest: None,
        problem: String::new(),
        left_out: false,
        had_gateway: false,
        price_model: String::new(),
        regraded: None,
    }
}
