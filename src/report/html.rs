//! `kiln report --format html`: one self-contained page (inline CSS and one small inline
//! script, no network, no external asset): the benchmark × agent × model matrix as a
//! heat map (pass rate, mean score with its interval, pass@k, tokens, cost), the score
//! distributions, the problems, then the runs grouped by cell, each with its
//! collapsed trajectory ([`super::trajectory`]) and links to its files.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use super::compare::Comparison;
use super::{escape, Report, Row, Summary};

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

/// The page's only script, inline: the filter box hides the runs (and their
/// trajectories) whose text does not hold what is typed; a link to `#run-N` (or
/// opening the page with it) opens that run's trajectory.
const SCRIPT: &str = "
function kilnOpen() {
  var id = decodeURIComponent(location.hash.slice(1));
  var d = id && document.getElementById(id);
  if (d && d.tagName === 'DETAILS') { d.open = true; d.scrollIntoView(); }
}
window.addEventListener('hashchange', kilnOpen);
kilnOpen();
document.getElementById('filter').addEventListener('input', function () {
  var q = this.value.toLowerCase();
  document.querySelectorAll('tr.run').forEach(function (tr) {
    var t = tr.nextElementSibling;
    var show = !q || (tr.textContent + t.textContent).toLowerCase().indexOf(q) >= 0;
    tr.style.display = show ? '' : 'none';
    t.style.display = show ? '' : 'none';
  });
});
";

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
.capped { background: #ffe08a; } .regraded { background: #b8e0ff; } .diverged { background: #f4b2ff; }
.yes { color: #176f2c; font-weight: 600; } .no { color: #a11; font-weight: 600; }
.err { color: #a11; font-size: 0.85em; }
.legend span { display: inline-block; width: 3em; text-align: center; }
td.cell a { color: inherit; text-decoration: none; }
td.dist { white-space: nowrap; height: 44px; vertical-align: bottom; }
.bar { display: inline-block; width: 14px; margin-right: 2px; vertical-align: bottom; border: 1px solid #999; }
.k { white-space: nowrap; }
tr.left-out td { text-decoration: line-through; }
tr.traj > td { border-top: none; padding: 0 8px 4px 24px; }
details.trajectory > summary { color: #555; cursor: pointer; }
.part { border-left: 3px solid #9bd; padding-left: 8px; margin: 6px 0; }
.grader-part { border-left-color: #d9a; }
.msg pre, details.log pre { white-space: pre-wrap; max-height: 30em; overflow: auto; background: #f6f6f6; padding: 4px; margin: 2px 0; }
.note { color: #666; }
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

    // The matrix: benchmarks down, agent (model) across.
    let mut benchmarks: Vec<&str> = report
        .summary
        .iter()
        .map(|s| s.benchmark.as_str())
        .collect();
    benchmarks.dedup();
    let mut columns: Vec<(&str, &str)> = report
        .summary
        .iter()
        .map(|s| (s.agent.as_str(), s.model.as_str()))
        .collect();
    columns.sort();
    columns.dedup();
    h.push_str("<h2>Benchmark × agent</h2>\n<table id=\"matrix\">\n<tr><th>benchmark</th>");
    for (a, m) in &columns {
        let _ = write!(h, "<th>{}", escape(a));
        if !m.is_empty() {
            let _ = write!(h, "<div class=\"counts\">{}</div>", escape(m));
        }
        h.push_str("</th>");
    }
    h.push_str("</tr>\n");
    for b in &benchmarks {
        let _ = write!(h, "<tr><th>{}</th>", escape(b));
        for (a, m) in &columns {
            match report
                .summary
                .iter()
                .find(|s| s.benchmark == *b && s.agent == *a && s.model == *m)
            {
                Some(s) => cell(&mut h, s),
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
    distributions(&mut h, report);
    problems(&mut h, report);

    // One row per run, each followed by its trajectory.
    h.push_str(
        "<h2>Runs</h2>\n<p><input id=\"filter\" type=\"search\" placeholder=\"filter runs and their trajectories\" size=\"40\"></p>\n<table id=\"runs\">\n<tr><th>benchmark</th><th>task</th><th>agent</th>\
         <th>status</th><th>mode</th><th>score</th><th>passed</th><th>gates</th><th>checks</th>\
         <th>wall</th><th>tokens in/out</th><th>cost</th><th>files</th></tr>\n",
    );
    // Grouped by cell, each group under a heading row the matrix cell links to.
    for s in &report.summary {
        let _ = writeln!(
            h,
            "<tr class=\"cellhead\" id=\"{}\"><th colspan=\"13\">{} × {}{}</th></tr>",
            cell_id(&s.benchmark, &s.agent, &s.model),
            escape(&s.benchmark),
            escape(&s.agent),
            if s.model.is_empty() {
                String::new()
            } else {
                format!(" ({})", escape(&s.model))
            }
        );
        for (i, r) in
            report.results.iter().enumerate().filter(|(_, r)| {
                r.benchmark == s.benchmark && r.agent == s.agent && r.model == s.model
            })
        {
            let id = format!("run-{}", i + 1);
            row(&mut h, r, page_dir, &id);
            h.push_str("<tr class=\"traj\"><td colspan=\"13\">");
            super::trajectory::section(&mut h, r, &id);
            h.push_str("</td></tr>\n");
        }
    }
    h.push_str("</table>\n");
    let _ = write!(h, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    h
}

/// The id of a cell's anchor (its runs' rows link back to it and it links to them).
fn cell_id(benchmark: &str, agent: &str, model: &str) -> String {
    href(Path::new(&format!("cell-{benchmark}-{agent}-{model}"))).replace('%', "_")
}

/// `0.5000`, or `–` for no figure.
fn num(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "–".into())
}

/// One matrix cell: pass rate, mean score with its interval, pass@k/pass^k, tokens,
/// cost; coloured by the mean score; each figure also in a data attribute.
fn cell(h: &mut String, s: &Summary) {
    let rate = s.passed as f64 / s.runs.max(1) as f64;
    let ci = s
        .score_ci95
        .map(|[lo, hi]| format!("[{lo:.4}, {hi:.4}]"))
        .unwrap_or_else(|| "–".into());
    let at_k = |v: &[super::cells::AtK], name: &str| -> String {
        v.iter()
            .map(|a| {
                format!(
                    "<span class=\"k\" data-{name}-k=\"{}\">{name}@{}&nbsp;{:.4}</span>",
                    a.k, a.k, a.value
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = write!(
        h,
        "<td class=\"cell\" data-benchmark=\"{b}\" data-agent=\"{a}\" data-model=\"{m}\" data-mean=\"{mean}\" \
         data-ci=\"{ci}\" style=\"background: {bg}\"><a href=\"#{id}\">\
         <div class=\"rate\">{pct:.0}%</div></a><div class=\"counts\">{p} of {n} passed, {t} tasks</div>\
         <div class=\"counts\">mean score <span class=\"mean\">{mean}</span> ± se {se}</div>\
         <div class=\"counts\">95% CI <span class=\"ci\">{ci}</span></div>\
         <div class=\"counts\">{pk}</div><div class=\"counts\">{hk}</div>",
        b = escape(&s.benchmark),
        a = escape(&s.agent),
        m = escape(&s.model),
        id = cell_id(&s.benchmark, &s.agent, &s.model),
        bg = colour(s.mean_score.unwrap_or(0.0)),
        pct = 100.0 * rate,
        p = s.passed,
        n = s.runs,
        t = s.tasks,
        mean = num(s.mean_score),
        se = num(s.score_se),
        pk = at_k(&s.pass_at_k, "pass"),
        hk = at_k(&s.pass_hat_k, "passhat").replace(">passhat@", ">pass^"),
    );
    if s.runs_with_tokens > 0 {
        let _ = write!(
            h,
            "<div class=\"counts\">tokens {}/{} ({} runs)</div>",
            s.input_tokens, s.output_tokens, s.runs_with_tokens
        );
    }
    if let Some(c) = s.cost_usd {
        let _ = write!(h, "<div class=\"counts\">cost ${c:.4}</div>");
    }
    let _ = write!(h, "<div class=\"counts\">wall {:.1}s</div>", s.wall_sec);
    if s.left_out > 0 {
        let _ = write!(
            h,
            "<div class=\"err\">{} runs left out (see problems)</div>",
            s.left_out
        );
    }
    h.push_str("</td>");
}

/// Per cell, how its task scores spread: a bar per score bucket (0–0.1, …, 0.9–1).
fn distributions(h: &mut String, report: &Report) {
    h.push_str("<h2>Score distributions</h2>\n<table id=\"distributions\">\n<tr><th>cell</th><th>runs per score (0 … 1, tenths)</th></tr>\n");
    for s in &report.summary {
        let mut buckets = [0usize; 10];
        for r in report.results.iter().filter(|r| {
            !r.left_out && r.benchmark == s.benchmark && r.agent == s.agent && r.model == s.model
        }) {
            let i = ((r.score.clamp(0.0, 1.0) * 10.0) as usize).min(9);
            buckets[i] += 1;
        }
        let most = buckets.iter().copied().max().unwrap_or(0).max(1);
        let _ = write!(
            h,
            "<tr><td>{} × {}</td><td class=\"dist\">",
            escape(&s.benchmark),
            escape(&s.agent)
        );
        for (i, n) in buckets.iter().enumerate() {
            let _ = write!(
                h,
                "<span class=\"bar\" title=\"{:.1}–{:.1}: {n} runs\" style=\"height: {}px; background: {}\"></span>",
                i as f64 / 10.0,
                (i + 1) as f64 / 10.0,
                2 + 38 * n / most,
                colour(i as f64 / 9.0)
            );
        }
        h.push_str("</td></tr>\n");
    }
    h.push_str("</table>\n");
}

/// Everything left out of the figures, by name.
fn problems(h: &mut String, report: &Report) {
    if report.problems.is_empty() {
        return;
    }
    h.push_str("<h2>Problems (not in the figures)</h2>\n<ul id=\"problems\">\n");
    for p in &report.problems {
        let path = p
            .path
            .as_ref()
            .map(|p| format!("{}: ", escape(&p.display().to_string())))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<li class=\"problem\" data-kind=\"{k}\"><b>{k}</b> {path}{}</li>",
            escape(&p.message),
            k = escape(&p.kind)
        );
    }
    h.push_str("</ul>\n");
}

/// The page for a comparison: the verdict, then one row per paired unit.
pub fn render_comparison(c: &Comparison, title: &str) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{t}</h1>\n\
         <p>A: {a}<br>B: {b}</p>\n",
        t = escape(title),
        a = escape(&c.a),
        b = escape(&c.b)
    );
    let _ = writeln!(
        h,
        "<p id=\"verdict\" data-mean-difference=\"{d}\">{n} paired units; mean A {ma}, mean B {mb}; \
         B − A <b>{d}</b>, 95% CI {ci}; flipped pass→fail {f}, fail→pass {p}.</p>",
        n = c.paired,
        ma = num(c.a_mean),
        mb = num(c.b_mean),
        d = num(c.mean_difference),
        ci = c
            .difference_ci95
            .map(|[lo, hi]| format!("[{lo:.4}, {hi:.4}]"))
            .unwrap_or_else(|| "–".into()),
        f = c.flipped_to_fail,
        p = c.flipped_to_pass
    );
    h.push_str("<table id=\"pairs\">\n<tr><th>benchmark</th><th>task</th><th>agent</th><th>A</th><th>B</th><th>B − A</th><th>flip</th></tr>\n");
    for p in &c.pairs {
        let _ = writeln!(
            h,
            "<tr class=\"pair\"><td>{}</td><td>{}</td><td>{}</td><td class=\"num\" style=\"background: {}\">{:.4}</td>\
             <td class=\"num\" style=\"background: {}\">{:.4}</td><td class=\"num\">{:+.4}</td><td class=\"{}\">{}</td></tr>",
            escape(&p.benchmark),
            escape(&p.task),
            escape(&p.agent),
            colour(p.a_score),
            p.a_score,
            colour(p.b_score),
            p.b_score,
            p.difference,
            if p.flip == "pass→fail" { "no" } else { "yes" },
            escape(&p.flip)
        );
    }
    h.push_str("</table>\n");
    for (side, units) in [("A", &c.only_in_a), ("B", &c.only_in_b)] {
        if !units.is_empty() {
            let _ = writeln!(
                h,
                "<p>Only in {side} (not compared): {}</p>",
                escape(&units.join(", "))
            );
        }
    }
    h.push_str("</body>\n</html>\n");
    h
}

fn row(h: &mut String, r: &Row, page_dir: Option<&Path>, id: &str) {
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
    if let Some(g) = &r.regraded {
        let _ = write!(
            score,
            "<span class=\"mark regraded\" title=\"kiln regrade {}: the run's own result was {}\">regraded</span>",
            g.n,
            escape(&super::regraded::verdict(g.original_score, g.original_passed))
        );
    }
    let gates = match (r.highest_gate, r.n_gates) {
        (Some(g), Some(n)) => format!("{g}/{n}"),
        _ => "-".into(),
    };
    let mut error = String::new();
    for e in [&r.error, &r.replay, &r.problem] {
        if !e.is_empty() {
            let _ = write!(error, "<div class=\"err\">{}</div>", escape(e));
        }
    }
    let tokens = match (r.input_tokens, r.output_tokens) {
        (Some(i), Some(o)) => format!("{i}/{o}"),
        _ => "–".into(),
    };
    let cost = r
        .cost_usd
        .map(|c| format!("${c:.4}"))
        .unwrap_or_else(|| "–".into());
    let _ = writeln!(
        h,
        "<tr class=\"run{lo}\" data-benchmark=\"{b}\" data-task=\"{t}\" data-agent=\"{a}\">\
         <td>{b}</td><td>{task}</td><td>{a}</td><td>{status}{error}</td><td>{mode}</td>\
         <td class=\"num\">{score}</td><td class=\"{pc}\">{p}</td><td class=\"num\">{gates}</td>\
         <td class=\"num\">{cp}/{ct}</td><td class=\"num\">{wall:.1}s</td><td class=\"num\">{tokens}</td>\
         <td class=\"num\">{cost}</td><td><a class=\"open\" href=\"#{id}\">trajectory</a> {l1} {l2} {l3}</td></tr>",
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
        lo = if r.left_out { " left-out" } else { "" },
        l1 = link(&r.path.file_name().unwrap_or_default().to_string_lossy()),
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
