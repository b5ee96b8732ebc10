use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::report::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The results directory (`kiln run --output`), read recursively.
    #[arg(default_value = "results", value_name = "DIR")]
    pub dir: PathBuf,

    /// table (for people), json (every run and the summary) or csv (one line per run).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Exit status: 0 when every result.json was read, 1 when one could not be (named on
/// stderr; the others are still reported), 2 when the directory does not exist.
pub fn run(_repo: &Path, args: Args) -> anyhow::Result<ExitCode> {
    if !args.dir.is_dir() {
        return Err(super::Failure::usage(format!(
            "{} is not a directory (kiln run writes results there; see `kiln run --output`)",
            args.dir.display()
        )));
    }
    let report = report::collect(&args.dir)?;
    let text = report::render(&report, args.format)?;
    std::io::stdout().write_all(text.as_bytes())?;
    for (path, reason) in &report.unreadable {
        eprintln!("error: {}: {reason}", path.display());
    }
    if report.results.is_empty() && report.unreadable.is_empty() {
        eprintln!("note: no result.json under {}", args.dir.display());
    }
    Ok(if report.unreadable.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
