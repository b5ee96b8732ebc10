//! `kiln clean [RESULTS] [--dry-run]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::clean::{self, Options};

/// Remove kept state (the images of `kiln run --keep-state`) and what else kiln left in
/// Docker's image store.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  kiln clean results            the kept state of the runs under results/
  kiln clean                    every kept-state image, the unnamed images kiln's builds
                                left, and the containers of kiln processes that died
  kiln clean --dry-run          the docker commands, nothing removed

Only what carries kiln's own labels is removed (kiln.kept-state, kiln.inputs.digest on
untagged images, kiln.pid on containers of processes that are gone); results and user
images are never touched. Exit status: 0 done; 1 something could not be removed; 2
refused input; 3 no Docker Engine.")]
pub struct Args {
    /// A results directory of `kiln run`: remove only the kept state its runs name.
    #[arg(value_name = "RESULTS")]
    pub results: Option<PathBuf>,

    /// Print the plain docker commands instead of removing anything.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(_repo: &Path, args: Args) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::from(clean::run(&Options {
        results: args.results,
        dry_run: args.dry_run,
    })?))
}
