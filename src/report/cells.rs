//! The cells of a report — benchmark × agent × model — and their figures: the mean
//! score with its standard error and 95% interval over tasks, pass@k and pass^k for k
//! up to the repeats, tokens, cost and time; and the problems found on the way, which
//! are listed and never averaged in.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use super::stats::{self, round4};
use super::Row;

/// A figure for one k (pass@k, pass^k): the mean over the cell's tasks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtK {
    pub k: u64,
    pub value: f64,
}

/// What one benchmark × agent × model cell scored over its tasks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub benchmark: String,
    pub agent: String,
    /// The agent's model ("" when the run had none).
    pub model: String,
    /// Runs behind the figures (runs left out are not counted).
    pub runs: usize,
    /// Tasks behind the figures.
    pub tasks: usize,
    pub passed: usize,
    /// The mean over tasks of each task's mean score (null when no run counts).
    pub mean_score: Option<f64>,
    /// Its standard error over tasks (null with fewer than two tasks).
    pub score_se: Option<f64>,
    /// Student's t 95% interval, [low, high] (null with fewer than two tasks).
    pub score_ci95: Option<[f64; 2]>,
    /// The fewest runs any task has: pass@k and pass^k go up to this k.
    pub min_repeats: u64,
    pub pass_at_k: Vec<AtK>,
    pub pass_hat_k: Vec<AtK>,
    /// Runs of the cell left out of the figures (see the report's problems).
    pub left_out: usize,
    /// Tokens, cost and time: totals over every run of the cell, left-out ones included
    /// (they were spent), each with the number of runs that had the figure.
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub runs_with_tokens: usize,
    pub cost_usd: Option<f64>,
    pub runs_with_cost: usize,
    /// The runner's wall time, summed.
    pub wall_sec: f64,
}

/// Something in the results that is not a clean figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// `unreadable`, `mixed_versions`, `no_gateway_record`, `no_price`.
    pub kind: String,
    /// The file concerned, when there is one.
    pub path: Option<PathBuf>,
    pub message: String,
}

type CellKey = (String, String, String);

fn key(r: &Row) -> CellKey {
    (r.benchmark.clone(), r.agent.clone(), r.model.clone())
}

fn cell_name(k: &CellKey) -> String {
    if k.2.is_empty() {
        format!("{} × {}", k.0, k.1)
    } else {
        format!("{} × {} ({})", k.0, k.1, k.2)
    }
}

/// Marks the runs that must not be averaged in (a task whose results in one cell come
/// from two versions of the task's eval image) and lists every problem: `unreadable`
/// files, those runs, runs whose run.json says they had a model gateway but whose
/// result has no gateway counters, and models without a price.
pub fn problems(rows: &mut [Row], unreadable: &[(PathBuf, String)]) -> Vec<Problem> {
    let mut out: Vec<Problem> = unreadable
        .iter()
        .map(|(path, why)| Problem {
            kind: "unreadable".into(),
            path: Some(path.clone()),
            message: format!("not read, not counted: {why}"),
        })
        .collect();

    let mut digests: BTreeMap<(CellKey, String), BTreeSet<String>> = BTreeMap::new();
    for r in rows.iter() {
        if let Some(d) = &r.inputs_digest {
            digests
                .entry((key(r), r.task.to_lowercase()))
                .or_default()
                .insert(d.clone());
        }
    }
    for ((cell, task), set) in &digests {
        if set.len() < 2 {
            continue;
        }
        let short: Vec<String> = set
            .iter()
            .map(|d| d.trim_start_matches("sha256:").chars().take(12).collect())
            .collect();
        let why = format!(
            "results from {} versions of task {task} (inputs digests {})",
            set.len(),
            short.join(", ")
        );
        let mut n = 0;
        for r in rows.iter_mut() {
            if key(r) == *cell && r.task.to_lowercase() == *task {
                r.left_out = true;
                r.problem = format!("left out of the figures: {why}");
                n += 1;
            }
        }
        out.push(Problem {
            kind: "mixed_versions".into(),
            path: None,
            message: format!("{}: {n} runs left out: {why}", cell_name(cell)),
        });
    }

    let mut unpriced: BTreeMap<String, usize> = BTreeMap::new();
    for r in rows.iter_mut() {
        if r.had_gateway && r.input_tokens.is_none() {
            let why = "run.json says the run had a model gateway, but result.json has no gateway counters: no tokens or cost";
            if r.problem.is_empty() {
                r.problem = why.to_string();
            }
            out.push(Problem {
                kind: "no_gateway_record".into(),
                path: Some(r.path.clone()),
                message: why.to_string(),
            });
        }
        if r.input_tokens.is_some() && r.cost_usd.is_none() {
            *unpriced.entry(r.price_model.clone()).or_default() += 1;
        }
    }
    for (model, n) in unpriced {
        out.push(Problem {
            kind: "no_price".into(),
            path: None,
            message: format!(
                "no price for model {model:?} ({n} runs): their cost is left out (add it with --prices)"
            ),
        });
    }
    out
}

/// Per benchmark × agent × model: the figures over the runs not left out, and the
/// totals over all runs. Sorted by benchmark, agent, model.
pub fn summarize(rows: &[Row]) -> Vec<Summary> {
    let mut cells: BTreeMap<CellKey, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        cells.entry(key(r)).or_default().push(r);
    }
    cells.into_iter().map(|(k, runs)| cell(k, &runs)).collect()
}

fn cell((benchmark, agent, model): CellKey, all: &[&Row]) -> Summary {
    // Each task's runs (scores, passes), the task id compared without case like the
    // results layout does.
    let mut tasks: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for r in all.iter().filter(|r| !r.left_out) {
        tasks.entry(r.task.to_lowercase()).or_default().push(r);
    }
    let scores: Vec<Vec<f64>> = tasks
        .values()
        .map(|runs| runs.iter().map(|r| r.score).collect())
        .collect();
    let estimate = stats::clustered_mean(&scores);
    let counts: Vec<(u64, u64)> = tasks
        .values()
        .map(|runs| {
            (
                runs.len() as u64,
                runs.iter().filter(|r| r.passed).count() as u64,
            )
        })
        .collect();
    let min_repeats = counts.iter().map(|(n, _)| *n).min().unwrap_or(0);
    let at_k = |f: fn(u64, u64, u64) -> Option<f64>| -> Vec<AtK> {
        (1..=min_repeats)
            .map(|k| {
                let per_task: Vec<f64> = counts
                    .iter()
                    .map(|&(n, c)| f(n, c, k).expect("k ≤ every task's runs"))
                    .collect();
                AtK {
                    k,
                    value: round4(per_task.iter().sum::<f64>() / per_task.len() as f64),
                }
            })
            .collect()
    };
    let tokens: Vec<&&Row> = all
        .iter()
        .filter(|r| r.input_tokens.is_some() && r.output_tokens.is_some())
        .collect();
    let costs: Vec<f64> = all.iter().filter_map(|r| r.cost_usd).collect();
    Summary {
        benchmark,
        agent,
        model,
        runs: counts.iter().map(|(n, _)| *n as usize).sum(),
        tasks: tasks.len(),
        passed: counts.iter().map(|(_, c)| *c as usize).sum(),
        mean_score: estimate.map(|e| round4(e.mean)),
        score_se: estimate.and_then(|e| e.se).map(round4),
        // Scores lie in [0, 1], so the interval does too.
        score_ci95: estimate
            .and_then(|e| e.ci95)
            .map(|(lo, hi)| [round4(lo.clamp(0.0, 1.0)), round4(hi.clamp(0.0, 1.0))]),
        min_repeats,
        pass_at_k: at_k(stats::pass_at_k),
        pass_hat_k: at_k(stats::pass_hat_k),
        left_out: all.iter().filter(|r| r.left_out).count(),
        input_tokens: tokens.iter().filter_map(|r| r.input_tokens).sum(),
        output_tokens: tokens.iter().filter_map(|r| r.output_tokens).sum(),
        runs_with_tokens: tokens.len(),
        cost_usd: (!costs.is_empty()).then(|| round4(costs.iter().sum::<f64>())),
        runs_with_cost: costs.len(),
        wall_sec: (all.iter().map(|r| r.wall_sec).sum::<f64>() * 1000.0).round() / 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_row as row;

    #[test]
    fn unequal_repeats_bound_k_by_the_fewest() {
        // Task a: 3 runs (pass, pass, fail); task b: 1 run (fail).
        let rows = [
            row("a", "x", 1.0, true),
            row("a", "x", 1.0, true),
            row("a", "x", 0.0, false),
            row("b", "x", 0.0, false),
        ];
        let s = &summarize(&rows)[0];
        assert_eq!((s.tasks, s.runs, s.passed, s.min_repeats), (2, 4, 2, 1));
        // Task means 2/3 and 0, weighted equally: 1/3, not the run mean 1/2.
        assert_eq!(s.mean_score, Some(round4(1.0 / 3.0)));
        // pass@1 = mean(2/3, 0); pass@2 needs two runs of every task: not given.
        assert_eq!(
            s.pass_at_k,
            vec![AtK {
                k: 1,
                value: round4(1.0 / 3.0)
            }]
        );
    }

    #[test]
    fn two_versions_of_a_task_are_left_out_and_named() {
        let mut rows = [
            row("a", "x", 1.0, true),
            row("a", "x", 0.0, false),
            row("b", "x", 0.5, false),
            // The same task for another agent is another cell: not mixed.
            row("a", "y", 1.0, true),
        ];
        rows[0].inputs_digest = Some("sha256:1111".into());
        rows[1].inputs_digest = Some("sha256:2222".into());
        rows[3].inputs_digest = Some("sha256:2222".into());
        let problems = problems(&mut rows, &[]);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].kind, "mixed_versions");
        assert_eq!(
            problems[0].message,
            "b × x: 2 runs left out: results from 2 versions of task a (inputs digests 1111, 2222)"
        );
        let cells = summarize(&rows);
        let x = &cells[0];
        assert_eq!(
            (x.tasks, x.runs, x.left_out, x.mean_score),
            (1, 1, 2, Some(0.5))
        );
        assert_eq!((cells[1].runs, cells[1].left_out), (1, 0));
    }

    #[test]
    fn a_cell_with_every_run_left_out_has_no_figures() {
        let mut r = row("a", "x", 1.0, true);
        r.left_out = true;
        let s = &summarize(&[r])[0];
        assert_eq!((s.runs, s.mean_score, s.score_se), (0, None, None));
        assert!(s.pass_at_k.is_empty());
    }
}
