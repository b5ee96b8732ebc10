//! The score formulas (docs/scenario-format.md §6). Pure functions of the check
//! list, so every benchmark is scored the same way whatever language its graders
//! are written in.

use serde::{Deserialize, Serialize};

use crate::check::Check;

/// DEC-bench's gate order, the default for gated scenarios.
pub const DEFAULT_GATES: [&str; 5] = [
    "functional",
    "correct",
    "robust",
    "performant",
    "production",
];
pub const DEFAULT_GATE_THRESHOLD: f64 = 0.8;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Gated,
    Weighted,
    Reward,
}

#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    /// Glob over check ids (`*`, `?`, `[..]`).
    pub when_any_failed: String,
    pub max: f64,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct CapApplied {
    pub when_any_failed: String,
    pub max: f64,
    pub failed_checks: Vec<String>,
}

/// `result.json` `score`.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Score {
    pub mode: Mode,
    pub value: f64,
    pub passed: bool,
    pub raw_value: f64,
    pub threshold: f64,
    pub highest_gate: Option<usize>,
    pub n_gates: Option<usize>,
    pub caps_applied: Vec<CapApplied>,
}

/// `result.json` `gates[]`.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct GateOutcome {
    pub name: String,
    pub evaluated: bool,
    pub passed: bool,
    pub frac: f64,
    pub frac_all: f64,
    pub threshold: f64,
    pub checks: usize,
    pub passed_checks: usize,
    pub required_failed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub score: Score,
    pub gates: Vec<GateOutcome>,
    pub warnings: Vec<String>,
}

pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Σ w·passed / Σ w over `checks`, or None when they weigh nothing.
fn weighted_fraction<'a>(
    checks: impl Iterator<Item = &'a Check>,
    use_weights: bool,
) -> Option<f64> {
    let (mut got, mut total) = (0.0, 0.0);
    for c in checks {
        let w = if use_weights { c.weight } else { 1.0 };
        total += w;
        if c.passed {
            got += w;
        }
    }
    (total > 0.0).then(|| got / total)
}

/// Evaluates one gate from the scored checks whose group is `name`.
/// The second value is a warning when the gate passes for lack of checks.
pub fn evaluate_gate(
    name: &str,
    checks: &[Check],
    threshold: f64,
    weighted: bool,
) -> (GateOutcome, Option<String>) {
    let in_gate: Vec<&Check> = checks
        .iter()
        .filter(|c| c.group == name && c.scored())
        .collect();
    let optional = in_gate.iter().copied().filter(|c| !c.required);
    let (frac, warning) = match weighted_fraction(optional, weighted) {
        Some(f) => (f, None),
        None => (
            1.0,
            Some(format!(
                "gate `{name}` has no non-required checks; its fraction counts as 1"
            )),
        ),
    };
    let frac_all = weighted_fraction(in_gate.iter().copied(), weighted).unwrap_or(1.0);
    let required_failed: Vec<String> = in_gate
        .iter()
        .filter(|c| c.required && !c.passed)
        .map(|c| c.id.clone())
        .collect();
    // A small tolerance so that 4 of 5 with threshold 0.8 passes despite float rounding.
    let passed = required_failed.is_empty() && frac + 1e-9 >= threshold;
    let gate = GateOutcome {
        name: name.to_string(),
        evaluated: true,
        passed,
        frac: round4(frac),
        frac_all: round4(frac_all),
        threshold,
        checks: in_gate.len(),
        passed_checks: in_gate.iter().filter(|c| c.passed).count(),
        required_failed,
    };
    (gate, warning)
}

/// Gated mode: gates in order, stop at the first failed one;
/// value = 1 if all passed, else (highest_gate + frac_all(first failed)) / n_gates.
pub fn gated(checks: &[Check], gates: &[String], threshold: f64, weighted: bool) -> Scored {
    let mut outcomes = Vec::new();
    let mut warnings = Vec::new();
    let mut highest = 0;
    let mut next_frac_all = None;
    for name in gates {
        if next_frac_all.is_some() {
            outcomes.push(GateOutcome {
                name: name.clone(),
                evaluated: false,
                passed: false,
                frac: 0.0,
                frac_all: 0.0,
                threshold,
                checks: 0,
                passed_checks: 0,
                required_failed: Vec::new(),
            });
            continue;
        }
        let (gate, warning) = evaluate_gate(name, checks, threshold, weighted);
        warnings.extend(warning);
        if gate.passed {
            highest += 1;
        } else {
            let frac_all = weighted_fraction(
                checks.iter().filter(|c| &c.group == name && c.scored()),
                weighted,
            )
            .unwrap_or(1.0);
            next_frac_all = Some(frac_all);
        }
        outcomes.push(gate);
    }
    let n = gates.len();
    let raw = match next_frac_all {
        None => 1.0,
        Some(f) if n > 0 => (highest as f64 + f) / n as f64,
        Some(_) => 0.0,
    };
    Scored {
        score: Score {
            mode: Mode::Gated,
            value: round4(raw.clamp(0.0, 1.0)),
            passed: n > 0 && highest == n,
            raw_value: round4(raw),
            threshold,
            highest_gate: Some(highest),
            n_gates: Some(n),
            caps_applied: Vec::new(),
        },
        gates: outcomes,
        warnings,
    }
}

fn glob_matches(pattern: &str, id: &str) -> bool {
    match glob::Pattern::new(pattern) {
        Ok(p) => p.matches(id),
        Err(_) => pattern == id,
    }
}

fn required_all_passed(checks: &[Check]) -> bool {
    checks
        .iter()
        .filter(|c| c.scored() && c.required)
        .all(|c| c.passed)
}

/// Weighted mode: Σ w·passed / Σ w, then every cap whose glob matches a failed check.
pub fn weighted(checks: &[Check], pass_threshold: f64, caps: &[Cap]) -> Scored {
    let mut warnings = Vec::new();
    let raw = weighted_fraction(checks.iter().filter(|c| c.scored()), true).unwrap_or_else(|| {
        warnings.push("no weighted checks were scored; the score is 0".to_string());
        0.0
    });
    let mut value = raw;
    let mut caps_applied = Vec::new();
    for cap in caps {
        let failed: Vec<String> = checks
            .iter()
            .filter(|c| c.scored() && !c.passed && glob_matches(&cap.when_any_failed, &c.id))
            .map(|c| c.id.clone())
            .collect();
        if !failed.is_empty() {
            value = value.min(cap.max);
            caps_applied.push(CapApplied {
                when_any_failed: cap.when_any_failed.clone(),
                max: cap.max,
                failed_checks: failed,
            });
        }
    }
    let value = round4(value.clamp(0.0, 1.0));
    Scored {
        score: Score {
            mode: Mode::Weighted,
            value,
            passed: value + 1e-9 >= pass_threshold && required_all_passed(checks),
            raw_value: round4(raw),
            threshold: pass_threshold,
            highest_gate: None,
            n_gates: None,
            caps_applied,
        },
        gates: Vec::new(),
        warnings,
    }
}

/// Reward mode: the grader's reward, clamped to [0,1]; missing → 0 (the caller sets
/// `grader_error`), -1 → 0 (the caller sets `external_grading`).
pub fn reward(reward: Option<f64>, checks: &[Check], pass_threshold: f64) -> Scored {
    let mut warnings = Vec::new();
    let (raw, value) = match reward {
        None => {
            warnings.push("no reward was written; the score is 0".to_string());
            (0.0, 0.0)
        }
        Some(r) if !r.is_finite() => {
            warnings.push(format!("reward {r} is not a finite number; the score is 0"));
            (0.0, 0.0)
        }
        Some(r) if r == -1.0 => (r, 0.0),
        Some(r) => {
            let clamped = r.clamp(0.0, 1.0);
            if clamped != r {
                warnings.push(format!("reward {r} clamped to {clamped}"));
            }
            (r, clamped)
        }
    };
    let value = round4(value);
    let gradeable = matches!(reward, Some(r) if r.is_finite() && r != -1.0);
    Scored {
        score: Score {
            mode: Mode::Reward,
            value,
            passed: gradeable && value + 1e-9 >= pass_threshold && required_all_passed(checks),
            raw_value: raw,
            threshold: pass_threshold,
            highest_gate: None,
            n_gates: None,
            caps_applied: Vec::new(),
        },
        gates: Vec::new(),
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Source;

    fn gates() -> Vec<String> {
        DEFAULT_GATES.iter().map(|s| s.to_string()).collect()
    }

    /// `n_core` required core checks that pass, then scenario checks with the given results.
    fn gate_checks(gate: &str, n_core: usize, scenario: &[bool]) -> Vec<Check> {
        let mut out = Vec::new();
        for i in 0..n_core {
            out.push(
                Check::new(&format!("{gate}_core_{i}"), gate, Source::Core, true)
                    .with_required(true),
            );
        }
        for (i, ok) in scenario.iter().enumerate() {
            out.push(Check::new(
                &format!("{gate}_s{i}"),
                gate,
                Source::Scenario,
                *ok,
            ));
        }
        out
    }

    /// Seed 000 (metric backfill): four gates cleared, production with 12 core
    /// checks + 3 scenario checks of which one failed: 14/15 → "99%".
    fn seed_run(production_scenario: &[bool]) -> Vec<Check> {
        let mut checks = Vec::new();
        checks.extend(gate_checks("functional", 2, &[true, true]));
        checks.extend(gate_checks("correct", 0, &[true, true]));
        checks.extend(gate_checks("robust", 1, &[true, true]));
        checks.extend(gate_checks("performant", 0, &[true, true]));
        checks.extend(gate_checks("production", 12, production_scenario));
        checks
    }

    #[test]
    fn seed_dec_bench_metric_backfill_99_percent() {
        let s = gated(&seed_run(&[true, true, false]), &gates(), 0.8, false);
        assert_eq!(s.score.highest_gate, Some(4));
        assert!(!s.score.passed);
        assert_eq!(s.score.value, 0.9867);
        assert_eq!((s.score.value * 1000.0).round() / 1000.0, 0.987);
        assert_eq!((s.score.value * 100.0).round(), 99.0);
        let production = &s.gates[4];
        assert!(!production.passed);
        assert_eq!(production.frac, 0.6667); // the seed's "Production 67%"
        assert_eq!(production.frac_all, 0.9333);
        assert_eq!((production.checks, production.passed_checks), (15, 14));
    }

    #[test]
    fn seed_dec_bench_slow_api_97_percent() {
        // 13/15 in the fifth gate: 11 core passed + 1 core failed + 3 scenario, one failed.
        let mut checks = seed_run(&[true, true, false]);
        let core = checks
            .iter_mut()
            .find(|c| c.id == "production_core_0")
            .unwrap();
        core.passed = false;
        let s = gated(&checks, &gates(), 0.8, false);
        assert_eq!(s.score.value, 0.9733);
        assert_eq!((s.score.value * 1000.0).round() / 1000.0, 0.973);
        assert_eq!(
            s.gates[4].required_failed,
            vec!["production_core_0".to_string()]
        );
    }

    #[test]
    fn dec_bench_march_audit_one_of_four() {
        // highest gate 4, production at 1 of 4 assertions: (4 + 0.25) / 5 = 0.85.
        let mut checks = seed_run(&[]);
        checks.retain(|c| c.group != "production");
        checks.extend(gate_checks("production", 0, &[true, false, false, false]));
        assert_eq!(gated(&checks, &gates(), 0.8, false).score.value, 0.85);
    }

    #[test]
    fn all_gates_passed_is_one_and_later_gates_are_not_evaluated_after_a_failure() {
        let all = gated(&seed_run(&[true, true, true]), &gates(), 0.8, false);
        assert_eq!((all.score.value, all.score.passed), (1.0, true));

        let mut checks = seed_run(&[true, true, true]);
        for c in checks.iter_mut().filter(|c| c.group == "correct") {
            c.passed = false;
        }
        let s = gated(&checks, &gates(), 0.8, false);
        assert_eq!(s.score.highest_gate, Some(1));
        assert_eq!(s.score.value, 0.2); // (1 + 0/2) / 5
        assert!(s.gates[2..].iter().all(|g| !g.evaluated && !g.passed));
    }

    #[test]
    fn threshold_is_inclusive_and_required_checks_gate() {
        let four_of_five = gate_checks("functional", 0, &[true, true, true, true, false]);
        let s = gated(&four_of_five, &["functional".to_string()], 0.8, false);
        assert!(s.score.passed);
        let mut with_required = four_of_five.clone();
        with_required
            .push(Check::new("exit", "functional", Source::Core, false).with_required(true));
        let s = gated(&with_required, &["functional".to_string()], 0.8, false);
        assert!(!s.score.passed);
        assert_eq!(s.score.value, 0.6667); // frac_all = 4/6
    }

    #[test]
    fn empty_gate_passes_with_a_warning_and_skipped_checks_do_not_count() {
        let mut checks = gate_checks("functional", 0, &[true]);
        checks.push(Check::new("flaky", "functional", Source::Scenario, false).with_skipped(true));
        let s = gated(
            &checks,
            &["functional".to_string(), "correct".to_string()],
            0.8,
            false,
        );
        assert!(s.score.passed);
        assert_eq!(s.gates[0].checks, 1);
        assert!(
            s.warnings.iter().any(|w| w.contains("`correct`")),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn uncounted_checks_do_not_count() {
        let mut checks = gate_checks("functional", 0, &[true]);
        let mut stale = Check::new("late", "functional", Source::Scenario, false);
        stale.counted = false;
        checks.push(stale);
        assert!(
            gated(&checks, &["functional".to_string()], 0.8, false)
                .score
                .passed
        );
    }

    #[test]
    fn gated_with_weights() {
        let checks = vec![
            Check::new("big", "functional", Source::Scenario, true).with_weight(9.0),
            Check::new("small", "functional", Source::Scenario, false).with_weight(1.0),
        ];
        let gates = vec!["functional".to_string()];
        assert!(gated(&checks, &gates, 0.8, true).score.passed);
        assert!(!gated(&checks, &gates, 0.8, false).score.passed);
    }

    /// The Harness-Bench 052 check list (weights from the seed), all passed unless listed.
    fn harness_checks(failed: &[&str]) -> Vec<Check> {
        let weights = [
            ("definitions_present", 0.05),
            ("dashboard_present", 0.05),
            ("fixtures_unchanged", 0.08),
            ("output_exists", 0.10),
            ("equivalence_audit_exists", 0.08),
            ("exact_header", 0.10),
            ("only_mismatches", 0.18),
            ("exact_rows", 0.32),
            ("severity_mapping", 0.08),
            ("equivalent_formulas_not_flagged", 0.08),
            ("low_severity_present", 0.04),
            ("window_medium_present", 0.04),
            ("equivalence_audit_keys", 0.04),
            ("equivalence_audit_mismatches", 0.10),
            ("equivalence_audit_matching_metrics", 0.10),
            ("equivalence_audit_severities", 0.10),
            ("equivalence_audit_reason_classes", 0.16),
        ];
        weights
            .iter()
            .map(|(id, w)| {
                Check::new(id, "default", Source::Scenario, !failed.contains(id)).with_weight(*w)
            })
            .collect()
    }

    fn equivalence_cap() -> Vec<Cap> {
        vec![Cap {
            when_any_failed: "equivalence_audit_*".into(),
            max: 0.69,
        }]
    }

    #[test]
    fn seed_harness_bench_cap_069() {
        // Only the reason classes are wrong: 1.54/1.70 = 0.906 uncapped, capped to 0.69.
        let s = weighted(
            &harness_checks(&["equivalence_audit_reason_classes"]),
            1.0,
            &equivalence_cap(),
        );
        assert_eq!(s.score.raw_value, 0.9059);
        assert_eq!(s.score.value, 0.69);
        assert!(!s.score.passed);
        assert_eq!(s.score.caps_applied.len(), 1);
        assert_eq!(
            s.score.caps_applied[0].failed_checks,
            vec!["equivalence_audit_reason_classes"]
        );
    }

    #[test]
    fn weighted_all_pass_and_below_cap() {
        let s = weighted(&harness_checks(&[]), 1.0, &equivalence_cap());
        assert_eq!((s.score.value, s.score.passed), (1.0, true));
        assert!(s.score.caps_applied.is_empty());
        // A cap does not raise a score that is already below it.
        let s = weighted(
            &harness_checks(&["exact_rows", "only_mismatches", "equivalence_audit_keys"]),
            1.0,
            &equivalence_cap(),
        );
        assert_eq!(s.score.value, round4((1.70 - 0.32 - 0.18 - 0.04) / 1.70));
        assert_eq!(s.score.caps_applied.len(), 1);
    }

    #[test]
    fn weighted_skipped_required_and_empty() {
        let mut checks = harness_checks(&[]);
        checks.push(
            Check::new(
                "equivalence_audit_extra",
                "default",
                Source::Scenario,
                false,
            )
            .with_skipped(true),
        );
        assert_eq!(weighted(&checks, 1.0, &equivalence_cap()).score.value, 1.0);

        let checks = vec![
            Check::new("a", "default", Source::Scenario, true).with_weight(3.0),
            Check::new("must", "core", Source::Core, false)
                .with_weight(0.0)
                .with_required(true),
        ];
        let s = weighted(&checks, 0.5, &[]);
        assert_eq!(s.score.value, 1.0);
        assert!(!s.score.passed, "a failed required check fails the run");

        let s = weighted(&[], 1.0, &[]);
        assert_eq!((s.score.value, s.score.passed), (0.0, false));
        assert_eq!(s.warnings.len(), 1);
    }

    #[test]
    fn reward_clamps_and_fails_closed() {
        assert!(reward(Some(1.0), &[], 1.0).score.passed);
        let s = reward(Some(1.7), &[], 1.0);
        assert_eq!((s.score.value, s.score.raw_value), (1.0, 1.7));
        assert_eq!(s.warnings.len(), 1);
        assert_eq!(reward(Some(-0.5), &[], 1.0).score.value, 0.0);
        let s = reward(Some(0.5), &[], 0.5);
        assert!(s.score.passed);
        let s = reward(None, &[], 1.0);
        assert_eq!((s.score.value, s.score.passed), (0.0, false));
        let s = reward(Some(f64::NAN), &[], 0.0);
        assert_eq!((s.score.value, s.score.passed), (0.0, false));
        let s = reward(Some(-1.0), &[], 0.0);
        assert_eq!(
            (s.score.value, s.score.passed, s.score.raw_value),
            (0.0, false, -1.0)
        );
        let failed_required = [Check::new("exit", "core", Source::Core, false).with_required(true)];
        assert!(!reward(Some(1.0), &failed_required, 1.0).score.passed);
    }
}
