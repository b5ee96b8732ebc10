//! The three phases (docs/scenario-format.md §7): prepare → agent → grade.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value};

use crate::check::{self, Check};
use crate::core_checks::{self, Facts};
use crate::fsutil;
use crate::layout::{Layout, AGENT_USER};
use crate::log;
use crate::process::{self, Spec};
use crate::result::{
    AgentInfo, Phase, PhaseTiming, RunResult, Status, TaskInfo, Timing, SCHEMA_VERSION,
};
use crate::scenario::Task;
use crate::score::{self, Mode, Score, Scored};
use crate::services::Services;
use crate::state::{AgentRun, State};

mod shell;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const STDERR_TAIL: usize = 2048;

/// Everything the phases need besides the task, resolved from flags and environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub layout: Layout,
    pub output: PathBuf,
    pub prompt_variant: Option<String>,
    pub agent_timeout: Option<u64>,
    pub model: String,
    pub agent_id: String,
    pub pass_env: Vec<String>,
    /// uid/gid of the agent, or None with `--no-drop-privileges`.
    pub agent_user: Option<(u32, u32)>,
    pub output_owner: Option<(u32, u32)>,
}

pub struct Run {
    pub settings: Settings,
    pub task: Task,
    pub state: State,
    pub workspace: PathBuf,
    pub(crate) services: Services,
    started: Instant,
}

struct PhaseClock {
    started_at: String,
    start: Instant,
}

impl PhaseClock {
    fn start() -> PhaseClock {
        PhaseClock {
            started_at: fsutil::now(),
            start: Instant::now(),
        }
    }
    fn stop(self) -> PhaseTiming {
        PhaseTiming {
            started_at: self.started_at,
            finished_at: fsutil::now(),
            duration_ms: self.start.elapsed().as_millis() as u64,
        }
    }
}

/// What one grader executable produced.
struct GraderRun {
    checks: Vec<Check>,
    /// Set when the grader could not give a trustworthy answer (crash, timeout, garbage).
    failure: Option<String>,
}

/// What the agent (or a shell in its place) is started with.
struct Launch {
    /// Its complete environment.
    env: BTreeMap<String, String>,
    /// `$OUTPUT/agent`, its logs' directory.
    agent_out: PathBuf,
}

impl Run {
    /// A fresh run (`all`, `prepare`) or one continuing from saved state (`agent`, `grade`).
    pub fn new(settings: Settings, task: Task, state: Option<State>) -> Run {
        let workspace = settings
            .layout
            .resolve(&task.scenario.environment.workspace);
        let state = state.unwrap_or_else(|| State {
            run_id: fsutil::random_hex(16),
            task_id: task.id().to_string(),
            started_at: fsutil::now(),
            ..State::default()
        });
        let services = Services::new(
            &task.scenario.environment.services,
            Run::base_env_for(&settings, &task),
            &settings.output,
            &settings.layout,
        );
        Run {
            settings,
            task,
            state,
            workspace,
            services,
            started: Instant::now(),
        }
    }

    fn base_env_for(settings: &Settings, task: &Task) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert(
            "PATH".into(),
            std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into()),
        );
        env.insert("LANG".into(), "C.UTF-8".into());
        env.insert("TASK_ID".into(), task.id().to_string());
        env.insert(
            "WORKSPACE".into(),
            settings
                .layout
                .resolve(&task.scenario.environment.workspace)
                .display()
                .to_string(),
        );
        env.extend(task.exported_env());
        env
    }

    /// Environment for root-run helpers: setup scripts and graders.
    fn root_env(&self) -> BTreeMap<String, String> {
        let mut env = Run::base_env_for(&self.settings, &self.task);
        env.insert("HOME".into(), "/root".into());
        env.insert(
            "OUTPUT_DIR".into(),
            self.settings.output.display().to_string(),
        );
        env
    }

    fn agent_output(&self) -> PathBuf {
        self.settings.output.join("agent")
    }

    pub fn save_state(&mut self) {
        if let Err(e) = self.state.save(&self.settings.output) {
            self.state
                .error(Phase::Output, format!("cannot save state: {e}"));
        }
    }

    // ---------------------------------------------------------------- prepare

    pub fn prepare(&mut self) {
        let clock = PhaseClock::start();
        log::info(&format!("prepare: task {}", self.task.id()));
        if let Err(e) = self.prepare_steps() {
            self.state.error(Phase::Prepare, e);
        } else {
            self.state.prepare_ok = true;
        }
        self.state.prepare = Some(clock.stop());
        self.save_state();
    }

    fn prepare_steps(&mut self) -> Result<(), String> {
        // Nothing under /kiln is for the agent, whatever modes the image build left.
        let kiln = self.settings.layout.kiln_dir();
        if kiln.exists() {
            fs::set_permissions(&kiln, fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("chmod 0700 {}: {e}", kiln.display()))?;
        }
        let out = &self.settings.output;
        fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
        // The agent user must be able to reach <output>/agent.
        if let Ok(meta) = fs::metadata(out) {
            let mode = meta.permissions().mode();
            if mode & 0o001 == 0 {
                let _ =
                    fs::set_permissions(out, fs::Permissions::from_mode((mode | 0o001) & 0o7777));
            }
        }

        self.services.start_all()?;

        fs::create_dir_all(&self.workspace)
            .map_err(|e| format!("{}: {e}", self.workspace.display()))?;
        let fixtures_dir = self.task.dir.join("workspace");
        let copied = if fixtures_dir.is_dir() {
            fsutil::copy_tree(&fixtures_dir, &self.workspace)
                .map_err(|e| format!("copying fixtures to {}: {e}", self.workspace.display()))?
        } else {
            Vec::new()
        };
        log::info(&format!(
            "prepare: {} fixture file(s) copied to {}",
            copied.len(),
            self.workspace.display()
        ));

        let timeout = Duration::from_secs(self.task.scenario.setup.timeout_sec);
        for script in self.task.setup_files.clone() {
            let name = script
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            log::info(&format!("prepare: setup {name}"));
            let logp = out.join("setup").join(format!("{name}.log"));
            let spec = Spec {
                program: script.clone(),
                args: Vec::new(),
                cwd: self.workspace.clone(),
                env: self.root_env(),
                user: None,
                stdout: logp.clone(),
                stderr: logp.clone(),
                timeout,
                grace: Duration::from_secs(5),
            };
            let outcome = process::run(&spec);
            if !outcome.success() {
                return Err(format!(
                    "setup {name} {}; log tail: {}",
                    outcome.describe_failure(timeout),
                    fsutil::read_tail(&logp, 1024)
                ));
            }
        }

        // Hashes of the state the agent is handed.
        for rel in copied {
            match fsutil::sha256_file(&self.workspace.join(&rel)) {
                Ok(h) => {
                    self.state.fixtures.insert(rel, h);
                }
                Err(_) => self
                    .state
                    .warn(format!("fixture {rel} is gone after setup; not recorded")),
            }
        }
        if let Some((uid, gid)) = self.settings.agent_user {
            fsutil::chown_tree(&self.workspace, uid, gid)
                .map_err(|e| format!("chown {}: {e}", self.workspace.display()))?;
        }
        Ok(())
    }

    /// Keeps the services running after this process exits (`prepare` alone).
    pub fn detach_services(&mut self) {
        self.services.detach();
    }

    // ------------------------------------------------------------------ agent

    pub fn agent(&mut self) {
        let clock = PhaseClock::start();
        if !self.state.prepare_ok {
            self.state.error(
                Phase::Agent,
                "the agent was not run: prepare did not complete",
            );
            self.state.agent = Some(AgentRun {
                not_run: true,
                ..AgentRun::default()
            });
        } else if let Err(e) = self.agent_steps() {
            self.state
                .error(Phase::Agent, format!("the agent was not run: {e}"));
            self.state.agent = Some(AgentRun {
                not_run: true,
                ..AgentRun::default()
            });
        }
        self.state.agent_phase = Some(clock.stop());
        self.save_state();
    }

    /// Everything the agent is handed before it starts: the prompt written, its output
    /// directory and home made, the solution copied (oracle images), the graders checked
    /// to be out of its reach. The agent phase runs the entry point with the result, the
    /// `shell` phase a shell: both see exactly this.
    fn agent_launch(&mut self) -> Result<Launch, String> {
        let layout = self.settings.layout.clone();
        let variant = self
            .settings
            .prompt_variant
            .clone()
            .unwrap_or_else(|| self.task.scenario.agent.prompt_variant.clone());
        let prompt_src = self.task.prompt_path(&variant);
        let prompt = fs::read_to_string(&prompt_src)
            .map_err(|e| format!("prompt {}: {e}", prompt_src.display()))?;
        self.state.prompt_variant = variant.clone();
        self.state.prompt_sha256 = fsutil::sha256_bytes(prompt.as_bytes());
        let ws = self.workspace.display().to_string();
        let prompt = prompt
            .replace("${WORKSPACE}", &ws)
            .replace("$WORKSPACE", &ws);

        let run_dir = layout.run_dir();
        fs::create_dir_all(&run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
        fs::set_permissions(&run_dir, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{}: {e}", run_dir.display()))?;
        let prompt_file = run_dir.join("prompt.md");
        fsutil::write_atomic(&prompt_file, prompt.as_bytes(), 0o644)
            .map_err(|e| format!("{}: {e}", prompt_file.display()))?;

        let agent_out = self.agent_output();
        fs::create_dir_all(&agent_out).map_err(|e| format!("{}: {e}", agent_out.display()))?;
        let home = layout.agent_home();
        fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;

        let mut env = BTreeMap::new();
        env.insert(
            "PATH".into(),
            std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into()),
        );
        env.insert("HOME".into(), home.display().to_string());
        env.insert("USER".into(), AGENT_USER.into());
        env.insert("LANG".into(), "C.UTF-8".into());
        env.insert("TASK_ID".into(), self.task.id().to_string());
        env.insert("WORKSPACE".into(), ws.clone());
        env.insert("PROMPT_FILE".into(), prompt_file.display().to_string());
        env.insert("PROMPT_VARIANT".into(), variant);
        env.insert("MODEL".into(), self.settings.model.clone());
        env.insert("AGENT_ID".into(), self.settings.agent_id.clone());
        env.insert("AGENT_OUTPUT_DIR".into(), agent_out.display().to_string());
        env.extend(self.task.exported_env());
        for name in &self.settings.pass_env {
            match std::env::var(name) {
                Ok(v) => {
                    env.insert(name.clone(), v);
                }
                Err(_) => self.state.warn(format!(
                    "pass-env {name} is not set in the runner's environment"
                )),
            }
        }

        let solution = layout.solution_dir(self.task.id());
        if solution.is_dir() {
            let copy = run_dir.join("solution");
            let _ = fs::remove_dir_all(&copy);
            fsutil::copy_tree(&solution, &copy)
                .map_err(|e| format!("copying the solution: {e}"))?;
            env.insert("SOLUTION_DIR".into(), copy.display().to_string());
            if let Some((uid, gid)) = self.settings.agent_user {
                fsutil::chown_tree(&copy, uid, gid)
                    .map_err(|e| format!("chown {}: {e}", copy.display()))?;
            }
            log::info("agent: reference solution provided (oracle image)");
        }

        match self.settings.agent_user {
            Some((uid, gid)) => {
                for dir in [&agent_out, &home] {
                    fsutil::chown_tree(dir, uid, gid).map_err(|e| format!("chown {}: {e}", dir.display()))?;
                }
                // Fail closed: never start an agent that could read the graders.
                let hidden = [self.task.grading_dir(), self.task.dir.clone()];
                for path in hidden.iter().filter(|p| p.exists()) {
                    // Probe where the files really are: a symlink may lead around /kiln.
                    let path = &fs::canonicalize(path).unwrap_or_else(|_| path.clone());
                    match process::can_read_as(path, uid, gid) {
                        Ok(false) => {}
                        Ok(true) => return Err(format!("{} is readable by the agent user (uid {uid}); fix the image's permissions", path.display())),
                        Err(e) => return Err(format!("cannot check that {} is hidden from the agent: {e}", path.display())),
                    }
                }
            }
            None => self.state.warn("--no-drop-privileges: the agent ran as the runner's own user, graders were not hidden from it"),
        }
        Ok(Launch { env, agent_out })
    }

    fn agent_steps(&mut self) -> Result<(), String> {
        let entry = self.settings.layout.agent_entry();
        let meta =
            fs::metadata(&entry).map_err(|e| format!("agent entry {}: {e}", entry.display()))?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(format!(
                "agent entry {} is not an executable file",
                entry.display()
            ));
        }
        let Launch { env, agent_out } = self.agent_launch()?;

        let timeout = Duration::from_secs(
            self.settings
                .agent_timeout
                .unwrap_or(self.task.scenario.agent.timeout_sec),
        );
        let spec = Spec {
            program: entry,
            args: Vec::new(),
            cwd: self.workspace.clone(),
            env,
            user: self.settings.agent_user,
            stdout: agent_out.join("stdout.log"),
            stderr: agent_out.join("stderr.log"),
            timeout,
            grace: process::KILL_GRACE,
        };
        log::info(&format!(
            "agent: running {} (timeout {} s)",
            spec.program.display(),
            timeout.as_secs()
        ));
        let outcome = process::run(&spec);
        if let Some(e) = &outcome.spawn_error {
            return Err(e.clone());
        }
        if outcome.interrupted {
            if let Some((uid, _)) = self.settings.agent_user {
                process::kill_uid(uid);
            }
            return Err("the runner was interrupted (SIGTERM/SIGINT) while the agent ran".into());
        }
        if let Some((uid, _)) = self.settings.agent_user {
            let killed = process::kill_uid(uid);
            if killed > 0 {
                self.state.warn(format!(
                    "killed {killed} agent process(es) left running after the agent exited"
                ));
            }
        }
        log::info(&format!(
            "agent: {} after {:.1} s",
            if outcome.success() {
                "exited 0".to_string()
            } else {
                outcome.describe_failure(timeout)
            },
            outcome.wall.as_secs_f64()
        ));
        self.state.agent = Some(AgentRun {
            exit_code: outcome.exit_code,
            signal: outcome.signal,
            timed_out: outcome.timed_out,
            wall_sec: (outcome.wall.as_secs_f64() * 1000.0).round() / 1000.0,
            privileges_dropped: self.settings.agent_user.is_some(),
            not_run: false,
        });
        Ok(())
    }

    // ------------------------------------------------------------------ grade

    pub fn grade(&mut self) -> RunResult {
        let clock = PhaseClock::start();
        if self.state.has_infra_error() || self.state.agent.is_none() {
            if self.state.agent.is_none() && !self.state.has_infra_error() {
                self.state
                    .error(Phase::Agent, "the agent phase did not run");
            }
            return self.result(
                Vec::new(),
                self.infra_score(),
                BTreeMap::new(),
                false,
                false,
                None,
            );
        }
        log::info("grade: starting");
        self.remove_links_to_hidden_files();
        let health = self.services.health();
        for note in self.services.restore(&health) {
            self.state.warn(note);
        }
        let (checks, scored, rewards, grader_error, external) = self.grade_steps(&health);
        let timing = clock.stop();
        let mut result = self.result(
            checks,
            scored.score,
            rewards,
            grader_error,
            external,
            Some(timing),
        );
        result.gates = scored.gates;
        for w in scored.warnings {
            result.warnings.push(w);
        }
        result
    }

    /// Graders run as root: a symlink the agent planted towards the grading tree would
    /// let them read the expected answers on its behalf. Such links are removed.
    fn remove_links_to_hidden_files(&mut self) {
        let hidden = [self.settings.layout.kiln_dir(), self.task.dir.clone()];
        for (rel, target) in fsutil::symlinks_into(&self.workspace, &hidden) {
            let _ = fs::remove_file(self.workspace.join(&rel));
            self.state.warn(format!(
                "removed {rel}: a symlink into the hidden grading tree ({})",
                target.display()
            ));
        }
    }

    fn infra_score(&self) -> Score {
        let mode = self.task.mode();
        let (threshold, n_gates) = match mode {
            Mode::Gated => (
                self.task.gated().threshold,
                Some(self.task.gated().gates.len()),
            ),
            Mode::Weighted => (self.task.weighted().pass_threshold, None),
            Mode::Reward => (
                self.task
                    .scenario
                    .grading
                    .reward
                    .as_ref()
                    .map(|r| r.pass_threshold)
                    .unwrap_or(1.0),
                None,
            ),
        };
        Score {
            mode,
            value: 0.0,
            passed: false,
            raw_value: 0.0,
            threshold,
            highest_gate: n_gates.map(|_| 0),
            n_gates,
            caps_applied: Vec::new(),
        }
    }

    fn grader_env(&self, grader_out: &Path) -> BTreeMap<String, String> {
        let mut env = self.root_env();
        let agent = self.state.agent.clone().unwrap_or_default();
        env.insert(
            "GRADING_DIR".into(),
            self.task.grading_dir().display().to_string(),
        );
        env.insert(
            "GRADING_DATA".into(),
            self.task.grading_dir().join("data").display().to_string(),
        );
        env.insert("GRADER_OUT".into(), grader_out.display().to_string());
        env.insert(
            "AGENT_EXIT_CODE".into(),
            agent.exit_code.map(|c| c.to_string()).unwrap_or_default(),
        );
        env.insert("AGENT_TIMED_OUT".into(), agent.timed_out.to_string());
        env.insert("AGENT_WALL_SEC".into(), agent.wall_sec.to_string());
        env
    }

    /// Runs one grader executable and turns what it reports into checks.
    /// `single` = `checks/<group>/<id>`: (id, group) are the defaults and the exit code counts.
    fn run_grader(
        &self,
        exe: &Path,
        out_name: &str,
        single: Option<(&str, &str)>,
        default_group: &str,
    ) -> GraderRun {
        let grader_out = self.settings.output.join("grader").join(out_name);
        let _ = fs::remove_dir_all(&grader_out);
        if let Err(e) = fs::create_dir_all(&grader_out) {
            return GraderRun {
                checks: Vec::new(),
                failure: Some(format!("cannot create {}: {e}", grader_out.display())),
            };
        }
        let timeout = Duration::from_secs(self.task.scenario.grading.timeout_sec);
        let spec = Spec {
            program: exe.to_path_buf(),
            args: Vec::new(),
            cwd: self.workspace.clone(),
            env: self.grader_env(&grader_out),
            user: None,
            stdout: grader_out.join("stdout.log"),
            stderr: grader_out.join("stderr.log"),
            timeout,
            grace: Duration::from_secs(5),
        };
        log::info(&format!("grade: {out_name}"));
        let outcome = process::run(&spec);
        let duration_ms = outcome.wall.as_millis() as u64;
        let stdout = fs::read_to_string(&spec.stdout).unwrap_or_default();
        let stderr_tail = fsutil::read_tail(&spec.stderr, STDERR_TAIL);
        let crashed = outcome.spawn_error.is_some()
            || outcome.timed_out
            || outcome.interrupted
            || outcome.signal.is_some();
        if crashed {
            return GraderRun {
                checks: Vec::new(),
                failure: Some(format!("{out_name} {}", outcome.describe_failure(timeout))),
            };
        }
        let jsonl = fs::read_to_string(grader_out.join("checks.jsonl")).ok();
        let records = match check::parse_records(jsonl.as_deref(), &stdout) {
            Ok(r) => r,
            Err(e) => {
                return GraderRun {
                    checks: Vec::new(),
                    failure: Some(format!("{out_name}: unreadable output: {e}")),
                }
            }
        };
        let Some(records) = records else {
            return match single {
                Some((id, group)) => {
                    let mut c = Check::new(
                        id,
                        group,
                        check::Source::Scenario,
                        outcome.exit_code == Some(0),
                    );
                    c.message = if c.passed {
                        String::new()
                    } else if stderr_tail.is_empty() {
                        outcome.describe_failure(timeout)
                    } else {
                        stderr_tail
                    };
                    c.duration_ms = duration_ms;
                    GraderRun {
                        checks: vec![c],
                        failure: None,
                    }
                }
                None => GraderRun {
                    checks: Vec::new(),
                    failure: Some(format!(
                        "{out_name} reported no checks ({})",
                        outcome.describe_failure(timeout)
                    )),
                },
            };
        };
        let mut checks = Vec::new();
        for r in records {
            let id = match (r.id, single) {
                (Some(id), _) => id,
                (None, Some((id, _))) => id.to_string(),
                (None, None) => {
                    return GraderRun {
                        checks: Vec::new(),
                        failure: Some(format!("{out_name}: a record has no id")),
                    }
                }
            };
            let group = r.group.unwrap_or_else(|| {
                single
                    .map(|(_, g)| g.to_string())
                    .unwrap_or_else(|| default_group.to_string())
            });
            let mut c = Check::new(&id, &group, check::Source::Scenario, r.passed);
            c.skipped = r.skipped;
            c.weight = r.weight.unwrap_or(1.0);
            c.required = r.required.unwrap_or(false);
            c.message = r.message.unwrap_or_default();
            c.details = r.details.unwrap_or_default();
            c.duration_ms = duration_ms;
            checks.push(c);
        }
        GraderRun {
            checks,
            failure: None,
        }
    }

    /// Adds a grader's checks; a grader failure becomes failed checks (never a pass).
    /// Returns whether the grader failed.
    fn absorb(
        &mut self,
        checks: &mut Vec<Check>,
        g: GraderRun,
        failed_ids: Vec<(String, String)>,
    ) -> bool {
        let failed = g.failure.is_some();
        if let Some(reason) = g.failure {
            self.state.error(Phase::Grade, reason.clone());
            for (id, group) in failed_ids {
                checks.push(Check::grader_failure(&id, &group, &reason).with_required(true));
            }
        }
        for c in g.checks {
            push_unique(checks, c, &mut self.state);
        }
        failed
    }

    fn core_checks(&self, health: &BTreeMap<String, bool>) -> Vec<Check> {
        let agent = self.state.agent.clone().unwrap_or_default();
        let out = self.agent_output();
        let facts = Facts {
            agent_exit_code: agent.exit_code,
            agent_signal: agent.signal,
            agent_timed_out: agent.timed_out,
            agent_ran: !agent.not_run,
            agent_logs: vec![out.join("stdout.log"), out.join("stderr.log")],
            workspace: &self.workspace,
            fixtures: &self.state.fixtures,
            services: health,
        };
        self.task
            .core_checks
            .iter()
            .map(|cc| {
                let start = Instant::now();
                let mut c = core_checks::run(cc.builtin, &cc.paths, &facts);
                c.group = cc.group.clone();
                c.weight = cc.weight;
                c.required = cc.required;
                c.duration_ms = start.elapsed().as_millis() as u64;
                c
            })
            .collect()
    }

    #[allow(clippy::type_complexity)]
    fn grade_steps(
        &mut self,
        health: &BTreeMap<String, bool>,
    ) -> (Vec<Check>, Scored, BTreeMap<String, f64>, bool, bool) {
        let mode = self.task.mode();
        let fallback = self.task.fallback_group();
        let gated_cfg = self.task.gated();
        let mut checks = self.core_checks(health);
        let mut grader_error = false;

        if let Some(grade) = self.task.grade_exe.clone() {
            let g = self.run_grader(&grade, "grade", None, &fallback);
            let reported: BTreeSet<String> = g.checks.iter().map(|c| c.id.clone()).collect();
            let mut failed_ids: Vec<(String, String)> = self
                .task
                .scenario
                .grading
                .expected
                .iter()
                .filter(|id| !reported.contains(*id))
                .map(|id| (id.clone(), fallback.clone()))
                .collect();
            if failed_ids.is_empty() {
                failed_ids.push(("grade".into(), fallback.clone()));
            }
            grader_error |= self.absorb(&mut checks, g, failed_ids);
        }

        // Ids promised in `expected` that nothing will report.
        let will_report: BTreeSet<String> = checks
            .iter()
            .map(|c| c.id.clone())
            .chain(self.task.check_files.iter().map(|f| f.id.clone()))
            .collect();
        for id in self.task.scenario.grading.expected.clone() {
            if !will_report.contains(&id) {
                grader_error = true;
                self.state.error(
                    Phase::Grade,
                    format!("expected check {id:?} was not reported"),
                );
                checks.push(
                    Check::grader_failure(&id, &fallback, "not reported by any grader")
                        .with_required(true),
                );
            }
        }

        let files = self.task.check_files.clone();
        let mut rewards = BTreeMap::new();
        let mut external = false;
        let scored = match mode {
            Mode::Gated => {
                for c in checks.iter_mut() {
                    if !gated_cfg.gates.contains(&c.group) {
                        grader_error = true;
                        self.state.error(
                            Phase::Grade,
                            format!(
                                "check {:?} reports group {:?}, which is not a gate",
                                c.id, c.group
                            ),
                        );
                        c.counted = false;
                    }
                }
                let mut failed_at = None;
                for (gi, gate) in gated_cfg.gates.iter().enumerate() {
                    for f in files.iter().filter(|f| &f.group == gate) {
                        let g = self.run_grader(
                            &f.path,
                            &format!("checks/{}/{}", f.group, f.id),
                            Some((&f.id, &f.group)),
                            &f.group,
                        );
                        grader_error |=
                            self.absorb(&mut checks, g, vec![(f.id.clone(), f.group.clone())]);
                    }
                    let (outcome, _) = score::evaluate_gate(
                        gate,
                        &checks,
                        gated_cfg.threshold,
                        gated_cfg.weighted,
                    );
                    if !outcome.passed {
                        failed_at = Some(gi);
                        break;
                    }
                }
                if let Some(gi) = failed_at {
                    let later: BTreeSet<&String> = gated_cfg.gates[gi + 1..].iter().collect();
                    for c in checks.iter_mut().filter(|c| later.contains(&c.group)) {
                        c.counted = false;
                    }
                }
                score::gated(
                    &checks,
                    &gated_cfg.gates,
                    gated_cfg.threshold,
                    gated_cfg.weighted,
                )
            }
            Mode::Weighted => {
                for f in &files {
                    let g = self.run_grader(
                        &f.path,
                        &format!("checks/{}/{}", f.group, f.id),
                        Some((&f.id, &f.group)),
                        &f.group,
                    );
                    grader_error |=
                        self.absorb(&mut checks, g, vec![(f.id.clone(), f.group.clone())]);
                }
                let w = self.task.weighted();
                score::weighted(&checks, w.pass_threshold, &w.caps)
            }
            Mode::Reward => {
                for f in &files {
                    let g = self.run_grader(
                        &f.path,
                        &format!("checks/{}/{}", f.group, f.id),
                        Some((&f.id, &f.group)),
                        &f.group,
                    );
                    grader_error |=
                        self.absorb(&mut checks, g, vec![(f.id.clone(), f.group.clone())]);
                }
                let cfg = self
                    .task
                    .scenario
                    .grading
                    .reward
                    .clone()
                    .expect("validated: reward mode has [grading.reward]");
                let (reward, problem) = self.run_reward(&cfg.command);
                if let Some(p) = problem {
                    grader_error = true;
                    self.state.error(Phase::Grade, p);
                }
                if let Some((value, all)) = reward {
                    rewards = all;
                    external = value == -1.0;
                    score::reward(Some(value), &checks, cfg.pass_threshold)
                } else {
                    score::reward(None, &checks, cfg.pass_threshold)
                }
            }
        };
        (checks, scored, rewards, grader_error, external)
    }

    /// Runs the reward command and reads reward.json / reward.txt from its GRADER_OUT.
    #[allow(clippy::type_complexity)]
    fn run_reward(
        &mut self,
        command: &str,
    ) -> (Option<(f64, BTreeMap<String, f64>)>, Option<String>) {
        let exe = self.task.dir.join(command);
        let grader_out = self.settings.output.join("grader").join("reward");
        let _ = fs::remove_dir_all(&grader_out);
        if let Err(e) = fs::create_dir_all(&grader_out) {
            return (
                None,
                Some(format!("cannot create {}: {e}", grader_out.display())),
            );
        }
        let timeout = Duration::from_secs(self.task.scenario.grading.timeout_sec);
        let spec = Spec {
            program: exe,
            args: Vec::new(),
            cwd: self.workspace.clone(),
            env: self.grader_env(&grader_out),
            user: None,
            stdout: grader_out.join("stdout.log"),
            stderr: grader_out.join("stderr.log"),
            timeout,
            grace: Duration::from_secs(5),
        };
        log::info(&format!("grade: reward command {command}"));
        let outcome = process::run(&spec);
        if outcome.spawn_error.is_some()
            || outcome.timed_out
            || outcome.interrupted
            || outcome.signal.is_some()
        {
            return (
                None,
                Some(format!(
                    "reward command {command} {}",
                    outcome.describe_failure(timeout)
                )),
            );
        }
        if outcome.exit_code != Some(0) {
            self.state.warn(format!(
                "reward command {command} exited {}",
                outcome.exit_code.unwrap_or(-1)
            ));
        }
        match read_reward(&grader_out) {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(format!("reward command {command}: {e}"))),
        }
    }

    fn agent_metrics(&self) -> Option<Map<String, Value>> {
        let path = self.agent_output().join("metrics.json");
        let meta = fs::metadata(&path).ok()?;
        if meta.len() > 1024 * 1024 {
            return None;
        }
        match serde_json::from_slice::<Value>(&fs::read(&path).ok()?) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        }
    }

    fn result(
        &mut self,
        checks: Vec<Check>,
        score: Score,
        rewards: BTreeMap<String, f64>,
        grader_error: bool,
        external: bool,
        grade_timing: Option<PhaseTiming>,
    ) -> RunResult {
        let agent = self.state.agent.clone().unwrap_or(AgentRun {
            not_run: true,
            ..AgentRun::default()
        });
        let status = if self.state.has_infra_error() {
            Status::InfraError
        } else if grader_error {
            Status::GraderError
        } else if external {
            Status::ExternalGrading
        } else if agent.timed_out {
            Status::AgentTimeout
        } else if agent.exit_code != Some(0) {
            Status::AgentError
        } else {
            Status::Completed
        };
        let finished = SystemTime::now();
        RunResult {
            schema_version: SCHEMA_VERSION,
            runner_version: env!("CARGO_PKG_VERSION"),
            run_id: self.state.run_id.clone(),
            status,
            task: TaskInfo {
                id: self.task.id().to_string(),
                title: self.task.scenario.title.clone(),
                prompt_variant: self.state.prompt_variant.clone(),
                prompt_sha256: self.state.prompt_sha256.clone(),
                scenario_sha256: self.task.scenario_sha256.clone(),
            },
            agent: AgentInfo {
                id: self.settings.agent_id.clone(),
                model: self.settings.model.clone(),
                exit_code: agent.exit_code,
                signal: agent.signal,
                timed_out: agent.timed_out,
                wall_sec: (!agent.not_run).then_some(agent.wall_sec),
                privileges_dropped: if agent.not_run {
                    self.settings.agent_user.is_some()
                } else {
                    agent.privileges_dropped
                },
                metrics: self.agent_metrics(),
            },
            score,
            gates: Vec::new(),
            checks,
            rewards,
            fixtures: self.state.fixtures.clone(),
            timing: Timing {
                started_at: self.state.started_at.clone(),
                finished_at: fsutil::rfc3339(finished),
                wall_sec: (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
                prepare: self.state.prepare.clone(),
                agent: self.state.agent_phase.clone(),
                grade: grade_timing,
            },
            warnings: self.state.warnings.clone(),
            errors: self.state.errors.clone(),
            model: None,
        }
    }

    /// Writes result.json (atomically), hands the output tree to its owner, prints it.
    pub fn finish(&mut self, mut result: RunResult) -> Status {
        self.services.stop_all();
        if let Err(e) = result.write(&self.settings.output) {
            result.errors.push(crate::result::ErrorEntry {
                phase: Phase::Output,
                message: format!("cannot write result.json: {e}"),
            });
            result.status = Status::InfraError;
        }
        if let Some((uid, gid)) = self.settings.output_owner {
            if let Err(e) = fsutil::chown_tree(&self.settings.output, uid, gid) {
                log::info(&format!(
                    "warning: cannot chown {} to {uid}:{gid}: {e}",
                    self.settings.output.display()
                ));
            }
        }
        log::info(&format!(
            "result: status {} score {} passed {} → {}",
            result.status.as_str(),
            result.score.value,
            result.score.passed,
            self.settings.output.join("result.json").display()
        ));
        result.print();
        result.status
    }

    /// A result for a run that stopped before grading (prepare or agent failed).
    pub fn infra_result(&mut self) -> RunResult {
        let score = self.infra_score();
        self.result(Vec::new(), score, BTreeMap::new(), false, false, None)
    }
}

/// Appends `c`, renaming a duplicate id to `<id>#2`, `#3`, … with a warning.
fn push_unique(checks: &mut Vec<Check>, mut c: Check, state: &mut State) {
    if checks.iter().any(|x| x.id == c.id) {
        let mut n = 2;
        while checks.iter().any(|x| x.id == format!("{}#{n}", c.id)) {
            n += 1;
        }
        let renamed = format!("{}#{n}", c.id);
        state.warn(format!(
            "check id {:?} reported twice; the second is listed as {renamed:?}",
            c.id
        ));
        c.id = renamed;
    }
    checks.push(c);
}

/// reward.json (numeric keys, `reward` is the score) wins over reward.txt (one number).
pub fn read_reward(dir: &Path) -> Result<(f64, BTreeMap<String, f64>), String> {
    let json_path = dir.join("reward.json");
    if json_path.exists() {
        let text = fs::read_to_string(&json_path).map_err(|e| format!("reward.json: {e}"))?;
        let value: Value = serde_json::from_str(&text).map_err(|e| format!("reward.json: {e}"))?;
        let Value::Object(map) = value else {
            return Err("reward.json is not a JSON object".into());
        };
        let all: BTreeMap<String, f64> = map
            .iter()
            .filter_map(|(k, v)| v.as_f64().map(|f| (k.clone(), f)))
            .collect();
        let reward = all
            .get("reward")
            .copied()
            .ok_or("reward.json has no numeric \"reward\" key")?;
        return Ok((reward, all));
    }
    let txt_path = dir.join("reward.txt");
    if txt_path.exists() {
        let text = fs::read_to_string(&txt_path).map_err(|e| format!("reward.txt: {e}"))?;
        let reward: f64 = text.trim().parse().map_err(|_| {
            format!(
                "reward.txt holds {:?}, not a number",
                check::tail(text.trim(), 64)
            )
        })?;
        if !reward.is_finite() {
            return Err(format!("reward.txt holds {reward}, not a finite number"));
        }
        return Ok((reward, BTreeMap::from([("reward".to_string(), reward)])));
    }
    Err("neither reward.json nor reward.txt was written to $GRADER_OUT".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reward_files() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(read_reward(tmp.path()).unwrap_err().contains("neither"));
        fs::write(tmp.path().join("reward.txt"), "0.5\n").unwrap();
        assert_eq!(read_reward(tmp.path()).unwrap().0, 0.5);
        fs::write(
            tmp.path().join("reward.json"),
            "{\"reward\": 1, \"tests\": 0.75, \"note\": \"x\"}",
        )
        .unwrap();
        let (r, all) = read_reward(tmp.path()).unwrap();
        assert_eq!((r, all.len()), (1.0, 2));
        fs::write(tmp.path().join("reward.json"), "{\"score\": 1}").unwrap();
        assert!(read_reward(tmp.path())
            .unwrap_err()
            .contains("no numeric \"reward\""));
        fs::remove_file(tmp.path().join("reward.json")).unwrap();
        fs::write(tmp.path().join("reward.txt"), "pass").unwrap();
        assert!(read_reward(tmp.path()).is_err());
    }
}
