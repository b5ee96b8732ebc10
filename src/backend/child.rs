//! A build tool run as a child process (podman, `docker buildx bake`, skopeo): in the
//! repository, its step lines streamed to the progress display, SIGTERM on cancel.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::mpsc;

use super::{shell, Env, Stop};

/// What a child process left behind.
pub struct ChildRun {
    pub success: bool,
    /// stdout and stderr, interleaved.
    pub output: String,
}

/// Runs `argv` in the repository with `env` on top of the inherited environment and
/// `stdin` (when given) on its standard input; `name` is the progress row.
pub async fn run(
    env: &Env,
    name: &str,
    vars: &BTreeMap<String, String>,
    argv: &[String],
    stdin: Option<&str>,
) -> Result<ChildRun, Stop> {
    let mut expr = duct::cmd(&argv[0], &argv[1..])
        .dir(&env.repo)
        .stderr_to_stdout()
        .unchecked();
    if let Some(input) = stdin {
        expr = expr.stdin_bytes(input.as_bytes().to_vec());
    }
    for (k, v) in vars {
        expr = expr.env(k, v);
    }
    let handle = Arc::new(
        expr.reader()
            .with_context(|| format!("starting {}", shell::join(argv)))?,
    );
    let pids = handle.pids();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let reader = handle.clone();
    let pump = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(&*reader);
        let mut buf = String::new();
        loop {
            buf.clear();
            if lines.read_line(&mut buf)? == 0 {
                break;
            }
            let _ = tx.send(buf.trim_end().to_string());
        }
        Ok(reader.try_wait()?.is_some_and(|out| out.status.success()))
    });
    let mut cancel = env.cancel.clone();
    let mut output = String::new();
    let mut interrupted = false;
    loop {
        tokio::select! {
            line = rx.recv() => {
                let Some(line) = line else { break };
                if is_step_line(&line) {
                    env.progress.step(name, &line);
                }
                output.push_str(&line);
                output.push('\n');
            }
            _ = cancel.changed(), if !interrupted => {
                interrupted = true;
                for pid in &pids {
                    let _ = duct::cmd!("kill", "-TERM", pid.to_string()).stderr_null().unchecked().run();
                }
            }
        }
    }
    let success = pump
        .await
        .map_err(|e| Stop::Failed(format!("reading the build output: {e}")))?
        .unwrap_or(false);
    if interrupted || *env.cancel.borrow() {
        return Err(Stop::Interrupted);
    }
    Ok(ChildRun { success, output })
}

/// A podman step (`STEP 2/5: …`, `[1/2] STEP 2/5: …` in multi-stage builds) or a
/// BuildKit step (`#5 [2/4] RUN …`).
pub fn is_step_line(line: &str) -> bool {
    let rest = match line.strip_prefix('[') {
        Some(r) => r.split_once("] ").map_or(line, |(_, after)| after),
        None => line,
    };
    rest.starts_with("STEP ") || (line.starts_with('#') && line.contains(" ["))
}

/// The last `n` lines of `output`.
pub fn tail(output: &str, n: usize) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_lines() {
        assert!(is_step_line("STEP 2/5: COPY a b"));
        assert!(is_step_line("[1/2] STEP 1/4: FROM x AS build"));
        assert!(is_step_line("#5 [2/4] RUN make"));
        assert!(!is_step_line("--> 3123dedc6dc"));
        assert!(!is_step_line("[1/2] COMMIT"));
    }
}
