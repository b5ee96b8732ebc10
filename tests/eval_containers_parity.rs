//! kiln side by side with the eval-containers fleet's own CLI: the upstream CLI is built
//! from a copy of `../shared/fleets/eval-containers` (`cargo build` in its `cli/`, crates
//! from crates.io), and for the same requests both print their dry-run commands. Each
//! command is resolved with `kiln bake --print` (buildx's resolution) and the resolved
//! definitions must be equal, normalised only where the tools differ in form:
//! - the `-f` list is compared as a set (bake merges by target name, order is free);
//! - build-time labels are dropped (upstream stamps its repository URL, kiln its git facts);
//! - `REGISTRY=<default>` in front of the command means the same as no `REGISTRY`;
//! - a per-task base is `docker build --build-arg EVAL_TASK_ID=T -t IMAGE CONTEXT` upstream
//!   and the benchmark's bake target with `args.EVAL_TASK_ID=T` and that tag in kiln:
//!   compared as context, Dockerfile, build args and tag;
//! - the eval image: kiln builds its bases first and prints them before; the eval's own
//!   command is kiln's last line.

mod fleet_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use fleet_support::*;
use serde_json::Value;

/// A copy of the upstream repository and its CLI built from it (once per test run; the
/// build reuses `target/upstream-eval-containers`).
fn upstream_cli(copy: &Path) -> PathBuf {
    copy_tree(
        &manifest_dir().join("../shared/fleets/eval-containers"),
        copy,
    );
    let target_dir = manifest_dir().join("target/upstream-eval-containers");
    let out = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "-p",
            "eval-containers",
            "--target-dir",
        ])
        .arg(&target_dir)
        .current_dir(copy.join("cli"))
        .output()
        .expect("running cargo");
    assert!(
        out.status.success(),
        "the upstream CLI does not build here (it needs crates.io): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir.join("release/eval-containers")
}

/// Shell words of one printed line (single quotes as kiln prints them).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// One printed build, taken apart.
#[derive(Debug, PartialEq)]
enum Build {
    Bake {
        env: BTreeMap<String, String>,
        files: BTreeSet<String>,
        sets: Vec<String>,
        target: String,
    },
    Docker {
        tag: String,
        build_args: BTreeMap<String, String>,
        context: String,
    },
    Script(Vec<String>),
}

fn parse(line: &str) -> Build {
    let w = words(line.trim_start_matches("$ "));
    let at = w
        .iter()
        .position(|x| x == "docker" || x == "bash")
        .unwrap_or_else(|| panic!("no command in {line:?}"));
    let mut env: BTreeMap<String, String> = w[..at]
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    if env.get("REGISTRY").map(String::as_str) == Some("ghcr.io/exgentic") {
        env.remove("REGISTRY");
    }
    let rest = &w[at..];
    if rest[0] == "bash" {
        return Build::Script(rest.to_vec());
    }
    if rest[1] == "build" {
        let (mut tag, mut build_args) = (String::new(), BTreeMap::new());
        let mut i = 2;
        while i < rest.len() - 1 {
            match rest[i].as_str() {
                "-t" => tag = rest[i + 1].clone(),
                "--build-arg" => {
                    let (k, v) = rest[i + 1].split_once('=').unwrap();
                    build_args.insert(k.to_string(), v.to_string());
                }
                _ => {}
            }
            i += 2;
        }
        let context = rest.last().unwrap().trim_start_matches("./").to_string();
        return Build::Docker {
            tag,
            build_args,
            context,
        };
    }
    assert_eq!(rest[1..3], ["buildx", "bake"], "{line}");
    let (mut files, mut sets) = (BTreeSet::new(), Vec::new());
    let mut i = 3;
    while i < rest.len() - 1 {
        match rest[i].as_str() {
            "-f" => {
                files.insert(rest[i + 1].clone());
                i += 2;
            }
            "--set" => {
                if !rest[i + 1].contains(".labels.") {
                    sets.push(rest[i + 1].clone());
                }
                i += 2;
            }
            _ => i += 1, // --load
        }
    }
    Build::Bake {
        env,
        files,
        sets,
        target: rest.last().unwrap().clone(),
    }
}

/// `kiln bake --print` of a bake build, labels dropped.
fn resolve(repo: &Path, b: &Build) -> Value {
    let Build::Bake {
        env,
        files,
        sets,
        target,
    } = b
    else {
        panic!("not a bake build: {b:?}");
    };
    let mut args: Vec<String> = vec!["bake".into(), "--print".into()];
    for f in files {
        args.extend(["-f".into(), f.clone()]);
    }
    for s in sets {
        args.extend(["--set".into(), s.clone()]);
    }
    args.push(target.clone());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = kiln(repo, &argv, &env);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&argv, &out));
    let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for t in v["target"].as_object_mut().unwrap().values_mut() {
        t.as_object_mut().unwrap().remove("labels");
    }
    v
}

fn upstream_line(cli: &Path, repo: &Path, args: &[&str]) -> String {
    let out = Command::new(cli)
        .args(args)
        .arg("--dry-run")
        .current_dir(repo)
        .env_remove("HF_TOKEN")
        .env_remove("TAG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "eval-containers {args:?}: {stderr}");
    stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("$ "))
        .unwrap_or_else(|| panic!("no command from eval-containers {args:?}: {stderr}"))
        .to_string()
}

fn kiln_line(repo: &Path, args: &[&str]) -> String {
    let mut argv = args.to_vec();
    argv.push("--dry-run");
    let out = kiln(repo, &argv, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&argv, &out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string()
}

/// Compares one request; returns a description of the difference, if any.
fn compare(cli: &Path, repo: &Path, up: &[&str], ours: &[&str]) -> Option<String> {
    let theirs = parse(&upstream_line(cli, repo, up));
    let mine = parse(&kiln_line(repo, ours));
    let same = match (&theirs, &mine) {
        (Build::Bake { .. }, Build::Bake { .. }) => {
            // Same variables, same files, same overrides, same target …
            let (
                Build::Bake {
                    env: e1,
                    files: f1,
                    sets: s1,
                    target: t1,
                },
                Build::Bake {
                    env: e2,
                    files: f2,
                    sets: s2,
                    target: t2,
                },
            ) = (&theirs, &mine)
            else {
                unreachable!()
            };
            (e1, f1, s1, t1) == (e2, f2, s2, t2)
                // … and so the same resolved definitions.
                && resolve(repo, &theirs) == resolve(repo, &mine)
        }
        (
            Build::Docker {
                tag,
                build_args,
                context,
            },
            Build::Bake { target, .. },
        ) => {
            let v = resolve(repo, &mine);
            let t = &v["target"][target];
            t["context"] == context.as_str()
                && t["dockerfile"] == "Dockerfile"
                && t["tags"] == serde_json::json!([tag])
                && build_args
                    .iter()
                    .all(|(k, val)| t["args"][k] == val.as_str())
        }
        (Build::Script(a), Build::Script(b)) => a == b,
        _ => false,
    };
    (!same).then(|| format!("{up:?}:\n  upstream {theirs:?}\n  kiln     {mine:?}"))
}

#[test]
fn dry_runs_build_the_same_targets_with_the_same_definitions() {
    let tmp = tempfile::Builder::new()
        .prefix("kiln-evalfleet-parity-")
        .tempdir()
        .unwrap();
    let repo = tmp.path().join("eval-containers");
    let cli = upstream_cli(&repo);

    let list = |what: &str| -> Vec<String> {
        let out = kiln(&repo, &["list", what, "--json"], &[]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    let mut diffs = Vec::new();
    let mut compared = 0;
    for a in list("agents") {
        compared += 1;
        diffs.extend(compare(
            &cli,
            &repo,
            &["build", "agent", &a],
            &["build", "agent", &a],
        ));
    }
    let benchmarks: Value =
        serde_json::from_slice(&kiln(&repo, &["list", "benchmarks", "--json"], &[]).stdout)
            .unwrap();
    for b in benchmarks.as_array().unwrap() {
        let name = b["name"].as_str().unwrap();
        if b["env"] == "shared-env" {
            compared += 1;
            diffs.extend(compare(
                &cli,
                &repo,
                &["build", "bench", name],
                &["build", "benchmark", name],
            ));
        }
    }
    // Per-task bases: plain `docker build` (swe-bench, compilebench) and build.sh
    // (terminal-bench, which lists no tasks: any well-formed id).
    for (b, t) in [
        ("swe-bench", "django__django-11099"),
        ("swe-bench", "astropy__astropy-12907"),
        ("compilebench", "curl"),
        ("terminal-bench", "hello-world"),
    ] {
        compared += 1;
        diffs.extend(compare(
            &cli,
            &repo,
            &["build", "bench", b, "--task-id", t],
            &["build", "benchmark", b, "--task-id", t],
        ));
    }
    // Eval images: shared-env and per-task.
    for (b, a, t) in [
        ("aime", "aider", None),
        ("agents-smoke", "mini-swe-agent", None),
        ("gsm8k", "open-interpreter", None),
        ("swe-bench", "claude-code", Some("django__django-11099")),
    ] {
        let mut up = vec!["build", "eval", b, "--agent", a];
        let mut ours = up.clone();
        if let Some(t) = t {
            up.extend(["--task-id", t]);
            ours.extend(["--task-id", t]);
        }
        compared += 1;
        diffs.extend(compare(&cli, &repo, &up, &ours));
    }
    // The comparison can tell two different images apart.
    assert!(compare(
        &cli,
        &repo,
        &["build", "agent", "aider"],
        &["build", "agent", "codex"]
    )
    .is_some());
    assert!(compare(
        &cli,
        &repo,
        &[
            "build",
            "bench",
            "swe-bench",
            "--task-id",
            "django__django-11099"
        ],
        &[
            "build",
            "benchmark",
            "swe-bench",
            "--task-id",
            "astropy__astropy-12907"
        ],
    )
    .is_some());
    assert!(compared > 110, "{compared}");
    assert!(
        diffs.is_empty(),
        "{} of {compared} differ:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
