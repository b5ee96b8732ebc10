use clap::Parser;

// Planning a large fleet allocates millions of small strings; mimalloc halves the CPU
// time of `kiln build all --dry-run` on the 44,000-image fleet against glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kiln::cli::main(kiln::cli::Cli::parse())
}
