//! The grade phase: the graders run (hidden from the agent until now), their checks
//! and rewards combined into the score, and the result assembled.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value};

use super::{PhaseClock, Run, STDERR_TAIL};
use crate::check::{self, Check};
use crate::core_checks::{self, Facts};
use crate::fsutil;
use crate::log;
use crate::process::{self, Spec};
use crate::result::{
    AgentInfo, Phase, PhaseTiming, RunResult, Status, TaskInfo, Timing, SCHEMA_VERSION,
};
use crate::score::{self, Mode, Score, Scored};
use crate::state::{AgentRun, State};

/// What one grader executable produced.
struct GraderRun {
    checks: Vec<Check>,
    /// Set when the grader could not give a trustworthy answer (crash, timeout, garbage).
    failure: Option<String>,
}

impl Run {
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

    pub(super) fn infra_score(&self) -> Score {
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

    pub(super) fn result(
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
