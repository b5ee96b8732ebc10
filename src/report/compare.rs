//! `kiln report --compare`: two sets of runs side by side, paired by task. Each unit
//! (a task of a benchmark, for one agent unless agents are what is compared)
//! scores its mean over its repeats on each side; the mean of the per-unit differences
//! B − A gets a paired Student's t 95% interval, and the units whose pass verdict
//! changed are listed. A unit passes when more than half of its runs passed.

use std::collections::BTreeMap;

use serde::Serialize;

use super::stats::{self, round4};
use super::Row;

/// One unit present on both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pair {
    pub benchmark: String,
    pub task: String,
    /// The agent the unit stands for (directories), else "".
    pub agent: String,
    pub a_score: f64,
    pub b_score: f64,
    /// b_score − a_score.
    pub difference: f64,
    pub a_runs: usize,
    pub b_runs: usize,
    pub a_passed: bool,
    pub b_passed: bool,
    /// `pass→fail`, `fail→pass` or "".
    pub flip: String,
}

/// Everything `--compare` says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    /// Units on both sides: what the figures below are over.
    pub paired: usize,
    pub a_mean: Option<f64>,
    pub b_mean: Option<f64>,
    /// The mean of B − A over the paired units, its standard error and paired 95%
    /// interval (null with fewer than two pairs).
    pub mean_difference: Option<f64>,
    pub difference_se: Option<f64>,
    pub difference_ci95: Option<[f64; 2]>,
    /// The whole interval lies below 0.
    pub significantly_worse: bool,
    pub significantly_better: bool,
    pub flipped_to_fail: usize,
    pub flipped_to_pass: usize,
    pub pairs: Vec<Pair>,
    /// Units with runs on one side only, not compared (`benchmark/task agent`).
    pub only_in_a: Vec<String>,
    pub only_in_b: Vec<String>,
}

/// What the two sides are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// Two result directories: units pair by benchmark, task and agent. The model is
    /// not part of the unit: one agent's runs in one directory have one model (the
    /// layout has no level for it), so two directories are how two models compare.
    Directories,
    /// Two agents in one directory: units pair by benchmark and task (each agent's
    /// runs in one directory have one model, whichever it is).
    Agents,
}

type Unit = (String, String, String);

fn unit(r: &Row, pairing: Pairing) -> Unit {
    let agent = match pairing {
        Pairing::Directories => r.agent.clone(),
        Pairing::Agents => String::new(),
    };
    (r.benchmark.clone(), r.task.to_lowercase(), agent)
}

fn units<'a>(rows: &[&'a Row], pairing: Pairing) -> BTreeMap<Unit, Vec<&'a Row>> {
    let mut out: BTreeMap<Unit, Vec<&Row>> = BTreeMap::new();
    for r in rows.iter().filter(|r| !r.left_out) {
        out.entry(unit(r, pairing)).or_default().push(r);
    }
    out
}

fn label(u: &Unit) -> String {
    if u.2.is_empty() {
        format!("{}/{}", u.0, u.1)
    } else {
        format!("{}/{} {}", u.0, u.1, u.2)
    }
}

/// (mean score, runs, passed) of a unit's runs.
fn score(runs: &[&Row]) -> (f64, usize, bool) {
    let n = runs.len();
    let mean = runs.iter().map(|r| r.score).sum::<f64>() / n as f64;
    let passes = runs.iter().filter(|r| r.passed).count();
    (mean, n, 2 * passes > n)
}

/// Compares side `b` with side `a` (labels `a_name`, `b_name`).
pub fn compare(a_name: &str, a: &[&Row], b_name: &str, b: &[&Row], pairing: Pairing) -> Comparison {
    let ua = units(a, pairing);
    let ub = units(b, pairing);
    let mut pairs = Vec::new();
    for (u, runs_a) in &ua {
        let Some(runs_b) = ub.get(u) else { continue };
        let (sa, na, pa) = score(runs_a);
        let (sb, nb, pb) = score(runs_b);
        // The task id as the runs spell it (units compare it lowercased).
        let task = runs_a[0].task.clone();
        pairs.push(Pair {
            benchmark: u.0.clone(),
            task,
            agent: u.2.clone(),
            a_score: round4(sa),
            b_score: round4(sb),
            difference: round4(sb - sa),
            a_runs: na,
            b_runs: nb,
            a_passed: pa,
            b_passed: pb,
            flip: match (pa, pb) {
                (true, false) => "pass→fail",
                (false, true) => "fail→pass",
                _ => "",
            }
            .to_string(),
        });
    }
    let diffs: Vec<f64> = pairs.iter().map(|p| p.b_score - p.a_score).collect();
    let est = stats::mean_estimate(&diffs);
    let ci = est.and_then(|e| e.ci95);
    let mean_of = |f: fn(&Pair) -> f64| {
        (!pairs.is_empty()).then(|| round4(pairs.iter().map(f).sum::<f64>() / pairs.len() as f64))
    };
    Comparison {
        a: a_name.to_string(),
        b: b_name.to_string(),
        paired: pairs.len(),
        a_mean: mean_of(|p| p.a_score),
        b_mean: mean_of(|p| p.b_score),
        mean_difference: est.map(|e| round4(e.mean)),
        difference_se: est.and_then(|e| e.se).map(round4),
        difference_ci95: ci.map(|(lo, hi)| [round4(lo), round4(hi)]),
        significantly_worse: ci.is_some_and(|(_, hi)| hi < 0.0),
        significantly_better: ci.is_some_and(|(lo, _)| lo > 0.0),
        flipped_to_fail: pairs.iter().filter(|p| p.flip == "pass→fail").count(),
        flipped_to_pass: pairs.iter().filter(|p| p.flip == "fail→pass").count(),
        only_in_a: ua
            .keys()
            .filter(|u| !ub.contains_key(*u))
            .map(label)
            .collect(),
        only_in_b: ub
            .keys()
            .filter(|u| !ua.contains_key(*u))
            .map(label)
            .collect(),
        pairs,
    }
}

impl Comparison {
    /// `--fail-if-worse`: B is significantly worse, or a unit flipped from pass to fail.
    pub fn worse(&self) -> bool {
        self.significantly_worse || self.flipped_to_fail > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_row as row;

    #[test]
    fn paired_differences_and_flips() {
        let a = [
            row("t1", "x", 1.0, true),
            row("t2", "x", 1.0, true),
            row("t3", "x", 0.0, false),
            row("only-a", "x", 1.0, true),
        ];
        let b = [
            row("t1", "y", 1.0, true),
            row("T2", "y", 0.0, false),
            row("t3", "y", 0.5, false),
            row("only-b", "y", 1.0, true),
        ];
        let ra: Vec<&Row> = a.iter().collect();
        let rb: Vec<&Row> = b.iter().collect();
        let c = compare("x", &ra, "y", &rb, Pairing::Agents);
        assert_eq!(c.paired, 3);
        // Differences 0, −1, 0.5: mean −1/6; sample sd of (0, −1, 0.5) = sqrt(7/12).
        assert_eq!(c.mean_difference, Some(round4(-1.0 / 6.0)));
        let se = (7.0f64 / 12.0 / 3.0).sqrt();
        assert_eq!(c.difference_se, Some(round4(se)));
        let ci = c.difference_ci95.unwrap();
        assert_eq!(
            ci,
            [
                round4(-1.0 / 6.0 - 4.303 * se),
                round4(-1.0 / 6.0 + 4.303 * se)
            ]
        );
        assert!(!c.significantly_worse, "the interval holds 0");
        assert_eq!((c.flipped_to_fail, c.flipped_to_pass), (1, 0));
        assert!(c.worse(), "a flip to fail is worse");
        let t2 = c.pairs.iter().find(|p| p.task == "t2").unwrap();
        assert_eq!((t2.flip.as_str(), t2.difference), ("pass→fail", -1.0));
        assert_eq!(c.only_in_a, ["b/only-a"]);
        assert_eq!(c.only_in_b, ["b/only-b"]);
    }

    #[test]
    fn a_consistent_drop_is_significant_and_repeats_are_averaged() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for t in ["t1", "t2", "t3", "t4"] {
            a.push(row(t, "x", 0.9, true));
            a.push(row(t, "x", 0.7, true));
            b.push(row(t, "x", 0.5, false));
        }
        let ra: Vec<&Row> = a.iter().collect();
        let rb: Vec<&Row> = b.iter().collect();
        let c = compare("old", &ra, "new", &rb, Pairing::Directories);
        assert_eq!(c.paired, 4);
        assert_eq!((c.a_mean, c.b_mean), (Some(0.8), Some(0.5)));
        assert_eq!(c.mean_difference, Some(-0.3));
        // Every difference equal: no spread, interval [−0.3, −0.3], below 0.
        assert_eq!(c.difference_ci95, Some([-0.3, -0.3]));
        assert!(c.significantly_worse && c.worse());
        assert_eq!(c.flipped_to_fail, 4);
        assert_eq!(c.pairs[0].a_runs, 2);
    }

    #[test]
    fn one_pair_has_no_interval_and_nothing_worse_without_a_flip() {
        let a = [row("t1", "x", 0.2, false)];
        let b = [row("t1", "x", 0.1, false)];
        let c = compare("a", &[&a[0]], "b", &[&b[0]], Pairing::Directories);
        assert_eq!((c.mean_difference, c.difference_ci95), (Some(-0.1), None));
        assert!(!c.worse());
    }
}
