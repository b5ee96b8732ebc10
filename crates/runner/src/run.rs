//! The three phases (docs/scenario-format.md §7): prepare → agent → grade.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::fsutil;
use crate::layout::{Layout, AGENT_USER};
use crate::log;
use crate::process::{self, Spec};
use crate::result::{Phase, PhaseTiming, RunResult, Status};
use crate::scenario::Task;
use crate::services::Services;
use crate::state::{AgentRun, State};

mod grade;
mod shell;

pub use grade::read_reward;

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
