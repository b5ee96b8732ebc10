//! Real builds of the eval-containers fleet (a copy of `../shared/fleets/eval-containers`)
//! on this air-gapped machine: `KILN_TEST_DOCKER=1 KILN_TEST_BUILDKIT=1`, a BuildKit
//! builder of the `remote` driver (`../shared/tools/buildkit-remote.sh`, builder
//! `KILN_BUILDKIT_BUILDER` or `kiln-remote`), Debian's mirror and PyPI (through the CA
//! bundle `KILN_CA_BUNDLE`, default `/etc/ssl/certs/ca-certificates.crt`) reachable from
//! build containers.
//!
//! With the base map `fixtures/eval-containers/bases.txt` (stand-ins made by
//! `KILN_BASES_ONLY=eval-containers scripts/make-bases.sh`, the python one carrying a
//! CPython 3.12 as uv's managed Python): the `agents-smoke` benchmark, the
//! `mini-swe-agent` agent and their eval image build, without a byte of the fleet
//! changed, and `kiln run` runs the eval image once against kiln's replay gateway
//! (`fixtures/eval-containers/agents-smoke/0/mini-swe-agent.jsonl`), its result read
//! into kiln's layout and listed by `kiln report` (docs/layouts.md). The images stay in
//! the engine's store and BuildKit's cache, so a second run rebuilds nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod pty_support;

use pty_support::{assert_nothing_left, container_of, kiln_pid, Session};

const KILN: &str = env!("CARGO_BIN_EXE_kiln");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn gate(var: &str) -> bool {
    let on = std::env::var(var).is_ok_and(|v| v == "1");
    if !on {
        eprintln!("skipped: set {var}=1");
    }
    on
}

fn shared(rel: &str) -> Option<PathBuf> {
    Path::new(ROOT)
        .ancestors()
        .map(|d| d.join("shared").join(rel))
        .find(|p| p.exists())
}

/// The builder's name once the remote daemon answers (started here when it does not;
/// never stopped: others may share it).
fn remote_builder() -> Option<String> {
    let script = shared("tools/buildkit-remote.sh")?;
    let run = |arg: &str| Command::new("bash").arg(&script).arg(arg).output().unwrap();
    if !run("status").status.success() && !run("start").status.success() {
        eprintln!("skipped: the remote BuildKit daemon does not start");
        return None;
    }
    Some(std::env::var("KILN_BUILDKIT_BUILDER").unwrap_or_else(|_| "kiln-remote".into()))
}

fn kiln(fleet: &Path, builder: &str, args: &[&str]) -> (bool, String) {
    let ca = std::env::var("KILN_CA_BUNDLE")
        .unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".into());
    let base_map = Path::new(ROOT).join("fixtures/eval-containers/bases.txt");
    let out = Command::new(KILN)
        .arg("-C")
        .arg(fleet)
        .args(args)
        .arg("--base-map")
        .arg(base_map)
        .args(["--ca-bundle", &ca, "--builder", builder])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    eprintln!("kiln {}:\n{text}", args.join(" "));
    (out.status.success(), text)
}

fn docker_run(image: &str, script: &str) -> String {
    let out = Command::new("docker")
        .args(["run", "--rm", "--entrypoint", "sh", image, "-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} in {image}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn agents_smoke_and_mini_swe_agent_build_for_real_from_the_fleet_as_it_is() {
    if !gate("KILN_TEST_DOCKER") || !gate("KILN_TEST_BUILDKIT") {
        return;
    }
    let Some(upstream) = shared("fleets/eval-containers") else {
        eprintln!("skipped: ../shared/fleets/eval-containers not found");
        return;
    };
    let Some(builder) = remote_builder() else {
        return;
    };
    let made = Command::new("bash")
        .arg(Path::new(ROOT).join("scripts/make-bases.sh"))
        .env("KILN_BASES_ONLY", "eval-containers")
        .status()
        .unwrap();
    assert!(made.success(), "make-bases.sh (eval-containers stand-ins)");
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("ec");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(&upstream)
        .arg(&fleet)
        .status()
        .unwrap();
    assert!(copied.success());
    let before = Command::new("git")
        .args(["diff", "--no-index", "--stat", "--"])
        .arg(&upstream)
        .arg(&fleet)
        .output()
        .unwrap();
    assert!(before.stdout.is_empty());

    // The fleet's own names (REGISTRY and TAG as it sets them): its Dockerfiles bind
    // `FROM …:latest` and the eval's gosu to those, and the base map names them. The
    // eval's build builds its benchmark and agent first.
    let (ok, log) = kiln(
        &fleet,
        &builder,
        &["build", "eval", "agents-smoke", "--agent", "mini-swe-agent"],
    );
    assert!(ok, "{log}");
    assert!(log.contains("built ghcr.io/exgentic/benchmarks/agents-smoke:latest"));
    assert!(log.contains("built ghcr.io/exgentic/evals/agents-smoke--mini-swe-agent:latest"));
    // The benchmark's own grader, with no agent: agents-smoke is a carrier that always
    // passes, so an empty answer passing too is what validation must report.
    let v = Command::new(KILN)
        .arg("-C")
        .arg(&fleet)
        .args(["validate", "agents-smoke"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&v.stdout);
    assert_eq!(v.status.code(), Some(1), "{said}");
    assert!(
        said.contains("agents-smoke 0: NOT VALID: an empty answer scores 1"),
        "{said}"
    );
    let agent = "ghcr.io/exgentic/agents/mini-swe-agent:latest";
    // The agent installed from PyPI, and its eval-time install script is in place.
    let version = docker_run(
        agent,
        "python -c 'import importlib.metadata as m; print(m.version(\"mini-swe-agent\"))'",
    );
    assert!(!version.is_empty());
    assert!(docker_run(agent, "cat /opt/agent/install.sh").contains("setup-uv-venv.sh"));
    // No layer or history entry holds the CA bundle: it was a build secret.
    let history = Command::new("docker")
        .args(["history", "--no-trunc", agent])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&history.stdout).contains("BEGIN CERTIFICATE"));
    // The eval's install made its venv on the stand-in's CPython 3.12, fetching none.
    let eval = "ghcr.io/exgentic/evals/agents-smoke--mini-swe-agent:latest";
    assert!(docker_run(eval, "/opt/mini-venv/bin/python --version").starts_with("Python 3.12"));

    // One run through the replay gateway: upstream's entrypoint, agent and grader.
    let results = dir.path().join("results");
    let fixture =
        Path::new(ROOT).join("fixtures/eval-containers/agents-smoke/0/mini-swe-agent.jsonl");
    let run = Command::new(KILN)
        .arg("-C")
        .arg(&fleet)
        .args([
            "run",
            "agents-smoke",
            "--agent",
            "mini-swe-agent",
            "--model",
            "gpt-test",
            "--keep-state",
        ])
        .arg("--replay")
        .arg(&fixture)
        .arg("--output")
        .arg(&results)
        .args(["--replay-speed", "max"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(
        run.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        said.contains("agents-smoke 0 mini-swe-agent: reward 1 (passed); state kept as kiln.local/kept-state/agents-smoke--mini-swe-agent:0-"),
        "{said}"
    );
    let cell = results.join("agents-smoke/0/mini-swe-agent");
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cell.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["status"], "completed");
    assert_eq!(result["score"]["value"], 1.0);
    assert_eq!(result["model"]["replay"]["turns_served"], 1);
    assert_eq!(result["model"]["replay"]["diverged"], serde_json::json!([]));
    // Upstream's own files are kept beside it, under names `kiln report` does not read.
    assert!(cell.join("output/task/result.upstream.json").is_file());
    assert!(cell.join("output/agent/stdout.log").is_file());
    let report = Command::new(KILN)
        .arg("report")
        .arg(&results)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&report.stdout);
    assert!(report.status.success());
    assert!(
        table.lines().any(|l| l.starts_with("agents-smoke")
            && l.contains("mini-swe-agent")
            && l.contains("completed")),
        "{table}"
    );
    assert!(!table.contains("unreadable"), "{table}");

    // The fleet's files are untouched: kiln's copies live in its cache and `.kiln/`.
    let after = Command::new("git")
        .args(["diff", "--no-index", "--stat", "--"])
        .arg(upstream.join("containers"))
        .arg(fleet.join("containers"))
        .output()
        .unwrap();
    assert!(
        after.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&after.stdout)
    );

    let started = std::time::Instant::now();
    loop_on_the_copy(&fleet, &builder, &results);
    eprintln!(
        "the author's loop (state, shells, scaffolds, regrade, clean): {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

fn kiln_plain(fleet: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let out = Command::new(KILN)
        .arg("-C")
        .arg(fleet)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    eprintln!(
        "kiln {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The author's loop on the built copy: the kept state of the run, a shell in the
/// agent's place, a scaffolded benchmark built and validated, a changed grader regraded.
fn loop_on_the_copy(fleet: &Path, builder: &str, results: &Path) {
    let timed =
        |what: &str, started: Instant| eprintln!("{what}: {:.1}s", started.elapsed().as_secs_f64());
    // The run kept its state between agent and grader: the real grader is in place.
    let cell = results.join("agents-smoke/0/mini-swe-agent");
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cell.join("run.json")).unwrap()).unwrap();
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cell.join("result.json")).unwrap()).unwrap();
    let kept = run["kept_state"]["image"]
        .as_str()
        .expect("kept state")
        .to_string();
    assert_eq!(run["kept_state"]["run_id"], result["run_id"]);
    let label = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{index .Config.Labels \"kiln.kept-state\"}}",
            &kept,
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&label.stdout).trim(),
        result["run_id"].as_str().unwrap()
    );
    let inside = docker_run(&kept, "cat /grade.sh; ls -a / | grep -c kiln-grade || true; cat /output/agent/stdout.log >/dev/null && echo AGENT-OUTPUT");
    assert!(
        inside.contains("echo 1 > /logs/verifier/reward.txt"),
        "{inside}"
    );
    assert!(inside.contains("AGENT-OUTPUT"), "{inside}");
    // The gate's aside copy of the grader is not in it.
    assert!(inside.contains("\n0\n"), "{inside}");

    // A shell in the agent's place, through a terminal: uid 1002 in /app with the
    // agent's environment; the task's answer readable only with --with-tests.
    let probe = "echo UID-$(id -u) CWD-$(pwd) EA-${EXPECTED_ANSWER:-none} TASK-$TASK; cat /tasks/0/answer.txt; echo END-$((6*7))";
    for with_tests in [true, false] {
        let started = Instant::now();
        let mut line = format!(
            "{KILN} -C {} shell agents-smoke --task-id 0 --agent mini-swe-agent",
            fleet.display()
        );
        if with_tests {
            line.push_str(" --with-tests");
        }
        let mut s = Session::start(&line, fleet, &[], Duration::from_secs(120));
        s.wait_for("shell: as the agent, uid 1002");
        s.type_line(probe);
        s.wait_for("END-42");
        s.type_line("exit 3");
        let (code, screen) = s.finish();
        timed(
            &format!("shell session (with tests: {with_tests})"),
            started,
        );
        assert_eq!(code, 3, "{screen}");
        let out = &screen[screen.find("END-$((6*7))").expect("the typed line")..];
        assert!(
            out.contains("UID-1002 CWD-/app EA-none TASK-Reply with exactly: OK"),
            "{screen}"
        );
        if with_tests {
            assert!(out.lines().any(|l| l.trim() == "OK"), "{screen}");
        } else {
            assert!(
                out.contains("/tasks/0/answer.txt: Permission denied"),
                "{screen}"
            );
        }
        assert_nothing_left(&container_of(&screen));
    }

    // Ctrl-C to kiln: the container goes, kiln exits 130.
    let line = format!(
        "{KILN} -C {} shell agents-smoke --task-id 0 --agent mini-swe-agent",
        fleet.display()
    );
    let mut s = Session::start(&line, fleet, &[], Duration::from_secs(120));
    s.wait_for("shell: as the agent, uid 1002");
    let container = container_of(&s.screen());
    let pid = kiln_pid(&container);
    // SAFETY: kill(2) on the pid of the kiln process this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let (code, screen) = s.finish();
    assert_eq!(code, 130, "{screen}");
    assert_nothing_left(&container);

    // A scaffolded benchmark of each kind builds and validates for real.
    let started = Instant::now();
    for args in [
        &["new", "benchmark", "hello-ec"][..],
        &["new", "task", "hello-ec", "second"],
        &[
            "new",
            "benchmark",
            "hello-ec-pt",
            "--per-task",
            "--task",
            "first",
        ],
    ] {
        assert!(kiln_plain(fleet, args, &[]).status.success(), "{args:?}");
    }
    let (ok, log) = kiln(fleet, builder, &["build", "benchmark", "hello-ec"]);
    assert!(ok, "{log}");
    let (ok, log) = kiln(
        fleet,
        builder,
        &["build", "benchmark", "hello-ec-pt", "--task-id", "first"],
    );
    assert!(ok, "{log}");
    timed("two scaffolded benchmarks built", started);
    let v = kiln_plain(fleet, &["validate", "hello-ec"], &[]);
    let said = String::from_utf8_lossy(&v.stdout);
    assert!(v.status.success(), "{said}");
    assert!(
        said.contains("hello-ec 0: valid (reference 1, empty 0)"),
        "{said}"
    );
    assert!(
        said.contains("hello-ec 1: valid (reference 1, empty 0)"),
        "{said}"
    );
    let v = kiln_plain(
        fleet,
        &["validate", "hello-ec-pt", "--task-id", "first"],
        &[],
    );
    let said = String::from_utf8_lossy(&v.stdout);
    assert!(v.status.success(), "{said}");
    assert!(
        said.contains("hello-ec-pt first: valid (reference 1, empty 0)"),
        "{said}"
    );

    // The grader changed after the run: the regrade builds the benchmark image again
    // (under its own tag, so the store's :latest stays the fleet's as it is), grades the
    // kept state with it, flips the run, and leaves its result as it was.
    let dockerfile = fleet.join("containers/benchmarks/agents-smoke/Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    assert!(text.contains("echo 1 > /logs/verifier/reward.txt"));
    std::fs::write(
        &dockerfile,
        text.replace(
            "echo 1 > /logs/verifier/reward.txt",
            "echo 0 > /logs/verifier/reward.txt",
        ),
    )
    .unwrap();
    let own = std::fs::read(cell.join("result.json")).unwrap();
    let ca = std::env::var("KILN_CA_BUNDLE")
        .unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".into());
    let base_map = Path::new(ROOT).join("fixtures/eval-containers/bases.txt");
    let started = Instant::now();
    let r = kiln_plain(
        fleet,
        &[
            "regrade",
            results.to_str().unwrap(),
            "--base-map",
            base_map.to_str().unwrap(),
            "--ca-bundle",
            &ca,
            "--builder",
            builder,
        ],
        &[("TAG", "kiln-regrade-test")],
    );
    timed("regrade (grader rebuilt)", started);
    let said = String::from_utf8_lossy(&r.stdout);
    let _ = Command::new("docker")
        .args([
            "image",
            "rm",
            "ghcr.io/exgentic/benchmarks/agents-smoke:kiln-regrade-test",
        ])
        .output();
    assert!(
        r.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(
        said.contains("agents-smoke/0 × mini-swe-agent: ") && said.contains("pass→fail"),
        "{said}"
    );
    assert!(
        said.contains("flipped: 1 (1 pass→fail, 0 fail→pass)"),
        "{said}"
    );
    assert_eq!(std::fs::read(cell.join("result.json")).unwrap(), own);
    let regraded: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(cell.join("result.regraded-1.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(regraded["score"]["value"], 0.0);
    assert_eq!(regraded["score"]["passed"], false);
    assert_eq!(regraded["agent"], result["agent"]);
    assert!(cell.join("regraded-1/grader/reward.txt").is_file());
    let report = Command::new(KILN)
        .arg("report")
        .arg(results)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&report.stdout).contains("regraded"));

    // One command removes the kept state; the results stay.
    let c = kiln_plain(fleet, &["clean", results.to_str().unwrap()], &[]);
    assert!(c.status.success());
    let gone = Command::new("docker")
        .args(["image", "inspect", &kept])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "{kept} is still there");
    assert!(cell.join("result.json").is_file());
    for image in [
        "ghcr.io/exgentic/benchmarks/hello-ec:latest",
        "ghcr.io/exgentic/benchmarks/hello-ec-pt-first:latest",
    ] {
        let _ = Command::new("docker").args(["image", "rm", image]).output();
    }
}
