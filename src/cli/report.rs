use crate::printer::errln;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use crate::report::{self, compare, cost::Prices, Format};

/// `kiln report`'s flags (the command's help is on `Command::Report`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The results directory (`kiln run --output`), read recursively.
    #[arg(default_value = "results", value_name = "DIR")]
    pub dir: PathBuf,

    /// table (for people), json (every run, the cells, the problems), csv (one line per
    /// run), cells-csv (one line per benchmark × agent × model) or html (one
    /// self-contained page: the matrix, score distributions, problems and every run).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Write the report to FILE instead of stdout (for html, links to the runs' files
    /// are made relative to FILE's directory).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Compare the results in directory B with those in directory A, task by task and
    /// agent (DIR is not read): paired differences B − A, their mean with a 95%
    /// interval, and the tasks that flipped between pass and fail. Two models compare
    /// as two directories (`kiln run --model M --output DIR` for each).
    #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with = "compare_agents")]
    pub compare: Option<Vec<PathBuf>>,

    /// Compare agent B with agent A on the tasks both ran in DIR (paired per task,
    /// whatever model each agent ran with).
    #[arg(long, num_args = 2, value_names = ["A", "B"])]
    pub compare_agents: Option<Vec<String>>,

    /// With a comparison: exit 1 when B is significantly worse than A (the 95% interval
    /// of the mean difference lies below 0) or any task flipped from pass to fail.
    #[arg(long)]
    pub fail_if_worse: bool,

    /// A price table (JSON if FILE ends in .json, else TOML) adding to or replacing the
    /// built-in prices: per model, `input_per_mtok` and `output_per_mtok` in US dollars
    /// per million tokens.
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,

    /// Keep going: render again whenever a result.json or run.json under DIR changes
    /// (checked every --interval seconds) until Ctrl-C, which exits 0. Without -o the
    /// screen is cleared and the report printed again.
    #[arg(long, conflicts_with_all = ["compare", "compare_agents"])]
    pub watch: bool,

    /// Seconds between checks for --watch.
    #[arg(long, default_value_t = 2.0, value_name = "SECS", requires = "watch")]
    pub interval: f64,
}

/// Writes `text` to `file` whole (a temporary file renamed into place).
fn write_whole(file: &Path, text: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let dir = page_dir(file)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())?;
    // A report is for reading: not the temporary file's owner-only mode.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )?;
    tmp.persist(file)
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(())
}

/// The absolute directory `file` goes into.
fn page_dir(file: &Path) -> anyhow::Result<PathBuf> {
    use anyhow::Context as _;
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    parent
        .canonicalize()
        .with_context(|| format!("{}: no such directory for the report", parent.display()))
}

fn is_results_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    Err(super::Failure::usage(format!(
        "{} is not a directory (kiln run writes results there; see `kiln run --output`)",
        dir.display()
    )))
}

fn emit(output: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match output {
        None => {
            crate::printer::out_text(text);
            Ok(())
        }
        Some(file) => write_whole(file, text),
    }
}

/// The report of `dir` as text.
fn render(report: &report::Report, args: &Args) -> anyhow::Result<String> {
    Ok(match (args.format, &args.output) {
        (Format::Html, Some(file)) => report::html::render(
            report,
            &format!("kiln report: {}", args.dir.display()),
            Some(&page_dir(file)?),
        ),
        (format, _) => report::render(report, format)?,
    })
}

/// Names the files that could not be read; true when there were any.
fn name_unreadable(report: &report::Report) -> bool {
    for (path, reason) in &report.unreadable {
        errln!("error: {}: {reason}", path.display());
    }
    !report.unreadable.is_empty()
}

/// Exit status: 0 when every result.json was read, 1 when one could not be (named on
/// stderr; the others are still reported) or `--fail-if-worse` found B worse, 2 when a
/// directory does not exist or the price table is bad.
pub fn run(_repo: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let prices = match &args.prices {
        Some(file) => {
            Prices::with_file(file).map_err(|e| super::Failure::usage(format!("{e:#}")))?
        }
        None => Prices::builtin(),
    };
    if args.fail_if_worse && args.compare.is_none() && args.compare_agents.is_none() {
        return Err(super::Failure::usage(
            "--fail-if-worse needs --compare or --compare-agents",
        ));
    }
    if !args.interval.is_finite() || args.interval <= 0.0 {
        return Err(super::Failure::usage(format!(
            "--interval {} is not a number of seconds above 0",
            args.interval
        )));
    }
    if let Some(dirs) = &args.compare {
        return run_compare(&args, &prices, dirs);
    }
    is_results_dir(&args.dir)?;
    if args.compare_agents.is_some() {
        return run_compare(&args, &prices, &[]);
    }
    if args.watch {
        return watch(&args, &prices);
    }
    let report = report::collect_priced(&args.dir, &prices)?;
    emit(args.output.as_deref(), &render(&report, &args)?)?;
    let unreadable = name_unreadable(&report);
    if report.results.is_empty() && report.unreadable.is_empty() {
        errln!("note: no result.json under {}", args.dir.display());
    }
    Ok(if unreadable {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `--compare A B` (`dirs`), or `--compare-agents A B` within DIR.
fn run_compare(args: &Args, prices: &Prices, dirs: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let comparison;
    let mut unreadable = false;
    if let [a, b] = dirs {
        is_results_dir(a)?;
        is_results_dir(b)?;
        let ra = report::collect_priced(a, prices)?;
        let rb = report::collect_priced(b, prices)?;
        unreadable |= name_unreadable(&ra) | name_unreadable(&rb);
        comparison = compare::compare(
            &a.display().to_string(),
            &ra.results.iter().collect::<Vec<_>>(),
            &b.display().to_string(),
            &rb.results.iter().collect::<Vec<_>>(),
            compare::Pairing::Directories,
        );
    } else {
        let r = report::collect_priced(&args.dir, prices)?;
        unreadable |= name_unreadable(&r);
        let names = args
            .compare_agents
            .as_ref()
            .expect("run_compare is called with a comparison");
        let side = |name: &str| -> anyhow::Result<Vec<&report::Row>> {
            let rows: Vec<&report::Row> =
                r.results.iter().filter(|row| row.agent == name).collect();
            if rows.is_empty() {
                return Err(super::Failure::usage(format!(
                    "no runs of {name:?} under {}",
                    args.dir.display()
                )));
            }
            Ok(rows)
        };
        comparison = compare::compare(
            &names[0],
            &side(&names[0])?,
            &names[1],
            &side(&names[1])?,
            compare::Pairing::Agents,
        );
    }
    emit(
        args.output.as_deref(),
        &report::render_comparison(&comparison, args.format)?,
    )?;
    if comparison.paired == 0 {
        errln!("note: no task has runs on both sides: nothing compared");
    }
    let worse = args.fail_if_worse && comparison.worse();
    if worse {
        errln!(
            "error: B is worse than A: {} tasks flipped pass→fail{}",
            comparison.flipped_to_fail,
            if comparison.significantly_worse {
                ", and the 95% interval of B − A lies below 0"
            } else {
                ""
            }
        );
    }
    Ok(if worse || unreadable {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// What the report depends on: every result.json and run.json under `dir` with its
/// size and modification time (a run lands by a rename, which changes the listing).
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy();
            name == "result.json" || name == "run.json" || name.starts_with("result.regraded-")
        })
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((e.path().to_path_buf(), m.len(), m.modified().ok()))
        })
        .collect()
}

/// `--watch`: renders whenever the fingerprint changes; Ctrl-C ends it (exit 0).
fn watch(args: &Args, prices: &Prices) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut last = None;
        loop {
            let now = fingerprint(&args.dir);
            if last.as_ref() != Some(&now) {
                let report = report::collect_priced(&args.dir, prices)?;
                let text = render(&report, args)?;
                if args.output.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                    // Clear the screen and go home, so the report replaces the last one.
                    crate::printer::out_text("\x1b[2J\x1b[H");
                }
                emit(args.output.as_deref(), &text)?;
                name_unreadable(&report);
                errln!(
                    "[watch] {} runs, {} problems; next check in {}s (Ctrl-C ends)",
                    report.results.len(),
                    report.problems.len(),
                    args.interval
                );
                last = Some(now);
            }
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
                _ = tokio::time::sleep(Duration::from_secs_f64(args.interval)) => {}
            }
        }
    })
}
