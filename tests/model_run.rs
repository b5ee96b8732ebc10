//! mini-swe-agent, a real third-party agent, run offline through kiln's model gateway
//! on the real Docker Engine: every shipped fixture replays to a passing score equal to
//! the recorded one; a fixture cut short is reported exhausted; a fixture whose
//! conversation no longer matches the environment is reported diverged; a record →
//! replay round trip through a second gateway keeps the score and no secret; from the
//! agent phase, only the gateway is reachable. Opt-in: `KILN_TEST_DOCKER=1`.
//!
//! The mini-swe-agent image is built once with bake and `--ca-bundle` (PyPI through
//! this machine's TLS interception); later runs find it up to date.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

mod fleet_support;

use kiln::gateway::fixture::{Exchange, Fixture, Header};
use serde_json::{json, Value};

static ENGINE: Mutex<()> = Mutex::new(());
static READY: OnceLock<PathBuf> = OnceLock::new();

fn enabled() -> bool {
    if std::env::var("KILN_TEST_DOCKER").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("skipped: set KILN_TEST_DOCKER=1 to run mini-swe-agent through the model gateway");
    false
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kiln_with(runner: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
    c.args(args).current_dir(repo()).env("KILN_RUNNER", runner);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("kiln runs")
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr (tail):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// The static runner and the mini-swe-agent image, once per test binary.
fn setup() -> PathBuf {
    READY
        .get_or_init(|| {
            let runner = fleet_support::static_runner();
            let out = kiln_with(&runner, fleet_support::BUILD_MINI_SWE_AGENT, &[]);
            assert!(
                out.status.success(),
                "building mini-swe-agent: {}",
                show(&out)
            );
            runner
        })
        .clone()
}

struct Run {
    out: Output,
    result: Value,
}

fn run(
    runner: &Path,
    benchmark: &str,
    task: &str,
    extra: &[&str],
    env: &[(&str, &str)],
    dir: &Path,
) -> Run {
    let mut args = vec![
        "run",
        benchmark,
        "--agent",
        "mini-swe-agent",
        "--task-id",
        task,
        "--model",
        "gpt-test",
    ];
    let output = dir.to_str().unwrap().to_string();
    // The agent image is built by setup() with bake (build secrets); everything else
    // with the engine, which finds the agent up to date.
    args.extend([
        "--output",
        output.as_str(),
        "--backend",
        "engine",
        "--quiet",
    ]);
    args.extend(extra);
    let out = kiln_with(runner, &args, env);
    let path = dir
        .join(benchmark)
        .join(task.to_lowercase())
        .join("mini-swe-agent/result.json");
    let result = std::fs::read_to_string(&path)
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), show(&out)));
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/result.schema.json")).unwrap(),
    )
    .unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let problems: Vec<String> = v
        .iter_errors(&result)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        problems.is_empty(),
        "{} breaks the schema: {problems:?}",
        path.display()
    );
    Run { out, result }
}

/// The shipped fixtures: (benchmark, task, path).
fn fixtures() -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    for b in std::fs::read_dir(repo().join("fixtures/replay")).unwrap() {
        let b = b.unwrap().path();
        if b.file_name().unwrap() == "scripts" {
            continue;
        }
        for t in std::fs::read_dir(&b).unwrap() {
            let f = t.unwrap().path().join("mini-swe-agent.jsonl");
            if f.is_file() {
                let name = |p: &Path| p.file_name().unwrap().to_string_lossy().to_string();
                let task = Fixture::read(&f).unwrap().header.task;
                out.push((name(&b), task, f));
            }
        }
    }
    out.sort();
    out
}

fn replay(r: &Run) -> &Value {
    &r.result["model"]["replay"]
}

#[test]
fn every_fixture_replays_to_its_recorded_score() {
    if !enabled() {
        return;
    }
    let _g = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let runner = setup();
    let fixtures = fixtures();
    let benchmarks: std::collections::BTreeSet<&str> =
        fixtures.iter().map(|f| f.0.as_str()).collect();
    assert!(fixtures.len() >= 3 && benchmarks.len() >= 2, "{fixtures:?}");
    for (b, t, f) in &fixtures {
        let dir = tempfile::tempdir().unwrap();
        let r = run(
            &runner,
            b,
            t,
            &["--replay", f.to_str().unwrap()],
            &[],
            dir.path(),
        );
        assert!(r.out.status.success(), "{b}/{t}: {}", show(&r.out));
        let rp = replay(&r);
        assert_eq!(
            r.result["score"]["passed"],
            true,
            "{b}/{t}: {}",
            show(&r.out)
        );
        assert_eq!(rp["score_equals_recorded"], true, "{b}/{t}: {rp}");
        assert_eq!(rp["diverged"], json!([]), "{b}/{t}: {rp}");
        assert_eq!(rp["exhausted"], 0, "{b}/{t}: {rp}");
        assert_eq!(rp["turns_served"], rp["turns_recorded"], "{b}/{t}: {rp}");
        eprintln!(
            "{b}/{t}: score {} (recorded {}), {} turns",
            r.result["score"]["value"], rp["recorded_score"], rp["turns_served"]
        );
    }
}

fn count_lines() -> (Fixture, PathBuf) {
    let f = repo().join("fixtures/replay/terminal-lite/count-lines/mini-swe-agent.jsonl");
    (Fixture::read(&f).unwrap(), f)
}

#[test]
fn a_fixture_cut_short_is_exhausted() {
    if !enabled() {
        return;
    }
    let _g = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let runner = setup();
    let (mut f, _) = count_lines();
    f.exchanges.truncate(f.exchanges.len() - 1);
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.jsonl");
    f.write(&short).unwrap();
    let r = run(
        &runner,
        "terminal-lite",
        "count-lines",
        &["--replay", short.to_str().unwrap()],
        &[],
        dir.path(),
    );
    let rp = replay(&r);
    assert!(rp["exhausted"].as_u64().unwrap() >= 1, "{rp}");
    assert_eq!(rp["turns_served"], f.exchanges.len(), "{rp}");
    let stdout = String::from_utf8_lossy(&r.out.stdout);
    assert!(stdout.contains("exhausted"), "{}", show(&r.out));
    eprintln!("cut short: {}", stdout.trim());
}

#[test]
fn a_changed_environment_diverges() {
    if !enabled() {
        return;
    }
    let _g = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let runner = setup();
    // The recording saw a corpus with a file the image does not have any more: the
    // agent's first observation (the `find` listing) now differs from the recorded one.
    let (mut f, _) = count_lines();
    let req = &mut f.exchanges[1].request;
    let msgs = req["messages"].as_array_mut().unwrap();
    let tool = msgs.iter_mut().rev().find(|m| m["role"] == "tool").unwrap();
    let text = tool["content"].as_str().unwrap().replace("./", "./old/");
    tool["content"] = json!(text);
    let dir = tempfile::tempdir().unwrap();
    let changed = dir.path().join("changed.jsonl");
    f.write(&changed).unwrap();
    let r = run(
        &runner,
        "terminal-lite",
        "count-lines",
        &["--replay", changed.to_str().unwrap()],
        &[],
        dir.path(),
    );
    let rp = replay(&r);
    let d = &rp["diverged"][0];
    assert_eq!(d["turn"], 2, "{rp}");
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .contains("(tool): text differs"),
        "{rp}"
    );
    assert_eq!(r.result["score"]["passed"], false, "{}", show(&r.out));
    let stdout = String::from_utf8_lossy(&r.out.stdout);
    assert!(stdout.contains("diverged at turn 2"), "{}", show(&r.out));
    eprintln!("diverged: {}", stdout.trim());
    // kiln report shows it too.
    let rep = kiln_with(&runner, &["report", dir.path().to_str().unwrap()], &[]);
    assert!(
        String::from_utf8_lossy(&rep.stdout).contains("diverged at turn 2"),
        "{}",
        show(&rep)
    );
}

#[test]
fn record_then_replay_through_a_second_gateway() {
    if !enabled() {
        return;
    }
    let _g = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let runner = setup();
    let (_, upstream_fixture) = count_lines();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // The upstream: a second gateway, strict, on the host (the recording gateway reaches
    // it through the default bridge).
    let upstream = rt
        .block_on(kiln::gateway::start(&kiln::gateway::Options {
            listen: "0.0.0.0:0".parse().unwrap(),
            mode: kiln::gateway::Mode::Replay {
                fixture: upstream_fixture,
                lenient: false,
                speed: kiln::gateway::Speed(None),
            },
            stats: None,
            model: None,
        }))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let recorded = dir.path().join("recorded.jsonl");
    let secret = "sk-kiln-upstream-secret-90817";
    let url = format!("http://172.17.0.1:{}", upstream.addr.port());
    let r = run(
        &runner,
        "terminal-lite",
        "count-lines",
        &[
            "--record",
            recorded.to_str().unwrap(),
            "--upstream",
            &url,
            "--upstream-key-env",
            "KILN_TEST_UPSTREAM_KEY",
        ],
        &[("KILN_TEST_UPSTREAM_KEY", secret)],
        dir.path(),
    );
    let up = rt.block_on(upstream.stop()).unwrap();
    assert!(r.out.status.success(), "{}", show(&r.out));
    assert_eq!(r.result["score"]["passed"], true, "{}", show(&r.out));
    assert_eq!(
        up.replay.as_ref().unwrap().diverged,
        vec![],
        "the recording's upstream saw other requests"
    );
    let text = std::fs::read_to_string(&recorded).unwrap();
    assert!(
        !text.contains(secret),
        "the upstream key reached the fixture"
    );
    for entry in walk(dir.path()) {
        let t = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&t).contains(secret),
            "{} holds the key",
            entry.display()
        );
    }
    let f = Fixture::read(&recorded).unwrap();
    assert_eq!(f.header.score, r.result["score"]["value"].as_f64());
    let dir2 = tempfile::tempdir().unwrap();
    let again = run(
        &runner,
        "terminal-lite",
        "count-lines",
        &["--replay", recorded.to_str().unwrap()],
        &[],
        dir2.path(),
    );
    assert_eq!(
        replay(&again)["score_equals_recorded"],
        true,
        "{}",
        show(&again.out)
    );
    assert_eq!(again.result["score"]["value"], r.result["score"]["value"]);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_agent_reaches_only_the_gateway() {
    if !enabled() {
        return;
    }
    let _g = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let runner = setup();
    // Something listening on every host address, to be unreachable.
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let host_ip = String::from_utf8(Command::new("hostname").arg("-I").output().unwrap().stdout)
        .unwrap()
        .split_whitespace()
        .find(|a| !a.starts_with("172.") && a.contains('.'))
        .unwrap_or("192.0.2.2")
        .to_string();
    let probe = format!(
        "/opt/agent/venv/bin/python3 - <<'EOF'\nimport socket\nfor host, port in [('kiln-gateway', 8080), ('{host_ip}', {port}), ('172.17.0.1', {port}), ('deb.debian.org', 80)]:\n    try:\n        socket.create_connection((host, port), timeout=5).close(); print(host, 'reachable')\n    except OSError as e:\n        print(host, 'unreachable', type(e).__name__)\nEOF"
    );
    let turn = |i: usize, cmd: &str| Exchange {
        route: "POST /v1/chat/completions".into(),
        request: json!({"model": "gpt-test", "messages": []}),
        status: 200,
        response: Some(
            json!({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "probe",
            "tool_calls": [{"id": format!("call_{i}"), "type": "function", "function": {"name": "bash", "arguments": json!({"command": cmd}).to_string()}}]}}]}),
        ),
        events: None,
    };
    let f = Fixture {
        header: Header {
            model: "gpt-test".into(),
            ..Header::new()
        },
        exchanges: vec![
            turn(1, &probe),
            turn(2, "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"),
        ],
    };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("probe.jsonl");
    f.write(&script).unwrap();
    let r = run(
        &runner,
        "terminal-lite",
        "count-lines",
        &["--replay", script.to_str().unwrap(), "--lenient"],
        &[],
        dir.path(),
    );
    drop(listener);
    let traj = std::fs::read_to_string(
        dir.path()
            .join("terminal-lite/count-lines/mini-swe-agent/agent/trajectory.json"),
    )
    .unwrap_or_else(|e| panic!("no trajectory: {e}\n{}", show(&r.out)));
    assert!(traj.contains("kiln-gateway reachable"), "{traj}");
    for host in [host_ip.as_str(), "172.17.0.1", "deb.debian.org"] {
        assert!(
            traj.contains(&format!("{host} unreachable")),
            "{host}: {traj}"
        );
    }
}
