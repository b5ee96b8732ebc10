//! `kiln lint`: the repository checked against RULES.md. Every violation names a file
//! and a line; the checks never need an engine.
//!
//! - [`layout`]: directories, bake files, target names, groups, tasks, task ids;
//! - [`targets`]: per resolved target: labels, tags, `target:` contexts vs Dockerfile bases;
//! - [`secrets`]: secret-shaped `ARG`/`ENV`/bake args;
//! - [`source`]: where in a bake file a target, a key or a variable is (line numbers);
//! - [`harbor`]: a Harbor dataset: the tasks it leaves out.

mod eval_containers;
mod harbor;
mod layout;
mod secrets;
mod source;
mod targets;

use std::fmt;
use std::path::{Path, PathBuf};

pub use secrets::is_secret_shaped;

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    /// Relative to the repository root.
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
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
    pub fn add(&mut self, file: impl AsRef<Path>, line: usize, message: impl Into<String>) {
        let file = file.as_ref();
        let file = file.strip_prefix(&self.root).unwrap_or(file).to_path_buf();
        self.violations.push(Violation {
            file,
            line: line.max(1),
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
    if layout == crate::fleet::layout::harbor::NAME {
        harbor::check(root, &mut sink, &mut report)?;
        sink.violations.sort();
        report.violations = sink.violations;
        return Ok(report);
    }
    if layout == crate::fleet::layout::eval_containers::NAME {
        eval_containers::check(root, &mut sink, &mut report)?;
        sink.violations.sort();
        sink.violations.dedup();
        report.violations = sink.violations;
        return Ok(report);
    }
    let checked = layout::check(root, &mut sink, &mut report)?;
    if let Some(fleet) = checked {
        targets::check(root, &fleet, &mut sink, &mut report);
    }
    sink.violations.sort();
    sink.violations.dedup();
    report.violations = sink.violations;
    Ok(report)
}
