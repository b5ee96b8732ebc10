//! `kiln lint`: the repository checked against RULES.md. Every violation names a file
//! and a line; the checks never need an engine.
//!
//! - [`layout`]: directories, bake files, target names, groups, tasks, task ids;
//! - [`targets`]: per resolved target: labels, tags, `target:` contexts vs Dockerfile bases;
//! - [`secrets`]: secret-shaped `ARG`/`ENV`/bake args;
//! - [`source`]: where in a bake file a target, a key or a variable is (line numbers);
//! - [`tasks`]: task quality (Harbor's rule names), on every layout that has tasks;
//! - [`rules`]: the rule ids.

mod eval_containers;
mod layout;
pub mod rules;
mod secrets;
mod source;
mod targets;
mod tasks;

use std::fmt;
use std::path::{Path, PathBuf};

pub use secrets::is_secret_shaped;

/// One broken rule. Ordered as Harbor orders its findings: file, line, rule, message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    /// Relative to the repository root.
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// The rule's id ([`rules`]).
    pub rule: &'static str,
    pub message: String,
}

impl Violation {
    /// `{rule, path, line, message}`, the fields `harbor lint --json` writes.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "rule": self.rule,
            "path": self.file.to_string_lossy(),
            "line": self.line,
            "message": self.message,
        })
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} [{}]",
            self.file.display(),
            self.line,
            self.message,
            self.rule
        )
    }
}

/// What was looked at, for the summary line.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub violations: Vec<Violation>,
    pub bake_files: usize,
    pub targets: usize,
    pub dockerfiles: usize,
    pub tasks: usize,
}

/// Collects violations while the checks run.
pub(crate) struct Sink {
    pub root: PathBuf,
    pub violations: Vec<Violation>,
}

impl Sink {
    pub fn add(
        &mut self,
        rule: &'static str,
        file: impl AsRef<Path>,
        line: usize,
        message: impl Into<String>,
    ) {
        let file = file.as_ref();
        let file = file.strip_prefix(&self.root).unwrap_or(file).to_path_buf();
        self.violations.push(Violation {
            file,
            line: line.max(1),
            rule,
            message: message.into(),
        });
    }
}

/// Checks the repository at `root`. An error means lint could not run at all (no root
/// bake file); everything else is a violation.
pub fn lint(root: &Path) -> anyhow::Result<Report> {
    let mut sink = Sink {
        root: root.to_path_buf(),
        violations: Vec::new(),
    };
    let mut report = Report::default();
    let layout = crate::fleet::layout::detect(root)?.name();
    if layout == crate::fleet::layout::eval_containers::NAME {
        eval_containers::check(root, &mut sink, &mut report)?;
    } else if layout == crate::fleet::layout::harbor::NAME {
        tasks::harbor(root, &mut sink, &mut report)?;
    } else {
        let checked = layout::check(root, &mut sink, &mut report)?;
        if let Some(fleet) = checked {
            targets::check(root, &fleet, &mut sink, &mut report);
        }
        tasks::kiln(root, &mut sink)?;
    }
    sink.violations.sort();
    sink.violations.dedup();
    report.violations = sink.violations;
    Ok(report)
}
