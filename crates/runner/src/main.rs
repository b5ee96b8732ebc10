//! kiln-runner: the scenario runner inside every kiln eval image (/opt/kiln/runner).
//!
//! It must run in any Linux image (no Python or Node, maybe no libc), so it is built
//! as a static binary. The one build command (CI and the runner image use it too):
//!
//!   RUSTFLAGS='-C target-feature=+crt-static' cargo build --release -p kiln-runner --target x86_64-unknown-linux-gnu
//!
//! → target/x86_64-unknown-linux-gnu/release/kiln-runner (`file` says "static-pie linked").
//! The format it implements: docs/scenario-format.md; its output: docs/result.schema.json.

fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let code = kiln_runner::cli::main(&argv);
    // A sidecar in the same pod (kiln's model gateway on Kubernetes) ends when this
    // file appears: a pod completes only once all its containers have exited.
    if let Some(done) = std::env::var_os("KILN_DONE_FILE") {
        let _ = std::fs::write(done, b"");
    }
    code
}
