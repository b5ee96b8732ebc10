//! `kiln report --format html`: one self-contained page (inline CSS, no script, no
//! network, no external asset): the benchmark × agent matrix (pass rate and mean score
//! on a red-to-green scale, with counts), then one row per run (status, mode, score with
//! the capped mark, gates, checks, wall time) linking to the run's files.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use super::{Report, Row};

/// `s` with `& < > " '` escaped, for text and attribute values.
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

/// A background colour for a score in [0, 1]: hue 0 (red) to 120 (green), light enough
/// for black text.
pub fn colour(score: f64) -> String {
    let s = if score.is_finite() {
        score.clamp(0.0, 1.0)
    } else {
        0.0
    };
    format!("hsl({:.0}, 70%, 80%)", 120.0 * s)
}

/// `to` relative to the directory `from` (both absolute), for links that survive
/// moving the results and the page together.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let f: Vec<Component> = from.components().collect();
    let t: Vec<Component> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// A path as an href: each component percent-escaped where needed.
fn href(path: &Path) -> String {
    let mut out = String::new();
    for (i, c) in path.components().enumerate() {
        if i > 0 {
            out.push('/');
        }
        for b in c.as_os_str().to_string_lossy().bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(b as char);
            } else {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

const STYLE: &str = "
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #111; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #bbb; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.cell { text-align: center; min-width: 8em; }
td.cell .rate { font-size: 1.2em; font-weight: 600; }
td.cell .counts { font-size: 0.85em; color: #333; }
td.empty { color: #888; text-align: center; }
.mark { display: inline-block; font-size: 0.75em; padding: 0 4px; border-radius: 3px; margin-left: 4px; }
.capped { background: #ffe08a; } .diverged { background: #f4b2ff; }
.yes { color: #176f2c; font-weight: 600; } .no { color: #a11; font-weight: 600; }
.err { color: #a11; font-size: 0.85em; }
.legend span { display: inline-block; width: 3em; text-align: center; }
";

/// The page for `report`. `page_dir` is the absolute directory the page is written to
/// (links to runs are made relative to it); None: links are the paths as the report
/// has them.
pub fn render(report: &Report, title: &str, page_dir: Option<&Path>) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{t}</h1>\n",
        t = escape(title)
    );
    if report.results.is_empty() {
        h.push_str("<p id=\"no-results\">No results.</p>\n</body>\n</html>\n");
        return h;
    }
    let runs = report.results.len();
    let passed = report.results.iter().filter(|r| r.passed).count();
    let _ = writeln!(
        h,
        "<p id=\"totals\">{runs} runs, {passed} passed ({:.0}%).</p>",
        100.0 * passed as f64 / runs as f64
    );

    // The matrix: benchmarks down, agents across.
    let mut benchmarks: Vec<&str> = report
        .summary
        .iter()
        .map(|s| s.benchmark.as_str())
        .collect();
    benchmarks.dedup();
    let mut agents: Vec<&str> = report.summary.iter().map(|s| s.agent.as_str()).collect();
    agents.sort();
    agents.dedup();
    h.push_str("<h2>Benchmark × agent</h2>\n<table id=\"matrix\">\n<tr><th>benchmark</th>");
    for a in &agents {
        let _ = write!(h, "<th>{}</th>", escape(a));
    }
    h.push_str("</tr>\n");
    for b in &benchmarks {
        let _ = write!(h, "<tr><th>{}</th>", escape(b));
        for a in &agents {
            match report
                .summary
                .iter()
                .find(|s| s.benchmark == *b && s.agent == *a)
            {
                Some(s) => {
                    let rate = s.passed as f64 / s.runs.max(1) as f64;
                    let _ = write!(
                        h,
                        "<td class=\"cell\" data-benchmark=\"{}\" data-agent=\"{}\" style=\"background: {}\">\
                         <div class=\"rate\">{:.0}%</div><div class=\"counts\">{} of {} passed</div>\
                         <div class=\"counts\">mean score {:.4}</div></td>",
                        escape(b),
                        escape(a),
                        colour(s.mean_score),
                        100.0 * rate,
                        s.passed,
                        s.runs,
                        s.mean_score
                    );
                }
                None => h.push_str("<td class=\"empty\">–</td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n<p class=\"legend\">mean score: ");
    for s in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = write!(h, "<span style=\"background: {}\">{s}</span>", colour(s));
    }
    h.push_str("</p>\n");

    // One row per run.
    h.push_str(
        "<h2>Runs</h2>\n<table id=\"runs\">\n<tr><th>benchmark</th><th>task</th><th>agent</th>\
         <th>status</th><th>mode</th><th>score</th><th>passed</th><th>gates</th><th>checks</th>\
         <th>wall</th><th>files</th></tr>\n",
    );
    for r in &report.results {
        row(&mut h, r, page_dir);
    }
    h.push_str("</table>\n</body>\n</html>\n");
    h
}

fn row(h: &mut String, r: &Row, page_dir: Option<&Path>) {
    let dir = r.path.parent().unwrap_or(Path::new("."));
    let dir = match page_dir {
        Some(page) => {
            let abs = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
            relative(page, &abs)
        }
        None => dir.to_path_buf(),
    };
    let link = |file: &str| {
        format!(
            "<a href=\"{}\">{}</a>",
            escape(&href(&dir.join(file))),
            escape(file)
        )
    };
    let task = match r.repeat {
        Some(k) => format!("{} #{k}", escape(&r.task)),
        None => escape(&r.task),
    };
    let mut score = format!("{:.4}", r.score);
    if r.capped {
        score.push_str(
            "<span class=\"mark capped\" title=\"a cap lowered the score\">capped</span>",
        );
    }
    let gates = match (r.highest_gate, r.n_gates) {
        (Some(g), Some(n)) => format!("{g}/{n}"),
        _ => "-".into(),
    };
    let error = if r.error.is_empty() {
        String::new()
    } else {
        format!("<div class=\"err\">{}</div>", escape(&r.error))
    };
    let _ = writeln!(
        h,
        "<tr class=\"run\" data-benchmark=\"{b}\" data-task=\"{t}\" data-agent=\"{a}\">\
         <td>{b}</td><td>{task}</td><td>{a}</td><td>{status}{error}</td><td>{mode}</td>\
         <td class=\"num\">{score}</td><td class=\"{pc}\">{p}</td><td class=\"num\">{gates}</td>\
         <td class=\"num\">{cp}/{ct}</td><td class=\"num\">{wall:.1}s</td><td>{l1} {l2} {l3}</td></tr>",
        b = escape(&r.benchmark),
        t = escape(&r.task),
        a = escape(&r.agent),
        status = escape(&r.status),
        mode = escape(&r.mode),
        pc = if r.passed { "yes" } else { "no" },
        p = if r.passed { "yes" } else { "no" },
        cp = r.checks_passed,
        ct = r.checks_total,
        wall = r.wall_sec,
        l1 = link("result.json"),
        l2 = link("runner.stderr.log"),
        l3 = link("agent/"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn colours_run_red_to_green() {
        assert_eq!(colour(0.0), "hsl(0, 70%, 80%)");
        assert_eq!(colour(1.0), "hsl(120, 70%, 80%)");
        assert_eq!(colour(7.0), colour(1.0));
        assert_eq!(colour(f64::NAN), colour(0.0));
    }

    #[test]
    fn links_are_relative_and_escaped() {
        assert_eq!(
            relative(Path::new("/r/out"), Path::new("/r/res/b/t/a")),
            PathBuf::from("../res/b/t/a")
        );
        assert_eq!(href(Path::new("../a b/Fix.Config")), "../a%20b/Fix.Config");
    }
}
