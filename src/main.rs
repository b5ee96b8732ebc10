use clap::Parser;

fn main() -> std::process::ExitCode {
    kiln::cli::main(kiln::cli::Cli::parse())
}
