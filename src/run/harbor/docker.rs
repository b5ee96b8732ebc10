//! The `docker` commands of a trial: run (or, in a dry run, print) each one, killed at
//! its timeout or on Ctrl-C, and remove the trial's containers and networks at the end.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::backend::shell;

use super::{interrupted, INTERRUPTED};

/// The result of one `docker` command.
pub(super) struct Ran {
    pub(super) ok: bool,
    pub(super) output: String,
    pub(super) timed_out: bool,
}

/// Runs (or prints) docker commands and removes the containers it started.
pub(super) struct Docker<'p> {
    pub(super) dry_run: bool,
    pub(super) containers: Vec<String>,
    /// Networks made for the trial, removed after its containers.
    pub(super) networks: Vec<String>,
    pub(super) print: &'p mut dyn FnMut(&str),
}

impl Docker<'_> {
    /// Runs `docker ARGS` with `env` in the client's environment, killed after `timeout`.
    pub(super) fn run(
        &mut self,
        args: &[String],
        env: &[(String, String)],
        timeout: Option<f64>,
    ) -> Ran {
        let mut argv = vec!["docker".to_string()];
        argv.extend(args.iter().cloned());
        if self.dry_run {
            (self.print)(&shell::join(&argv));
            return Ran {
                ok: true,
                output: String::new(),
                timed_out: false,
            };
        }
        let mut cmd = Command::new("docker");
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Ran {
                    ok: false,
                    output: format!("cannot run docker: {e}"),
                    timed_out: false,
                }
            }
        };
        // Output is read on threads so a chatty command cannot fill a pipe and stall.
        let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                if let Some(mut r) = r {
                    let mut b = Vec::new();
                    let _ = r.read_to_end(&mut b);
                    s = String::from_utf8_lossy(&b).into_owned();
                }
                s
            })
        };
        let out = drain(child.stdout.take().map(|s| Box::new(s) as _));
        let err = drain(child.stderr.take().map(|s| Box::new(s) as _));
        let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) => {}
                Err(_) => break None,
            }
            if interrupted() || deadline.is_some_and(|d| Instant::now() >= d) {
                timed_out = !interrupted();
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut output = out.join().unwrap_or_default();
        output.push_str(&err.join().unwrap_or_default());
        Ran {
            ok: status.is_some_and(|s| s.success()),
            output,
            timed_out,
        }
    }

    /// `docker ARGS`, an error naming the command when it fails.
    pub(super) fn must(&mut self, args: &[String]) -> anyhow::Result<String> {
        let ran = self.run(args, &[], Some(600.0));
        if interrupted() {
            anyhow::bail!("interrupted");
        }
        if !ran.ok {
            anyhow::bail!("docker {} failed: {}", shell::join(args), ran.output.trim());
        }
        Ok(ran.output)
    }

    pub(super) fn remove_all(&mut self) {
        if self.containers.is_empty() && self.networks.is_empty() {
            return;
        }
        let mut args = vec!["rm".to_string(), "-f".into()];
        args.append(&mut self.containers);
        // Runs even after Ctrl-C: a removal is what the interrupt asks for.
        let was = INTERRUPTED.swap(false, Ordering::SeqCst);
        self.run(&args, &[], Some(60.0));
        if !self.networks.is_empty() {
            let mut args = vec![s("network"), s("rm")];
            args.append(&mut self.networks);
            self.run(&args, &[], Some(60.0));
        }
        INTERRUPTED.store(was, Ordering::SeqCst);
    }
}

pub(super) fn s(v: &str) -> String {
    v.to_string()
}
