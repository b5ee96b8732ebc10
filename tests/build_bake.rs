//! The bake backend on real builders, with the real `docker buildx` (Debian's
//! docker-buildx package) and pulling nothing:
//!
//! - the engine's own `docker`-driver builder (`KILN_TEST_BUILDX=1`): on Docker 20.10
//!   its BuildKit is v0.8, without named contexts, so bake builds one image per call;
//! - a real BuildKit daemon as a `remote` builder (`KILN_TEST_BUILDKIT=1`; started
//!   with `../shared/tools/buildkit-remote.sh` when it is not running), which cannot
//!   read the engine's store: local bases are handed over as OCI layouts.
//!
//! Each builds the shipped fleet's per-task eval image (base, agent, per-task base,
//! runner, eval), checks every label, and builds nothing the second time. With the
//! hand-over off the remote builder fails exactly as the podman-fallback seed did,
//! and podman builds instead; a broken Dockerfile fails with bake's own error.

mod backend_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use backend_support::*;
use kiln::backend::bake::{Mode, Setup};
use kiln::backend::detect::Decision;
use kiln::backend::BackendKind;
use kiln::build::Status;
use kiln::store::Store;

const REMOTE: &str = "kiln-remote";

const EVAL: [&str; 8] = [
    "build",
    "eval",
    "terminal-lite",
    "--agent",
    "oracle",
    "--task-id",
    "count-lines",
    "--backend",
];

/// `../shared/tools/buildkit-remote.sh`, looked for beside the checkout and above it.
fn remote_script() -> Option<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("shared/tools/buildkit-remote.sh"))
        .find(|p| p.is_file())
}

/// True when the remote-builder tests may run: gated, and the daemon answers
/// (started here when it does not; never stopped: other users may share it).
fn remote_builder() -> bool {
    if !gate("KILN_TEST_BUILDKIT") {
        return false;
    }
    let Some(script) = remote_script() else {
        eprintln!("skipped: ../shared/tools/buildkit-remote.sh not found");
        return false;
    };
    let status = |arg: &str| {
        duct::cmd("bash", [script.to_str().unwrap(), arg])
            .stdout_null()
            .stderr_capture()
            .unchecked()
            .run()
            .unwrap()
    };
    if status("status").status.success() {
        return true;
    }
    let started = status("start");
    if started.status.success() {
        return true;
    }
    eprintln!(
        "skipped: the remote BuildKit daemon is not available: {}",
        String::from_utf8_lossy(&started.stderr).trim()
    );
    false
}

/// The five images of the eval build under `registry`, with their `eval.type`.
fn eval_images(registry: &str) -> Vec<(String, &'static str)> {
    vec![
        (format!("{registry}/core/base:dev"), "core"),
        (format!("{registry}/agents/oracle:dev"), "agent"),
        (
            format!("{registry}/benchmarks/terminal-lite-count-lines:dev"),
            "task",
        ),
        (format!("{registry}/core/runner:dev"), "core"),
        (
            format!("{registry}/evals/terminal-lite-count-lines--oracle:dev"),
            "eval",
        ),
    ]
}

fn check_built(registry: &str) {
    for (image, kind) in eval_images(registry) {
        let labels = labels_of(Store::Docker, &image)
            .unwrap_or_else(|| panic!("{image} was not loaded into the engine's store"));
        let digest = labels[kiln::labels::INPUTS_DIGEST].clone();
        assert_eq!(
            kiln::build::check_labels(&labels, &digest),
            Ok(()),
            "{image}"
        );
        assert_eq!(labels[kiln::labels::TYPE], kind, "{image}");
    }
}

/// Builds the eval image twice on `--backend <backend>` with `env`: all built, then all up to date.
fn eval_twice(repo: &Path, registry: &str, backend: &str, env: &[(&str, &str)]) -> String {
    let args = [&EVAL[..], &[backend]].concat();
    let (code, log) = kiln_with(repo, registry, &args, env);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("bake backend: 5 built, 0 up to date"), "{log}");
    check_built(registry);
    let (code, again) = kiln_with(repo, registry, &args, env);
    assert_eq!(code, 0, "{again}");
    assert!(
        again.contains("bake backend: 0 built, 5 up to date"),
        "{again}"
    );
    log
}

#[test]
fn eval_image_on_the_engines_builder() {
    if !gate("KILN_TEST_BUILDX") {
        return;
    }
    let registry = "kiln.bake-default";
    remove_registry(Store::Docker, registry);
    let repo = repo_copy();
    let log = eval_twice(
        repo.path(),
        registry,
        "auto",
        &[("BUILDX_BUILDER", "default")],
    );
    assert!(log.contains("builder \"default\" (driver docker"), "{log}");
    if log.contains("BuildKit v0.8") {
        // Docker 20.10: no named contexts, so one bake per image, bases first.
        assert!(log.contains("one bake per image"), "{log}");
        assert!(log.contains("docker buildx bake -f -"), "{log}");
    }
    remove_registry(Store::Docker, registry);
}

#[test]
fn eval_image_on_a_remote_builder_with_bases_handed_over() {
    if !remote_builder() {
        return;
    }
    let registry = "kiln.bake-remote";
    remove_registry(Store::Docker, registry);
    let repo = repo_copy();
    let env = [("BUILDX_BUILDER", REMOTE)];
    let (code, dry) = {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("-C")
            .arg(repo.path())
            .args(&EVAL[..7])
            .arg("--dry-run")
            .env("REGISTRY", registry)
            .env("BUILDX_BUILDER", REMOTE)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(code, Some(0));
    // The dry run: the exports, then the bake that uses them.
    let first_export = dry.find("skopeo copy").expect(&dry);
    let first_bake = dry.find("docker buildx bake").expect(&dry);
    assert!(first_export < first_bake, "{dry}");
    assert!(
        dry.contains("core-base.contexts.debian:bookworm-slim=oci-layout://"),
        "{dry}"
    );

    let log = eval_twice(repo.path(), registry, "auto", &env);
    assert!(log.contains("handed over as OCI layouts"), "{log}");
    // The outside base's layout is named by its image id, and kept for the next build.
    let debian = labels_id("debian:bookworm-slim");
    let layout = repo
        .path()
        .join(".kiln/oci")
        .join(debian.trim_start_matches("sha256:"));
    assert!(layout.join("index.json").is_file(), "{}", layout.display());
    remove_registry(Store::Docker, registry);
}

fn labels_id(image: &str) -> String {
    rt().block_on(kiln::store::inspect(Store::Docker, image))
        .unwrap()
        .expect("in the engine's store")
        .id
}

#[test]
fn remote_builder_without_the_hand_over() {
    if !remote_builder() || !gate("KILN_TEST_PODMAN") {
        return;
    }
    let registry = "kiln.bake-nohandover";
    remove_registry(Store::Docker, registry);
    remove_registry(Store::Podman, registry);
    let repo = repo_copy();
    let env = [("BUILDX_BUILDER", REMOTE), ("KILN_BAKE_HANDOVER", "0")];
    let agent = ["build", "agent", "null", "--backend"];

    // --backend bake: refused before anything runs, naming what the builder cannot do.
    let (code, log) = kiln_with(
        repo.path(),
        registry,
        &[&agent[..], &["bake"]].concat(),
        &env,
    );
    assert_eq!(code, 3, "{log}");
    assert!(log.contains("cannot read the local image store"), "{log}");
    assert!(log.contains("KILN_BAKE_HANDOVER=0"), "{log}");
    assert!(labels_of(Store::Docker, &format!("{registry}/core/base:dev")).is_none());

    // auto: the detected cause, and podman builds.
    let (code, log) = kiln_with(
        repo.path(),
        registry,
        &[&agent[..], &["auto"]].concat(),
        &env,
    );
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("backend: podman (fallback: the buildx builder uses the \"remote\" driver"),
        "{log}"
    );
    assert!(labels_of(Store::Podman, &format!("{registry}/agents/null:dev")).is_some());
    remove_registry(Store::Podman, registry);

    // The seed's failure itself: bake really runs on the remote builder without the
    // hand-over, fails to resolve debian:bookworm-slim, and the detected cause sends
    // the request to podman.
    let vars = BTreeMap::from([("REGISTRY".to_string(), registry.to_string())]);
    let fleet = kiln::fleet::Fleet::load(repo.path(), vars).unwrap();
    let info = kiln::labels::BuildInfo::from_git(repo.path(), &Default::default()).unwrap();
    let request = kiln::plan::Request::Agent {
        agent: "null".into(),
    };
    let plan = kiln::plan::plan(&fleet, &request, &info).unwrap();
    let mut decision = Decision::new(BackendKind::Bake, "test: remote builder, hand-over off");
    decision.fallback = Some(BackendKind::Podman);
    decision.bake = Setup {
        builder: Some(REMOTE.into()),
        mode: Mode::Requests { handover: false },
    };
    let summary = kiln::build::run(
        &plan.builds,
        &plan.bake,
        &decision,
        &options(repo.path(), 2, false),
    )
    .unwrap();
    assert!(summary.ok(), "{:#?}", summary.outcomes);
    for o in &summary.outcomes {
        assert_eq!(o.store, Store::Podman, "{}", o.name);
        assert!(matches!(o.status, Status::Built { .. }), "{:?}", o.status);
    }
    remove_registry(Store::Podman, registry);
}

/// A Dockerfile that fails: bake's own error, and no other backend tried.
fn broken(env: &[(&str, &str)], registry: &str) {
    let repo = repo_copy();
    let file = repo.path().join("containers/agents/null/Dockerfile");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("RUN echo kiln-test-broken && exit 3\n");
    std::fs::write(&file, text).unwrap();
    let (code, log) = kiln_with(repo.path(), registry, &["build", "agent", "null"], env);
    assert_eq!(code, 1, "{log}");
    // BuildKit's own words for a failed RUN (v0.8: "executor failed running", newer:
    // "did not complete successfully"), with the step's exit code.
    assert!(
        log.contains("kiln-test-broken") && log.contains("exit code: 3"),
        "{log}"
    );
    assert!(log.contains("backend: bake"), "{log}");
    assert!(!log.contains("falling back"), "{log}");
    assert!(labels_of(Store::Docker, &format!("{registry}/agents/null:dev")).is_none());
    assert!(labels_of(Store::Podman, &format!("{registry}/agents/null:dev")).is_none());
    remove_registry(Store::Docker, registry);
}

#[test]
fn broken_dockerfile_fails_with_bakes_error() {
    if gate("KILN_TEST_BUILDX") {
        broken(&[("BUILDX_BUILDER", "default")], "kiln.bake-broken-default");
    }
    if remote_builder() {
        broken(&[("BUILDX_BUILDER", REMOTE)], "kiln.bake-broken-remote");
    }
}
