//! Shared helpers of the fleet, plan and lint tests: run the real `kiln` binary with a
//! controlled environment, and compare against golden files.
//!
//! Golden files live under `tests/golden/`. To regenerate them after an intended change:
//! `KILN_BLESS=1 cargo test -p kiln --test plan_golden --test lint_fixtures`, then review
//! the diff with `git diff tests/golden`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    manifest_dir().join("tests/fixtures/fleets").join(name)
}

/// Build-time label values fixed so that outputs do not depend on the checkout.
pub const FIXED_ENV: &[(&str, &str)] = &[
    ("KILN_SOURCE", "https://example.com/evals/kiln.git"),
    ("KILN_REVISION", "0123456789abcdef0123456789abcdef01234567"),
    ("KILN_VERSION", "v0.1.0"),
    ("SOURCE_DATE_EPOCH", "1767225600"),
];

/// Runs `kiln -C <repo> <args>` with an empty environment plus `FIXED_ENV` and `env`.
/// PATH is empty unless `env` sets it, so nothing can be run by accident.
pub fn kiln(repo: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.env_clear()
        .env("PATH", "")
        .arg("-C")
        .arg(repo)
        .args(args);
    for (k, v) in FIXED_ENV.iter().chain(env) {
        cmd.env(k, v);
    }
    cmd.output().expect("running kiln")
}

/// The transcript a golden file holds: command, exit status, stdout, stderr.
pub fn transcript(args: &[&str], out: &Output) -> String {
    format!(
        "$ kiln {}\n--- exit {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Compares `actual` with the golden file `tests/golden/<rel>`; with `KILN_BLESS=1`
/// (re)writes it instead.
pub fn golden(rel: &str, actual: &str) {
    let path = manifest_dir().join("tests/golden").join(rel);
    if std::env::var_os("KILN_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with KILN_BLESS=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(5)
            .map(|(i, (a, b))| format!("line {}:\n  expected: {a}\n  actual:   {b}", i + 1))
            .collect();
        panic!(
            "{} differs from the output ({} vs {} lines):\n{}\n(rerun with KILN_BLESS=1 to accept)",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

/// A copy of the shipped fleet (root bake file, containers/, benchmarks/) in a
/// temporary directory.
pub fn fleet_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = manifest_dir();
    std::fs::copy(
        src.join("docker-bake.hcl"),
        dir.path().join("docker-bake.hcl"),
    )
    .unwrap();
    for sub in ["containers", "benchmarks"] {
        copy_tree(&src.join(sub), &dir.path().join(sub));
    }
    dir
}

/// Copies a directory tree (fixtures are small).
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(from).unwrap();
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// A directory with executables for PATH: `podman` (the real one, when installed) and,
/// with `buildx_driver`, a `docker` shim that answers only `docker buildx version` and
/// `docker buildx inspect` (the decision probes) and fails for anything else.
pub fn shim_path(dir: &Path, podman: bool, buildx: Option<(&str, &str)>) -> String {
    std::fs::create_dir_all(dir).unwrap();
    if podman {
        if let Ok(real) = which::which("podman") {
            std::os::unix::fs::symlink(real, dir.join("podman")).unwrap();
        }
    }
    use std::os::unix::fs::PermissionsExt;
    let write = |name: &str, script: String| {
        let path = dir.join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    if let Some((driver, buildkit)) = buildx {
        // Answers the decision probes only: a dry run never builds.
        write(
            "docker",
            format!(
                "#!/bin/sh\n\
                 if [ \"$1 $2\" = \"buildx version\" ]; then echo 'github.com/docker/buildx v0.0.0-shim 0000000'; exit 0; fi\n\
                 if [ \"$1 $2\" = \"buildx inspect\" ]; then printf 'Name: shim\\nDriver: {driver}\\n\\nNodes:\\nBuildKit version: {buildkit}\\n'; exit 0; fi\n\
                 echo \"docker shim: refusing $*\" >&2; exit 1\n"
            ),
        );
        write(
            "skopeo",
            "#!/bin/sh\necho \"skopeo shim: refusing $*\" >&2; exit 1\n".to_string(),
        );
    }
    dir.display().to_string()
}

/// Builds the mini-swe-agent image: it installs from PyPI, reachable only with this
/// machine's CA bundle, which only bake (build secrets) hands to the build.
pub const BUILD_MINI_SWE_AGENT: &[&str] = &[
    "build",
    "agent",
    "mini-swe-agent",
    "--backend",
    "bake",
    "--ca-bundle",
    "/etc/ssl/certs/ca-certificates.crt",
    "--progress",
    "plain",
];

/// The static runner, built with the documented command (or `$KILN_RUNNER`).
pub fn static_runner() -> PathBuf {
    if let Ok(p) = std::env::var("KILN_RUNNER") {
        return PathBuf::from(p);
    }
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--release",
                "-p",
                "kiln-runner",
                "--target",
                "x86_64-unknown-linux-gnu",
            ])
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .current_dir(manifest_dir())
            .status()
            .expect("cargo runs");
    assert!(status.success(), "building the static runner failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| manifest_dir().join("target"));
    target.join("x86_64-unknown-linux-gnu/release/kiln-runner")
}
