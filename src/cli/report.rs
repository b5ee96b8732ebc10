use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_repo: &Path, _args: Args) -> anyhow::Result<ExitCode> {
    Err(super::Failure::usage("kiln report is not implemented yet"))
}
