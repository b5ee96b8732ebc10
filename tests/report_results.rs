//! `kiln report` over sample results laid out as `kiln run` writes them. The samples
//! are checked against docs/result.schema.json first, so they are results the
//! runner could have written.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/result.schema.json"),
    )
    .unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

/// A result.json v2 the runner could write; `mode` picks the score fields.
fn sample(task: &str, title: &str, agent: &str, mode: &str, value: f64, passed: bool) -> Value {
    let gated = mode == "gated";
    json!({
        "schema_version": "2",
        "runner_version": "0.1.0",
        "run_id": format!("{task}-{agent}-0001"),
        "status": if passed { "completed" } else { "agent_error" },
        "task": {"id": task, "title": title, "prompt_variant": "default",
                 "prompt_sha256": "ab", "scenario_sha256": "cd"},
        "agent": {"id": agent, "model": "", "exit_code": if passed { 0 } else { 3 }, "signal": null,
                  "timed_out": false, "wall_sec": 0.5, "privileges_dropped": true, "metrics": null},
        "score": {"mode": mode, "value": value, "passed": passed, "raw_value": if value == 0.69 { 0.88 } else { value },
                  "threshold": if gated { 0.8 } else { 1.0 },
                  "highest_gate": if gated { json!(if passed { 5 } else { 1 }) } else { Value::Null },
                  "n_gates": if gated { json!(5) } else { Value::Null },
                  "caps_applied": if value == 0.69 {
                      json!([{"when_any_failed": "equivalence_*", "max": 0.69, "failed_checks": ["equivalence_reasons"]}])
                  } else { json!([]) }},
        "gates": [],
        "checks": [
            {"id": "a", "group": "default", "source": "scenario", "passed": true, "skipped": false,
             "required": false, "weight": 1.0, "counted": true, "duration_ms": 3, "message": "", "details": {}},
            {"id": "b", "group": "default", "source": "scenario", "passed": passed, "skipped": false,
             "required": false, "weight": 1.0, "counted": true, "duration_ms": 3, "message": "", "details": {}},
            {"id": "c", "group": "default", "source": "scenario", "passed": false, "skipped": false,
             "required": false, "weight": 1.0, "counted": false, "duration_ms": 0, "message": "", "details": {}}
        ],
        "rewards": {},
        "fixtures": {},
        "timing": {"started_at": "2026-11-23T09:30:00Z", "finished_at": "2026-11-23T09:30:02Z", "wall_sec": 2.25,
                   "prepare": null, "agent": null, "grade": null},
        "warnings": [],
        "errors": if passed { json!([]) } else { json!([{"phase": "agent", "message": "agent exited 3, \"oops\""}]) },
        "model": null
    })
}

fn write(dir: &Path, benchmark: &str, agent: &str, result: &Value) {
    let task = result["task"]["id"].as_str().unwrap().to_lowercase();
    let at = dir.join(benchmark).join(task).join(agent);
    std::fs::create_dir_all(&at).unwrap();
    std::fs::write(
        at.join("result.json"),
        serde_json::to_string_pretty(result).unwrap(),
    )
    .unwrap();
}

fn results_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let samples = [
        (
            "metric-backfill",
            sample(
                "orders-daily",
                "Repair the backfill",
                "oracle",
                "gated",
                1.0,
                true,
            ),
        ),
        (
            "metric-backfill",
            sample(
                "orders-daily",
                "Repair the backfill",
                "null",
                "gated",
                0.2,
                false,
            ),
        ),
        (
            "metric-definition-audit",
            sample(
                "churn-dashboard",
                "Audit \"Q3\", revenue",
                "oracle",
                "weighted",
                0.69,
                false,
            ),
        ),
        (
            "terminal-lite",
            sample(
                "Fix.Config",
                "Repair a config",
                "oracle",
                "reward",
                1.0,
                true,
            ),
        ),
    ];
    let validator = schema();
    for (benchmark, result) in &samples {
        assert!(
            validator.is_valid(result),
            "sample does not follow the schema: {result}"
        );
        let agent = result["agent"]["id"].as_str().unwrap();
        write(dir.path(), benchmark, agent, result);
    }
    dir
}

fn kiln(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn table_shows_every_run_and_a_summary() {
    let dir = results_dir();
    let out = kiln(&["report", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("BENCHMARK"), "{text}");
    // Sorted by benchmark, task, agent; the per-task id keeps its case.
    assert!(
        lines[1].starts_with("metric-backfill ") && lines[1].contains(" null "),
        "{text}"
    );
    assert!(
        lines[2].contains(" oracle ") && lines[2].contains("1.0000") && lines[2].contains("5/5"),
        "{text}"
    );
    assert!(
        lines[3].contains("0.6900 (capped)") && lines[3].contains(" no "),
        "{text}"
    );
    assert!(
        lines[4].starts_with("terminal-lite") && lines[4].contains("Fix.Config"),
        "{text}"
    );
    // Uncounted checks (gates not evaluated) are left out of CHECKS.
    assert!(lines[1].contains("1/2"), "{text}");
    assert!(text.contains("MEAN SCORE"), "{text}");
    assert!(text.contains("agent: agent exited 3"), "{text}");
}

#[test]
fn json_round_trips_with_serde() {
    let dir = results_dir();
    let out = kiln(&["report", dir.path().to_str().unwrap(), "--format", "json"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[1]["agent"], "oracle");
    assert_eq!(results[1]["score"], 1.0);
    assert_eq!(results[1]["highest_gate"], 5);
    let summary = v["summary"].as_array().unwrap();
    let backfill_null = summary
        .iter()
        .find(|s| s["benchmark"] == "metric-backfill" && s["agent"] == "null")
        .unwrap();
    assert_eq!(backfill_null["runs"], 1);
    assert_eq!(backfill_null["passed"], 0);
    assert_eq!(backfill_null["mean_score"], 0.2);
}

#[test]
fn csv_quotes_commas_and_quotes() {
    let dir = results_dir();
    // An error message with a comma, a quote and a newline must survive a CSV round trip.
    let mut odd = sample(
        "count-lines",
        "Count, \"lines\"",
        "null",
        "reward",
        0.0,
        false,
    );
    odd["errors"] = json!([{"phase": "grade", "message": "test.sh said \"no\",\nthen exited"}]);
    write(dir.path(), "terminal-lite", "null", &odd);
    let out = kiln(&["report", dir.path().to_str().unwrap(), "--format", "csv"]);
    assert!(out.status.success());
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(&header[..3], ["benchmark", "task", "agent"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 5);
    let error_col = header.iter().position(|h| h == "error").unwrap();
    let odd_row = rows.iter().find(|r| &r[1] == "count-lines").unwrap();
    assert_eq!(
        &odd_row[error_col],
        "grade: test.sh said \"no\",\nthen exited"
    );
    assert!(rows.iter().all(|r| r.len() == header.len()));
}

#[test]
fn unreadable_results_are_named_and_fail() {
    let dir = results_dir();
    let bad = dir.path().join("terminal-lite/parse-log/oracle");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("result.json"), "{\"schema_version\": \"1\"").unwrap();
    let out = kiln(&["report", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("parse-log/oracle/result.json"), "{stderr}");
    // The readable ones are still reported.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let runs = stdout.split("\n\n").next().unwrap();
    assert_eq!(
        runs.lines().filter(|l| l.contains(" oracle ")).count(),
        3,
        "{stdout}"
    );
}

#[test]
fn newer_schema_versions_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut future = sample("orders-daily", "t", "oracle", "gated", 1.0, true);
    future["schema_version"] = json!("3");
    write(dir.path(), "metric-backfill", "oracle", &future);
    let out = kiln(&["report", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("schema_version \"3\""));
}

#[test]
fn a_missing_directory_is_a_usage_error() {
    let out = kiln(&["report", "/nonexistent/kiln-results"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("/nonexistent/kiln-results is not a directory"));
}

#[test]
fn an_empty_directory_reports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = kiln(&["report", dir.path().to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "no results\n");
}

#[test]
fn repeats_count_once_each_and_hidden_partial_runs_are_not_results() {
    let dir = results_dir();
    // Two repeats of one cell, and a run still being written (hidden directory).
    for (k, value, passed) in [(1, 1.0, true), (2, 0.0, false)] {
        let at = dir
            .path()
            .join(format!("terminal-lite/count-lines/null/repeat-{k}"));
        std::fs::create_dir_all(&at).unwrap();
        let r = sample("count-lines", "Count", "null", "reward", value, passed);
        std::fs::write(at.join("result.json"), r.to_string()).unwrap();
    }
    let partial = dir
        .path()
        .join("terminal-lite/count-lines/null/.repeat-3.partial-x");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(
        partial.join("result.json"),
        sample("count-lines", "Count", "null", "reward", 1.0, true).to_string(),
    )
    .unwrap();
    let out = kiln(&["report", dir.path().to_str().unwrap(), "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let repeats: Vec<(String, Value)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["task"] == "count-lines")
        .map(|r| {
            (
                r["benchmark"].as_str().unwrap().to_string(),
                r["repeat"].clone(),
            )
        })
        .collect();
    assert_eq!(
        repeats,
        vec![
            ("terminal-lite".to_string(), json!(1)),
            ("terminal-lite".to_string(), json!(2))
        ]
    );
    let null = report["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["benchmark"] == "terminal-lite" && s["agent"] == "null")
        .unwrap();
    assert_eq!(
        (null["runs"].clone(), null["passed"].clone()),
        (json!(2), json!(1))
    );
    let table = kiln(&["report", dir.path().to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("count-lines #2"));
}

/// The page `kiln report --format html -o` writes for the sample results.
fn html_page(dir: &Path) -> (std::path::PathBuf, String) {
    let page = dir.join("report.html");
    let out = kiln(&[
        "report",
        dir.to_str().unwrap(),
        "--format",
        "html",
        "-o",
        page.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "-o writes the file, not stdout");
    let text = std::fs::read_to_string(&page).unwrap();
    (page, text)
}

#[test]
fn html_is_one_self_contained_page() {
    let dir = results_dir();
    let (_, text) = html_page(dir.path());
    assert!(text.starts_with("<!DOCTYPE html>"), "{text}");
    for external in ["<link", " src=", "http://", "https://", "@import", "url("] {
        assert!(!text.contains(external), "{external} in the page");
    }
    // One inline script (the filter and opening a trajectory from the URL), no other.
    assert_eq!(text.matches("<script").count(), 1);
    assert!(text.contains("<script>\nfunction kilnOpen()"), "{text}");
    // Escaped text, relative links to each run's files, the capped mark.
    assert!(text.contains("churn-dashboard"));
    assert!(
        text.contains("href=\"metric-backfill/orders-daily/null/runner.stderr.log\""),
        "{text}"
    );
    assert!(text.contains("capped</span>"));
}

/// Runs headless Chromium on `page`; returns (stdout, stderr).
fn chromium(profile: &Path, args: &[&str], page: &Path) -> (String, String) {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs (apt-get install chromium; scripts/setup.sh does)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Chromium's log lines for messages of the page's console.
fn console_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("CONSOLE")).collect()
}

#[test]
fn html_renders_in_chromium_without_console_errors() {
    if std::env::var("KILN_TEST_BROWSER").as_deref() != Ok("1") {
        eprintln!("skipped: set KILN_TEST_BROWSER=1 to load the HTML report in headless Chromium");
        return;
    }
    let dir = results_dir();
    let (page, _) = html_page(dir.path());
    let profile = tempfile::tempdir().unwrap();

    // The console check can fail: a page that logs an error is caught.
    let control = dir.path().join("control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><html><body><script>console.error('kiln-control-error')</script></body></html>",
    )
    .unwrap();
    let (_, stderr) = chromium(profile.path(), &["--dump-dom"], &control);
    assert!(
        console_lines(&stderr)
            .iter()
            .any(|l| l.contains("kiln-control-error")),
        "chromium did not report the control page's console error:\n{stderr}"
    );

    let (dom, stderr) = chromium(profile.path(), &["--dump-dom"], &page);
    assert_eq!(
        console_lines(&stderr),
        Vec::<&str>::new(),
        "console messages:\n{stderr}"
    );
    // The rendered DOM holds the matrix cells and the run rows.
    let cell = |benchmark: &str, agent: &str| -> String {
        let start = dom
            .find(&format!(
                "data-benchmark=\"{benchmark}\" data-agent=\"{agent}\""
            ))
            .unwrap_or_else(|| panic!("no cell {benchmark} × {agent} in:\n{dom}"));
        dom[start..start + dom[start..].find("</td>").unwrap()].to_string()
    };
    let c = cell("metric-backfill", "oracle");
    assert!(
        c.contains("100%") && c.contains("1 of 1 passed") && c.contains("1.0000"),
        "{c}"
    );
    assert!(c.contains("hsl(120, 70%, 80%)"), "green for 1.0: {c}");
    let c = cell("metric-backfill", "null");
    assert!(
        c.contains("0%") && c.contains("0 of 1 passed") && c.contains("0.2000"),
        "{c}"
    );
    assert!(c.contains("hsl(24, 70%, 80%)"), "{c}");
    assert!(
        dom.contains("<td class=\"empty\">–</td>"),
        "terminal-lite × null has no runs"
    );
    assert_eq!(dom.matches("<tr class=\"run\"").count(), 4, "{dom}");
    // Every figure the page shows is the JSON's.
    let out = kiln(&["report", dir.path().to_str().unwrap(), "--format", "json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    for s in json["summary"].as_array().unwrap() {
        let c = cell(
            s["benchmark"].as_str().unwrap(),
            s["agent"].as_str().unwrap(),
        );
        let mean = format!("{:.4}", s["mean_score"].as_f64().unwrap());
        assert!(
            c.contains(&format!("data-mean=\"{mean}\""))
                && c.contains(&format!("<span class=\"mean\">{mean}</span>")),
            "{mean} not shown in {c}"
        );
        let passed = format!("{} of {} passed", s["passed"], s["runs"]);
        assert!(c.contains(&passed), "{passed} not in {c}");
        for a in s["pass_at_k"].as_array().unwrap() {
            let shown = format!("pass@{}&nbsp;{:.4}", a["k"], a["value"].as_f64().unwrap());
            assert!(c.contains(&shown), "{shown} not in {c}");
        }
    }
    // Every trajectory is closed until asked for; #run-2 opens that one.
    assert!(
        !dom.contains("open=\"\""),
        "a trajectory is open by default"
    );
    let (opened, stderr) = chromium(
        profile.path(),
        &["--dump-dom"],
        Path::new(&format!("{}#run-2", page.display())),
    );
    assert_eq!(console_lines(&stderr), Vec::<&str>::new(), "{stderr}");
    assert!(
        opened.contains("<details class=\"trajectory\" id=\"run-2\" open=\"\">"),
        "{opened}"
    );
    assert_eq!(opened.matches("open=\"\"").count(), 1);
    assert!(dom.contains("0.6900<span class=\"mark capped\""), "{dom}");
    assert!(dom.contains("agent: agent exited 3, \"oops\""), "{dom}");

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-html.png");
    let _ = std::fs::remove_file(&shot);
    let (_, stderr) = chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,800",
            "--hide-scrollbars",
        ],
        &page,
    );
    assert_eq!(
        console_lines(&stderr),
        Vec::<&str>::new(),
        "console messages:\n{stderr}"
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn replays_that_differ_from_their_recording_are_shown() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = sample(
        "count-lines",
        "Count lines",
        "mini-swe-agent",
        "reward",
        0.0,
        false,
    );
    r["model"] = json!({"model": "gpt-test", "mode": "replay", "calls": 3, "input_tokens": 0, "output_tokens": 0,
        "wait_sec": 0.01, "fixture": "f.jsonl",
        "replay": {"turns_recorded": 3, "turns_served": 1, "lenient": false,
            "diverged": [{"turn": 2, "reason": "message 5 (tool): text differs"}], "exhausted": 0,
            "recorded_score": 1.0, "score_equals_recorded": false}});
    assert!(schema().is_valid(&r), "{r}");
    write(dir.path(), "terminal-lite", "mini-swe-agent", &r);
    // A v1 result (no model section) still reads.
    let mut old = sample("parse-log", "Parse", "oracle", "reward", 1.0, true);
    old["schema_version"] = json!("1");
    old.as_object_mut().unwrap().remove("model");
    write(dir.path(), "terminal-lite", "oracle", &old);
    let out = kiln(&["report", dir.path().to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("replay score 0.0000 differs from the recorded 1.0000; replay: diverged at turn 2: message 5 (tool): text differs"),
        "{text}"
    );
    let csv = kiln(&["report", dir.path().to_str().unwrap(), "--format", "csv"]);
    assert!(String::from_utf8_lossy(&csv.stdout)
        .lines()
        .next()
        .unwrap()
        .contains(",path,replay,"));
}
