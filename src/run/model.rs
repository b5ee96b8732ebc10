//! The model side of a run (`kiln run --model M --replay F | --record F --upstream U`):
//! a network of its own for the eval container, on which the only other host is a
//! kiln model gateway.
//!
//! Why the gateway runs in a container and the network is `--internal` with
//! `com.docker.network.bridge.inhibit_ipv4`: measured on Docker 20.10, a container
//! on a plain `--internal` network still reaches every address of the host (the
//! bridge's own IP, eth0, docker0: the host's INPUT chain is not filtered), so a
//! gateway bound on the host would leave the host open to the agent. With the
//! bridge holding no host address, the network has no way out at all; the gateway,
//! kiln's own binary bind-mounted read-only into `debian:bookworm-slim` (kiln links
//! glibc dynamically; the image is the fleet's base, present locally), is the only
//! other host. In record mode the gateway container is also on the default bridge,
//! to reach the upstream; the eval container is not.
//!
//! The gateway writes its counters to a state directory bind-mounted from the host
//! after every call; kiln reads them when the run is over and writes them into
//! result.json's `model` section (docs/model-gateway.md).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use crate::gateway::fixture::Fixture;
use crate::gateway::stats::Stats;

/// The image the gateway container runs kiln's binary in (`KILN_GATEWAY_IMAGE` overrides).
pub const GATEWAY_IMAGE: &str = "debian:bookworm-slim";

/// [`GATEWAY_IMAGE`], or the one `KILN_GATEWAY_IMAGE` names.
pub fn gateway_image() -> String {
    crate::env::GATEWAY_IMAGE
        .get()
        .unwrap_or_else(|| GATEWAY_IMAGE.into())
}
/// The gateway's name on the run's network, and its port.
pub const GATEWAY_HOST: &str = "kiln-gateway";
pub const GATEWAY_PORT: u16 = 8080;
const STATE_MOUNT: &str = "/kiln-gateway";

/// What the gateway does for this run.
#[derive(Debug, Clone)]
pub enum ModelMode {
    Replay {
        fixture: PathBuf,
        lenient: bool,
        /// Pacing of streamed answers.
        speed: crate::gateway::Speed,
    },
    Record {
        fixture: PathBuf,
        upstream: String,
        /// The environment variable holding the upstream key (handed to the gateway only).
        api_key_env: Option<String>,
        /// `--ca-bundle`, trusted for an https upstream.
        ca_bundle: Option<PathBuf>,
    },
}

#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub model: String,
    pub mode: ModelMode,
}

/// The network and the gateway of one run, removed by [`ModelNet::finish`] or on drop.
pub struct ModelNet {
    pub network: String,
    container: String,
    state: tempfile::TempDir,
    spec: ModelSpec,
    done: bool,
}

fn docker(args: &[String]) -> anyhow::Result<String> {
    let out = duct::cmd("docker", args)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .context("running docker")?;
    if !out.status.success() {
        bail!(
            "docker {} failed: {}",
            args.first().map(String::as_str).unwrap_or(""),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn s(v: &str) -> String {
    v.to_string()
}

impl ModelNet {
    /// The environment the agent gets with the gateway at `base` (`http://HOST:PORT`):
    /// both APIs' base URLs and placeholder keys (the model goes to the runner as
    /// `KILN_MODEL`, which the runner hands on as MODEL).
    pub fn agent_env(base: &str) -> Vec<(String, String)> {
        vec![
            (s("OPENAI_BASE_URL"), format!("{base}/v1")),
            (s("OPENAI_API_BASE"), format!("{base}/v1")),
            (s("ANTHROPIC_BASE_URL"), base.to_string()),
            (s("OPENAI_API_KEY"), s("kiln-gateway-placeholder")),
            (s("ANTHROPIC_API_KEY"), s("kiln-gateway-placeholder")),
        ]
    }

    /// Creates the network and starts the gateway; returns once it listens.
    /// `run` is `(benchmark, task, agent)`, for a recorded fixture's header.
    pub fn start(name: &str, spec: &ModelSpec, run: [&str; 3]) -> anyhow::Result<ModelNet> {
        let state = tempfile::Builder::new()
            .prefix("kiln-gateway-")
            .tempdir()
            .context("creating the gateway's state directory")?;
        let exe = std::env::current_exe().context("locating kiln's own binary")?;
        let network = format!("{name}-net");
        let container = format!("{name}-gateway");
        let net = ModelNet {
            network: network.clone(),
            container: container.clone(),
            state,
            spec: spec.clone(),
            done: false,
        };
        docker(&[
            s("network"),
            s("create"),
            s("--internal"),
            s("-o"),
            s("com.docker.network.bridge.inhibit_ipv4=true"),
            s("--label"),
            s("kiln.run=true"),
            network.clone(),
        ])?;
        let image = gateway_image();
        let mut create = vec![
            s("create"),
            s("--name"),
            container.clone(),
            s("--label"),
            s("kiln.run=true"),
            s("--network"),
            network.clone(),
            s("--network-alias"),
            s(GATEWAY_HOST),
            s("-v"),
            format!("{}:/usr/local/bin/kiln:ro", exe.display()),
            s("-v"),
            format!("{}:{STATE_MOUNT}", net.state.path().display()),
        ];
        let listen = format!("0.0.0.0:{GATEWAY_PORT}");
        let stats = format!("{STATE_MOUNT}/stats.json");
        let mut command = vec![s("/usr/local/bin/kiln"), s("gateway")];
        let mut key_env = None;
        match &spec.mode {
            ModelMode::Replay {
                fixture,
                lenient,
                speed,
            } => {
                Fixture::read(fixture)?;
                std::fs::copy(fixture, net.state.path().join("fixture.jsonl"))
                    .with_context(|| format!("copying {}", fixture.display()))?;
                command.extend([s("replay"), format!("{STATE_MOUNT}/fixture.jsonl")]);
                if *lenient {
                    command.push(s("--lenient"));
                }
                command.extend([s("--speed"), speed.to_string()]);
            }
            ModelMode::Record {
                upstream,
                api_key_env,
                ca_bundle,
                ..
            } => {
                command.extend([
                    s("record"),
                    s("--upstream"),
                    upstream.clone(),
                    s("--output"),
                    format!("{STATE_MOUNT}/fixture.jsonl"),
                    s("--model"),
                    spec.model.clone(),
                    s("--benchmark"),
                    s(run[0]),
                    s("--task"),
                    s(run[1]),
                    s("--agent"),
                    s(run[2]),
                ]);
                if upstream.starts_with("https://") {
                    // The sidecar trusts what this host trusts (its image may carry no roots).
                    let trust = crate::tls::Trust::new(ca_bundle.clone());
                    std::fs::write(
                        net.state.path().join("ca-bundle.pem"),
                        crate::tls::bundle_pem(&trust)?,
                    )?;
                    command.extend([s("--ca-bundle"), format!("{STATE_MOUNT}/ca-bundle.pem")]);
                }
                if let Some(name) = api_key_env {
                    let value = crate::env::named(name).ok_or_else(|| {
                        anyhow::anyhow!(
                            "--api-key-env {name}: {name} is not set in kiln's environment"
                        )
                    })?;
                    // `--env NAME` alone: docker reads the value from our environment, so
                    // the key never appears on a command line.
                    create.extend([s("--env"), name.clone()]);
                    command.extend([
                        s("--api-key-env"),
                        name.clone(),
                        s("--redact-env"),
                        name.clone(),
                    ]);
                    key_env = Some((name.clone(), value));
                }
            }
        }
        command.extend([s("--listen"), listen, s("--stats"), stats]);
        create.push(image);
        create.extend(command);
        let mut expr = duct::cmd("docker", &create)
            .stdout_capture()
            .stderr_capture()
            .unchecked();
        if let Some((k, v)) = &key_env {
            expr = expr.env(k, v);
        }
        let out = expr.run().context("running docker create")?;
        if !out.status.success() {
            bail!(
                "creating the gateway container: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        if matches!(spec.mode, ModelMode::Record { .. }) {
            docker(&[s("network"), s("connect"), s("bridge"), container.clone()])?;
        }
        docker(&[s("start"), container.clone()])?;
        net.wait_ready()?;
        Ok(net)
    }

    fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.state.path().join("stats.json").is_file() {
                return Ok(());
            }
            let running = docker(&[
                s("inspect"),
                s("--format"),
                s("{{.State.Running}}"),
                self.container.clone(),
            ])?;
            if running != "true" {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let logs = duct::cmd("docker", ["logs", &self.container])
            .stderr_to_stdout()
            .stdout_capture()
            .unchecked()
            .run()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        bail!("the model gateway did not start: {logs}")
    }

    /// Stops the gateway (it writes its final counters), removes it and the network,
    /// and returns the counters. In record mode the fixture goes to its place, its
    /// header holding `score`.
    pub fn finish(mut self, score: Option<f64>, log_to: &Path) -> anyhow::Result<Stats> {
        self.done = true;
        let stopped = docker(&[s("stop"), s("-t"), s("10"), self.container.clone()]);
        let stats_path = self.state.path().join("stats.json");
        let stats: anyhow::Result<Stats> = std::fs::read_to_string(&stats_path)
            .with_context(|| format!("reading {}", stats_path.display()))
            .and_then(|t| Ok(serde_json::from_str(&t)?));
        let logs = duct::cmd("docker", ["logs", &self.container])
            .stderr_to_stdout()
            .stdout_capture()
            .unchecked()
            .run()
            .map(|o| o.stdout)
            .unwrap_or_default();
        let _ = std::fs::write(log_to, logs);
        self.remove();
        stopped?;
        if let ModelMode::Record { fixture, .. } = &self.spec.mode {
            let mut f = Fixture::read(&self.state.path().join("fixture.jsonl"))?;
            f.header.score = score;
            f.write(fixture)?;
        }
        stats
    }

    fn remove(&self) {
        let _ = docker(&[s("rm"), s("-f"), self.container.clone()]);
        let _ = docker(&[s("network"), s("rm"), self.network.clone()]);
    }
}

impl Drop for ModelNet {
    fn drop(&mut self) {
        if !self.done {
            self.remove();
        }
    }
}

/// result.json's `model` section from the gateway's counters and the run's score.
pub fn section(spec: &ModelSpec, stats: &Stats, score: Option<f64>) -> Value {
    let replay = stats.replay.as_ref().map(|r| {
        let equal = match (r.recorded_score, score) {
            (Some(a), Some(b)) => Some((a - b).abs() < 1e-9),
            _ => None,
        };
        json!({
            "turns_recorded": r.turns_recorded,
            "turns_served": r.turns_served,
            "lenient": r.lenient,
            "diverged": r.diverged,
            "exhausted": r.exhausted,
            "recorded_score": r.recorded_score,
            "score_equals_recorded": equal,
        })
    });
    let fixture = match &spec.mode {
        ModelMode::Replay { fixture, .. } | ModelMode::Record { fixture, .. } => fixture,
    };
    json!({
        "model": spec.model,
        "mode": stats.mode,
        "calls": stats.calls,
        "input_tokens": stats.input_tokens,
        "output_tokens": stats.output_tokens,
        "wait_sec": (stats.wait_sec * 1000.0).round() / 1000.0,
        "fixture": fixture.display().to_string(),
        "replay": replay,
    })
}

/// Writes `section` into the result.json at `path` (kiln fills what the runner left null).
pub fn write_section(path: &Path, section: Value) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut result: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    result["model"] = section;
    std::fs::write(path, serde_json::to_string_pretty(&result)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}
