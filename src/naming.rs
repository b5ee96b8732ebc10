//! The one place that knows how fleet images, bake targets and task ids are named.
//! Every other module (plan, backends, run, report, lint) asks this module; nothing
//! else lowercases a task id or formats an image reference.
//!
//! Image references (RULES.md, "Image names"):
//! `${REGISTRY}/core/<c>:${TAG}`, `${REGISTRY}/benchmarks/<b>:${TAG}`,
//! `${REGISTRY}/benchmarks/<b>-<task lowercased>:${TAG}`, `${REGISTRY}/agents/<a>:${TAG}`,
//! `${REGISTRY}/evals/<b>[-<task lowercased>]--<a>:${TAG}`.

use std::fmt;

/// Longest task id accepted.
pub const MAX_TASK_ID_LEN: usize = 128;

/// The bake target of the combination recipe, used for every eval build.
pub const EVAL_TARGET: &str = "core-eval";
/// Bake variables kiln sets for per-task and eval builds.
pub const VAR_TASK_ID: &str = "EVAL_TASK_ID";
pub const VAR_BENCHMARK: &str = "EVAL_BENCHMARK";
pub const VAR_AGENT: &str = "EVAL_AGENT";
/// Fleet-wide bake variables declared in the root docker-bake.hcl.
pub const VAR_REGISTRY: &str = "REGISTRY";
pub const VAR_TAG: &str = "TAG";

/// The kind of an image in the fleet; also the value of the `eval.type` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Core,
    Benchmark,
    /// A per-task benchmark's base image for one task.
    Task,
    Agent,
    Eval,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Core => "core",
            Kind::Benchmark => "benchmark",
            Kind::Task => "task",
            Kind::Agent => "agent",
            Kind::Eval => "eval",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bake target names per kind.
pub fn core_target(name: &str) -> String {
    format!("core-{name}")
}
pub fn benchmark_target(name: &str) -> String {
    format!("benchmark-{name}")
}
pub fn agent_target(name: &str) -> String {
    format!("agent-{name}")
}

/// Splits a fleet target name into its kind and the benchmark/agent/core name.
/// `core-eval` is the combination recipe and reported as `Kind::Eval`.
pub fn parse_target(target: &str) -> Option<(Kind, &str)> {
    if target == EVAL_TARGET {
        return Some((Kind::Eval, "eval"));
    }
    let (kind, rest) = if let Some(rest) = target.strip_prefix("benchmark-") {
        (Kind::Benchmark, rest)
    } else if let Some(rest) = target.strip_prefix("agent-") {
        (Kind::Agent, rest)
    } else if let Some(rest) = target.strip_prefix("core-") {
        (Kind::Core, rest)
    } else {
        return None;
    };
    (!rest.is_empty()).then_some((kind, rest))
}

/// The name of a task as it appears in image names and result paths: lowercased.
/// Call only with a validated id (see [`validate_task_id`]).
pub fn task_component(task_id: &str) -> String {
    task_id.to_ascii_lowercase()
}

/// `parts` joined, allocated once (a plan makes names for every image; `format!` costs
/// several times as much).
pub(crate) fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    parts.iter().for_each(|p| out.push_str(p));
    out
}

/// The repository path of an eval image under the registry, `evals/<benchmark>[-<task>]--<agent>`
/// (also its `org.opencontainers.image.title`). Made for every eval image of a plan
/// (tens of thousands): no `format!`.
pub fn eval_path(benchmark: &str, task_id: Option<&str>, agent: &str) -> String {
    let task = task_id.map(task_component);
    let (sep, task) = task.as_deref().map_or(("", ""), |t| ("-", t));
    concat(&["evals/", benchmark, sep, task, "--", agent])
}

/// The repository path of a benchmark image under the registry root:
/// `benchmarks/<benchmark>`, per task `benchmarks/<benchmark>-<task lowercased>`.
pub fn benchmark_path(benchmark: &str, task_id: Option<&str>) -> String {
    match task_id {
        None => concat(&["benchmarks/", benchmark]),
        Some(t) => concat(&["benchmarks/", benchmark, "-", &task_component(t)]),
    }
}

/// Produces image references for one `REGISTRY` and `TAG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    pub registry: String,
    pub tag: String,
}

impl Naming {
    pub fn new(registry: impl Into<String>, tag: impl Into<String>) -> Self {
        Naming {
            registry: registry.into(),
            tag: tag.into(),
        }
    }

    pub fn core(&self, core: &str) -> String {
        format!("{}/core/{core}:{}", self.registry, self.tag)
    }

    /// The benchmark image, or with a task the per-task base image.
    pub fn benchmark(&self, benchmark: &str, task_id: Option<&str>) -> String {
        let path = benchmark_path(benchmark, task_id);
        concat(&[&self.registry, "/", &path, ":", &self.tag])
    }

    pub fn agent(&self, agent: &str) -> String {
        format!("{}/agents/{agent}:{}", self.registry, self.tag)
    }

    /// The eval image of benchmark (per task when `task_id` is set) × agent: the
    /// registry, [`eval_path`], the tag.
    pub fn eval(&self, benchmark: &str, task_id: Option<&str>, agent: &str) -> String {
        let path = eval_path(benchmark, task_id, agent);
        concat(&[&self.registry, "/", &path, ":", &self.tag])
    }
}

/// A task id or fleet name that breaks a naming rule. The message names the value and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {rule}")]
pub struct InvalidName {
    pub what: &'static str,
    pub value: String,
    pub rule: String,
}

/// Characters a shell gives a meaning to. Task ids become image names, paths and
/// command arguments, so none of them is allowed.
const SHELL_METACHARACTERS: &[char] = &[
    '$', '`', '&', ';', '|', '<', '>', '(', ')', '{', '}', '[', ']', '*', '?', '!', '~', '#', '\'',
    '"', '^', '%', '=', ',', ':', '@', '+',
];

/// Checks a task id (user input: it becomes an image name, a path and a command argument).
///
/// Rules, checked in this order: not empty; at most 128 characters; no path separator
/// (`/`, `\`); no `..`; no whitespace; no shell metacharacter; only ASCII letters, digits,
/// `.`, `_` and `-`; starts and ends with a letter or digit; between letters/digits only
/// `.`, `_`, `__` or a run of `-` (what an image name allows once lowercased).
pub fn validate_task_id(id: &str) -> Result<(), InvalidName> {
    let fail = |rule: String| {
        Err(InvalidName {
            what: "task id",
            value: id.to_string(),
            rule,
        })
    };
    if id.is_empty() {
        return fail("a task id must not be empty".into());
    }
    let len = id.chars().count();
    if len > MAX_TASK_ID_LEN {
        return fail(format!(
            "a task id is at most {MAX_TASK_ID_LEN} characters, this one has {len}"
        ));
    }
    if id.contains(['/', '\\']) {
        return fail("a task id must not contain a path separator ('/' or '\\')".into());
    }
    if id.contains("..") {
        return fail("a task id must not contain '..'".into());
    }
    if id.chars().any(char::is_whitespace) {
        return fail("a task id must not contain whitespace".into());
    }
    if let Some(c) = id.chars().find(|c| SHELL_METACHARACTERS.contains(c)) {
        return fail(format!(
            "a task id must not contain the shell metacharacter {c:?}"
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return fail(format!(
            "a task id may contain only ASCII letters, digits, '.', '_' and '-', not {c:?}"
        ));
    }
    check_separators(id).map_err(|rule| InvalidName {
        what: "task id",
        value: id.to_string(),
        rule: rule.into(),
    })
}

/// Image-name separator rules shared by task ids and fleet names.
fn check_separators(name: &str) -> Result<(), &'static str> {
    let bytes = name.as_bytes();
    if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return Err("must start and end with a letter or digit");
    }
    for run in name
        .split(|c: char| c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
    {
        let ok = run == "." || run == "_" || run == "__" || run.bytes().all(|b| b == b'-');
        if !ok {
            return Err("letters and digits may be separated only by '.', '_', '__' or dashes");
        }
    }
    Ok(())
}

/// Checks a benchmark, agent or core name (a directory name and part of a target name):
/// lowercase ASCII letters, digits and single dashes, starting with a letter, at most 64 characters.
pub fn validate_fleet_name(what: &'static str, name: &str) -> Result<(), InvalidName> {
    let fail = |rule: &str| {
        Err(InvalidName {
            what,
            value: name.to_string(),
            rule: rule.into(),
        })
    };
    if name.is_empty() {
        return fail("must not be empty");
    }
    if name.len() > 64 {
        return fail("is at most 64 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return fail("may contain only lowercase letters, digits and '-'");
    }
    if !name.as_bytes()[0].is_ascii_lowercase() || name.ends_with('-') || name.contains("--") {
        return fail("must start with a letter, not end with '-', and not contain '--' (it separates benchmark and agent in eval names)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names_are_lowercased_in_images_only() {
        let n = Naming::new("kiln.local", "dev");
        assert_eq!(
            n.benchmark("t", Some("Fix.Config")),
            "kiln.local/benchmarks/t-fix.config:dev"
        );
        assert_eq!(
            n.eval("t", Some("Fix.Config"), "null"),
            "kiln.local/evals/t-fix.config--null:dev"
        );
        assert_eq!(
            n.eval("b", None, "oracle"),
            "kiln.local/evals/b--oracle:dev"
        );
    }

    #[test]
    fn separator_rules() {
        assert!(validate_task_id("a__b").is_ok());
        assert!(validate_task_id("a---b").is_ok());
        assert!(validate_task_id("a___b").is_err());
        assert!(validate_task_id("a._b").is_err());
        assert!(validate_task_id("-a").is_err());
        assert!(validate_task_id("a.").is_err());
    }
}
