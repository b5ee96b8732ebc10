//! `task.toml`, Harbor's task configuration (schema 1.0 to 1.4), as typed structs.
//!
//! Every table refuses fields it does not know (`deny_unknown_fields`), so a field kiln
//! would otherwise ignore is an error naming the file, line and field; only `[metadata]`
//! is free-form, as Harbor documents it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::problem::{Problem, ProblemKind};

/// The schema versions kiln reads (`schema_version`; files from before it have none).
pub const SCHEMA_VERSIONS: &[&str] = &["1.0", "1.1", "1.2", "1.3", "1.4"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    pub schema_version: Option<String>,
    /// The field `schema_version` replaced (older tasks write `version = "1.0"`).
    pub version: Option<String>,
    pub source: Option<String>,
    pub multi_step_reward_strategy: Option<RewardStrategy>,
    #[serde(default)]
    pub task: TaskInfo,
    #[serde(default)]
    pub metadata: toml::Table,
    #[serde(default)]
    pub verifier: Verifier,
    #[serde(default)]
    pub agent: Phase,
    #[serde(default)]
    pub solution: Solution,
    #[serde(default)]
    pub environment: Environment,
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Files copied out of the environment after the agent (to a separate verifier).
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RewardStrategy {
    Mean,
    Final,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskInfo {
    pub name: Option<String>,
    pub version: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub authors: Vec<Author>,
    #[serde(default)]
    pub keywords: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Author {
    pub name: String,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkMode {
    Public,
    NoNetwork,
    Allowlist,
}

/// A user name or a numeric uid.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum User {
    Name(String),
    Id(u32),
}

impl User {
    /// As `docker exec -u` takes it.
    pub fn as_arg(&self) -> String {
        match self {
            User::Name(n) => n.clone(),
            User::Id(id) => id.to_string(),
        }
    }
}

/// `[agent]` (and a step's `[steps.agent]`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub timeout_sec: Option<f64>,
    pub network_mode: Option<NetworkMode>,
    pub allowed_hosts: Option<Vec<String>>,
    pub user: Option<User>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verifier {
    pub timeout_sec: Option<f64>,
    pub network_mode: Option<NetworkMode>,
    pub allowed_hosts: Option<Vec<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub user: Option<User>,
    pub environment_mode: Option<EnvironmentMode>,
    pub environment: Option<Box<Environment>>,
    #[serde(default)]
    pub collect: Vec<Collect>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvironmentMode {
    Shared,
    Separate,
}

/// `[[verifier.collect]]`: a command run in a sidecar before grading.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collect {
    pub service: Option<String>,
    pub command: String,
    pub timeout_sec: Option<f64>,
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Solution {
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub network_mode: Option<NetworkMode>,
    pub allowed_hosts: Option<Vec<String>>,
    pub allow_internet: Option<bool>,
    pub build_timeout_sec: Option<f64>,
    pub docker_image: Option<String>,
    pub os: Option<Os>,
    pub cpus: Option<f64>,
    pub memory_mb: Option<u64>,
    pub storage_mb: Option<u64>,
    /// Before `memory_mb`/`storage_mb`: sizes such as `"2G"`.
    pub memory: Option<String>,
    pub storage: Option<String>,
    pub gpus: Option<u32>,
    pub gpu_types: Option<Vec<String>>,
    pub tpu: Option<Tpu>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub mcp_servers: Vec<toml::Table>,
    pub skills_dir: Option<String>,
    pub healthcheck: Option<Healthcheck>,
    pub workdir: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Linux,
    Windows,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tpu {
    #[serde(rename = "type")]
    pub kind: String,
    pub topology: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    pub command: String,
    pub interval_sec: Option<f64>,
    pub timeout_sec: Option<f64>,
    pub start_period_sec: Option<f64>,
    pub start_interval_sec: Option<f64>,
    pub retries: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    #[serde(default)]
    pub agent: Phase,
    #[serde(default)]
    pub verifier: Verifier,
    pub min_reward: Option<MinReward>,
    pub healthcheck: Option<Healthcheck>,
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
}

/// `min_reward = 1.0` (the key `reward`) or `{ key = threshold, … }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum MinReward {
    Scalar(f64),
    Keys(BTreeMap<String, f64>),
}

/// `"/path"` or `{ source = "/path", service = "api", destination = "…" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Artifact {
    Path(String),
    Full {
        source: String,
        service: Option<String>,
        destination: Option<String>,
    },
}

impl Artifact {
    pub fn source(&self) -> &str {
        match self {
            Artifact::Path(p) => p,
            Artifact::Full { source, .. } => source,
        }
    }
    pub fn service(&self) -> Option<&str> {
        match self {
            Artifact::Path(_) => None,
            Artifact::Full { service, .. } => service.as_deref(),
        }
    }
}

impl TaskConfig {
    /// Parses `text` (the contents of `file`): TOML syntax, known fields, a known schema
    /// version. The problem names the file, and the line and field where TOML says; an
    /// unknown field is a problem of its own kind.
    pub fn parse(file: &Path, text: &str) -> Result<TaskConfig, Problem> {
        let config: TaskConfig = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let msg = e.message().trim().to_string();
            // serde's wording for a field `deny_unknown_fields` refuses.
            let kind = if msg.starts_with("unknown field") {
                ProblemKind::UnknownField
            } else {
                ProblemKind::Config
            };
            Problem {
                line,
                ..Problem::new(kind, file, msg)
            }
        })?;
        if let Some(v) = &config.schema_version {
            if !SCHEMA_VERSIONS.contains(&v.as_str()) {
                return Err(Problem::new(
                    ProblemKind::Config,
                    file,
                    format!(
                        "schema_version {v:?} is not one kiln reads ({})",
                        SCHEMA_VERSIONS.join(", ")
                    ),
                ));
            }
        }
        if config.verifier.environment_mode == Some(EnvironmentMode::Shared)
            && config.verifier.environment.is_some()
        {
            return Err(Problem::new(
                ProblemKind::Config,
                file,
                "verifier.environment_mode = \"shared\" with a [verifier.environment] table (Harbor refuses this too)",
            ));
        }
        Ok(config)
    }
}

impl Environment {
    /// The network policy of the phase baseline (`allow_internet = false` is the
    /// deprecated spelling of `no-network`).
    pub fn network(&self) -> NetworkMode {
        match (self.network_mode, self.allow_internet) {
            (Some(m), _) => m,
            (None, Some(false)) => NetworkMode::NoNetwork,
            _ => NetworkMode::Public,
        }
    }

    /// Memory in MiB: `memory_mb`, else the older `memory = "2G"`.
    pub fn memory_mb(&self) -> Option<u64> {
        self.memory_mb
            .or_else(|| self.memory.as_deref().and_then(size_mb))
    }
}

/// `"2G"`, `"512M"`, `"1024"` (MiB) → MiB.
pub fn size_mb(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num.trim().parse().ok()?;
    let factor = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "M" | "MB" | "MI" | "MIB" => 1.0,
        "G" | "GB" | "GI" | "GIB" => 1024.0,
        "K" | "KB" | "KI" | "KIB" => 1.0 / 1024.0,
        _ => return None,
    };
    Some((n * factor).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TaskConfig, Problem> {
        TaskConfig::parse(Path::new("t/task.toml"), text)
    }

    #[test]
    fn an_unknown_field_is_named_with_its_line() {
        let problem = parse("schema_version = \"1.4\"\n[agent]\ntimeout_sec = 1.0\nusr = \"x\"\n")
            .unwrap_err();
        assert_eq!(problem.kind, ProblemKind::UnknownField);
        let err = problem.to_string();
        assert!(err.starts_with("t/task.toml:4:"), "{err}");
        assert!(err.contains("usr"), "{err}");
    }

    #[test]
    fn not_toml_and_unknown_schema_are_refused() {
        let problem = parse("[task\nname=1").unwrap_err();
        assert_eq!(problem.kind, ProblemKind::Config);
        let err = problem.to_string();
        assert!(err.starts_with("t/task.toml:1:"), "{err}");
        let err = parse("schema_version = \"9.0\"\n").unwrap_err().to_string();
        assert!(err.contains("\"9.0\""), "{err}");
    }

    #[test]
    fn the_full_schema_reads() {
        let c = parse(
            r#"schema_version = "1.4"
multi_step_reward_strategy = "final"
artifacts = ["/a", { source = "/b", service = "api" }]
[task]
name = "org/x"
authors = [{ name = "A", email = "a@b" }]
[metadata]
anything = { goes = 1 }
[verifier]
timeout_sec = 5
user = 1000
env = { K = "v" }
[agent]
user = "agent"
network_mode = "allowlist"
allowed_hosts = ["example.com"]
[environment]
network_mode = "no-network"
cpus = 2
memory = "2G"
workdir = "/w"
[environment.tpu]
type = "v6e"
topology = "2x4"
[environment.healthcheck]
command = "true"
[[steps]]
name = "one"
min_reward = { a = 0.5 }
"#,
        )
        .unwrap();
        assert_eq!(c.environment.memory_mb(), Some(2048));
        assert_eq!(c.environment.network(), NetworkMode::NoNetwork);
        assert_eq!(c.verifier.user, Some(User::Id(1000)));
        assert_eq!(c.artifacts[1].service(), Some("api"));
        assert_eq!(c.multi_step_reward_strategy, Some(RewardStrategy::Final));
    }

    #[test]
    fn sizes() {
        assert_eq!(size_mb("512M"), Some(512));
        assert_eq!(size_mb("1.5G"), Some(1536));
        assert_eq!(size_mb("lots"), None);
    }
}
