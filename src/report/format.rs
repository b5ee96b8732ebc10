//! The renderings of a [`Report`]: an aligned table for people, JSON (serde), CSV (the
//! `csv` crate, so fields holding commas, quotes or newlines are quoted) and one HTML
//! page ([`super::html`]).

use super::{Report, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
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
        Format::Csv => csv(&report.results),
        Format::Html => Ok(super::html::render(report, "kiln report", None)),
    }
}

const CSV_HEADER: [&str; 22] = [
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
];

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn csv(rows: &[Row]) -> anyhow::Result<String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    for r in rows {
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

/// The benchmark × agent summary lines of the table format.
pub fn summary_table(summary: &[super::Summary]) -> String {
    let rows: Vec<Vec<String>> = summary
        .iter()
        .map(|s| {
            vec![
                s.benchmark.clone(),
                s.agent.clone(),
                s.runs.to_string(),
                s.passed.to_string(),
                format!("{:.4}", s.mean_score),
            ]
        })
        .collect();
    aligned(
        &["BENCHMARK", "AGENT", "RUNS", "PASSED", "MEAN SCORE"],
        &rows,
    )
}

fn table(report: &Report) -> String {
    if report.results.is_empty() {
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
    out
}
