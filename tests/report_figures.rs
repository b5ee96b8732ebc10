//! `kiln report`'s figures over result directories built here as `kiln run` writes them
//! (result.json checked against docs/result.schema.json, run.json beside it): the
//! per-cell statistics against hand-computed values, tokens and cost, bad input listed
//! in every format, comparisons and their exit status, and `--watch`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/result.schema.json"),
    )
    .unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

/// One run to write.
struct Run<'a> {
    benchmark: &'a str,
    task: &'a str,
    agent: &'a str,
    model: &'a str,
    score: f64,
    passed: bool,
    repeat: Option<u32>,
    /// Gateway tokens (in, out); None: result.json's `model` is null.
    tokens: Option<(u64, u64)>,
    digest: &'a str,
}

impl Default for Run<'_> {
    fn default() -> Self {
        Run {
            benchmark: "terminal-lite",
            task: "count-lines",
            agent: "mini",
            model: "gpt-4o",
            score: 1.0,
            passed: true,
            repeat: None,
            tokens: Some((1000, 200)),
            digest: "sha256:aaaa",
        }
    }
}

/// Writes result.json (v2, schema-checked) and run.json for `run` under `dir`.
fn write(dir: &Path, run: &Run) -> PathBuf {
    let mut at = dir
        .join(run.benchmark)
        .join(run.task.to_lowercase())
        .join(run.agent);
    if let Some(k) = run.repeat {
        at = at.join(format!("repeat-{k}"));
    }
    std::fs::create_dir_all(&at).unwrap();
    let result = json!({
        "schema_version": "2", "runner_version": "0.1.0",
        "run_id": format!("{}-{}-{}", run.task, run.agent, run.repeat.unwrap_or(1)),
        "status": "completed",
        "task": {"id": run.task, "title": "t", "prompt_variant": "default", "prompt_sha256": "ab", "scenario_sha256": "cd"},
        "agent": {"id": run.agent, "model": run.model, "exit_code": 0, "signal": null, "timed_out": false,
                  "wall_sec": 1.0, "privileges_dropped": true, "metrics": null},
        "score": {"mode": "reward", "value": run.score, "passed": run.passed, "raw_value": run.score,
                  "threshold": 1.0, "highest_gate": null, "n_gates": null, "caps_applied": []},
        "gates": [], "checks": [], "rewards": {}, "fixtures": {},
        "timing": {"started_at": "2026-12-01T10:00:00Z", "finished_at": "2026-12-01T10:00:02Z", "wall_sec": 2.5,
                   "prepare": null, "agent": null, "grade": null},
        "warnings": [], "errors": [],
        "model": match run.tokens {
            Some((i, o)) => json!({"model": run.model, "mode": "record", "calls": 2, "input_tokens": i,
                                    "output_tokens": o, "wait_sec": 0.1, "replay": null}),
            None => Value::Null,
        }
    });
    assert!(schema().is_valid(&result), "not a valid result: {result}");
    std::fs::write(at.join("result.json"), result.to_string()).unwrap();
    let record = json!({
        "benchmark": run.benchmark, "task": run.task, "agent": run.agent, "image": "kiln/x:latest",
        "store": "docker", "runner_exit": 0, "wall_sec": 3.0, "kiln_version": "0.1.0",
        "output_error": null, "container": "kiln-1-1",
        "made_from": {"inputs_digest": run.digest, "model": run.model, "replay": null,
                      "repeat": run.repeat.unwrap_or(1)}
    });
    std::fs::write(at.join("run.json"), record.to_string()).unwrap();
    at
}

fn kiln(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .output()
        .unwrap()
}

fn json_report(dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["report", dir.to_str().unwrap(), "--format", "json"];
    args.extend(extra);
    let out = kiln(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Four tasks, two repeats each, for agent `mini` (model gpt-4o):
/// count-lines 1, 1 (both pass); parse-log 1 (pass), 0.5; fix-config 0.5, 0.5;
/// sort-csv 1 (pass), 0.
fn four_tasks(dir: &Path) {
    let scores = [
        ("count-lines", [(1.0, true), (1.0, true)]),
        ("parse-log", [(1.0, true), (0.5, false)]),
        ("fix-config", [(0.5, false), (0.5, false)]),
        ("sort-csv", [(1.0, true), (0.0, false)]),
    ];
    for (task, runs) in scores {
        for (k, (score, passed)) in runs.into_iter().enumerate() {
            write(
                dir,
                &Run {
                    task,
                    score,
                    passed,
                    repeat: Some(k as u32 + 1),
                    ..Run::default()
                },
            );
        }
    }
}

fn cell<'a>(report: &'a Value, agent: &str) -> &'a Value {
    report["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["agent"] == agent)
        .unwrap_or_else(|| panic!("no cell for {agent}: {report}"))
}

#[test]
fn cells_carry_hand_computed_statistics_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    four_tasks(dir.path());
    let report = json_report(dir.path(), &[]);
    let c = cell(&report, "mini");
    // Task means 1, 0.75, 0.5, 0.5 → mean 0.6875; their sample variance 0.171875/3;
    // se = sqrt(0.0572917/4) = 0.119678; t(3) = 3.182 → [0.306684, 1.068316] → high
    // clipped to 1.
    assert_eq!(c["model"], "gpt-4o");
    assert_eq!(
        (c["tasks"].clone(), c["runs"].clone()),
        (json!(4), json!(8))
    );
    assert_eq!(c["passed"], 4);
    assert_eq!(c["mean_score"], 0.6875);
    assert_eq!(c["score_se"], 0.1197);
    assert_eq!(c["score_ci95"], json!([0.3067, 1.0]));
    assert_eq!(c["min_repeats"], 2);
    // pass@1 = mean(1, .5, 0, .5); pass@2 = mean(1, 1, 0, 1); pass^2 = mean(1, 0, 0, 0).
    assert_eq!(
        c["pass_at_k"],
        json!([{"k": 1, "value": 0.5}, {"k": 2, "value": 0.75}])
    );
    assert_eq!(
        c["pass_hat_k"],
        json!([{"k": 1, "value": 0.5}, {"k": 2, "value": 0.25}])
    );
    // 8 runs × (1000 in, 200 out); gpt-4o at $2.50/$10 per million: 8 × $0.0045.
    assert_eq!(
        (c["input_tokens"].clone(), c["output_tokens"].clone()),
        (json!(8000), json!(1600))
    );
    assert_eq!(c["cost_usd"], 0.036);
    assert_eq!(c["runs_with_cost"], 8);
    assert_eq!(c["wall_sec"], 20.0);
    assert_eq!(report["problems"], json!([]));
    let run = &report["results"][0];
    assert_eq!(
        (
            run["input_tokens"].clone(),
            run["cost_usd"].clone(),
            run["run_wall_sec"].clone()
        ),
        (json!(1000), json!(0.0045), json!(3.0))
    );

    let table = kiln(&["report", dir.path().to_str().unwrap()]);
    let text = String::from_utf8_lossy(&table.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("terminal-lite  mini"))
        .unwrap_or_else(|| panic!("{text}"));
    for want in [
        "gpt-4o",
        "0.6875",
        "0.1197",
        "[0.3067, 1.0000]",
        "@1 0.5000 @2 0.7500",
        "@1 0.5000 @2 0.2500",
        "8000/1600",
        "$0.0360",
        "20.0s",
    ] {
        assert!(line.contains(want), "{want} not in {line}");
    }

    let out = kiln(&[
        "report",
        dir.path().to_str().unwrap(),
        "--format",
        "cells-csv",
    ]);
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    let field = |name: &str| rows[0][header.iter().position(|h| h == name).unwrap()].to_string();
    assert_eq!(field("mean_score"), "0.6875");
    assert_eq!(field("score_ci95_low"), "0.3067");
    assert_eq!(field("pass_at_k"), "1:0.5 2:0.75");
    assert_eq!(field("pass_hat_k"), "1:0.5 2:0.25");
    assert_eq!(field("cost_usd"), "0.036");
}

#[test]
fn one_run_all_pass_and_none_pass() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &Run {
            agent: "one",
            ..Run::default()
        },
    );
    for k in 1..=3 {
        write(
            dir.path(),
            &Run {
                agent: "all",
                repeat: Some(k),
                ..Run::default()
            },
        );
        write(
            dir.path(),
            &Run {
                agent: "none",
                repeat: Some(k),
                score: 0.0,
                passed: false,
                ..Run::default()
            },
        );
    }
    let report = json_report(dir.path(), &[]);
    let one = cell(&report, "one");
    assert_eq!(one["mean_score"], 1.0);
    assert_eq!(
        (one["score_se"].clone(), one["score_ci95"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(one["pass_at_k"], json!([{"k": 1, "value": 1.0}]));
    let all = cell(&report, "all");
    assert_eq!(
        all["pass_at_k"].as_array().unwrap().len(),
        3,
        "k up to the repeats"
    );
    assert!(all["pass_hat_k"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["value"] == 1.0));
    let none = cell(&report, "none");
    assert!(none["pass_at_k"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["value"] == 0.0));
    assert_eq!(none["mean_score"], 0.0);
}

/// A truncated result.json, a task with results from two versions of its eval image,
/// and a run whose run.json says it had a gateway but whose result has no counters.
fn bad_inputs(dir: &Path) {
    write(
        dir,
        &Run {
            task: "count-lines",
            ..Run::default()
        },
    );
    write(
        dir,
        &Run {
            task: "parse-log",
            digest: "sha256:aaaa",
            repeat: Some(1),
            ..Run::default()
        },
    );
    write(
        dir,
        &Run {
            task: "parse-log",
            digest: "sha256:bbbb",
            repeat: Some(2),
            score: 0.0,
            passed: false,
            ..Run::default()
        },
    );
    write(
        dir,
        &Run {
            task: "fix-config",
            tokens: None,
            ..Run::default()
        },
    );
    let truncated = dir.join("terminal-lite/sort-csv/mini");
    std::fs::create_dir_all(&truncated).unwrap();
    std::fs::write(
        truncated.join("result.json"),
        "{\"schema_version\": \"2\", \"run_id\": \"x",
    )
    .unwrap();
}

#[test]
fn bad_input_is_listed_in_every_format_and_never_averaged_in() {
    let dir = tempfile::tempdir().unwrap();
    bad_inputs(dir.path());
    let d = dir.path().to_str().unwrap();

    let out = kiln(&["report", d, "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unreadable file fails the report"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["unreadable", "mixed_versions", "no_gateway_record"]);
    let c = cell(&report, "mini");
    // Only count-lines (1.0) and fix-config (1.0) count; parse-log's two runs are left out.
    assert_eq!(
        (c["tasks"].clone(), c["runs"].clone(), c["left_out"].clone()),
        (json!(2), json!(2), json!(2))
    );
    assert_eq!(c["mean_score"], 1.0);
    // Tokens: the three runs with counters (left-out ones were still spent).
    assert_eq!(
        (c["runs_with_tokens"].clone(), c["input_tokens"].clone()),
        (json!(3), json!(3000))
    );
    let mixed = &report["problems"][1]["message"];
    assert!(
        mixed
            .as_str()
            .unwrap()
            .contains("2 versions of task parse-log (inputs digests aaaa, bbbb)"),
        "{mixed}"
    );

    let out = kiln(&["report", d]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("PROBLEMS"), "{text}");
    assert!(
        text.contains("unreadable: ") && text.contains("sort-csv/mini/result.json"),
        "{text}"
    );
    assert!(
        text.contains(
            "mixed_versions: terminal-lite × mini (gpt-4o): 2 runs left out: results from 2 versions"
        ),
        "{text}"
    );
    assert!(
        text.contains("no_gateway_record: ") && text.contains("fix-config/mini/result.json"),
        "{text}"
    );
    assert!(text.contains("2 (+2 left out)"), "{text}");
    assert!(text.contains("3000/600 (3 of 4 runs)"), "{text}");

    let out = kiln(&["report", d, "--format", "csv"]);
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let problem = header.iter().position(|h| h == "problem").unwrap();
    let path = header.iter().position(|h| h == "path").unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 5, "4 runs and the unreadable file");
    assert!(rows
        .iter()
        .any(|r| r[path].ends_with("sort-csv/mini/result.json")
            && r[problem].contains("not a result.json")));
    assert_eq!(
        rows.iter()
            .filter(|r| r[problem].contains("left out of the figures"))
            .count(),
        2
    );
    assert!(rows
        .iter()
        .any(|r| r[problem].contains("no gateway counters")));

    let page = dir.path().join("page.html");
    kiln(&[
        "report",
        d,
        "--format",
        "html",
        "-o",
        page.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("<li class=\"problem\"").count(), 3, "{html}");
    assert_eq!(html.matches("class=\"run left-out\"").count(), 2);
}

#[test]
fn unpriced_models_are_named_and_a_price_file_prices_them() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &Run {
            model: "gpt-test",
            ..Run::default()
        },
    );
    let report = json_report(dir.path(), &[]);
    assert_eq!(cell(&report, "mini")["cost_usd"], Value::Null);
    assert_eq!(report["problems"][0]["kind"], "no_price");
    assert!(report["problems"][0]["message"]
        .as_str()
        .unwrap()
        .contains("\"gpt-test\" (1 runs)"));

    let prices = dir.path().join("prices.toml");
    std::fs::write(
        &prices,
        "[gpt-test]\ninput_per_mtok = 10\noutput_per_mtok = 50\n",
    )
    .unwrap();
    let report = json_report(dir.path(), &["--prices", prices.to_str().unwrap()]);
    // 1000 × $10/M + 200 × $50/M.
    assert_eq!(cell(&report, "mini")["cost_usd"], 0.02);
    assert_eq!(report["problems"], json!([]));

    std::fs::write(&prices, "[gpt-test]\ninput_per_mtok = \"ten\"\n").unwrap();
    let out = kiln(&[
        "report",
        dir.path().to_str().unwrap(),
        "--prices",
        prices.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("prices.toml: not a price table"));
}

/// Three tasks on side A (model gpt-4o) all pass; on side B (gpt-4o-mini, so two
/// directories compare two models) `parse-log` fails.
fn two_sides() -> (tempfile::TempDir, tempfile::TempDir) {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for task in ["count-lines", "parse-log", "fix-config"] {
        write(
            a.path(),
            &Run {
                task,
                ..Run::default()
            },
        );
        let fails = task == "parse-log";
        write(
            b.path(),
            &Run {
                task,
                model: "gpt-4o-mini",
                score: if fails { 0.4 } else { 1.0 },
                passed: !fails,
                ..Run::default()
            },
        );
    }
    (a, b)
}

#[test]
fn compare_directories_shows_flips_and_fails_if_worse() {
    let (a, b) = two_sides();
    let (pa, pb) = (a.path().to_str().unwrap(), b.path().to_str().unwrap());
    let out = kiln(&["report", "--compare", pa, pb, "--format", "json"]);
    assert!(
        out.status.success(),
        "without --fail-if-worse a regression is shown, not failed"
    );
    let c: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(c["paired"], 3);
    // Differences 0, −0.6, 0: mean −0.2; sd of (0, −0.6, 0) = sqrt(0.12) → se 0.2.
    assert_eq!(c["mean_difference"], -0.2);
    assert_eq!(c["difference_se"], 0.2);
    assert_eq!(c["difference_ci95"], json!([-1.0606, 0.6606]));
    assert_eq!(c["significantly_worse"], false);
    assert_eq!(c["flipped_to_fail"], 1);
    let flip = c["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["flip"] != "")
        .unwrap();
    assert_eq!(
        (flip["task"].clone(), flip["flip"].clone()),
        (json!("parse-log"), json!("pass→fail"))
    );

    let out = kiln(&["report", "--compare", pa, pb, "--fail-if-worse"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("flipped pass→fail: 1, fail→pass: 0"),
        "{text}"
    );
    assert!(
        text.contains("parse-log") && text.contains("-0.6000  pass→fail"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("B is worse than A: 1 tasks flipped pass→fail"));

    // The other way round B is better: --fail-if-worse passes.
    let out = kiln(&["report", "--compare", pb, pa, "--fail-if-worse"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = kiln(&["report", "--compare", pa, "/nonexistent/kiln-b"]);
    assert_eq!(out.status.code(), Some(2));
    let out = kiln(&["report", pa, "--fail-if-worse"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--fail-if-worse without a comparison"
    );
}

#[test]
fn compare_agents_within_one_directory() {
    let dir = tempfile::tempdir().unwrap();
    for task in ["count-lines", "parse-log", "fix-config", "sort-csv"] {
        write(
            dir.path(),
            &Run {
                task,
                agent: "old",
                ..Run::default()
            },
        );
        write(
            dir.path(),
            &Run {
                task,
                agent: "new",
                score: 0.5,
                passed: false,
                ..Run::default()
            },
        );
        write(
            dir.path(),
            &Run {
                task,
                agent: "old",
                model: "gpt-4o-mini",
                repeat: None,
                benchmark: "other",
                ..Run::default()
            },
        );
    }
    let d = dir.path().to_str().unwrap();
    let out = kiln(&[
        "report",
        d,
        "--compare-agents",
        "old",
        "new",
        "--format",
        "json",
        "--fail-if-worse",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let c: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (c["a"].clone(), c["b"].clone(), c["paired"].clone()),
        (json!("old"), json!("new"), json!(4))
    );
    assert_eq!(c["difference_ci95"], json!([-0.5, -0.5]));
    assert_eq!(c["significantly_worse"], true);
    assert_eq!(
        c["only_in_a"].as_array().unwrap().len(),
        4,
        "the other benchmark's tasks: {c}"
    );

    let out = kiln(&["report", d, "--compare-agents", "old", "nobody"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no runs of \"nobody\""));
}

#[test]
fn compare_html_is_one_page() {
    let (a, b) = two_sides();
    let page = a.path().join("compare.html");
    let out = kiln(&[
        "report",
        "--compare",
        a.path().to_str().unwrap(),
        b.path().to_str().unwrap(),
        "--format",
        "html",
        "-o",
        page.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("data-mean-difference=\"-0.2000\""), "{html}");
    assert_eq!(html.matches("<tr class=\"pair\">").count(), 3);
    assert!(html.contains("<td class=\"no\">pass→fail</td>"));
}

/// Waits until `f` holds, up to 30 s.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn watch_renders_again_as_results_arrive_and_ctrl_c_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    std::fs::create_dir(&results).unwrap();
    write(&results, &Run::default());
    let page = dir.path().join("live.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "report",
            results.to_str().unwrap(),
            "--watch",
            "--interval",
            "0.1",
            "--format",
            "json",
            "-o",
        ])
        .arg(&page)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let runs = || -> usize {
        std::fs::read_to_string(&page)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .map_or(0, |v| v["results"].as_array().unwrap().len())
    };
    eventually("the first rendering", || runs() == 1);
    write(
        &results,
        &Run {
            task: "parse-log",
            ..Run::default()
        },
    );
    eventually("the rendering with the new result", || runs() == 2);
    // SAFETY: kill(2) on the child we started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "Ctrl-C ends --watch with 0");
}

#[test]
fn html_trajectories_show_exchanges_apart_from_the_grader() {
    let dir = tempfile::tempdir().unwrap();
    let at = write(dir.path(), &Run::default());
    // The gateway's record of the run (docs/model-gateway.md) at an absolute path.
    let fixture = dir.path().join("recorded.jsonl");
    let lines = [
        json!({"kind": "kiln-model-fixture", "version": 1, "benchmark": "terminal-lite", "task": "count-lines",
               "agent": "mini", "model": "gpt-4o", "recorded_at": "2026-12-01T10:00:00Z", "score": 1.0, "source": "record"}),
        json!({"route": "POST /v1/chat/completions", "status": 200,
               "request": {"model": "gpt-4o", "messages": [
                   {"role": "system", "content": "You are a shell agent."},
                   {"role": "user", "content": "Count the lines of <data.txt>."}]},
               "response": {"choices": [{"message": {"role": "assistant", "content": null,
                   "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{\"cmd\":\"wc -l data.txt\"}"}}]}}],
                   "usage": {"prompt_tokens": 500, "completion_tokens": 100}}}),
        json!({"route": "POST /v1/chat/completions", "status": 200,
               "request": {"model": "gpt-4o", "messages": [
                   {"role": "system", "content": "You are a shell agent."},
                   {"role": "user", "content": "Count the lines of <data.txt>."},
                   {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{}"}}]},
                   {"role": "tool", "tool_call_id": "c1", "content": "42 data.txt"}]},
               "response": {"choices": [{"message": {"role": "assistant", "content": "There are 42 lines."}}]}}),
    ];
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&fixture, text.join("\n") + "\n").unwrap();
    let mut result: Value =
        serde_json::from_str(&std::fs::read_to_string(at.join("result.json")).unwrap()).unwrap();
    result["model"]["fixture"] = json!(fixture.display().to_string());
    result["checks"] = json!([{"id": "answer_is_42", "group": "default", "source": "scenario", "passed": true,
        "skipped": false, "required": true, "weight": 1.0, "counted": true, "duration_ms": 3,
        "message": "hidden-expected-value 42", "details": {}}]);
    assert!(schema().is_valid(&result), "{result}");
    std::fs::write(at.join("result.json"), result.to_string()).unwrap();
    std::fs::create_dir_all(at.join("agent")).unwrap();
    std::fs::write(
        at.join("agent/stdout.log"),
        "x".repeat(20_000) + "agent-last-line\n",
    )
    .unwrap();
    std::fs::create_dir_all(at.join("grader/scenario")).unwrap();
    std::fs::write(at.join("grader/scenario/stdout.log"), "grader-says-ok\n").unwrap();

    let page = dir.path().join("page.html");
    let out = kiln(&[
        "report",
        dir.path().to_str().unwrap(),
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
    let html = std::fs::read_to_string(&page).unwrap();
    let start = html
        .find("<details class=\"trajectory\" id=\"run-1\">")
        .expect("a trajectory");
    let traj = &html[start..];
    let grader_at = traj.find("The grader (hidden from the agent)").unwrap();
    let (agent_part, grader_part) = traj.split_at(grader_at);
    // The agent's part: each message once (the second request's repeated history is
    // not shown again), the tool call, the answer, the tail of its log.
    assert_eq!(
        agent_part
            .matches("Count the lines of &lt;data.txt&gt;.")
            .count(),
        1,
        "{agent_part}"
    );
    assert!(
        agent_part.contains("[tool call bash: {&quot;cmd&quot;:&quot;wc -l data.txt&quot;}]"),
        "{agent_part}"
    );
    assert!(agent_part.contains("42 data.txt") && agent_part.contains("There are 42 lines."));
    assert!(
        agent_part.contains("call 2 · POST /v1/chat/completions · status 200 · new messages: 1"),
        "{agent_part}"
    );
    assert!(
        agent_part.contains("agent-last-line")
            && agent_part.contains("(last 8192 bytes; 11824 before)"),
        "{agent_part}"
    );
    // Nothing of the grader's in the agent's part; all of it in the grader's.
    for hidden in ["answer_is_42", "hidden-expected-value", "grader-says-ok"] {
        assert!(
            !agent_part.contains(hidden),
            "{hidden} shown as the agent's"
        );
        assert!(
            grader_part.contains(hidden),
            "{hidden} not in the grader's part"
        );
    }
}
