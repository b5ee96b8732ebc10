//! The shipped fleet, built for real through `kiln build` on the engine and podman
//! backends from the local bases (scripts/make-bases.sh), pulling nothing: the
//! shared-env benchmark, a per-task base and the eval image on it; labels read back;
//! the second run builds nothing. Images are named under a registry of their own.

mod backend_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use backend_support::*;
use kiln::store::Store;

/// A committed copy of the repository (build-time labels come from git).
fn repo_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let archive = duct::cmd!("git", "-C", root, "archive", "HEAD")
        .stdout_capture()
        .run()
        .unwrap()
        .stdout;
    duct::cmd!("tar", "-x", "-C", dir.path())
        .stdin_bytes(archive)
        .run()
        .unwrap();
    for args in [
        vec!["init", "-q"],
        vec!["add", "-A"],
        vec![
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "fleet",
        ],
    ] {
        duct::cmd("git", args)
            .dir(dir.path())
            .stdout_null()
            .run()
            .unwrap();
    }
    dir
}

fn runner() -> PathBuf {
    if let Ok(p) = std::env::var("KILN_RUNNER") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/x86_64-unknown-linux-gnu/release/kiln-runner")
}

fn kiln(repo: &Path, registry: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("-C")
        .arg(repo)
        .args(args)
        .args(["--progress", "plain"])
        .env("REGISTRY", registry)
        .env("KILN_RUNNER", runner())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

fn remove_registry(store: Store, registry: &str) {
    for image in kiln::store::list_images()
        .into_iter()
        .filter(|i| i.store == store && i.name.starts_with(registry))
    {
        let tool = if store == Store::Docker {
            "docker"
        } else {
            "podman"
        };
        let _ = duct::cmd!(tool, "rmi", "-f", &image.name)
            .stdout_null()
            .stderr_null()
            .unchecked()
            .run();
    }
}

fn fleet_on(backend: &str, store: Store) {
    let registry = format!("kiln.fleet-{backend}");
    remove_registry(store, &registry);
    let repo = repo_copy();
    let builds: [&[&str]; 3] = [
        &["build", "benchmark", "metric-definition-audit"],
        &[
            "build",
            "benchmark",
            "terminal-lite",
            "--task-id",
            "count-lines",
        ],
        &[
            "build",
            "eval",
            "terminal-lite",
            "--agent",
            "null",
            "--task-id",
            "count-lines",
        ],
    ];
    for args in builds {
        let args = [args, &["--backend", backend]].concat();
        let (code, log) = kiln(repo.path(), &registry, &args);
        assert_eq!(code, 0, "kiln {}:\n{log}", args.join(" "));
    }
    let check = |image: &str, want_type: &str| {
        let labels =
            labels_of(store, image).unwrap_or_else(|| panic!("{image} is not in {store}'s store"));
        let digest = labels[kiln::labels::INPUTS_DIGEST].clone();
        assert_eq!(
            kiln::build::check_labels(&labels, &digest),
            Ok(()),
            "{image}"
        );
        assert_eq!(labels[kiln::labels::TYPE], want_type);
        labels
    };
    check(
        &format!("{registry}/benchmarks/metric-definition-audit:dev"),
        "benchmark",
    );
    let task = check(
        &format!("{registry}/benchmarks/terminal-lite-count-lines:dev"),
        "task",
    );
    assert_eq!(task[kiln::labels::TASK_ID], "count-lines");
    let eval = check(
        &format!("{registry}/evals/terminal-lite-count-lines--null:dev"),
        "eval",
    );
    assert_eq!(eval[kiln::labels::AGENT_NAME], "null");
    assert_eq!(eval[kiln::labels::TASK_ID], "count-lines");

    let (code, log) = kiln(
        repo.path(),
        &registry,
        &[
            "build",
            "eval",
            "terminal-lite",
            "--agent",
            "null",
            "--task-id",
            "count-lines",
            "--backend",
            backend,
        ],
    );
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains(" 0 built,") && log.contains("up to date"),
        "{log}"
    );
    remove_registry(store, &registry);
}

#[test]
fn shipped_fleet_on_the_engine() {
    if gate("KILN_TEST_DOCKER") {
        fleet_on("engine", Store::Docker);
    }
}

#[test]
fn shipped_fleet_on_podman() {
    if gate("KILN_TEST_PODMAN") {
        fleet_on("podman", Store::Podman);
    }
}
