use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::report::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The results directory (`kiln run --output`), read recursively.
    #[arg(default_value = "results", value_name = "DIR")]
    pub dir: PathBuf,

    /// table (for people), json (every run and the summary), csv (one line per run) or
    /// html (one self-contained page: the benchmark × agent matrix and every run).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Write the report to FILE instead of stdout (for html, links to the runs' files
    /// are made relative to FILE's directory).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Writes the report to `file` whole (a temporary file renamed into place).
fn write_file(
    report: &report::Report,
    format: Format,
    dir: &Path,
    file: &Path,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let page_dir = parent
        .canonicalize()
        .with_context(|| format!("{}: no such directory for the report", parent.display()))?;
    let text = match format {
        Format::Html => report::html::render(
            report,
            &format!("kiln report: {}", dir.display()),
            Some(&page_dir),
        ),
        other => report::render(report, other)?,
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&page_dir)
        .with_context(|| format!("creating a file in {}", page_dir.display()))?;
    tmp.write_all(text.as_bytes())?;
    tmp.persist(file)
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(())
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
    match &args.output {
        None => {
            let text = report::render(&report, args.format)?;
            std::io::stdout().write_all(text.as_bytes())?;
        }
        Some(file) => write_file(&report, args.format, &args.dir, file)?,
    }
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
