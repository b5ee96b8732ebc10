//! Ctrl-C in the middle of a real build: the process stops, nothing partial gets the
//! final name, and running the same build again finishes the job.
//! The build runs in a child process (this test binary, re-entered through
//! `child_build`) so that SIGINT reaches a real, separate kiln build.

mod backend_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use backend_support::*;
use kiln::backend::BackendKind;

const CHILD: &str = "KILN_TEST_INTERRUPT_CHILD";
const SLEEP: u32 = 8;

fn backend_named(name: &str) -> BackendKind {
    match name {
        "engine" => BackendKind::Engine,
        "podman" => BackendKind::Podman,
        other => panic!("backend {other}"),
    }
}

/// Not a test of its own: the child side of the interrupt tests (a no-op otherwise).
#[test]
fn child_build() {
    let Ok(job) = std::env::var(CHILD) else {
        return;
    };
    let parts: Vec<&str> = job.split('|').collect();
    let (backend, repo, ns) = (
        backend_named(parts[0]),
        std::path::Path::new(parts[1]),
        parts[2],
    );
    let specs = fleet_specs(repo, ns, SLEEP);
    let summary =
        kiln::build::run(&specs, &[], &decision(backend), &options(repo, 2, false)).unwrap();
    std::process::exit(summary.exit_code() as i32);
}

fn interrupt_mid_build(backend: BackendKind, ns: &str) {
    let store = backend.store();
    remove_images(store, ns);
    let repo = fixture_repo();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_build", "--nocapture", "--test-threads=1"])
        .env(
            CHILD,
            format!("{}|{}|{ns}", backend.name(), repo.path().display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    // Wait until the benchmark's slow step runs, then press Ctrl-C.
    loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("the child ended before the slow step:\n{}", seen.join("\n"));
        };
        seen.push(line.clone());
        if line.contains("benchmark-fixture") && line.contains("RUN sleep") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no slow step within 300 s:\n{}",
            seen.join("\n")
        );
    }
    std::thread::sleep(Duration::from_millis(1500));
    duct::cmd!("kill", "-INT", child.id().to_string())
        .run()
        .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let all = format!("{}\n{}", seen.join("\n"), rest.join("\n"));
    assert_eq!(status.code(), Some(130), "{all}");
    assert!(all.contains("interrupted"), "{all}");
    let [base, bench, _agent, eval] = images(ns);
    assert!(
        labels_of(store, &base).is_some(),
        "the base finished before the interrupt"
    );
    assert!(
        labels_of(store, &bench).is_none(),
        "{bench} must not be tagged after an interrupt:\n{all}"
    );
    assert!(
        labels_of(store, &eval).is_none(),
        "{eval} must not be tagged after an interrupt"
    );

    // The same build again finishes the job.
    let specs = fleet_specs(repo.path(), ns, SLEEP);
    let again = kiln::build::run(
        &specs,
        &[],
        &decision(backend),
        &options(repo.path(), 2, false),
    )
    .unwrap();
    assert!(again.ok(), "{:#?}", again.outcomes);
    let words = statuses(&again);
    assert_eq!(words[0], ("core-base".to_string(), "up to date"));
    assert_eq!(words[1], ("benchmark-fixture".to_string(), "built"));
    assert_eq!(words[3], ("eval-fixture--echo".to_string(), "built"));
    remove_images(store, ns);
}

#[test]
fn engine_interrupt_leaves_no_final_tag() {
    if gate("KILN_TEST_DOCKER") && std::env::var(CHILD).is_err() {
        interrupt_mid_build(BackendKind::Engine, "engine-interrupt");
    }
}

#[test]
fn podman_interrupt_leaves_no_final_tag() {
    if gate("KILN_TEST_PODMAN") && std::env::var(CHILD).is_err() {
        interrupt_mid_build(BackendKind::Podman, "podman-interrupt");
    }
}
