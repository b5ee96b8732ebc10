//! The steps of one trial: the task's environment started, the agent's turn, the
//! tests copied in and run, the reward read.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::docker::{make_logs, s, Docker};
use super::env::env_args;
use super::{
    interrupted, read_reward, Agent, Keep, KilnAgent, Outcome, Trial, EGRESS_HOST, EGRESS_PORT,
};
use crate::fleet::layout::harbor::config::Step;
use crate::fleet::layout::harbor::config::{MinReward, NetworkMode, RewardStrategy};
use crate::fleet::layout::harbor::dataset;
use crate::run::kept_state::Kept;

/// Where a kiln agent finds its instruction.
const PROMPT_FILE: &str = "/kiln/instruction.md";

impl Trial<'_> {
    /// Runs the trial; `print` gets each command of a dry run.
    pub fn run(&self, print: &mut dyn FnMut(&str)) -> anyhow::Result<Outcome> {
        let started = Instant::now();
        let mut docker = Docker {
            dry_run: self.dry_run,
            containers: Vec::new(),
            networks: Vec::new(),
            fresh: Vec::new(),
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
        // Task ids that read the same once sanitized (`a.b`, `a_b`) differ by the digest
        // of the id as written: trials of different tasks may run at once.
        let digest = {
            use sha2::{Digest as _, Sha256};
            hex::encode(&Sha256::digest(self.task.id.as_bytes())[..3])
        };
        format!(
            "kiln-harbor-{id}-{digest}-{}-{role}-{}",
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
        // A kiln agent's container also joins its model gateway's network (the only
        // way out of a no-network task); the other networks are connected once it runs.
        let gateway = match self.agent {
            Agent::Kiln(a) if role == "main" => a.network.clone(),
            _ => None,
        };
        let mut connect = Vec::new();
        match env.network() {
            NetworkMode::Public => {
                if let Some(net) = &gateway {
                    args.extend([s("--network"), net.clone()]);
                    connect.push(s("bridge"));
                }
            }
            NetworkMode::NoNetwork => {
                let net = gateway.clone().unwrap_or_else(|| s("none"));
                args.extend([s("--network"), net]);
            }
            NetworkMode::Allowlist => {
                connect.extend(gateway.clone());
                let hosts = env.allowed_hosts.clone().unwrap_or_default();
                let net = self.egress(docker, role, &hosts)?;
                args.extend([s("--network"), net]);
                let proxy = format!("http://{EGRESS_HOST}:{EGRESS_PORT}");
                for k in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
                    args.extend([s("-e"), format!("{k}={proxy}")]);
                }
                let direct = format!("localhost,127.0.0.1,{}", crate::run::model::GATEWAY_HOST);
                args.extend([
                    s("-e"),
                    format!("NO_PROXY={direct}"),
                    s("-e"),
                    format!("no_proxy={direct}"),
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
        for net in connect {
            docker.must(&[s("network"), s("connect"), net, name.clone()])?;
        }
        // `/logs/…` come with the first copy or command of the trial's own: every agent
        // and verifier command follows one.
        docker.fresh.push(name.clone());
        if let Some(h) = &env.healthcheck {
            if docker.take_fresh(&name) {
                docker.must(&[s("exec"), name.clone(), s("sh"), s("-c"), make_logs()])?;
            }
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
        let image = crate::run::model::gateway_image();
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

    /// The contents of `dir` into `dest` of `container` (made when missing), in one
    /// `docker cp` of a tar stream.
    fn steps(&self, docker: &mut Docker) -> anyhow::Result<Outcome> {
        let c = &self.task.config;
        let dir = self.root.join(&self.task.dir);
        let main = self.start(docker, "main", &self.images.environment, &c.environment)?;
        let mut outcome = Outcome::default();
        if self.task.steps.is_empty() {
            let agent_ran =
                self.agent_phase(docker, &main, &dir, c.agent.timeout_sec, &c.agent.user)?;
            outcome.agent_timed_out = agent_ran;
            if let Some(keep) = &self.keep {
                outcome.kept = Some(self.commit(docker, &main, keep));
            }
            let rewards = self.verify(docker, &main, &dir, None)?;
            return Ok(self.finish(outcome, rewards));
        }
        if self.keep.is_some() {
            outcome.kept = Some(Kept::failed(
                "a multi-step task's state is not kept (each step's would be needed)",
            ));
        }
        // Multi-step: each step's agent, then its tests; the trial's reward by the strategy.
        let mut per_step: Vec<BTreeMap<String, f64>> = Vec::new();
        for step in &c.steps {
            let sdir = dir.join(dataset::STEPS_DIR).join(&step.name);
            let workdir = sdir.join("workdir");
            if workdir.is_dir() {
                let dest = c.environment.workdir.clone().unwrap_or_else(|| s("/app"));
                docker.put(&workdir, &main, &dest, false)?;
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
        let kiln = match self.agent {
            Agent::Null => return Ok(false),
            Agent::Oracle => None,
            Agent::Kiln(a) => Some(a),
        };
        if let Some(agent) = kiln {
            return self.kiln_agent(docker, main, dir, timeout, user, agent);
        }
        let solution = dir.join(dataset::SOLUTION_DIR);
        if !solution.join(dataset::SOLVE_SCRIPT).is_file() {
            anyhow::bail!(
                "oracle needs {}",
                solution.join(dataset::SOLVE_SCRIPT).display()
            );
        }
        // A fresh /solution per step (the first finds none), readable by the agent's user.
        if !self.task.steps.is_empty() {
            docker.must(&[s("exec"), s(main), s("rm"), s("-rf"), s("/solution")])?;
        }
        docker.put(&solution, main, "/solution", true)?;
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

    /// Commits the container as the agent left it (paused meanwhile, before any test
    /// is copied in). kiln's owner labels and the values of the task's env table are
    /// blanked in the image's config: a container made from it later is nobody's to
    /// reap, and no value reaches the image.
    fn commit(&self, docker: &mut Docker, main: &str, keep: &Keep) -> Kept {
        use crate::run::kept_state::{LABEL, LABEL_TASK, TYPE};
        let mut args = vec![
            s("commit"),
            s("--pause=true"),
            s("-m"),
            s("kiln run --keep-state: the filesystem as the agent left it"),
        ];
        let mut changes = vec![
            format!("LABEL {LABEL}={:?}", keep.run_id),
            format!("LABEL {LABEL_TASK}={:?}", self.task.id),
            format!("LABEL {}={TYPE:?}", crate::labels::TYPE),
        ];
        changes.extend(self.labels.iter().map(|(k, _)| format!("LABEL {k}=\"\"")));
        let env = &self.task.config.environment.env;
        changes.extend(env.keys().map(|k| format!("ENV {k}=\"\"")));
        for c in changes {
            args.extend([s("--change"), c]);
        }
        args.extend([s(main), keep.image.clone()]);
        match docker.must(&args) {
            Ok(id) => Kept {
                image: Some(keep.image.clone()),
                image_id: Some(id.trim().to_string()).filter(|i| !i.is_empty()),
                run_id: Some(keep.run_id.clone()),
                error: None,
            },
            Err(e) => Kept::failed(format!("{e:#}")),
        }
    }

    /// A kiln agent's turn: the instruction (the step's, in a multi-step task) as
    /// `PROMPT_FILE`, `/opt/agent/run` as the task's agent user in its working
    /// directory; what it leaves in `/logs/agent` is kept with the results.
    fn kiln_agent(
        &self,
        docker: &mut Docker,
        main: &str,
        dir: &Path,
        timeout: Option<f64>,
        user: &Option<crate::fleet::layout::harbor::config::User>,
        agent: &KilnAgent,
    ) -> anyhow::Result<bool> {
        let instruction = dir.join(dataset::INSTRUCTION);
        if !instruction.is_file() {
            anyhow::bail!("{} is missing", instruction.display());
        }
        // One copy (its tar makes /kiln, and /logs on a fresh container), readable by all.
        docker.put(&instruction, main, PROMPT_FILE, true)?;
        let mut args = vec![s("exec")];
        if let Some(u) = user {
            args.extend([s("-u"), u.as_arg()]);
        }
        args.extend([
            s("-e"),
            format!("PROMPT_FILE={PROMPT_FILE}"),
            s("-e"),
            s("AGENT_OUTPUT_DIR=/logs/agent"),
        ]);
        for (k, _) in &agent.env {
            args.extend([s("-e"), k.clone()]);
        }
        args.extend([s(main), s("/opt/agent/run")]);
        let ran = docker.run(&args, &agent.env, timeout);
        self.log("agent.log", &ran.output);
        if ran.timed_out {
            docker.run(
                &[s("exec"), s(main), s("sh"), s("-c"), s("kill -9 -1")],
                &[],
                Some(30.0),
            );
        }
        if !self.dry_run {
            std::fs::create_dir_all(&self.out)?;
        }
        // The agent's own record (trajectory, logs); an agent that wrote none leaves none.
        docker.run(
            &[
                s("cp"),
                format!("{main}:/logs/agent"),
                self.out.join("agent").display().to_string(),
            ],
            &[],
            Some(120.0),
        );
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
        // One exec clears what the agent (or a step before) left: the reward files and,
        // shared, `/tests`, copied in only now: the agent never saw them.
        let clear = "rm -f /logs/verifier/reward.txt /logs/verifier/reward.json";
        let mut clear = if separate {
            s(clear)
        } else {
            format!("rm -rf /tests && {clear}")
        };
        if docker.take_fresh(&container) {
            clear = format!("{} && {clear}", make_logs());
        }
        docker.must(&[s("exec"), container.clone(), s("sh"), s("-c"), clear])?;
        if !separate {
            let shared = dir.join(dataset::TESTS_DIR);
            if shared.is_dir() {
                docker.put(&shared, &container, "/tests", false)?;
            }
            if let Some(st) = step {
                let own = dir
                    .join(dataset::STEPS_DIR)
                    .join(&st.name)
                    .join(dataset::TESTS_DIR);
                if own.is_dir() {
                    docker.put(&own, &container, "/tests", false)?;
                }
            }
        }
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
            docker.put(&tmp.join(&name), verifier, src, false)?;
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
