//! The `docker` commands of a trial: run (or, in a dry run, print) each one, killed at
//! its timeout or on Ctrl-C, and remove the trial's containers and networks at the end.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::backend::shell;

use super::interrupted;

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
    /// Started containers whose `/logs` folders are not made yet: the first copy into
    /// one ([`Docker::put`]) or command of the trial's own ([`Docker::take_fresh`])
    /// makes them, sparing a `docker exec` of their own.
    pub(super) fresh: Vec<String>,
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
        if self.dry_run {
            self.show(args);
            return Ran::dry();
        }
        spawn(args, env, None, timeout, true)
    }

    fn show(&mut self, args: &[String]) {
        let mut argv = vec![s("docker")];
        argv.extend(args.iter().cloned());
        (self.print)(&shell::join(&argv));
    }

    /// Puts the host path `src` at `dest` (absolute) in `container`, making the missing
    /// folders on the way, in one `docker cp -` of a tar stream (no `mkdir` first). A
    /// folder's contents land in `dest`; `dest` itself keeps its owner and mode when it
    /// exists. A dry run prints the `mkdir -p` and `docker cp` that do the same.
    /// With `readable`, everyone may read what arrives (and enter its folders, run its
    /// executables), as `chmod -R a+rX` would make it, without a command of its own.
    pub(super) fn put(
        &mut self,
        src: &Path,
        container: &str,
        dest: &str,
        readable: bool,
    ) -> anyhow::Result<()> {
        let logs = self.take_fresh(container);
        if self.dry_run {
            if logs {
                self.show(&[s("exec"), s(container), s("sh"), s("-c"), make_logs()]);
            }
            let (parent, from) = if src.is_dir() {
                (dest.to_string(), format!("{}/.", src.display()))
            } else {
                (parent_of(dest), src.display().to_string())
            };
            self.show(&[s("exec"), s(container), s("mkdir"), s("-p"), parent]);
            self.show(&[s("cp"), from, format!("{container}:{dest}")]);
            if readable {
                let what = [
                    s("exec"),
                    s(container),
                    s("chmod"),
                    s("-R"),
                    s("a+rX"),
                    s(dest),
                ];
                self.show(&what);
            }
            return Ok(());
        }
        let tar = tar_at(src, dest, logs, readable)
            .with_context(|| format!("reading {}", src.display()))?;
        let args = [s("cp"), s("-"), format!("{container}:/")];
        let ran = spawn(&args, &[], Some(tar), Some(600.0), true);
        if interrupted() {
            anyhow::bail!("interrupted");
        }
        if !ran.ok {
            anyhow::bail!(
                "docker cp {} {container}:{dest} failed: {}",
                src.display(),
                ran.output.trim()
            );
        }
        Ok(())
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

    /// Whether `container`'s `/logs` folders are still to be made; from now on they
    /// count as made (the caller makes them: [`make_logs`] in its command).
    pub(super) fn take_fresh(&mut self, container: &str) -> bool {
        let i = self.fresh.iter().position(|c| c == container);
        i.map(|i| self.fresh.remove(i)).is_some()
    }

    /// Removes the trial's containers, then its networks. Runs even after Ctrl-C (a
    /// removal is what the interrupt asks for).
    pub(super) fn remove_all(&mut self) {
        if self.containers.is_empty() && self.networks.is_empty() {
            return;
        }
        let mut args = vec![s("rm"), s("-f")];
        args.append(&mut self.containers);
        self.run_to_end(&args);
        if !self.networks.is_empty() {
            let mut args = vec![s("network"), s("rm")];
            args.append(&mut self.networks);
            self.run_to_end(&args);
        }
    }

    /// `docker ARGS`, not stopped by Ctrl-C.
    fn run_to_end(&mut self, args: &[String]) {
        if self.dry_run {
            self.show(args);
        } else {
            spawn(args, &[], None, Some(60.0), false);
        }
    }
}

impl Ran {
    fn dry() -> Ran {
        Ran {
            ok: true,
            output: String::new(),
            timed_out: false,
        }
    }
}

/// Runs `docker ARGS` with `env` in the client's environment and `input` on its stdin,
/// killed after `timeout` (and on Ctrl-C when `interruptible`).
fn spawn(
    args: &[String],
    env: &[(String, String)],
    input: Option<Vec<u8>>,
    timeout: Option<f64>,
    interruptible: bool,
) -> Ran {
    let mut cmd = Command::new("docker");
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
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
    // Input is written and output read on threads, so neither side can stall on a
    // full pipe.
    let feed = child.stdin.take().zip(input).map(|(mut w, bytes)| {
        std::thread::spawn(move || {
            let _ = w.write_all(&bytes);
        })
    });
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
        let stop = interruptible && interrupted();
        if stop || deadline.is_some_and(|d| Instant::now() >= d) {
            timed_out = !stop;
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        // Short at first: most commands of a trial end within tens of milliseconds.
        std::thread::sleep(Duration::from_millis(5));
    };
    if let Some(f) = feed {
        let _ = f.join();
    }
    let mut output = out.join().unwrap_or_default();
    output.push_str(&err.join().unwrap_or_default());
    Ran {
        ok: status.is_some_and(|s| s.success()),
        output,
        timed_out,
    }
}

/// The folders every trial container has, writable by the agent and verifier users
/// (Harbor mounts them from the host).
const LOGS: [&str; 4] = ["/logs", "/logs/agent", "/logs/verifier", "/logs/artifacts"];

/// The shell command making [`LOGS`].
pub(super) fn make_logs() -> String {
    let all = LOGS.join(" ");
    format!("mkdir -p {all} && chmod 777 {all}")
}

/// `/a/b` → `/a`; `/a` → `/`.
fn parent_of(path: &str) -> String {
    Path::new(path)
        .parent()
        .map_or_else(|| s("/"), |p| p.display().to_string())
}

/// A tar stream that, extracted at `/`, puts `src` at `dest`: a file as `dest`, a
/// folder's entries under `dest/` (symlinks as links). Owners, modes and times are the
/// host files', as `docker cp` sends them (with `readable`, modes as `chmod a+rX` leaves
/// them). With `logs`, [`LOGS`] come first, mode 777.
fn tar_at(src: &Path, dest: &str, logs: bool, readable: bool) -> std::io::Result<Vec<u8>> {
    let base = Path::new(dest.trim_start_matches('/'));
    let mut tar = tar::Builder::new(Vec::new());
    tar.mode(tar::HeaderMode::Complete);
    tar.follow_symlinks(false);
    if logs {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for dir in LOGS {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o777);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(now);
            h.set_size(0);
            tar.append_data(
                &mut h,
                format!("{}/", dir.trim_start_matches('/')),
                std::io::empty(),
            )?;
        }
    }
    if !src.is_dir() {
        append(&mut tar, src, base, readable)?;
        return tar.into_inner();
    }
    for entry in walkdir::WalkDir::new(src).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(std::io::Error::other)?;
        let rel = entry.path().strip_prefix(src).unwrap_or(entry.path());
        append(&mut tar, entry.path(), &base.join(rel), readable)?;
    }
    tar.into_inner()
}

/// One entry of [`tar_at`]'s stream.
fn append(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &Path,
    name: &Path,
    readable: bool,
) -> std::io::Result<()> {
    if !readable {
        return tar.append_path_with_name(path, name);
    }
    let meta = std::fs::symlink_metadata(path)?;
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
    let mode = h.mode()?;
    let x = if meta.is_dir() || mode & 0o111 != 0 {
        0o111
    } else {
        0
    };
    h.set_mode(mode | 0o444 | x);
    if meta.file_type().is_symlink() {
        h.set_size(0);
        return tar.append_link(&mut h, name, std::fs::read_link(path)?);
    }
    if meta.is_dir() {
        h.set_size(0);
        return tar.append_data(&mut h, name, std::io::empty());
    }
    tar.append_data(&mut h, name, std::fs::File::open(path)?)
}

pub(super) fn s(v: &str) -> String {
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_readable_stream_opens_what_its_owner_kept_to_itself() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("solve.sh"), "echo hi").unwrap();
        std::fs::write(d.path().join("notes"), "x").unwrap();
        let set =
            |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        set(&sub, 0o700).unwrap();
        set(&sub.join("solve.sh"), 0o700).unwrap();
        set(&d.path().join("notes"), 0o600).unwrap();
        let modes = |readable: bool| -> Vec<(String, u32)> {
            let bytes = tar_at(d.path(), "/solution", false, readable).unwrap();
            let mut a = tar::Archive::new(&bytes[..]);
            a.entries()
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    let path = e.path().unwrap().display().to_string();
                    (path, e.header().mode().unwrap() & 0o777)
                })
                .collect()
        };
        assert_eq!(
            modes(true),
            vec![
                ("solution/notes".to_string(), 0o644),
                ("solution/sub".to_string(), 0o755),
                ("solution/sub/solve.sh".to_string(), 0o755),
            ]
        );
        assert_eq!(modes(false)[0].1, 0o600, "kept as it is without readable");
    }
}
