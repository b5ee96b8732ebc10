//! `kiln lint`: checks the fleet against RULES.md and its tasks against the task-quality
//! rules (docs/authoring.md); one `file:line: message [rule]` per finding, or `--json`,
//! exit status 1 when there is any.

use crate::printer::errln;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the findings as one JSON array of {rule, path, line, message} (the fields
    /// `harbor lint --json` writes); the summary still goes to stderr.
    #[arg(long)]
    pub json: bool,

    /// Leave out the findings of this rule, everywhere (repeatable); a task allows a rule
    /// for itself with `[metadata] kiln_lint_allow` (docs/authoring.md).
    #[arg(long, value_name = "RULE",
          value_parser = clap::builder::PossibleValuesParser::new(crate::lint::rules::ALL.iter().copied()))]
    pub ignore: Vec<String>,
}

pub fn run(repo: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let mut report = crate::lint::lint(repo)?;
    report
        .violations
        .retain(|v| !args.ignore.iter().any(|r| r == v.rule));
    let mut out = crate::printer::stdout();
    if args.json {
        let all: Vec<serde_json::Value> = report.violations.iter().map(|v| v.to_json()).collect();
        serde_json::to_writer_pretty(&mut out, &all)?;
        writeln!(out)?;
    } else {
        for v in &report.violations {
            writeln!(out, "{v}")?;
        }
    }
    let summary = format!(
        "{} bake files, {} targets, {} Dockerfiles, {} tasks checked",
        report.bake_files, report.targets, report.dockerfiles, report.tasks
    );
    if report.violations.is_empty() {
        errln!("ok: no violations ({summary})");
        Ok(ExitCode::SUCCESS)
    } else {
        errln!("{} violation(s) ({summary})", report.violations.len());
        Ok(super::Exit::Failed.into())
    }
}
