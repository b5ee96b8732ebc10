//! `kiln lint`: checks the repository against RULES.md; one `file:line: message` per
//! violation, exit status 1 when there is any.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(repo: &Path, _args: Args) -> anyhow::Result<ExitCode> {
    let report = crate::lint::lint(repo)?;
    let mut out = std::io::stdout().lock();
    for v in &report.violations {
        writeln!(out, "{v}")?;
    }
    let summary = format!(
        "{} bake files, {} targets, {} Dockerfiles, {} tasks checked",
        report.bake_files, report.targets, report.dockerfiles, report.tasks
    );
    if report.violations.is_empty() {
        eprintln!("ok: no violations ({summary})");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{} violation(s) ({summary})", report.violations.len());
        Ok(ExitCode::from(1))
    }
}
