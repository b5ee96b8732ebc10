//! Regraded results (`kiln regrade`): written beside a run's result.json, never over it.
//!
//! ```text
//! <run>/result.json              the run's own result, as the run wrote it
//! <run>/result.regraded-<n>.json the result of regrade n (the same schema)
//! <run>/regraded-<n>/            its logs: regrade.json (kiln's record), runner.log,
//!                                runner.stdout.log, runner.stderr.log, grader/, services/
//! ```
//!
//! n counts from 1, one more for every regrade; nothing of an earlier one is touched.
//! The regraded file is not named result.json, so everything that looks for runs
//! (`kiln report`, `kiln run`'s kept results) still finds each run once; the report
//! shows a run by its newest regrade and says so ([`Regraded`]).

use std::path::{Path, PathBuf};

use serde::Serialize;

const RESULT_PREFIX: &str = "result.regraded-";
const RESULT_SUFFIX: &str = ".json";
const LOG_PREFIX: &str = "regraded-";

/// `<run>/result.regraded-<n>.json`.
pub fn result_file(run_dir: &Path, n: u32) -> PathBuf {
    run_dir.join(format!("{RESULT_PREFIX}{n}{RESULT_SUFFIX}"))
}

/// `<run>/regraded-<n>/`.
pub fn log_dir(run_dir: &Path, n: u32) -> PathBuf {
    run_dir.join(format!("{LOG_PREFIX}{n}"))
}

/// The regrade a file or directory name belongs to, and whether it is the result.
fn number_of(name: &str) -> Option<(u32, bool)> {
    let (n, is_result) = match name.strip_prefix(RESULT_PREFIX) {
        Some(rest) => (rest.strip_suffix(RESULT_SUFFIX)?, true),
        None => (name.strip_prefix(LOG_PREFIX)?, false),
    };
    if n.starts_with('0') {
        return None;
    }
    n.parse().ok().map(|n| (n, is_result))
}

/// Every regrade of the run in `run_dir` that has a result file, oldest first.
pub fn results(run_dir: &Path) -> Vec<u32> {
    let mut out: Vec<u32> = names(run_dir)
        .filter_map(|(n, is_result)| is_result.then_some(n))
        .collect();
    out.sort_unstable();
    out
}

/// The number the next regrade of `run_dir` gets: one more than any result file or
/// log directory there (one left by a regrade that failed counts too).
pub fn next_number(run_dir: &Path) -> u32 {
    names(run_dir).map(|(n, _)| n).max().unwrap_or(0) + 1
}

fn names(run_dir: &Path) -> impl Iterator<Item = (u32, bool)> {
    std::fs::read_dir(run_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| number_of(&e.file_name().to_string_lossy()))
}

/// The newest regraded result of `run_dir`, if any.
pub fn newest(run_dir: &Path) -> Option<(u32, PathBuf)> {
    results(run_dir)
        .last()
        .map(|&n| (n, result_file(run_dir, n)))
}

/// A run the report shows by a regraded result: which regrade, and what the run's
/// own result said.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regraded {
    /// The regrade (`result.regraded-<n>.json`).
    pub n: u32,
    /// The run's own result.json.
    pub original: PathBuf,
    pub original_status: String,
    pub original_score: f64,
    pub original_passed: bool,
}

impl Regraded {
    /// `1.0000 passed → 0.0000 not passed`: the original verdict, then `now`'s.
    pub fn change(&self, score: f64, passed: bool) -> String {
        format!(
            "{} → {}",
            verdict(self.original_score, self.original_passed),
            verdict(score, passed)
        )
    }
}

/// `0.5000 passed` / `0.5000 not passed`.
pub fn verdict(score: f64, passed: bool) -> String {
    format!(
        "{score:.4} {}",
        if passed { "passed" } else { "not passed" }
    )
}

/// `pass→fail`, `fail→pass`, or "" when the verdict stayed.
pub fn flip(before: bool, after: bool) -> &'static str {
    match (before, after) {
        (true, false) => "pass→fail",
        (false, true) => "fail→pass",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_count_results_and_leftover_logs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        assert_eq!(next_number(dir), 1);
        assert_eq!(newest(dir), None);
        std::fs::write(dir.join("result.json"), "{}").unwrap();
        std::fs::write(result_file(dir, 1), "{}").unwrap();
        std::fs::create_dir(log_dir(dir, 1)).unwrap();
        // A regrade that left logs but no result still takes its number.
        std::fs::create_dir(log_dir(dir, 2)).unwrap();
        for odd in [
            "result.regraded-01.json",
            "result.regraded-x.json",
            "regraded-",
        ] {
            std::fs::write(dir.join(odd), "").unwrap();
        }
        assert_eq!(results(dir), vec![1]);
        assert_eq!(next_number(dir), 3);
        std::fs::write(result_file(dir, 10), "{}").unwrap();
        assert_eq!(newest(dir), Some((10, result_file(dir, 10))));
    }

    fn result(score: f64, passed: bool, wall: f64) -> String {
        serde_json::json!({
            "schema_version": "2", "run_id": "r1", "status": "completed",
            "task": {"id": "t"},
            "agent": {"id": "a", "exit_code": 0, "timed_out": false, "wall_sec": 1.0},
            "score": {"mode": "reward", "value": score, "passed": passed, "raw_value": score},
            "timing": {"started_at": "2026-01-01T00:00:00Z", "wall_sec": wall}
        })
        .to_string()
    }

    #[test]
    fn the_report_counts_the_newest_regrade_once_and_marks_it() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("b/t/a");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("result.json"), result(1.0, true, 30.0)).unwrap();
        std::fs::write(result_file(&run, 1), result(0.5, false, 0.2)).unwrap();
        std::fs::create_dir_all(log_dir(&run, 2)).unwrap();
        std::fs::write(result_file(&run, 2), result(0.0, false, 0.3)).unwrap();
        let report = crate::report::collect(tmp.path()).unwrap();
        assert_eq!(report.results.len(), 1, "one run, however often regraded");
        let row = &report.results[0];
        assert_eq!((row.score, row.passed), (0.0, false));
        assert_eq!(row.wall_sec, 30.0, "the run's own time");
        assert!(
            row.path.ends_with("result.regraded-2.json"),
            "{:?}",
            row.path
        );
        let g = row.regraded.as_ref().unwrap();
        assert_eq!((g.n, g.original_score, g.original_passed), (2, 1.0, true));
        assert_eq!(report.summary[0].passed, 0);

        // An unreadable regrade is listed; the run counts by its own result.
        std::fs::write(result_file(&run, 3), "{").unwrap();
        let report = crate::report::collect(tmp.path()).unwrap();
        assert_eq!(report.results[0].score, 1.0);
        assert!(report.results[0].regraded.is_none());
        assert_eq!(report.unreadable.len(), 1);
    }

    #[test]
    fn verdicts_and_flips() {
        let r = Regraded {
            n: 1,
            original: PathBuf::from("result.json"),
            original_status: "completed".into(),
            original_score: 1.0,
            original_passed: true,
        };
        assert_eq!(r.change(0.0, false), "1.0000 passed → 0.0000 not passed");
        assert_eq!(flip(true, false), "pass→fail");
        assert_eq!(flip(false, true), "fail→pass");
        assert_eq!(flip(true, true), "");
    }
}
