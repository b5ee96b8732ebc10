//! Runs every case of `../shared/bake-parity/cases/` through the `kiln` binary exactly as
//! the case's `cmd` and `env` say, in the case's folder, and compares with what the real
//! `docker buildx bake` produced: stdout byte for byte (`expected.json`), or the exit
//! status and last non-empty stderr line (`expected.err`). Reports every failing case.

use std::path::{Path, PathBuf};
use std::process::Command;

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bake-parity/cases")
}

fn run_case(dir: &Path) -> Result<(), String> {
    let cmd = std::fs::read_to_string(dir.join("cmd")).map_err(|e| format!("cmd: {e}"))?;
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiln"));
    command
        .arg("bake")
        .args(cmd.split_whitespace())
        .current_dir(dir)
        .env_clear();
    for keep in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(keep) {
            command.env(keep, v);
        }
    }
    if let Ok(env) = std::fs::read_to_string(dir.join("env")) {
        for line in env.lines().filter(|l| !l.is_empty()) {
            let (k, v) = line.split_once('=').unwrap_or((line, ""));
            command.env(k, v);
        }
    }
    let out = command.output().map_err(|e| format!("spawn: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Ok(expected) = std::fs::read_to_string(dir.join("expected.json")) {
        if !out.status.success() {
            return Err(format!(
                "exit {:?}, stderr: {}",
                out.status.code(),
                stderr.trim_end()
            ));
        }
        if stdout != expected {
            return Err(format!("stdout differs:\n{}", diff(&expected, &stdout)));
        }
        return Ok(());
    }
    let err = std::fs::read_to_string(dir.join("expected.err"))
        .map_err(|e| format!("expected.err: {e}"))?;
    let mut lines = err.lines();
    let status: i32 = lines.next().unwrap_or("1").trim().parse().unwrap_or(1);
    let message = lines.next().unwrap_or("");
    let last = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    if out.status.code() != Some(status) {
        return Err(format!(
            "exit {:?}, want {status}; stderr: {}",
            out.status.code(),
            stderr.trim_end()
        ));
    }
    if !stdout.is_empty() {
        return Err(format!("stdout not empty: {stdout}"));
    }
    if last != message {
        return Err(format!(
            "stderr last line:\n  got:  {last}\n  want: {message}"
        ));
    }
    Ok(())
}

/// The first differing lines, with a little context.
fn diff(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let first = w
        .iter()
        .zip(&g)
        .position(|(a, b)| a != b)
        .unwrap_or(w.len().min(g.len()));
    let from = first.saturating_sub(3);
    let mut s = String::new();
    for i in from..(first + 4) {
        if let Some(l) = w.get(i) {
            s.push_str(&format!("  want {:4}: {l}\n", i + 1));
        }
        if let Some(l) = g.get(i) {
            s.push_str(&format!("  got  {:4}: {l}\n", i + 1));
        }
    }
    s
}

#[test]
fn every_bake_parity_case_matches_buildx() {
    let dir = cases_dir();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("cmd").is_file())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {}", dir.display());
    let mut failed = Vec::new();
    for case in &cases {
        let name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if let Err(why) = run_case(case) {
            eprintln!("FAIL {name}: {why}\n");
            failed.push(name);
        }
    }
    eprintln!(
        "bake parity: {}/{} cases pass",
        cases.len() - failed.len(),
        cases.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} cases failed: {}",
        failed.len(),
        cases.len(),
        failed.join(", ")
    );
}
