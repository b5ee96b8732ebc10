//! Shared by the backend and build tests: the opt-in gates, a throw-away copy of
//! the fixture fleet, its `BuildSpec`s (the plan a fleet of four images gives:
//! core base → benchmark, agent → eval) and image clean-up.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln::backend::BackendKind;
use kiln::build::{Options, Status, Summary};
use kiln::labels;
use kiln::plan::BuildSpec;
use kiln::store::Store;

/// The busybox-static base `scripts/make-bases.sh` imports into both stores.
pub const ROOT_IMAGE: &str = "kiln.local/bases/busybox:latest";

/// True when the test may use the real engine (`KILN_TEST_DOCKER=1`) / podman (`KILN_TEST_PODMAN=1`).
pub fn gate(var: &str) -> bool {
    let on = std::env::var(var).is_ok_and(|v| v == "1");
    if !on {
        eprintln!("skipped: set {var}=1 to run against the real engine");
    }
    on
}

/// A fresh copy of `tests/fixtures/backend/fleet` (tests change files in it).
pub fn fixture_repo() -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/backend/fleet");
    let dir = tempfile::tempdir().unwrap();
    for entry in walkdir::WalkDir::new(&src).min_depth(1) {
        let entry = entry.unwrap();
        let to = dir.path().join(entry.path().strip_prefix(&src).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
    dir
}

fn args<const N: usize>(pairs: [(&str, String); N]) -> kiln::plan::Args {
    pairs
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

fn oci(title: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            labels::OCI_SOURCE.into(),
            "https://example.invalid/kiln-fixture".into(),
        ),
        (labels::OCI_REVISION.into(), "0123456789abcdef".into()),
        (labels::OCI_VERSION.into(), "0.0.0-test".into()),
        (labels::OCI_CREATED.into(), "2026-01-01T00:00:00Z".into()),
        (labels::OCI_TITLE.into(), title.into()),
        (
            labels::OCI_DESCRIPTION.into(),
            format!("{title}, a kiln test fixture"),
        ),
    ])
}

fn benchmark_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::BENCHMARK_NAME.into(), "fixture".into()),
        (
            labels::BENCHMARK_DESCRIPTION.into(),
            "two data files".into(),
        ),
        (labels::BENCHMARK_TASKS.into(), "2".into()),
        (labels::BENCHMARK_ENV.into(), labels::ENV_SHARED.into()),
        (labels::BENCHMARK_DATA_REVISION.into(), "r1".into()),
    ])
}

fn agent_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::AGENT_NAME.into(), "echo".into()),
        (labels::AGENT_VERSION.into(), "1".into()),
    ])
}

/// The image names of namespace `ns`: base, benchmark, agent, eval.
pub fn images(ns: &str) -> [String; 4] {
    [
        format!("kiln.test/{ns}/core/base:dev"),
        format!("kiln.test/{ns}/benchmarks/fixture:dev"),
        format!("kiln.test/{ns}/agents/echo:dev"),
        format!("kiln.test/{ns}/evals/fixture--echo:dev"),
    ]
}

/// The fixture fleet's plan; images are named under `kiln.test/<ns>/` so tests do not collide.
/// `sleep` seconds are spent in the benchmark's last step (interrupt tests), never
/// answered from a build cache.
pub fn fleet_specs(repo: &Path, ns: &str, sleep: u32) -> Vec<BuildSpec> {
    let [base, bench, agent, eval] = images(ns);
    let with = |mut a: BTreeMap<String, String>, b: BTreeMap<String, String>| {
        a.extend(b);
        a
    };
    let typed = |kind: &str, m: BTreeMap<String, String>| {
        with(m, BTreeMap::from([(labels::TYPE.into(), kind.into())]))
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect::<kiln::plan::Labels>()
    };
    let spec = |name: &str, image: &str, dir: &str| BuildSpec {
        name: name.into(),
        bake_target: name.into(),
        image: image.into(),
        context: repo.join(dir),
        dockerfile: PathBuf::from("Dockerfile"),
        target: None,
        args: Default::default(),
        labels: Default::default(),
        secrets: vec![],
        bases: vec![],
        deps: vec![],
    };
    let mut s0 = spec("core-base", &base, "base");
    s0.labels = typed("core", oci("base"));
    s0.bases = vec![ROOT_IMAGE.into()];
    let mut s1 = spec("benchmark-fixture", &bench, "bench");
    s1.target = Some("final".into());
    s1.args = args([("BASE_IMAGE", base.clone()), ("SLEEP", sleep.to_string())]);
    if sleep > 0 {
        // A slow step must really run: never from a builder's cache (see the Dockerfile).
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        s1.args.insert(
            "NONCE".into(),
            format!("{}-{nonce}", std::process::id()).into(),
        );
    }
    s1.labels = typed("benchmark", with(oci("fixture"), benchmark_labels()));
    s1.bases = vec![base.clone()];
    s1.deps = vec![0];
    let mut s2 = spec("agent-echo", &agent, "agent");
    s2.args = args([("BASE_IMAGE", base.clone())]);
    s2.labels = typed("agent", with(oci("echo"), agent_labels()));
    s2.bases = vec![base.clone()];
    s2.deps = vec![0];
    let mut s3 = spec("eval-fixture--echo", &eval, "eval");
    s3.args = args([
        ("BENCHMARK_IMAGE", bench.clone()),
        ("AGENT_IMAGE", agent.clone()),
    ]);
    s3.labels = typed(
        "eval",
        with(
            with(oci("fixture--echo"), benchmark_labels()),
            agent_labels(),
        ),
    );
    s3.bases = vec![agent.clone(), bench.clone()];
    s3.deps = vec![1, 2];
    vec![s0, s1, s2, s3]
}

pub fn options(repo: &Path, jobs: usize, force: bool) -> Options {
    let mut o = Options::new(repo);
    o.jobs = jobs;
    o.force = force;
    o.progress = kiln::printer::Mode::Plain;
    o
}

pub fn decision(backend: BackendKind) -> kiln::backend::detect::Decision {
    kiln::backend::detect::Decision::new(backend, "test")
}

/// The statuses by image name, as short words: built / up to date / failed / not built / interrupted.
pub fn statuses(summary: &Summary) -> Vec<(String, &'static str)> {
    summary
        .outcomes
        .iter()
        .map(|o| {
            let word = match o.status {
                Status::Built { .. } => "built",
                Status::UpToDate { .. } => "up to date",
                Status::Failed(_) => "failed",
                Status::NotBuilt(_) => "not built",
                Status::Interrupted => "interrupted",
            };
            (o.name.clone(), word)
        })
        .collect()
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A committed copy of the repository (build-time labels come from git).
pub fn repo_copy() -> tempfile::TempDir {
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

pub fn runner() -> PathBuf {
    if let Ok(p) = std::env::var("KILN_RUNNER") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/x86_64-unknown-linux-gnu/release/kiln-runner")
}

/// Runs the kiln binary in `repo` with images under `registry`; (exit status, stderr).
pub fn kiln(repo: &Path, registry: &str, args: &[&str]) -> (i32, String) {
    kiln_with(repo, registry, args, &[])
}

/// [`kiln`] with extra environment variables.
pub fn kiln_with(
    repo: &Path,
    registry: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.arg("-C")
        .arg(repo)
        .args(args)
        .args(["--progress", "plain"])
        .env("REGISTRY", registry)
        .env("KILN_RUNNER", runner());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

pub fn remove_registry(store: Store, registry: &str) {
    for image in kiln::store::list_images()
        .images
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

/// Removes every image of namespace `ns` from `store` (before and after a test).
pub fn remove_images(store: Store, ns: &str) {
    let refs = images(ns);
    let tool = match store {
        Store::Docker => "docker",
        Store::Podman => "podman",
    };
    let mut argv = vec!["rmi", "-f"];
    argv.extend(refs.iter().map(String::as_str));
    let _ = duct::cmd(tool, &argv)
        .stdout_null()
        .stderr_null()
        .unchecked()
        .run();
    let _ = duct::cmd(tool, ["rmi", "-f", &format!("kiln.test/{ns}/bad:dev")])
        .stdout_null()
        .stderr_null()
        .unchecked()
        .run();
}

/// Labels of `image` in `store`, read back from the store.
pub fn labels_of(store: Store, image: &str) -> Option<BTreeMap<String, String>> {
    rt().block_on(kiln::store::inspect(store, image))
        .unwrap()
        .map(|i| i.labels)
}

fn words(list: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
    list.iter().map(|(n, w)| (n.to_string(), *w)).collect()
}

/// The whole life cycle on one backend, every build real: build the fixture fleet;
/// read the labels back; a second run builds nothing; a changed file in the benchmark
/// rebuilds exactly the benchmark and the eval image; `--force` rebuilds all; a
/// missing required label fails the build naming it and leaves no image named.
pub fn exercise(backend: BackendKind, ns: &str) {
    let store = backend.store();
    remove_images(store, ns);
    let repo = fixture_repo();
    let specs = fleet_specs(repo.path(), ns, 0);
    let run = |force: bool| {
        kiln::build::run(
            &specs,
            &[],
            &decision(backend),
            &options(repo.path(), 2, force),
        )
        .unwrap()
    };

    let first = run(false);
    assert!(first.ok(), "{:#?}", first.outcomes);
    assert_eq!(
        statuses(&first),
        words(&[
            ("core-base", "built"),
            ("benchmark-fixture", "built"),
            ("agent-echo", "built"),
            ("eval-fixture--echo", "built")
        ])
    );
    let state = kiln::store::State::load(repo.path());
    for (spec, outcome) in specs.iter().zip(&first.outcomes) {
        let labels =
            labels_of(store, &spec.image).expect("the built image is in the backend's store");
        assert_eq!(
            kiln::build::check_labels(&labels, &labels[labels::INPUTS_DIGEST]),
            Ok(()),
            "{}",
            spec.image
        );
        for (k, v) in &spec.labels {
            assert_eq!(
                labels.get(k.as_ref()).map(String::as_str),
                Some(v.as_ref()),
                "{} label {k}",
                spec.image
            );
        }
        let record = &state.images[&spec.image];
        assert_eq!(record.store, store);
        assert_eq!(record.digest, labels[labels::INPUTS_DIGEST]);
        if let Status::Built { id } = &outcome.status {
            assert_eq!(&record.id, id);
        }
        // It is found where it was built, and only there.
        assert_eq!(
            kiln::store::locate(&spec.image),
            vec![store],
            "{}",
            spec.image
        );
    }
    assert_eq!(outcome_store(&first), vec![store; 4]);
    let bench_digest = labels_of(store, &specs[1].image).unwrap()[labels::INPUTS_DIGEST].clone();

    let second = run(false);
    assert_eq!(
        statuses(&second),
        words(&[
            ("core-base", "up to date"),
            ("benchmark-fixture", "up to date"),
            ("agent-echo", "up to date"),
            ("eval-fixture--echo", "up to date")
        ])
    );

    // An ignored file changes nothing; a real one rebuilds the benchmark and what stands on it.
    std::fs::write(
        repo.path().join("bench/scratch/cache.bin"),
        "changed, but ignored",
    )
    .unwrap();
    assert!(statuses(&run(false))
        .iter()
        .all(|(_, w)| *w == "up to date"));
    std::fs::write(repo.path().join("bench/data/one.txt"), "one, changed").unwrap();
    let third = run(false);
    assert_eq!(
        statuses(&third),
        words(&[
            ("core-base", "up to date"),
            ("benchmark-fixture", "built"),
            ("agent-echo", "up to date"),
            ("eval-fixture--echo", "built")
        ])
    );
    assert_ne!(
        labels_of(store, &specs[1].image).unwrap()[labels::INPUTS_DIGEST],
        bench_digest
    );

    let forced = run(true);
    assert!(
        statuses(&forced).iter().all(|(_, w)| *w == "built"),
        "{:?}",
        statuses(&forced)
    );

    // A required label left empty: the build fails naming it, and no image gets the name.
    let mut bad = specs[2].clone();
    bad.name = "agent-bad".into();
    bad.image = format!("kiln.test/{ns}/bad:dev");
    bad.labels.insert(labels::AGENT_VERSION.into(), "".into());
    bad.deps = vec![];
    let summary = kiln::build::run(
        &[bad.clone()],
        &[],
        &decision(backend),
        &options(repo.path(), 1, false),
    )
    .unwrap();
    match &summary.outcomes[0].status {
        Status::Failed(msg) => assert!(msg.contains(labels::AGENT_VERSION), "{msg}"),
        other => panic!("expected a label failure, got {other:?}"),
    }
    assert_eq!(summary.exit_code(), 1);
    assert!(
        labels_of(store, &bad.image).is_none(),
        "{} must not exist",
        bad.image
    );

    remove_images(store, ns);
}

fn outcome_store(summary: &Summary) -> Vec<Store> {
    summary.outcomes.iter().map(|o| o.store).collect()
}
