//! Golden tests of `kiln build … --dry-run`: every backend × every build kind, on the
//! fixture fleet `tests/fixtures/fleets/small`. No engine, no podman build, no buildx.
//! Regenerate: `KILN_BLESS=1 cargo test -p kiln --test plan_golden` (see tests/fleet_support).

mod fleet_support;

use fleet_support::*;

const KINDS: &[(&str, &[&str])] = &[
    (
        "benchmark-shared",
        &["build", "benchmark", "metric-backfill"],
    ),
    (
        "benchmark-per-task",
        &[
            "build",
            "benchmark",
            "terminal-lite",
            "--task-id",
            "Fix.Config",
        ],
    ),
    ("agent", &["build", "agent", "oracle"]),
    (
        "eval-shared",
        &["build", "eval", "metric-backfill", "--agent", "null"],
    ),
    (
        "eval-per-task",
        &[
            "build",
            "eval",
            "terminal-lite",
            "--agent",
            "oracle",
            "--task-id",
            "Fix.Config",
        ],
    ),
    ("all", &["build", "all"]),
];

fn check_backend(backend: &str) {
    let repo = fixture("small");
    // bake probes its builder even when requested: a shim stands in for buildx on the
    // `docker` driver with named contexts, so the golden does not depend on this machine.
    let tmp = tempfile::tempdir().unwrap();
    let path = shim_path(&tmp.path().join("bin"), false, Some(("docker", "v0.12.5")));
    let env: &[(&str, &str)] = if backend == "bake" {
        &[("PATH", &path), ("HOME", tmp.path().to_str().unwrap())]
    } else {
        &[]
    };
    for (kind, args) in KINDS {
        let mut args: Vec<&str> = args.to_vec();
        args.extend(["--dry-run", "--backend", backend]);
        let out = kiln(&repo, &args, env);
        assert_eq!(out.status.code(), Some(0), "{}", transcript(&args, &out));
        golden(
            &format!("dry-run/{kind}.{backend}.txt"),
            &transcript(&args, &out),
        );
    }
}

#[test]
fn bake() {
    check_backend("bake");
}

#[test]
fn podman() {
    check_backend("podman");
}

#[test]
fn engine() {
    check_backend("engine");
}

/// `auto` on a machine with podman and no docker: podman, because buildx is missing.
#[test]
fn auto_without_buildx_chooses_podman() {
    auto_dry_run(None, "auto-podman");
}

/// `auto` with buildx on the `docker` driver with named contexts (a shim stands in for
/// the decision probes): bake per request, with the podman commands it would fall back to.
#[test]
fn auto_with_buildx_chooses_bake_and_shows_fallback() {
    auto_dry_run(Some(("docker", "v0.12.5")), "auto-bake");
}

/// `auto` on Docker 20.10's own builder (BuildKit v0.8, no named contexts): one bake
/// per image, bases first, each defined on stdin.
#[test]
fn auto_on_buildkit_without_named_contexts_bakes_per_image() {
    auto_dry_run(Some(("docker", "v0.8+unknown")), "auto-bake-per-image");
}

/// `auto` on a `remote` builder with named contexts: the exports to OCI layouts, then
/// the bakes that take them as named contexts.
#[test]
fn auto_on_a_remote_builder_hands_bases_over() {
    auto_dry_run(Some(("remote", "v0.26-dev-73ed682")), "auto-bake-handover");
}

/// `auto` with nothing able to build: exit 3, naming what was looked for.
#[test]
fn auto_with_nothing_exits_3() {
    let tmp = tempfile::tempdir().unwrap();
    let path = shim_path(&tmp.path().join("bin"), false, None);
    let out = kiln(
        &fixture("small"),
        &["build", "agent", "null", "--dry-run"],
        &[
            ("PATH", &path),
            ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("podman") && err.contains("buildx"), "{err}");
    assert!(out.stdout.is_empty());
}

/// Secrets reach commands as where they come from, never as values; the engine backend
/// passes them where the engine builds with BuildKit and refuses a spec with secrets
/// before anything runs where it does not (`KILN_ENGINE_BUILDER` plays either engine).
#[test]
fn secrets_are_named_never_valued() {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&fixture("small"), tmp.path());
    let bake = tmp
        .path()
        .join("benchmarks/metric-backfill/docker-bake.hcl");
    let text = std::fs::read_to_string(&bake).unwrap();
    let text = text.replacen(
        "  context = \"benchmarks/metric-backfill\"\n",
        "  context = \"benchmarks/metric-backfill\"\n  secret  = [\"id=pgpass,env=PGPASSWORD\"]\n",
        1,
    );
    std::fs::write(&bake, text).unwrap();
    let value = "hunter2-do-not-print";
    for (backend, engine_builder) in [
        ("podman", "auto"),
        ("bake", "auto"),
        ("engine", "legacy"),
        ("engine", "buildkit"),
    ] {
        let args = [
            "build",
            "benchmark",
            "metric-backfill",
            "--dry-run",
            "--backend",
            backend,
        ];
        let out = kiln(
            tmp.path(),
            &args,
            &[
                ("PGPASSWORD", value),
                ("KILN_ENGINE_BUILDER", engine_builder),
            ],
        );
        let all = transcript(&args, &out);
        assert!(!all.contains(value), "{all}");
        match (backend, engine_builder) {
            ("podman", _) => {
                assert_eq!(out.status.code(), Some(0), "{all}");
                assert!(all.contains("--secret id=pgpass,env=PGPASSWORD"), "{all}");
            }
            ("bake", _) => assert_eq!(out.status.code(), Some(0), "{all}"),
            (_, "buildkit") => {
                assert_eq!(out.status.code(), Some(0), "{all}");
                assert!(all.contains("--secret id=pgpass,env=PGPASSWORD"), "{all}");
            }
            _ => {
                assert_eq!(out.status.code(), Some(2), "{all}");
                assert!(all.contains("pgpass") && out.stdout.is_empty(), "{all}");
            }
        }
    }
}

/// A per-task eval build without --task-id plans every task's eval image, bases first.
#[test]
fn per_task_eval_without_task_covers_every_task_in_order() {
    let args = [
        "build",
        "eval",
        "terminal-lite",
        "--agent",
        "null",
        "--dry-run",
        "--backend",
        "podman",
    ];
    let out = kiln(&fixture("small"), &args, &[]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tags: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("podman build"))
        .map(|l| l.split(" -t ").nth(1).unwrap().split(' ').next().unwrap())
        .collect();
    for task in ["fix.config", "count-lines", "parse-log"] {
        let base = tags
            .iter()
            .position(|t| *t == format!("kiln.local/benchmarks/terminal-lite-{task}:dev"))
            .unwrap();
        let eval = tags
            .iter()
            .position(|t| *t == format!("kiln.local/evals/terminal-lite-{task}--null:dev"))
            .unwrap();
        let core = tags
            .iter()
            .position(|t| *t == "kiln.local/core/base:dev")
            .unwrap();
        assert!(core < base && base < eval, "{tags:?}");
    }
    assert_eq!(
        tags.iter().filter(|t| t.contains("/core/base:")).count(),
        1,
        "each image once: {tags:?}"
    );
}

/// REGISTRY and TAG come from the environment as bake would take them, and appear in
/// every name and in the bake commands' environment.
#[test]
fn registry_and_tag_from_the_environment() {
    let args = ["build", "agent", "null", "--dry-run", "--backend", "bake"];
    let out = kiln(
        &fixture("small"),
        &args,
        &[
            ("REGISTRY", "registry.example:5000/evals"),
            ("TAG", "2026.1"),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("REGISTRY=registry.example:5000/evals TAG=2026.1 docker buildx bake"),
        "{stdout}"
    );
    assert!(
        stdout.contains("agent-null.tags=registry.example:5000/evals/agents/null:2026.1"),
        "{stdout}"
    );
}

/// Placeholder templates must never change the plan: a recipe that uses EVAL_TASK_ID in a
/// way substitution cannot reproduce (`upper()`) is caught, and the plan equals the one
/// resolved target by target (KILN_PLAN_EXACT=1).
#[test]
fn templates_equal_exact_resolution_even_when_they_cannot_apply() {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&fixture("small"), tmp.path());
    let eval = tmp.path().join("containers/core/eval/docker-bake.hcl");
    let text = std::fs::read_to_string(&eval).unwrap().replacen(
        "\"eval.type\" = \"eval\"",
        "\"eval.type\" = \"eval\"\n    \"x.shout\"   = upper(EVAL_TASK_ID)",
        1,
    );
    assert!(text.contains("x.shout"));
    std::fs::write(&eval, text).unwrap();
    for repo in [tmp.path().to_path_buf(), fixture("small")] {
        let args = ["build", "all", "--dry-run", "--backend", "bake"];
        let fast = kiln(&repo, &args, &[]);
        let exact = kiln(&repo, &args, &[("KILN_PLAN_EXACT", "1")]);
        assert_eq!(fast.status.code(), Some(0), "{}", transcript(&args, &fast));
        assert_eq!(
            String::from_utf8_lossy(&fast.stdout),
            String::from_utf8_lossy(&exact.stdout)
        );
    }
    let out = kiln(
        tmp.path(),
        &["build", "all", "--dry-run", "--backend", "podman"],
        &[],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("x.shout=FIX.CONFIG"));
}

/// The `auto` dry run of a per-task eval build with buildx stood in by a shim reporting
/// `(driver, BuildKit version)` (`None`: no buildx), compared with `dry-run/eval-per-task.<name>.txt`.
fn auto_dry_run(driver: Option<(&str, &str)>, name: &str) {
    if which::which("podman").is_err() {
        eprintln!("skipped: podman is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = shim_path(&tmp.path().join("bin"), true, driver);
    let args = [
        "build",
        "eval",
        "terminal-lite",
        "--agent",
        "oracle",
        "--task-id",
        "Fix.Config",
        "--dry-run",
    ];
    let out = kiln(
        &fixture("small"),
        &args,
        &[
            ("PATH", &path),
            ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
            ("HOME", tmp.path().to_str().unwrap()),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&args, &out));
    golden(
        &format!("dry-run/eval-per-task.{name}.txt"),
        &transcript(&args, &out),
    );
}
