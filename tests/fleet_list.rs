//! `kiln list benchmarks|agents|tasks` read the repository only (no engine).

mod fleet_support;

use fleet_support::*;
use serde_json::Value;

fn json(args: &[&str]) -> Value {
    let out = kiln(&fixture("small"), args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(args, &out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn benchmarks_json() {
    let v = json(&["list", "benchmarks", "--json"]);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["metric-backfill", "terminal-lite"]);
    assert_eq!(v[0]["env"], "shared-env");
    assert_eq!(v[0]["tasks"], 2);
    assert_eq!(v[1]["env"], "per-task");
    assert_eq!(v[1]["tasks"], 3);
    assert!(v[1]["description"].as_str().unwrap().contains("terminal"));
}

#[test]
fn agents_json() {
    let v = json(&["list", "agents", "--json"]);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["null", "oracle"]);
    assert_eq!(v[1]["image"], "kiln.local/agents/oracle:dev");
}

#[test]
fn tasks_json_keep_original_ids() {
    let v = json(&["list", "tasks", "terminal-lite", "--json"]);
    assert_eq!(v[0]["id"], "Fix.Config");
    assert_eq!(
        v[0]["image"],
        "kiln.local/benchmarks/terminal-lite-fix.config:dev"
    );
    let v = json(&["list", "tasks", "metric-backfill", "--json"]);
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["events-hourly", "orders-daily"]);
    assert_eq!(v[0]["image"], "kiln.local/benchmarks/metric-backfill:dev");
}

#[test]
fn tables() {
    let out = kiln(&fixture("small"), &["list", "benchmarks"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("NAME"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("terminal-lite") && l.contains("per-task") && l.contains(" 3 ")),
        "{text}"
    );
}

/// With no engine and no podman, `list images` says so and exits 3.
#[test]
fn images_without_any_store() {
    let out = kiln(
        &fixture("small"),
        &["list", "images"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no image store answered"), "{err}");
}
