//! The renderings of a [`Report`]: an aligned table for people, JSON (serde), CSV (the
//! `csv` crate, so fields holding commas, quotes or newlines are quoted) and one HTML
//! page ([`super::html`]).

use super::cells::AtK;
use super::compare::Comparison;
use super::{Report, Row, Summary};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    /// CSV of the cells (one line per benchmark × agent × model) instead of the runs.
    CellsCsv,
    Html,
}

/// The report as text in `format`.
pub fn render(report: &Report, format: Format) -> anyhow::Result<String> {
    match format {
        Format::Table => Ok(table(report)),
        Format::Json => {
            let mut text = serde_json::to_string_pretty(report)?;
            text.push('\n');
            Ok(text)
        }
        Format::Csv => csv(report),
        Format::CellsCsv => cells_csv(&report.summary),
        Format::Html => Ok(super::html::render(report, "kiln report", None)),
    }
}

/// A comparison as text in `format` (html: [`super::html::render_comparison`]).
pub fn render_comparison(c: &Comparison, format: Format) -> anyhow::Result<String> {
    match format {
        Format::Table => Ok(comparison_table(c)),
        Format::Json => Ok(serde_json::to_string_pretty(c)? + "\n"),
        Format::Csv | Format::CellsCsv => comparison_csv(c),
        Format::Html => Ok(super::html::render_comparison(c, "kiln report --compare")),
    }
}

const CSV_HEADER: [&str; 29] = [
    "benchmark",
    "task",
    "agent",
    "model",
    "status",
    "mode",
    "score",
    "passed",
    "highest_gate",
    "n_gates",
    "capped",
    "checks_passed",
    "checks_total",
    "agent_exit_code",
    "agent_timed_out",
    "agent_wall_sec",
    "wall_sec",
    "started_at",
    "run_id",
    "error",
    "path",
    "replay",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "run_wall_sec",
    "inputs_digest",
    "problem",
    "regraded_from",
];

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// One line per run; then one line per unreadable result.json (its path and the
/// reason in `problem`, every other field empty), so no file goes unmentioned.
fn csv(report: &Report) -> anyhow::Result<String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    for r in &report.results {
        w.write_record([
            r.benchmark.clone(),
            r.task.clone(),
            r.agent.clone(),
            r.model.clone(),
            r.status.clone(),
            r.mode.clone(),
            format!("{:.4}", r.score),
            r.passed.to_string(),
            opt(r.highest_gate),
            opt(r.n_gates),
            r.capped.to_string(),
            r.checks_passed.to_string(),
            r.checks_total.to_string(),
            opt(r.agent_exit_code),
            r.agent_timed_out.to_string(),
            opt(r.agent_wall_sec),
            r.wall_sec.to_string(),
            r.started_at.clone(),
            r.run_id.clone(),
            r.error.clone(),
            r.path.display().to_string(),
            r.replay.clone(),
            opt(r.input_tokens),
            opt(r.output_tokens),
            opt(r.cost_usd),
            opt(r.run_wall_sec),
            r.inputs_digest.clone().unwrap_or_default(),
            r.problem.clone(),
            opt(r
                .regraded
                .as_ref()
                .map(|g| format!("{:.4}", g.original_score))),
        ])?;
    }
    for (path, why) in &report.unreadable {
        let mut line = vec![String::new(); CSV_HEADER.len()];
        line[4] = "unreadable".into();
        line[20] = path.display().to_string();
        line[27] = why.clone();
        w.write_record(line)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// `@1 0.5000 @2 0.7500`.
fn at_k(v: &[AtK]) -> String {
    v.iter()
        .map(|a| format!("@{} {:.4}", a.k, a.value))
        .collect::<Vec<_>>()
        .join(" ")
}

fn num4(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into())
}

fn ci(v: Option<[f64; 2]>) -> String {
    v.map(|[lo, hi]| format!("[{lo:.4}, {hi:.4}]"))
        .unwrap_or_else(|| "-".into())
}

/// `1200/340 (2 of 3 runs)`, or `-` without any record.
fn tokens(s: &Summary) -> String {
    if s.runs_with_tokens == 0 {
        return "-".into();
    }
    let total = s.runs + s.left_out;
    let mut t = format!("{}/{}", s.input_tokens, s.output_tokens);
    if s.runs_with_tokens < total {
        t.push_str(&format!(" ({} of {total} runs)", s.runs_with_tokens));
    }
    t
}

fn cost(s: &Summary) -> String {
    match s.cost_usd {
        None => "-".into(),
        Some(c) if s.runs_with_cost < s.runs + s.left_out => {
            format!(
                "${c:.4} ({} of {} runs)",
                s.runs_with_cost,
                s.runs + s.left_out
            )
        }
        Some(c) => format!("${c:.4}"),
    }
}

const CELLS_CSV_HEADER: [&str; 19] = [
    "benchmark",
    "agent",
    "model",
    "tasks",
    "runs",
    "passed",
    "mean_score",
    "score_se",
    "score_ci95_low",
    "score_ci95_high",
    "min_repeats",
    "pass_at_k",
    "pass_hat_k",
    "left_out",
    "input_tokens",
    "output_tokens",
    "runs_with_tokens",
    "cost_usd",
    "wall_sec",
];

/// One line per cell; pass@k and pass^k as `k:value` pairs separated by spaces.
fn cells_csv(summary: &[Summary]) -> anyhow::Result<String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(CELLS_CSV_HEADER)?;
    let pairs = |v: &[AtK]| {
        v.iter()
            .map(|a| format!("{}:{}", a.k, a.value))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for s in summary {
        w.write_record([
            s.benchmark.clone(),
            s.agent.clone(),
            s.model.clone(),
            s.tasks.to_string(),
            s.runs.to_string(),
            s.passed.to_string(),
            opt(s.mean_score),
            opt(s.score_se),
            opt(s.score_ci95.map(|c| c[0])),
            opt(s.score_ci95.map(|c| c[1])),
            s.min_repeats.to_string(),
            pairs(&s.pass_at_k),
            pairs(&s.pass_hat_k),
            s.left_out.to_string(),
            s.input_tokens.to_string(),
            s.output_tokens.to_string(),
            s.runs_with_tokens.to_string(),
            opt(s.cost_usd),
            s.wall_sec.to_string(),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// Left-aligned columns, two spaces apart.
fn aligned(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            if i + 1 < widths.len() {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count()));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// The benchmark × agent × model summary lines of the table format.
pub fn summary_table(summary: &[Summary]) -> String {
    let rows: Vec<Vec<String>> = summary
        .iter()
        .map(|s| {
            let mut runs = s.runs.to_string();
            if s.left_out > 0 {
                runs.push_str(&format!(" (+{} left out)", s.left_out));
            }
            vec![
                s.benchmark.clone(),
                s.agent.clone(),
                if s.model.is_empty() {
                    "-".into()
                } else {
                    s.model.clone()
                },
                s.tasks.to_string(),
                runs,
                s.passed.to_string(),
                num4(s.mean_score),
                num4(s.score_se),
                ci(s.score_ci95),
                at_k(&s.pass_at_k),
                at_k(&s.pass_hat_k),
                tokens(s),
                cost(s),
                format!("{:.1}s", s.wall_sec),
            ]
        })
        .collect();
    aligned(
        &[
            "BENCHMARK",
            "AGENT",
            "MODEL",
            "TASKS",
            "RUNS",
            "PASSED",
            "MEAN SCORE",
            "SE",
            "95% CI",
            "PASS@K",
            "PASS^K",
            "TOKENS IN/OUT",
            "COST",
            "WALL",
        ],
        &rows,
    )
}

fn table(report: &Report) -> String {
    if report.results.is_empty() && report.problems.is_empty() {
        return "no results\n".to_string();
    }
    let rows: Vec<Vec<String>> = report
        .results
        .iter()
        .map(|r| {
            let mut score = format!("{:.4}", r.score);
            if r.capped {
                score.push_str(" (capped)");
            }
            if r.regraded.is_some() {
                score.push_str(" (regraded)");
            }
            vec![
                r.benchmark.clone(),
                match r.repeat {
                    Some(k) => format!("{} #{k}", r.task),
                    None => r.task.clone(),
                },
                r.agent.clone(),
                r.status.clone(),
                r.mode.clone(),
                score,
                if r.passed { "yes" } else { "no" }.to_string(),
                match (r.highest_gate, r.n_gates) {
                    (Some(h), Some(n)) => format!("{h}/{n}"),
                    _ => "-".to_string(),
                },
                format!("{}/{}", r.checks_passed, r.checks_total),
                format!("{:.1}s", r.wall_sec),
            ]
        })
        .collect();
    let mut out = aligned(
        &[
            "BENCHMARK",
            "TASK",
            "AGENT",
            "STATUS",
            "MODE",
            "SCORE",
            "PASSED",
            "GATES",
            "CHECKS",
            "WALL",
        ],
        &rows,
    );
    out.push('\n');
    out.push_str(&summary_table(&report.summary));
    let errors: Vec<&Row> = report
        .results
        .iter()
        .filter(|r| !r.error.is_empty() || !r.replay.is_empty())
        .collect();
    if !errors.is_empty() {
        out.push('\n');
        for r in errors {
            let what: Vec<&str> = [r.error.as_str(), r.replay.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            out.push_str(&format!(
                "{}/{} × {}: {}\n",
                r.benchmark,
                r.task,
                r.agent,
                what.join("; ")
            ));
        }
    }
    let regraded: Vec<&Row> = report
        .results
        .iter()
        .filter(|r| r.regraded.is_some())
        .collect();
    if !regraded.is_empty() {
        out.push_str("\nREGRADED (kiln regrade: the newest regrade counts)\n");
        for r in regraded {
            let g = r.regraded.as_ref().expect("filtered");
            let flip = super::regraded::flip(g.original_passed, r.passed);
            out.push_str(&format!(
                "{}/{}{} × {}: {} (regrade {}){}\n",
                r.benchmark,
                r.task,
                r.repeat.map(|k| format!(" #{k}")).unwrap_or_default(),
                r.agent,
                g.change(r.score, r.passed),
                g.n,
                if flip.is_empty() {
                    String::new()
                } else {
                    format!(" {flip}")
                }
            ));
        }
    }
    if !report.problems.is_empty() {
        out.push_str("\nPROBLEMS (not in the figures above)\n");
        for p in &report.problems {
            match &p.path {
                Some(path) => {
                    out.push_str(&format!("{}: {}: {}\n", p.kind, path.display(), p.message))
                }
                None => out.push_str(&format!("{}: {}\n", p.kind, p.message)),
            }
        }
    }
    out
}

fn comparison_table(c: &Comparison) -> String {
    let mut out = format!("A: {}\nB: {}\n\n", c.a, c.b);
    // The agent column only when units have one (directories, not agents, compared).
    let with_agent = c.pairs.iter().any(|p| !p.agent.is_empty());
    let rows: Vec<Vec<String>> = c
        .pairs
        .iter()
        .map(|p| {
            let mut row = vec![p.benchmark.clone(), p.task.clone()];
            if with_agent {
                row.push(p.agent.clone());
            }
            row.extend([
                format!("{:.4}", p.a_score),
                format!("{:.4}", p.b_score),
                format!("{:+.4}", p.difference),
                p.flip.clone(),
            ]);
            row
        })
        .collect();
    let mut header = vec!["BENCHMARK", "TASK"];
    if with_agent {
        header.push("AGENT");
    }
    header.extend(["A", "B", "B − A", "FLIP"]);
    out.push_str(&aligned(&header, &rows));
    out.push_str(&format!(
        "\n{} paired units: mean A {}, mean B {}, B − A {} (se {}, 95% CI {})\n",
        c.paired,
        num4(c.a_mean),
        num4(c.b_mean),
        c.mean_difference
            .map(|d| format!("{d:+.4}"))
            .unwrap_or_else(|| "-".into()),
        num4(c.difference_se),
        ci(c.difference_ci95),
    ));
    out.push_str(&format!(
        "flipped pass→fail: {}, fail→pass: {}\n",
        c.flipped_to_fail, c.flipped_to_pass
    ));
    let verdict = if c.significantly_worse {
        "B is significantly worse (the 95% interval lies below 0)"
    } else if c.significantly_better {
        "B is significantly better (the 95% interval lies above 0)"
    } else {
        "no significant difference"
    };
    out.push_str(verdict);
    out.push('\n');
    for (side, units) in [("A", &c.only_in_a), ("B", &c.only_in_b)] {
        if !units.is_empty() {
            out.push_str(&format!(
                "only in {side} (not compared): {}\n",
                units.join(", ")
            ));
        }
    }
    out
}

fn comparison_csv(c: &Comparison) -> anyhow::Result<String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record([
        "benchmark",
        "task",
        "agent",
        "a_score",
        "b_score",
        "difference",
        "a_runs",
        "b_runs",
        "a_passed",
        "b_passed",
        "flip",
    ])?;
    for p in &c.pairs {
        w.write_record([
            p.benchmark.clone(),
            p.task.clone(),
            p.agent.clone(),
            p.a_score.to_string(),
            p.b_score.to_string(),
            p.difference.to_string(),
            p.a_runs.to_string(),
            p.b_runs.to_string(),
            p.a_passed.to_string(),
            p.b_passed.to_string(),
            p.flip.clone(),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
