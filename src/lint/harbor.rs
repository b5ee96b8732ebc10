//! `kiln lint` of a Harbor dataset: every task kiln leaves out (a `task.toml` that is
//! not TOML, names an unknown field or schema, or lacks a file every task needs) is a
//! violation naming its file, and its line where TOML says. The typed reading of
//! `task.toml` (fleet::layout::harbor::config) is the check; a task kiln can read
//! but not run here (Windows, GPUs…) is no violation.

use std::path::{Path, PathBuf};

use super::{Report, Sink};
use crate::fleet::layout::harbor::Dataset;

pub fn check(root: &Path, sink: &mut Sink, report: &mut Report) -> anyhow::Result<()> {
    let ds = Dataset::read(root)?;
    report.tasks = ds.tasks.len() + ds.problems.len();
    for problem in &ds.problems {
        let (file, line, message) = split(problem);
        sink.add(root.join(file), line, message);
    }
    Ok(())
}

/// `FILE:LINE: message` or `FILE: message` into its parts.
fn split(problem: &str) -> (PathBuf, usize, String) {
    let Some((head, message)) = problem.split_once(": ") else {
        return (PathBuf::from("task.toml"), 1, problem.to_string());
    };
    match head.rsplit_once(':') {
        Some((file, line)) if line.parse::<usize>().is_ok() => (
            PathBuf::from(file),
            line.parse().unwrap_or(1),
            message.to_string(),
        ),
        _ => (PathBuf::from(head), 1, message.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_split_into_file_line_and_message() {
        assert_eq!(
            split("a/task.toml:4: unknown field `usr`"),
            (
                PathBuf::from("a/task.toml"),
                4,
                "unknown field `usr`".into()
            )
        );
        assert_eq!(
            split("b/task.toml: left out: no instruction.md"),
            (
                PathBuf::from("b/task.toml"),
                1,
                "left out: no instruction.md".into()
            )
        );
    }
}
