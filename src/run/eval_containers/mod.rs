//! `kiln run` on an eval-containers fleet (docs/layouts.md): upstream's eval image
//! (`evals/<b>--<a>`, built by `kiln build eval`) runs as its compose `runner` service
//! does, with its own entrypoint, agent launcher and grader, and kiln reads what it
//! writes (`/output/{task,agent,model}/result.json`) into its own results layout.
//!
//! The image's `/usr/local/bin/run` takes the lean "runner" path when
//! ANTHROPIC_BASE_URL is set (agent → `/grade.sh` → `write-result`, no in-container
//! gateway); kiln always sets it: to its model gateway with `--model`/`--replay`/
//! `--record` (src/run/model.rs, the gateway the only other host), else to that
//! gateway's name on no network at all, so the agent reaches no model.

pub mod keep;
pub mod shell;

use crate::printer::{errln, outln};
use crate::run::container::docker_cli;
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Context as _};
use serde_json::{json, Value};

use super::model::{self, ModelNet};
use super::reap::Owner;
use super::Options;
use crate::error::Failure;
use crate::fleet::{Benchmark, Env, Fleet};

/// What to run: benchmarks × tasks × agents × repeats of one fleet.
pub struct Selection<'a> {
    pub fleet: &'a Fleet,
    pub benchmarks: Vec<String>,
    pub agents: Vec<String>,
    pub tasks: Vec<String>,
    pub repeat: u32,
    /// Commit each run's container after the agent, before the grader (keep.rs).
    pub keep_state: bool,
}

pub(crate) struct Item<'a> {
    pub(crate) benchmark: &'a Benchmark,
    pub(crate) task: String,
    pub(crate) agent: String,
    pub(crate) repeat: u32,
    pub(crate) image: String,
}

/// Runs the selection, one run after another; the exit status (1: a run left no result).
pub fn run(sel: &Selection, opts: &Options) -> anyhow::Result<u8> {
    let items = items(sel)?;
    let owner = Owner::current();
    let mut failed = 0;
    for (seq, item) in items.iter().enumerate() {
        match one(seq, item, sel, opts, &owner) {
            Ok(Some(line)) => outln!("{line}"),
            Ok(None) => failed += 1,
            Err(e) => {
                errln!(
                    "error: {} {} {}: {e:#}",
                    item.benchmark.name,
                    item.task,
                    item.agent
                );
                failed += 1;
            }
        }
    }
    outln!("results: {}", opts.output.display());
    Ok(u8::from(failed > 0))
}

fn items<'a>(sel: &Selection<'a>) -> anyhow::Result<Vec<Item<'a>>> {
    let fleet = sel.fleet;
    if sel.benchmarks.is_empty() || sel.agents.is_empty() {
        return Err(Failure::usage(
            "name a benchmark and --agent: an eval image is one benchmark with one agent",
        ));
    }
    for a in &sel.agents {
        if !fleet.agents.iter().any(|x| &x.name == a) {
            return Err(Failure::usage(format!("unknown agent {a:?} of this fleet")));
        }
    }
    let mut out = Vec::new();
    for name in &sel.benchmarks {
        let b = fleet
            .benchmarks
            .iter()
            .find(|b| &b.name == name)
            .ok_or_else(|| Failure::usage(format!("unknown benchmark {name:?} of this fleet")))?;
        let tasks: Vec<String> = if sel.tasks.is_empty() {
            if !b.tasks_known {
                return Err(Failure::usage(format!(
                    "{name}: its task ids are known to its build only: name one with --task-id"
                )));
            }
            b.tasks.clone()
        } else {
            sel.tasks
                .iter()
                .map(|t| b.task(t).map(str::to_string))
                .collect::<anyhow::Result<_>>()
                .map_err(crate::fleet::refused_to_usage)?
        };
        for task in &tasks {
            for agent in &sel.agents {
                let per_task = (b.env == Env::PerTask).then_some(task.as_str());
                let image = fleet.naming.eval(&b.name, per_task, agent);
                if sel.keep_state && image_exists(&image) {
                    keep::check_image(&image).map_err(|e| Failure::usage(format!("{e:#}")))?;
                }
                if !image_exists(&image) {
                    return Err(Failure::usage(format!(
                        "{image} is not in the engine's store: build it first (`kiln build eval {name} --agent {agent}`{}; `kiln run` does not build on this layout)",
                        if per_task.is_some() { format!(" --task-id {task}") } else { String::new() }
                    )));
                }
                for repeat in 1..=sel.repeat {
                    out.push(Item {
                        benchmark: b,
                        task: task.clone(),
                        agent: agent.clone(),
                        repeat,
                        image: image.clone(),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Whether the engine's store holds `image`.
pub fn image_exists(image: &str) -> bool {
    duct::cmd!("docker", "image", "inspect", image)
        .stdout_null()
        .stderr_null()
        .unchecked()
        .run()
        .is_ok_and(|o| o.status.success())
}

/// The environment of upstream's compose `runner` service (containers/compose/runner.yaml):
/// the axes as EVAL_* and bare names, the gateway's endpoints, placeholder keys.
fn env(item: &Item, model: &str, timeout: Option<u64>) -> Vec<(String, String)> {
    let base = format!("http://{}:{}", model::GATEWAY_HOST, model::GATEWAY_PORT);
    // A per-task image holds its one task as task 0.
    let runtime_task = if item.benchmark.env == Env::PerTask {
        "0"
    } else {
        &item.task
    };
    let mut env: Vec<(String, String)> = [
        ("EVAL_AGENT", item.agent.as_str()),
        ("AGENT", &item.agent),
        ("EVAL_TASK_ID", runtime_task),
        ("TASK_ID", &item.task),
        ("BENCHMARK", &item.benchmark.name),
        ("EVAL_MODEL", model),
        ("MODEL", model),
        ("OPENAI_API_KEY", "sk-proxy"),
        ("ANTHROPIC_API_KEY", "sk-proxy"),
        ("GEMINI_API_KEY", "sk-proxy"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.push(("ANTHROPIC_BASE_URL".into(), base.clone()));
    env.push(("OPENAI_BASE_URL".into(), format!("{base}/v1")));
    if let Some(t) = timeout {
        env.push(("EVAL_TIMEOUT".into(), t.to_string()));
        env.push(("TIMEOUT".into(), t.to_string()));
    }
    env
}

/// One run: the container, its `/output` and verifier logs copied out, kiln's
/// result.json and run.json written. The line to print, or None when it left no result.
fn one(
    seq: usize,
    item: &Item,
    sel: &Selection,
    opts: &Options,
    owner: &Owner,
) -> anyhow::Result<Option<String>> {
    let b = &item.benchmark.name;
    let mut out = super::result_dir(&opts.output, b, &item.task, &item.agent);
    if sel.repeat > 1 {
        out = out.join(format!("repeat-{}", item.repeat));
    }
    keep::remove_recorded(&out);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let name = super::container_name(seq, b, &item.task, &item.agent, item.repeat);
    let model_name = opts.gateway.as_ref().map(|m| m.model.as_str());
    let net = match &opts.gateway {
        Some(m) => Some(ModelNet::start(&name, m, [b, &item.task, &item.agent])?),
        None => None,
    };
    let mut create: Vec<String> = vec!["create".into(), "--name".into(), name.clone()];
    for (k, v) in owner.labels() {
        create.extend(["--label".into(), format!("{k}={v}")]);
    }
    create.push("--network".into());
    create.push(net.as_ref().map_or("none".into(), |n| n.network.clone()));
    for (k, v) in env(item, model_name.unwrap_or(""), opts.agent_timeout) {
        create.extend(["-e".into(), format!("{k}={v}")]);
    }
    // `-e NAME` alone: docker takes the value from kiln's environment, off the command line.
    for k in &opts.pass_env {
        create.extend(["-e".into(), k.clone()]);
    }
    let run_id = keep::run_id(item.repeat);
    let gate = if sel.keep_state {
        let gate = keep::Gate::new()?;
        create.extend(gate.mount_args());
        Some(gate)
    } else {
        None
    };
    create.push(item.image.clone());
    if gate.is_some() {
        create.extend(["bash".into(), "-c".into(), keep::WRAPPER.into()]);
    }
    let args: Vec<&str> = create.iter().map(String::as_str).collect();
    let created = docker_cli(&args)?;
    if !created.status.success() {
        return Err(anyhow!(
            "docker create: {}",
            String::from_utf8_lossy(&created.stderr).trim()
        ));
    }
    let started = Instant::now();
    let (ran, kept) = match &gate {
        Some(gate) => {
            let k = keep::Keep {
                image: keep::image_name(b, &item.task, &item.agent, &run_id),
                run_id: run_id.clone(),
                task: &item.task,
                owner_labels: owner.labels().into_iter().map(|(k, _)| k).collect(),
                secret_names: &opts.pass_env,
            };
            match keep::start_and_keep(&name, gate, &k) {
                Ok((out, kept)) => (Ok(out), Some(kept)),
                Err(e) => (Err(e), None),
            }
        }
        None => (docker_cli(&["start", "--attach", &name]), None),
    };
    let wall_sec = started.elapsed().as_secs_f64();
    let copied = copy_out(&name, &out);
    let _ = docker_cli(&["rm", "-f", &name]);
    let ran = ran?;
    std::fs::write(out.join("runner.stdout.log"), &ran.stdout)?;
    std::fs::write(out.join("runner.stderr.log"), &ran.stderr)?;
    let exit = ran.status.code().unwrap_or(-1);
    let upstream = read_upstream(&out.join("output"));
    let score = upstream.as_ref().ok().map(|u| u.reward);
    let mut result = kiln_result(item, model_name, wall_sec, &upstream, &run_id);
    let stats = match net {
        Some(net) => Some(net.finish(score, &out.join("gateway.log"))?),
        None => None,
    };
    if let (Some(stats), Some(m)) = (&stats, &opts.gateway) {
        result["model"] = model::section(m, stats, score);
    }
    std::fs::write(
        out.join("result.json"),
        serde_json::to_string_pretty(&result)? + "\n",
    )?;
    let replay = match &opts.gateway {
        Some(model::ModelSpec {
            mode: model::ModelMode::Replay { fixture, .. },
            ..
        }) => Some(crate::run::matrix::fixture_identity(fixture)?),
        _ => None,
    };
    let run = json!({
        "benchmark": b, "task": item.task, "agent": item.agent,
        "image": item.image, "store": "docker", "runner_exit": exit,
        "wall_sec": wall_sec, "kiln_version": env!("CARGO_PKG_VERSION"),
        "output_error": copied.err().map(|e| format!("{e:#}")), "container": name,
        "made_from": {"inputs_digest": null, "model": model_name, "replay": replay,
                      "repeat": item.repeat},
        "kept_state": kept,
    });
    std::fs::write(
        out.join("run.json"),
        serde_json::to_string_pretty(&run)? + "\n",
    )?;
    let secrets: Vec<(String, String)> = opts
        .pass_env
        .iter()
        .map(|k| (k.clone(), crate::env::named(k).unwrap_or_default()))
        .collect();
    super::scrub(&out, &secrets)?;
    let rep = if sel.repeat > 1 {
        format!(" #{}", item.repeat)
    } else {
        String::new()
    };
    Ok(match upstream {
        Ok(u) => Some(format!(
            "{b} {} {}{rep}: reward {} ({}){}",
            item.task,
            item.agent,
            u.reward,
            if u.passed { "passed" } else { "failed" },
            match &kept {
                Some(crate::run::kept_state::Kept { image: Some(i), .. }) =>
                    format!("; state kept as {i}"),
                Some(crate::run::kept_state::Kept { error: Some(e), .. }) =>
                    format!("; no state kept: {e}"),
                _ => String::new(),
            }
        )),
        Err(e) => {
            errln!("error: {b} {} {}{rep}: {e:#}", item.task, item.agent);
            None
        }
    })
}

/// `/output` (upstream's results and the agent's logs) to `<out>/output`, the grader's
/// `/logs/verifier` to `<out>/grader`.
fn copy_out(name: &str, out: &Path) -> anyhow::Result<()> {
    let verifier = out.join("grader");
    // Absent when the grader never ran; the result says so.
    let _ = docker_cli(&[
        "cp",
        &format!("{name}:/logs/verifier"),
        &verifier.display().to_string(),
    ]);
    let o = docker_cli(&[
        "cp",
        &format!("{name}:/output"),
        &out.join("output").display().to_string(),
    ])?;
    if !o.status.success() {
        return Err(anyhow!(
            "copying /output: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    // `kiln report` reads every result.json under the results root; upstream's are not kiln's.
    for part in ["task", "agent", "model"] {
        let dir = out.join("output").join(part);
        if dir.join("result.json").is_file() {
            std::fs::rename(dir.join("result.json"), dir.join(UPSTREAM_RESULT))?;
        }
    }
    Ok(())
}

/// What upstream's `result.json` files are renamed to in `<out>/output/{task,agent,model}/`.
pub(crate) const UPSTREAM_RESULT: &str = "result.upstream.json";

/// What upstream's `write-result` wrote.
#[derive(Debug)]
pub(crate) struct Upstream {
    reward: f64,
    passed: bool,
    started_at: Option<String>,
    finished_at: Option<String>,
}

/// Upstream's `/output/<part>/result.json`, as copied out.
fn read_json(output: &Path, part: &str) -> anyhow::Result<Value> {
    let path = output.join(part).join(UPSTREAM_RESULT);
    let text = std::fs::read_to_string(&path)
        .map_err(|_| anyhow!("the eval wrote no /output/{part}/result.json"))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

pub(crate) fn read_upstream(output: &Path) -> anyhow::Result<Upstream> {
    let task = read_json(output, "task")?;
    let reward = task["reward"]
        .as_f64()
        .ok_or_else(|| anyhow!("task/result.json: reward is not a number"))?;
    let agent = read_json(output, "agent").unwrap_or(Value::Null);
    let time = |k: &str| agent[k].as_str().map(str::to_string);
    Ok(Upstream {
        reward,
        passed: task["passed"].as_bool().unwrap_or(reward >= 1.0),
        started_at: time("started_at"),
        finished_at: time("ended_at"),
    })
}

/// kiln's result.json (schema 2, as the Harbor runs write it: src/run/harbor/result.rs)
/// from upstream's: its reward is the score, `passed` its own verdict.
pub(crate) fn kiln_result(
    item: &Item,
    model: Option<&str>,
    wall_sec: f64,
    upstream: &anyhow::Result<Upstream>,
    run_id: &str,
) -> Value {
    let now = crate::labels::rfc3339_utc(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    );
    let (status, value, passed, errors) = match upstream {
        Ok(u) => ("completed", u.reward, u.passed, vec![]),
        Err(e) => (
            "grader_error",
            0.0,
            false,
            vec![json!({"phase": "grade", "message": format!("{e:#}")})],
        ),
    };
    let ok = upstream.as_ref().ok();
    let started = ok.and_then(|u| u.started_at.clone()).unwrap_or(now.clone());
    let finished = ok.and_then(|u| u.finished_at.clone()).unwrap_or(now);
    let b = &item.benchmark.name;
    json!({
        "schema_version": "2",
        "runner_version": env!("CARGO_PKG_VERSION"),
        "run_id": run_id,
        "status": status,
        "task": {"id": item.task, "title": format!("{b} {}", item.task), "prompt_variant": "default",
                 "prompt_sha256": "", "scenario_sha256": ""},
        "agent": {"id": item.agent, "model": model.unwrap_or(""), "exit_code": null, "signal": null,
                  "timed_out": false, "wall_sec": wall_sec, "privileges_dropped": true,
                  "metrics": null},
        "score": {"mode": "reward", "value": value, "passed": passed, "raw_value": value,
                  "threshold": 1.0, "highest_gate": null, "n_gates": null, "caps_applied": []},
        "gates": [],
        "checks": [],
        "rewards": {"reward": value},
        "fixtures": {},
        "timing": {"started_at": started, "finished_at": finished, "wall_sec": wall_sec,
                   "prepare": null, "agent": null, "grade": null},
        "warnings": [],
        "errors": errors,
        "model": null
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_results_read_and_missing_ones_are_named() {
        let d = tempfile::tempdir().unwrap();
        let err = read_upstream(d.path()).unwrap_err().to_string();
        assert!(err.contains("/output/task/result.json"), "{err}");
        std::fs::create_dir_all(d.path().join("task")).unwrap();
        std::fs::create_dir_all(d.path().join("agent")).unwrap();
        std::fs::write(
            d.path().join("task").join(UPSTREAM_RESULT),
            r#"{"task_id":"0","benchmark":"b","reward":1,"passed":true}"#,
        )
        .unwrap();
        std::fs::write(
            d.path().join("agent").join(UPSTREAM_RESULT),
            r#"{"agent":"a","started_at":"2026-01-01T00:00:00Z","ended_at":"2026-01-01T00:00:09Z"}"#,
        )
        .unwrap();
        let u = read_upstream(d.path()).unwrap();
        assert_eq!((u.reward, u.passed), (1.0, true));
        assert_eq!(u.finished_at.as_deref(), Some("2026-01-01T00:00:09Z"));
    }

    fn bench(env: Env) -> Benchmark {
        Benchmark {
            name: "b".into(),
            target: "benchmark-b".into(),
            env,
            description: String::new(),
            tasks: vec!["7".into()],
            task_count: 1,
            tasks_known: true,
            released: false,
            labels: Default::default(),
        }
    }

    #[test]
    fn a_per_task_image_holds_its_task_as_0_and_every_run_takes_the_lean_path() {
        let b = bench(Env::PerTask);
        let item = Item {
            benchmark: &b,
            task: "7".into(),
            agent: "a".into(),
            repeat: 1,
            image: "i".into(),
        };
        let e = env(&item, "m", None);
        let get = |k: &str| e.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(
            (get("EVAL_TASK_ID"), get("TASK_ID")),
            (Some("0"), Some("7"))
        );
        assert_eq!(get("ANTHROPIC_BASE_URL"), Some("http://kiln-gateway:8080"));
        assert_eq!(get("EVAL_TIMEOUT"), None);
        let shared = bench(Env::SharedEnv);
        let item = Item {
            benchmark: &shared,
            ..item
        };
        assert!(env(&item, "m", Some(9)).contains(&("EVAL_TASK_ID".into(), "7".into())));
    }

    #[test]
    fn no_upstream_result_is_a_grader_error_scored_0() {
        let b = bench(Env::SharedEnv);
        let item = Item {
            benchmark: &b,
            task: "7".into(),
            agent: "a".into(),
            repeat: 1,
            image: "i".into(),
        };
        let r = kiln_result(
            &item,
            None,
            1.0,
            &Err(anyhow!("the eval wrote no /output/task/result.json")),
            "r1",
        );
        assert_eq!(r["status"], "grader_error");
        assert_eq!(r["score"]["value"], 0.0);
        assert!(r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no /output/task"));
        let ok = Upstream {
            reward: 0.5,
            passed: false,
            started_at: Some("s".into()),
            finished_at: None,
        };
        let r = kiln_result(&item, Some("m"), 1.0, &Ok(ok), "r1");
        assert_eq!(
            (r["status"].as_str(), r["score"]["passed"].as_bool()),
            (Some("completed"), Some(false))
        );
        assert_eq!(
            (
                r["agent"]["model"].as_str(),
                r["timing"]["started_at"].as_str()
            ),
            (Some("m"), Some("s"))
        );
    }
}
