//! `scenario.toml` (docs/scenario-format.md §3) and the checks a task directory
//! must pass before anything runs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::core_checks::{self, Builtin};
use crate::score::{Cap, Mode, DEFAULT_GATES, DEFAULT_GATE_THRESHOLD};

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub schema_version: String,
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub metadata: toml::Table,
    #[serde(default)]
    pub environment: Environment,
    #[serde(default)]
    pub setup: SetupCfg,
    #[serde(default)]
    pub agent: AgentCfg,
    pub grading: Grading,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    #[serde(default = "default_workspace")]
    pub workspace: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub services: Vec<Service>,
}

impl Default for Environment {
    fn default() -> Self {
        Environment {
            workspace: default_workspace(),
            env: BTreeMap::new(),
            services: Vec::new(),
        }
    }
}

fn default_workspace() -> String {
    "/workspace".into()
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: String,
    pub command: String,
    pub user: Option<String>,
    pub ready: Option<String>,
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout_sec: u64,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn default_ready_timeout() -> u64 {
    60
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct SetupCfg {
    #[serde(default = "default_setup_timeout")]
    pub timeout_sec: u64,
}

impl Default for SetupCfg {
    fn default() -> Self {
        SetupCfg {
            timeout_sec: default_setup_timeout(),
        }
    }
}

fn default_setup_timeout() -> u64 {
    300
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct AgentCfg {
    #[serde(default = "default_agent_timeout")]
    pub timeout_sec: u64,
    #[serde(default = "default_variant")]
    pub prompt_variant: String,
}

impl Default for AgentCfg {
    fn default() -> Self {
        AgentCfg {
            timeout_sec: default_agent_timeout(),
            prompt_variant: default_variant(),
        }
    }
}

fn default_agent_timeout() -> u64 {
    1800
}

fn default_variant() -> String {
    "default".into()
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Grading {
    pub mode: Mode,
    #[serde(default = "default_grading_timeout")]
    pub timeout_sec: u64,
    #[serde(default)]
    pub expected: Vec<String>,
    #[serde(default)]
    pub core_checks: Vec<CoreCheckSpec>,
    pub gated: Option<GatedCfg>,
    pub weighted: Option<WeightedCfg>,
    pub reward: Option<RewardCfg>,
}

fn default_grading_timeout() -> u64 {
    300
}

/// `core_checks = ["id", ...]` or `[[grading.core_checks]] id = ...`.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum CoreCheckSpec {
    Short(String),
    Long(CoreCheckTable),
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct CoreCheckTable {
    pub id: String,
    pub group: Option<String>,
    pub weight: Option<f64>,
    pub required: Option<bool>,
    pub paths: Option<Vec<String>>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct GatedCfg {
    #[serde(default = "default_gates")]
    pub gates: Vec<String>,
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    #[serde(default)]
    pub weighted: bool,
}

impl Default for GatedCfg {
    fn default() -> Self {
        GatedCfg {
            gates: default_gates(),
            threshold: default_threshold(),
            weighted: false,
        }
    }
}

fn default_gates() -> Vec<String> {
    DEFAULT_GATES.iter().map(|s| s.to_string()).collect()
}

fn default_threshold() -> f64 {
    DEFAULT_GATE_THRESHOLD
}

fn default_pass_threshold() -> f64 {
    1.0
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct WeightedCfg {
    #[serde(default = "default_pass_threshold")]
    pub pass_threshold: f64,
    #[serde(default)]
    pub caps: Vec<Cap>,
}

impl Default for WeightedCfg {
    fn default() -> Self {
        WeightedCfg {
            pass_threshold: 1.0,
            caps: Vec::new(),
        }
    }
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RewardCfg {
    pub command: String,
    #[serde(default = "default_pass_threshold")]
    pub pass_threshold: f64,
}

/// A core check with every default resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct CoreCheck {
    pub builtin: Builtin,
    pub group: String,
    pub weight: f64,
    pub required: bool,
    pub paths: Vec<String>,
}

/// One executable under `grading/checks/<group>/`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckFile {
    pub id: String,
    pub group: String,
    pub path: PathBuf,
}

/// A task directory, parsed and validated.
#[derive(Debug, Clone)]
pub struct Task {
    pub dir: PathBuf,
    pub scenario: Scenario,
    pub scenario_sha256: String,
    pub core_checks: Vec<CoreCheck>,
    pub check_files: Vec<CheckFile>,
    pub grade_exe: Option<PathBuf>,
    pub setup_files: Vec<PathBuf>,
}

impl Task {
    pub fn id(&self) -> &str {
        &self.scenario.id
    }
    pub fn mode(&self) -> Mode {
        self.scenario.grading.mode
    }
    pub fn gated(&self) -> GatedCfg {
        self.scenario.grading.gated.clone().unwrap_or_default()
    }
    pub fn weighted(&self) -> WeightedCfg {
        self.scenario.grading.weighted.clone().unwrap_or_default()
    }
    pub fn grading_dir(&self) -> PathBuf {
        self.dir.join("grading")
    }
    pub fn prompt_path(&self, variant: &str) -> PathBuf {
        self.dir.join("prompts").join(format!("{variant}.md"))
    }
    /// Group of checks that belong nowhere else: the first gate, or `default`.
    pub fn fallback_group(&self) -> String {
        match self.mode() {
            Mode::Gated => self
                .gated()
                .gates
                .first()
                .cloned()
                .unwrap_or_else(|| "default".into()),
            _ => "default".into(),
        }
    }
    /// Every environment variable the scenario exports to all phases.
    pub fn exported_env(&self) -> BTreeMap<String, String> {
        let mut env = self.scenario.environment.env.clone();
        for s in &self.scenario.environment.services {
            env.extend(s.env.clone());
        }
        env
    }
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    out.sort();
    Ok(out)
}

fn file_stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    match name.rfind('.') {
        Some(i) if i > 0 => name[..i].to_string(),
        _ => name,
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !s.starts_with('.')
}

/// Loads `<dir>/scenario.toml` and checks the directory against it. Every problem is
/// reported, each naming the file and the key or value at fault.
pub fn load(dir: &Path) -> Result<Task, Vec<String>> {
    let toml_path = dir.join("scenario.toml");
    let text = fs::read_to_string(&toml_path)
        .map_err(|e| vec![format!("{}: {e}", toml_path.display())])?;
    let scenario: Scenario = toml::from_str(&text).map_err(|e| {
        vec![format!(
            "{}: {}",
            toml_path.display(),
            e.to_string().trim_end()
        )]
    })?;
    let mut errors = Vec::new();
    let at = |key: &str| format!("{}: {key}", toml_path.display());

    if scenario.schema_version != "1" {
        errors.push(format!(
            "{}: unsupported value {:?} (this runner reads \"1\")",
            at("schema_version"),
            scenario.schema_version
        ));
    }
    let dir_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if scenario.id != dir_name {
        errors.push(format!(
            "{}: {:?} must equal the task directory name {:?}",
            at("id"),
            scenario.id,
            dir_name
        ));
    }
    if !scenario.environment.workspace.starts_with('/') || scenario.environment.workspace == "/" {
        errors.push(format!(
            "{}: {:?} must be an absolute path other than /",
            at("environment.workspace"),
            scenario.environment.workspace
        ));
    }
    let mut service_names = BTreeSet::new();
    for (i, s) in scenario.environment.services.iter().enumerate() {
        let key = format!("environment.services[{i}]");
        if !s
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
            || s.name.is_empty()
        {
            errors.push(format!(
                "{}: name {:?} must match [a-z0-9_-]+",
                at(&key),
                s.name
            ));
        }
        if !service_names.insert(s.name.clone()) {
            errors.push(format!("{}: duplicate service name {:?}", at(&key), s.name));
        }
        if s.command.trim().is_empty() {
            errors.push(format!("{}: command is empty", at(&key)));
        }
    }
    if scenario.agent.timeout_sec == 0 {
        errors.push(format!("{}: must be > 0", at("agent.timeout_sec")));
    }
    if scenario.grading.timeout_sec == 0 {
        errors.push(format!("{}: must be > 0", at("grading.timeout_sec")));
    }
    let prompt = dir
        .join("prompts")
        .join(format!("{}.md", scenario.agent.prompt_variant));
    if !prompt.is_file() {
        errors.push(format!(
            "{}: prompt file {} is missing",
            at("agent.prompt_variant"),
            prompt.display()
        ));
    }

    let g = &scenario.grading;
    let mode = g.mode;
    for (section, present, wanted) in [
        ("grading.gated", g.gated.is_some(), Mode::Gated),
        ("grading.weighted", g.weighted.is_some(), Mode::Weighted),
        ("grading.reward", g.reward.is_some(), Mode::Reward),
    ] {
        if present && mode != wanted {
            errors.push(format!(
                "{}: section given but grading.mode is {:?}",
                at(section),
                mode_name(mode)
            ));
        }
    }
    let gated = g.gated.clone().unwrap_or_default();
    if mode == Mode::Gated {
        if gated.gates.is_empty() {
            errors.push(format!(
                "{}: at least one gate is needed",
                at("grading.gated.gates")
            ));
        }
        let mut seen = BTreeSet::new();
        for gate in &gated.gates {
            if !valid_name(gate) || !seen.insert(gate) {
                errors.push(format!(
                    "{}: invalid or duplicate gate {gate:?}",
                    at("grading.gated.gates")
                ));
            }
        }
        if !(0.0..=1.0).contains(&gated.threshold) {
            errors.push(format!(
                "{}: {} is not within 0..1",
                at("grading.gated.threshold"),
                gated.threshold
            ));
        }
    }
    if let Some(w) = &g.weighted {
        if !(0.0..=1.0).contains(&w.pass_threshold) {
            errors.push(format!(
                "{}: {} is not within 0..1",
                at("grading.weighted.pass_threshold"),
                w.pass_threshold
            ));
        }
        for (i, cap) in w.caps.iter().enumerate() {
            if glob::Pattern::new(&cap.when_any_failed).is_err() {
                errors.push(format!(
                    "{}: bad glob {:?}",
                    at(&format!("grading.weighted.caps[{i}].when_any_failed")),
                    cap.when_any_failed
                ));
            }
            if !(0.0..=1.0).contains(&cap.max) {
                errors.push(format!(
                    "{}: {} is not within 0..1",
                    at(&format!("grading.weighted.caps[{i}].max")),
                    cap.max
                ));
            }
        }
    }
    match (&g.reward, mode) {
        (None, Mode::Reward) => errors.push(format!(
            "{}: mode \"reward\" needs [grading.reward] command",
            at("grading.reward")
        )),
        (Some(r), _) => {
            let cmd = dir.join(&r.command);
            if r.command.starts_with('/') || r.command.split('/').any(|p| p == "..") {
                errors.push(format!(
                    "{}: {:?} must be a path inside the task directory",
                    at("grading.reward.command"),
                    r.command
                ));
            } else if !is_executable(&cmd) {
                errors.push(format!(
                    "{}: {} is missing or not executable",
                    at("grading.reward.command"),
                    cmd.display()
                ));
            }
            if !(0.0..=1.0).contains(&r.pass_threshold) {
                errors.push(format!(
                    "{}: {} is not within 0..1",
                    at("grading.reward.pass_threshold"),
                    r.pass_threshold
                ));
            }
        }
        _ => {}
    }

    // Core checks.
    let mut core_checks = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, spec) in g.core_checks.iter().enumerate() {
        let table = match spec {
            CoreCheckSpec::Short(id) => CoreCheckTable {
                id: id.clone(),
                group: None,
                weight: None,
                required: None,
                paths: None,
            },
            CoreCheckSpec::Long(t) => t.clone(),
        };
        let key = format!("grading.core_checks[{i}]");
        let Some(builtin) = Builtin::from_id(&table.id) else {
            errors.push(format!(
                "{}: unknown core check {:?} (known: {})",
                at(&key),
                table.id,
                core_checks::ALL
                    .iter()
                    .map(|b| b.id())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            continue;
        };
        if table.paths.is_some() && builtin != Builtin::FixturesUnchanged {
            errors.push(format!(
                "{}: `paths` only applies to fixtures_unchanged",
                at(&key)
            ));
        }
        for p in table.paths.iter().flatten() {
            if glob::Pattern::new(p).is_err() {
                errors.push(format!("{}: bad glob {p:?} in paths", at(&key)));
            }
        }
        if let Some(w) = table.weight {
            if !w.is_finite() || w < 0.0 {
                errors.push(format!("{}: weight {w} must be >= 0", at(&key)));
            }
        }
        if !ids.insert(table.id.clone()) {
            errors.push(format!(
                "{}: core check {:?} listed twice",
                at(&key),
                table.id
            ));
        }
        let group = table.group.unwrap_or_else(|| match mode {
            Mode::Gated => builtin.default_gate().to_string(),
            _ => "core".to_string(),
        });
        core_checks.push(CoreCheck {
            builtin,
            group,
            weight: table.weight.unwrap_or(1.0),
            required: table.required.unwrap_or(mode == Mode::Gated),
            paths: table.paths.unwrap_or_default(),
        });
    }

    // Grader executables.
    let grading = dir.join("grading");
    let mut check_files = Vec::new();
    let checks_dir = grading.join("checks");
    if checks_dir.is_dir() {
        match sorted_entries(&checks_dir) {
            Err(e) => errors.push(e),
            Ok(groups) => {
                for group_dir in groups {
                    let group = group_dir.file_name().unwrap().to_string_lossy().to_string();
                    if !group_dir.is_dir() {
                        errors.push(format!(
                            "{}: expected a directory per group (grading/checks/<group>/<id>)",
                            group_dir.display()
                        ));
                        continue;
                    }
                    if mode == Mode::Gated && !gated.gates.contains(&group) {
                        errors.push(format!(
                            "{}: group {group:?} is not a gate of grading.gated.gates {:?}",
                            group_dir.display(),
                            gated.gates
                        ));
                    }
                    let files = match sorted_entries(&group_dir) {
                        Ok(f) => f,
                        Err(e) => {
                            errors.push(e);
                            continue;
                        }
                    };
                    for path in files {
                        let id = file_stem(&path);
                        if !is_executable(&path) {
                            errors.push(format!("{}: not an executable file", path.display()));
                        } else if !valid_name(&id) {
                            errors.push(format!(
                                "{}: check id {id:?} must match [A-Za-z0-9_.-]+",
                                path.display()
                            ));
                        } else if !ids.insert(id.clone()) {
                            errors
                                .push(format!("{}: check id {id:?} is used twice", path.display()));
                        } else {
                            check_files.push(CheckFile {
                                id,
                                group: group.clone(),
                                path,
                            });
                        }
                    }
                }
            }
        }
    }
    let grade_path = grading.join("grade");
    let grade_exe = if grade_path.exists() {
        if !is_executable(&grade_path) {
            errors.push(format!("{}: not an executable file", grade_path.display()));
        }
        Some(grade_path)
    } else {
        None
    };
    if mode != Mode::Reward
        && check_files.is_empty()
        && grade_exe.is_none()
        && core_checks.is_empty()
    {
        errors.push(format!(
            "{}: no checks at all (grading/checks/, grading/grade or core_checks)",
            dir.display()
        ));
    }
    let mut expected_seen = BTreeSet::new();
    for id in &g.expected {
        if !expected_seen.insert(id) {
            errors.push(format!("{}: {id:?} listed twice", at("grading.expected")));
        }
    }

    let mut setup_files = Vec::new();
    let setup_dir = dir.join("setup");
    if setup_dir.is_dir() {
        match sorted_entries(&setup_dir) {
            Err(e) => errors.push(e),
            Ok(files) => {
                for f in files {
                    if !is_executable(&f) {
                        errors.push(format!(
                            "{}: setup entries must be executable files",
                            f.display()
                        ));
                    } else {
                        setup_files.push(f);
                    }
                }
            }
        }
    }
    let solve = dir.join("solution").join("solve.sh");
    if solve.exists() && !is_executable(&solve) {
        errors.push(format!("{}: not executable", solve.display()));
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Task {
        dir: dir.to_path_buf(),
        scenario_sha256: crate::fsutil::sha256_bytes(text.as_bytes()),
        scenario,
        core_checks,
        check_files,
        grade_exe,
        setup_files,
    })
}

pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Gated => "gated",
        Mode::Weighted => "weighted",
        Mode::Reward => "reward",
    }
}

/// Task ids in a tasks directory (sub-directories holding a scenario.toml), sorted.
pub fn task_ids(tasks_dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = fs::read_dir(tasks_dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("scenario.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    ids.sort();
    ids
}

#[cfg(test)]
mod tests;
