//! The shipped fleet, built for real through `kiln build` on the engine and podman
//! backends from the local bases (scripts/make-bases.sh), pulling nothing: the
//! shared-env benchmark, a per-task base and the eval image on it; labels read back;
//! the second run builds nothing. Images are named under a registry of their own.

mod backend_support;

use backend_support::*;
use kiln::store::Store;

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
