//! One trial of a Harbor task, as Harbor runs it, through the Docker CLI: start the
//! task's environment, run the agent (oracle: `solution/solve.sh` with `solution.env`;
//! null: nothing), copy the tests in only then (hidden from the agent), run
//! `tests/test.sh` as the verifier user, and read `/logs/verifier/reward.json` or
//! `reward.txt`. A missing or unreadable reward is a failed trial, never a pass.
//!
//! Every command is a plain `docker …` line (`--dry-run` prints them). Values of the
//! env tables reach the container as `-e NAME` with the value in the docker client's
//! environment: never in an argument, a label or an image. The containers carry kiln's
//! owner labels ([`super::reap`]) and are removed at the end, on failure and on Ctrl-C.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};

use crate::backend::shell;
use crate::fleet::layout::harbor::config::Step;
use crate::fleet::layout::harbor::config::{MinReward, NetworkMode, RewardStrategy};
use crate::fleet::layout::harbor::{dataset, Task};
use crate::plan::harbor::TaskImages;

/// The two agents a dataset is validated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agent {
    Oracle,
    Null,
}

impl Agent {
    pub fn name(self) -> &'static str {
        match self {
            Agent::Oracle => "oracle",
            Agent::Null => "null",
        }
    }
}

/// What one trial needs besides the task.
pub struct Trial<'a> {
    /// The dataset root.
    pub root: &'a Path,
    pub task: &'a Task,
    pub agent: Agent,
    /// The task's environment image, and its verifiers' when they run apart.
    pub images: TaskImages,
    /// Where the trial's logs and `result.json` go.
    pub out: PathBuf,
    /// Print the commands instead of running them.
    pub dry_run: bool,
    /// Labels every container gets (kiln's owner labels).
    pub labels: Vec<(String, String)>,
}

/// How a trial ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `reward` of the reward file (or the strategy's value for a multi-step task).
    pub reward: Option<f64>,
    /// Every key of the reward file.
    pub rewards: BTreeMap<String, f64>,
    /// Why the trial failed, when it did.
    pub error: Option<String>,
    pub agent_timed_out: bool,
    pub wall_sec: f64,
}

/// The egress proxy's name and port on an allowlist task's network.
pub const EGRESS_HOST: &str = "kiln-egress";
pub const EGRESS_PORT: u16 = 3128;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Makes Ctrl-C (and a closed terminal) end the running trial with its containers removed.
pub fn catch_interrupts() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGHUP,
            on_interrupt as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_interrupt as *const () as libc::sighandler_t,
        );
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The result of one `docker` command.
struct Ran {
    ok: bool,
    output: String,
    timed_out: bool,
}

/// Runs (or prints) docker commands and removes the containers it started.
struct Docker<'p> {
    dry_run: bool,
    containers: Vec<String>,
    /// Networks made for the trial, removed after its containers.
    networks: Vec<String>,
    print: &'p mut dyn FnMut(&str),
}

impl Docker<'_> {
    /// Runs `docker ARGS` with `env` in the client's environment, killed after `timeout`.
    fn run(&mut self, args: &[String], env: &[(String, String)], timeout: Option<f64>) -> Ran {
        let mut argv = vec!["docker".to_string()];
        argv.extend(args.iter().cloned());
        if self.dry_run {
            (self.print)(&shell::join(&argv));
            return Ran {
                ok: true,
                output: String::new(),
                timed_out: false,
            };
        }
        let mut cmd = Command::new("docker");
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Ran {
                    ok: false,
                    output: format!("cannot run docker: {e}"),
                    timed_out: false,
                }
            }
        };
        // Output is read on threads so a chatty command cannot fill a pipe and stall.
        let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                if let Some(mut r) = r {
                    let mut b = Vec::new();
                    let _ = r.read_to_end(&mut b);
                    s = String::from_utf8_lossy(&b).into_owned();
                }
                s
            })
        };
        let out = drain(child.stdout.take().map(|s| Box::new(s) as _));
        let err = drain(child.stderr.take().map(|s| Box::new(s) as _));
        let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) => {}
                Err(_) => break None,
            }
            if interrupted() || deadline.is_some_and(|d| Instant::now() >= d) {
                timed_out = !interrupted();
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut output = out.join().unwrap_or_default();
        output.push_str(&err.join().unwrap_or_default());
        Ran {
            ok: status.is_some_and(|s| s.success()),
            output,
            timed_out,
        }
    }

    /// `docker ARGS`, an error naming the command when it fails.
    fn must(&mut self, args: &[String]) -> anyhow::Result<String> {
        let ran = self.run(args, &[], Some(600.0));
        if interrupted() {
            anyhow::bail!("interrupted");
        }
        if !ran.ok {
            anyhow::bail!("docker {} failed: {}", shell::join(args), ran.output.trim());
        }
        Ok(ran.output)
    }

    fn remove_all(&mut self) {
        if self.containers.is_empty() && self.networks.is_empty() {
            return;
        }
        let mut args = vec!["rm".to_string(), "-f".into()];
        args.append(&mut self.containers);
        // Runs even after Ctrl-C: a removal is what the interrupt asks for.
        let was = INTERRUPTED.swap(false, Ordering::SeqCst);
        self.run(&args, &[], Some(60.0));
        if !self.networks.is_empty() {
            let mut args = vec![s("network"), s("rm")];
            args.append(&mut self.networks);
            self.run(&args, &[], Some(60.0));
        }
        INTERRUPTED.store(was, Ordering::SeqCst);
    }
}

fn s(v: &str) -> String {
    v.to_string()
}

/// `${VAR}` and `${VAR:-default}` in an env table's value, from this process's environment.
pub fn expand_env(value: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find('}')
            .ok_or_else(|| anyhow!("unclosed ${{ in {value:?}"))?;
        let inner = &rest[i + 2..i + end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match (std::env::var(name).ok().filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => match std::env::var(name) {
                Ok(empty) => out.push_str(&empty),
                Err(_) => anyhow::bail!("the variable {name} is not set in kiln's environment"),
            },
        }
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `-e NAME` arguments, and the (name, value) pairs for the docker client's environment.
type EnvArgs = (Vec<String>, Vec<(String, String)>);

fn env_args(table: &BTreeMap<String, String>, what: &str, task: &Task) -> anyhow::Result<EnvArgs> {
    let mut args = Vec::new();
    let mut values = Vec::new();
    for (k, v) in table {
        let value = expand_env(v).with_context(|| format!("task {}: {what}.{k}", task.id))?;
        args.push(s("-e"));
        args.push(k.clone());
        values.push((k.clone(), value));
    }
    Ok((args, values))
}

impl Trial<'_> {
    /// Runs the trial; `print` gets each command of a dry run.
    pub fn run(&self, print: &mut dyn FnMut(&str)) -> anyhow::Result<Outcome> {
        let started = Instant::now();
        let mut docker = Docker {
            dry_run: self.dry_run,
            containers: Vec::new(),
            networks: Vec::new(),
            print,
        };
        let result = self.steps(&mut docker);
        docker.remove_all();
        let wall_sec = started.elapsed().as_secs_f64();
        if interrupted() {
            anyhow::bail!("interrupted: the trial's containers were removed");
        }
        let mut outcome = result?;
        outcome.wall_sec = wall_sec;
        Ok(outcome)
    }

    fn name(&self, role: &str) -> String {
        let id: String = self
            .task
            .id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!(
            "kiln-harbor-{id}-{}-{role}-{}",
            self.agent.name(),
            std::process::id()
        )
    }

    /// `docker run -d` of a container that idles until the trial is done.
    fn start(
        &self,
        docker: &mut Docker,
        role: &str,
        image: &str,
        env: &crate::fleet::layout::harbor::config::Environment,
    ) -> anyhow::Result<String> {
        let name = self.name(role);
        let mut args = vec![s("run"), s("-d"), s("--name"), name.clone()];
        for (k, v) in &self.labels {
            args.push(s("--label"));
            args.push(format!("{k}={v}"));
        }
        match env.network() {
            NetworkMode::Public => {}
            NetworkMode::NoNetwork => args.extend([s("--network"), s("none")]),
            NetworkMode::Allowlist => {
                let hosts = env.allowed_hosts.clone().unwrap_or_default();
                let net = self.egress(docker, role, &hosts)?;
                args.extend([s("--network"), net]);
                let proxy = format!("http://{EGRESS_HOST}:{EGRESS_PORT}");
                for k in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
                    args.extend([s("-e"), format!("{k}={proxy}")]);
                }
                args.extend([
                    s("-e"),
                    s("NO_PROXY=localhost,127.0.0.1"),
                    s("-e"),
                    s("no_proxy=localhost,127.0.0.1"),
                ]);
            }
        }
        if let Some(c) = env.cpus {
            args.extend([s("--cpus"), c.to_string()]);
        }
        if let Some(m) = env.memory_mb() {
            args.extend([s("--memory"), format!("{m}m")]);
        }
        if let Some(w) = &env.workdir {
            args.extend([s("-w"), w.clone()]);
        }
        let (e_args, e_values) = env_args(&env.env, "environment.env", self.task)?;
        args.extend(e_args);
        args.extend([
            s("--entrypoint"),
            s("sh"),
            s(image),
            s("-c"),
            s("sleep infinity"),
        ]);
        let ran = docker.run(&args, &e_values, Some(120.0));
        if !ran.ok {
            anyhow::bail!(
                "task {}: starting {image} failed: {}",
                self.task.id,
                ran.output.trim()
            );
        }
        docker.containers.push(name.clone());
        docker.must(&[
            s("exec"),
            name.clone(),
            s("sh"),
            s("-c"),
            s("mkdir -p /logs/agent /logs/verifier /logs/artifacts && chmod 777 /logs /logs/agent /logs/verifier /logs/artifacts"),
        ])?;
        if let Some(h) = &env.healthcheck {
            self.healthy(docker, &name, h)?;
        }
        Ok(name)
    }

    /// An internal network whose only way out is an egress proxy letting `hosts` out
    /// ([`crate::gateway::egress`]): kiln's own binary on the gateway image, on the
    /// engine's default network and on the internal one as [`EGRESS_HOST`].
    fn egress(&self, docker: &mut Docker, role: &str, hosts: &[String]) -> anyhow::Result<String> {
        crate::gateway::egress::Allowlist::parse(hosts)
            .with_context(|| format!("task {}: allowed_hosts", self.task.id))?;
        let net = format!("{}-net", self.name(role));
        let mut create = vec![s("network"), s("create"), s("--internal")];
        for (k, v) in &self.labels {
            create.extend([s("--label"), format!("{k}={v}")]);
        }
        create.push(net.clone());
        docker.must(&create)?;
        docker.networks.push(net.clone());
        let proxy = format!("{}-egress", self.name(role));
        let exe = std::env::current_exe().context("locating kiln's own binary")?;
        let image = std::env::var("KILN_GATEWAY_IMAGE")
            .unwrap_or_else(|_| crate::run::model::GATEWAY_IMAGE.into());
        let mut run = vec![s("run"), s("-d"), s("--name"), proxy.clone()];
        for (k, v) in &self.labels {
            run.extend([s("--label"), format!("{k}={v}")]);
        }
        run.extend([
            s("-v"),
            format!("{}:/usr/local/bin/kiln:ro", exe.display()),
            image,
            s("/usr/local/bin/kiln"),
            s("gateway"),
            s("egress"),
            s("--listen"),
            format!("0.0.0.0:{EGRESS_PORT}"),
        ]);
        for h in hosts {
            run.extend([s("--allow"), h.clone()]);
        }
        docker.must(&run)?;
        docker.containers.push(proxy.clone());
        docker.must(&[
            s("network"),
            s("connect"),
            s("--alias"),
            s(EGRESS_HOST),
            net.clone(),
            proxy.clone(),
        ])?;
        // Listening within moments; the agent must not race it.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.dry_run {
                break;
            }
            let logs = docker.run(&[s("logs"), proxy.clone()], &[], Some(10.0));
            if logs.output.contains("listening on") {
                break;
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "task {}: the egress proxy did not start: {}",
                    self.task.id,
                    logs.output.trim()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(net)
    }

    /// Waits until the healthcheck passes: `retries` failures in a row after the start
    /// period fail the trial.
    fn healthy(
        &self,
        docker: &mut Docker,
        name: &str,
        h: &crate::fleet::layout::harbor::config::Healthcheck,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let start_period = h.start_period_sec.unwrap_or(0.0);
        let mut failures = 0;
        loop {
            let ran = docker.run(
                &[s("exec"), s(name), s("sh"), s("-c"), h.command.clone()],
                &[],
                Some(h.timeout_sec.unwrap_or(30.0)),
            );
            if ran.ok {
                return Ok(());
            }
            let in_start = started.elapsed().as_secs_f64() < start_period;
            if !in_start {
                failures += 1;
                if failures >= h.retries.unwrap_or(3) {
                    anyhow::bail!(
                        "task {}: healthcheck {:?} failed {failures} times: {}",
                        self.task.id,
                        h.command,
                        ran.output.trim()
                    );
                }
            }
            let wait = if in_start {
                h.start_interval_sec.unwrap_or(5.0)
            } else {
                h.interval_sec.unwrap_or(5.0)
            };
            std::thread::sleep(Duration::from_secs_f64(wait.min(30.0)));
        }
    }

    /// `docker cp DIR/. CONTAINER:DEST`.
    fn copy_in(
        &self,
        docker: &mut Docker,
        dir: &Path,
        container: &str,
        dest: &str,
    ) -> anyhow::Result<()> {
        docker.must(&[s("exec"), s(container), s("mkdir"), s("-p"), s(dest)])?;
        docker.must(&[
            s("cp"),
            format!("{}/.", dir.display()),
            format!("{container}:{dest}"),
        ])?;
        Ok(())
    }

    fn steps(&self, docker: &mut Docker) -> anyhow::Result<Outcome> {
        let c = &self.task.config;
        let dir = self.root.join(&self.task.dir);
        let main = self.start(docker, "main", &self.images.environment, &c.environment)?;
        let mut outcome = Outcome {
            reward: None,
            rewards: BTreeMap::new(),
            error: None,
            agent_timed_out: false,
            wall_sec: 0.0,
        };
        if self.task.steps.is_empty() {
            let agent_ran =
                self.agent_phase(docker, &main, &dir, c.agent.timeout_sec, &c.agent.user)?;
            outcome.agent_timed_out = agent_ran;
            let rewards = self.verify(docker, &main, &dir, None)?;
            return Ok(self.finish(outcome, rewards));
        }
        // Multi-step: each step's agent, then its tests; the trial's reward by the strategy.
        let mut per_step: Vec<BTreeMap<String, f64>> = Vec::new();
        for step in &c.steps {
            let sdir = dir.join(dataset::STEPS_DIR).join(&step.name);
            let workdir = sdir.join("workdir");
            if workdir.is_dir() {
                let dest = c.environment.workdir.clone().unwrap_or_else(|| s("/app"));
                self.copy_in(docker, &workdir, &main, &dest)?;
            }
            let timeout = step.agent.timeout_sec.or(c.agent.timeout_sec);
            let user = step.agent.user.clone().or_else(|| c.agent.user.clone());
            outcome.agent_timed_out |= self.agent_phase(docker, &main, &sdir, timeout, &user)?;
            let rewards = match self.verify(docker, &main, &dir, Some(step)) {
                Ok(r) => r,
                Err(e) => {
                    outcome.error = Some(format!("step {}: {e:#}", step.name));
                    break;
                }
            };
            let below = match &step.min_reward {
                Some(MinReward::Scalar(m)) => rewards.get("reward").is_none_or(|r| r < m),
                Some(MinReward::Keys(keys)) => keys
                    .iter()
                    .any(|(k, m)| rewards.get(k).is_none_or(|r| r < m)),
                None => false,
            };
            per_step.push(rewards);
            if below {
                break;
            }
        }
        if per_step.is_empty() {
            return Ok(outcome);
        }
        let combined = match c.multi_step_reward_strategy.unwrap_or(RewardStrategy::Mean) {
            RewardStrategy::Final => per_step.last().cloned().unwrap_or_default(),
            RewardStrategy::Mean => {
                // Per key, over every step of the task (a step not reached counts 0).
                let keys: std::collections::BTreeSet<&String> =
                    per_step.iter().flat_map(|r| r.keys()).collect();
                let n = c.steps.len() as f64;
                keys.into_iter()
                    .map(|k| {
                        let sum: f64 = per_step.iter().filter_map(|r| r.get(k)).sum();
                        (k.clone(), sum / n)
                    })
                    .collect()
            }
        };
        Ok(self.finish(outcome, combined))
    }

    fn finish(&self, mut outcome: Outcome, rewards: BTreeMap<String, f64>) -> Outcome {
        outcome.reward = rewards.get("reward").copied().or_else(|| {
            (!rewards.is_empty()).then(|| rewards.values().sum::<f64>() / rewards.len() as f64)
        });
        outcome.rewards = rewards;
        outcome
    }

    /// The agent's turn; true when it ran out of time.
    fn agent_phase(
        &self,
        docker: &mut Docker,
        main: &str,
        dir: &Path,
        timeout: Option<f64>,
        user: &Option<crate::fleet::layout::harbor::config::User>,
    ) -> anyhow::Result<bool> {
        if self.agent == Agent::Null {
            return Ok(false);
        }
        let solution = dir.join(dataset::SOLUTION_DIR);
        if !solution.join(dataset::SOLVE_SCRIPT).is_file() {
            anyhow::bail!(
                "oracle needs {}",
                solution.join(dataset::SOLVE_SCRIPT).display()
            );
        }
        // A fresh /solution per step.
        docker.must(&[s("exec"), s(main), s("rm"), s("-rf"), s("/solution")])?;
        self.copy_in(docker, &solution, main, "/solution")?;
        docker.must(&[
            s("exec"),
            s(main),
            s("chmod"),
            s("-R"),
            s("a+rX"),
            s("/solution"),
        ])?;
        let mut args = vec![s("exec")];
        if let Some(u) = user {
            args.extend([s("-u"), u.as_arg()]);
        }
        let (e_args, e_values) =
            env_args(&self.task.config.solution.env, "solution.env", self.task)?;
        args.extend(e_args);
        args.extend([s(main), s("bash"), s("/solution/solve.sh")]);
        let ran = docker.run(&args, &e_values, timeout);
        self.log("agent.log", &ran.output);
        if ran.timed_out {
            // The processes the agent left behind stop with it (PID 1 keeps the container).
            docker.run(
                &[s("exec"), s(main), s("sh"), s("-c"), s("kill -9 -1")],
                &[],
                Some(30.0),
            );
        }
        Ok(ran.timed_out)
    }

    /// Copies the tests in (shared) or starts the verifier's own container (separate),
    /// runs the test script and reads the reward.
    fn verify(
        &self,
        docker: &mut Docker,
        main: &str,
        dir: &Path,
        step: Option<&crate::fleet::layout::harbor::config::Step>,
    ) -> anyhow::Result<BTreeMap<String, f64>> {
        let c = &self.task.config;
        let verifier = step.map_or(&c.verifier, |s| &s.verifier);
        let separate = self.task.separate_for(step);
        let container = if separate {
            let image = self
                .images
                .verifier(self.root, self.task, step)
                .unwrap_or(&self.images.environment)
                .to_string();
            // Its own environment table, else the task's verifier's, else the task's.
            let env = step
                .and_then(|s| s.verifier.environment.as_deref())
                .or(c.verifier.environment.as_deref())
                .unwrap_or(&c.environment);
            let v = self.start(docker, "verifier", &image, env)?;
            self.transfer(docker, main, &v, step)?;
            v
        } else {
            s(main)
        };
        if !separate {
            // Copied in only now: the agent never saw them.
            docker.must(&[s("exec"), container.clone(), s("rm"), s("-rf"), s("/tests")])?;
            let shared = dir.join(dataset::TESTS_DIR);
            if shared.is_dir() {
                self.copy_in(docker, &shared, &container, "/tests")?;
            }
            if let Some(st) = step {
                let own = dir
                    .join(dataset::STEPS_DIR)
                    .join(&st.name)
                    .join(dataset::TESTS_DIR);
                if own.is_dir() {
                    self.copy_in(docker, &own, &container, "/tests")?;
                }
            }
        }
        docker.must(&[
            s("exec"),
            container.clone(),
            s("sh"),
            s("-c"),
            s("rm -f /logs/verifier/reward.txt /logs/verifier/reward.json"),
        ])?;
        let mut args = vec![s("exec")];
        if let Some(u) = verifier.user.clone().or_else(|| c.verifier.user.clone()) {
            args.extend([s("-u"), u.as_arg()]);
        }
        let mut table = c.verifier.env.clone();
        table.extend(verifier.env.clone());
        let (e_args, e_values) = env_args(&table, "verifier.env", self.task)?;
        args.extend(e_args);
        args.extend([container.clone(), s("bash"), s("/tests/test.sh")]);
        let timeout = verifier
            .timeout_sec
            .or(c.verifier.timeout_sec)
            .unwrap_or(600.0);
        let ran = docker.run(&args, &e_values, Some(timeout));
        self.log("verifier.log", &ran.output);
        if ran.timed_out {
            anyhow::bail!("the verifier ran out of time ({timeout} s)");
        }
        let logs = self.out.join("logs");
        if !self.dry_run {
            std::fs::create_dir_all(&logs)?;
        }
        docker.must(&[
            s("cp"),
            format!("{container}:/logs/verifier"),
            logs.display().to_string(),
        ])?;
        if container != main {
            let pos = docker.containers.iter().position(|n| *n == container);
            if let Some(i) = pos {
                let n = docker.containers.remove(i);
                docker.run(&[s("rm"), s("-f"), n], &[], Some(60.0));
            }
        }
        if self.dry_run {
            return Ok(BTreeMap::from([(s("reward"), 0.0)]));
        }
        read_reward(&logs.join("verifier"))
    }

    /// What crosses from the agent's container to a separate verifier's, at the same
    /// paths: `/logs/artifacts/` and the declared artifacts (task's, then the step's).
    fn transfer(
        &self,
        docker: &mut Docker,
        main: &str,
        verifier: &str,
        step: Option<&Step>,
    ) -> anyhow::Result<()> {
        let declared = self.task.config.artifacts.iter();
        let declared = declared.chain(step.map_or(&[][..], |s| &s.artifacts));
        let paths = std::iter::once("/logs/artifacts").chain(declared.map(|a| a.source()));
        for (i, src) in paths.enumerate() {
            let tmp = self.out.join("transfer").join(i.to_string());
            if !self.dry_run {
                let _ = std::fs::remove_dir_all(&tmp);
                std::fs::create_dir_all(&tmp)?;
            }
            let name = Path::new(src)
                .file_name()
                .map_or_else(|| s("root"), |n| n.to_string_lossy().into_owned());
            let ran = docker.run(
                &[
                    s("cp"),
                    format!("{main}:{src}"),
                    tmp.join(&name).display().to_string(),
                ],
                &[],
                Some(120.0),
            );
            if !ran.ok {
                continue; // an artifact the agent did not make is simply absent
            }
            let parent = Path::new(src)
                .parent()
                .map_or_else(|| s("/"), |p| p.display().to_string());
            docker.must(&[s("exec"), s(verifier), s("mkdir"), s("-p"), parent.clone()])?;
            docker.must(&[
                s("cp"),
                tmp.join(&name).display().to_string(),
                format!("{verifier}:{parent}"),
            ])?;
        }
        Ok(())
    }

    fn log(&self, file: &str, text: &str) {
        if self.dry_run {
            return;
        }
        let _ = std::fs::create_dir_all(&self.out);
        let path = self.out.join(file);
        let mut all = std::fs::read_to_string(&path).unwrap_or_default();
        all.push_str(text);
        let _ = std::fs::write(path, all);
    }
}

/// `reward.json` (an object of numbers) or else `reward.txt` (one number), from the
/// verifier's log folder. Neither, or either unreadable: an error naming the file.
pub fn read_reward(dir: &Path) -> anyhow::Result<BTreeMap<String, f64>> {
    let json = dir.join("reward.json");
    if json.is_file() {
        let text = std::fs::read_to_string(&json)?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| anyhow!("reward.json is not JSON: {e}"))?;
        let obj = v
            .as_object()
            .ok_or_else(|| anyhow!("reward.json is not an object of numbers"))?;
        return obj
            .iter()
            .map(|(k, v)| {
                v.as_f64()
                    .map(|n| (k.clone(), n))
                    .ok_or_else(|| anyhow!("reward.json: {k} is not a number"))
            })
            .collect();
    }
    let txt = dir.join("reward.txt");
    let text = std::fs::read_to_string(&txt).map_err(|_| {
        anyhow!("the tests wrote no reward (/logs/verifier/reward.json or reward.txt)")
    })?;
    let n: f64 = text
        .trim()
        .parse()
        .map_err(|_| anyhow!("reward.txt holds {:?}, not a number", text.trim()))?;
    Ok(BTreeMap::from([(s("reward"), n)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_expand_from_the_environment_only() {
        std::env::set_var("KILN_TEST_HARBOR_X", "v");
        assert_eq!(expand_env("a${KILN_TEST_HARBOR_X}b").unwrap(), "avb");
        assert_eq!(expand_env("${KILN_TEST_HARBOR_NOPE:-d}").unwrap(), "d");
        let err = expand_env("${KILN_TEST_HARBOR_NOPE}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("KILN_TEST_HARBOR_NOPE"), "{err}");
    }

    #[test]
    fn rewards_read_json_then_text_and_refuse_the_rest() {
        let d = tempfile::tempdir().unwrap();
        assert!(read_reward(d.path()).is_err());
        std::fs::write(d.path().join("reward.txt"), "1\n").unwrap();
        assert_eq!(read_reward(d.path()).unwrap()["reward"], 1.0);
        std::fs::write(d.path().join("reward.txt"), "yes").unwrap();
        assert!(read_reward(d.path())
            .unwrap_err()
            .to_string()
            .contains("\"yes\""));
        std::fs::write(d.path().join("reward.json"), r#"{"a": 0.5, "b": 1}"#).unwrap();
        let r = read_reward(d.path()).unwrap();
        assert_eq!((r["a"], r["b"]), (0.5, 1.0));
        std::fs::write(d.path().join("reward.json"), r#"{"a": "x"}"#).unwrap();
        assert!(read_reward(d.path()).is_err());
    }
}
