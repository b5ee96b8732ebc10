//! Running child processes: own process group, scrubbed environment, optional
//! unprivileged uid/gid, output to files, a timeout that kills the whole group.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGTERM/SIGINT (e.g. `docker stop`; as pid 1 the runner would otherwise ignore
/// SIGTERM) stop the running child and let the runner still write its result.
pub fn install_signal_handlers() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// How long a process group gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// The complete environment: nothing of the runner's own is inherited.
    pub env: BTreeMap<String, String>,
    /// Run as this uid/gid (supplementary groups dropped), or as the runner's user.
    pub user: Option<(u32, u32)>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub timeout: Duration,
    pub grace: Duration,
}

impl Spec {
    /// `/bin/sh -c <script>`.
    pub fn shell(
        script: &str,
        cwd: &Path,
        env: BTreeMap<String, String>,
        log: &Path,
        timeout: Duration,
    ) -> Spec {
        Spec {
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            cwd: cwd.to_path_buf(),
            env,
            user: None,
            stdout: log.to_path_buf(),
            stderr: log.to_path_buf(),
            timeout,
            grace: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// The runner was asked to stop (SIGTERM/SIGINT) while this process ran.
    pub interrupted: bool,
    pub wall: Duration,
    /// The process could not be started at all.
    pub spawn_error: Option<String>,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
            && !self.timed_out
            && !self.interrupted
            && self.spawn_error.is_none()
    }

    /// Why this run is not a success, in words.
    pub fn describe_failure(&self, timeout: Duration) -> String {
        if let Some(e) = &self.spawn_error {
            format!("could not be started: {e}")
        } else if self.interrupted {
            "was stopped: the runner was interrupted".to_string()
        } else if self.timed_out {
            format!("timed out after {} s", timeout.as_secs())
        } else if let Some(sig) = self.signal {
            format!("killed by signal {sig}")
        } else {
            format!("exited {}", self.exit_code.unwrap_or(-1))
        }
    }
}

fn open_log(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// Starts the process in its own process group.
pub fn spawn(spec: &Spec) -> io::Result<Child> {
    let stdout = open_log(&spec.stdout)?;
    let stderr = if spec.stderr == spec.stdout {
        stdout.try_clone()?
    } else {
        open_log(&spec.stderr)?
    };
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(&spec.env)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    if let Some((uid, gid)) = spec.user {
        // std drops the supplementary groups (setgroups(0)) when it switches uid as root.
        cmd.uid(uid).gid(gid);
    }
    cmd.spawn()
}

/// Replaces this process with `program` (looked up on the new `env`'s PATH), in `cwd`,
/// with exactly `env`, as `user` (supplementary groups dropped) when given, keeping
/// this process's stdin, stdout, stderr and process group (a terminal's foreground
/// job stays in the foreground). Returns only on failure.
pub fn exec_as(
    program: &str,
    args: &[String],
    cwd: &Path,
    env: &BTreeMap<String, String>,
    user: Option<(u32, u32)>,
) -> io::Error {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(cwd).env_clear().envs(env);
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd.exec()
}

/// Sends `sig` to the whole process group led by `pid` (ignoring "no such process").
pub fn signal_group(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a negative pid addresses a process group; no memory is shared.
    unsafe {
        libc::kill(-(pid as i32), sig);
    }
}

fn group_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks whether the group exists.
    unsafe { libc::kill(-(pid as i32), 0) == 0 }
}

/// SIGTERM to the group, SIGKILL after `grace`, then reap `child`.
pub fn terminate_group(child: &mut Child, grace: Duration) -> Option<std::process::ExitStatus> {
    let pid = child.id();
    signal_group(pid, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    let mut status = None;
    while Instant::now() < deadline {
        if status.is_none() {
            status = child.try_wait().ok().flatten();
        }
        if status.is_some() && !group_alive(pid) {
            return status;
        }
        sleep(POLL);
    }
    signal_group(pid, libc::SIGKILL);
    status.or_else(|| child.wait().ok())
}

/// Runs `spec` to completion or timeout; whatever the group left behind is killed.
pub fn run(spec: &Spec) -> Outcome {
    let start = Instant::now();
    let mut child = match spawn(spec) {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                exit_code: None,
                signal: None,
                timed_out: false,
                interrupted: false,
                wall: start.elapsed(),
                spawn_error: Some(format!("{}: {e}", spec.program.display())),
            }
        }
    };
    let pid = child.id();
    let deadline = start + spec.timeout;
    let (status, timed_out, stopped) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (Some(status), false, false),
            Ok(None) if interrupted() => {
                let grace = spec.grace.min(Duration::from_secs(2));
                break (terminate_group(&mut child, grace), false, true);
            }
            Ok(None) if Instant::now() >= deadline => {
                break (terminate_group(&mut child, spec.grace), true, false)
            }
            Ok(None) => sleep(POLL),
            Err(_) => break (child.wait().ok(), false, false),
        }
    };
    // Children the process left in its group do not outlive it.
    signal_group(pid, libc::SIGKILL);
    Outcome {
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        timed_out,
        interrupted: stopped,
        wall: start.elapsed(),
        spawn_error: None,
    }
}

/// Pids of every process whose real uid is `uid` (from /proc).
pub fn pids_of_uid(uid: u32) -> Vec<i32> {
    let mut pids = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(status) = fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        // A zombie can no longer act; it only waits for its parent to reap it.
        let zombie = status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'));
        let real_uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|u| u.parse::<u32>().ok());
        if real_uid == Some(uid) && !zombie {
            pids.push(pid);
        }
    }
    pids
}

/// Kills every process of `uid` until none is left (or 5 s pass): an agent that
/// daemonized or left its process group must not run on into the grade phase.
/// Returns how many processes were killed.
pub fn kill_uid(uid: u32) -> usize {
    let mut killed = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = pids_of_uid(uid);
        if pids.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in pids {
            // SAFETY: plain kill(2) on a pid we just read from /proc.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            killed.insert(pid);
        }
        sleep(Duration::from_millis(50));
        // When the runner is pid 1 the orphans are its children: reap them (only them).
        for pid in &killed {
            // SAFETY: waitpid on one pid with WNOHANG; ECHILD for non-children is ignored.
            unsafe {
                libc::waitpid(*pid, std::ptr::null_mut(), libc::WNOHANG);
            }
        }
    }
    killed.len()
}

/// Whether `uid:gid` (no supplementary groups) can open `path` for reading, asked of
/// the kernel itself: a forked child switches user and tries `open(2)`.
pub fn can_read_as(path: &Path, uid: u32, gid: u32) -> io::Result<bool> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut cmd = Command::new("/");
    cmd.uid(uid)
        .gid(gid)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env_clear();
    // SAFETY: the closure runs in the forked child after the uid/gid switch and only calls
    // async-signal-safe functions (open, _exit); it never returns to exec.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(c_path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            libc::_exit(if fd >= 0 { 0 } else { 13 });
        });
    }
    let status = cmd.status()?;
    Ok(status.code() == Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(script: &str, dir: &Path, timeout_ms: u64) -> Spec {
        let mut env = BTreeMap::new();
        env.insert("PATH".into(), "/usr/bin:/bin".into());
        let mut s = Spec::shell(
            script,
            dir,
            env,
            &dir.join("log"),
            Duration::from_millis(timeout_ms),
        );
        s.grace = Duration::from_millis(200);
        s
    }

    #[test]
    fn exit_codes_signals_and_env_scrub() {
        let tmp = tempfile::tempdir().unwrap();
        std::env::set_var("KILN_SECRET_TEST", "leak");
        let out = run(&spec(
            "echo \"[$KILN_SECRET_TEST]\"; exit 3",
            tmp.path(),
            5000,
        ));
        assert_eq!((out.exit_code, out.timed_out), (Some(3), false));
        assert_eq!(fs::read_to_string(tmp.path().join("log")).unwrap(), "[]\n");
        let out = run(&spec("kill -9 $$", tmp.path(), 5000));
        assert_eq!(out.signal, Some(9));
        assert!(!out.success());
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let tmp = tempfile::tempdir().unwrap();
        let marker = tmp.path().join("late");
        let script = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let out = run(&spec(&script, tmp.path(), 300));
        assert!(out.timed_out);
        assert!(out.wall < Duration::from_secs(5));
        sleep(Duration::from_millis(1500));
        assert!(
            !marker.exists(),
            "the background child survived the timeout"
        );
    }

    #[test]
    fn spawn_failure_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = spec("true", tmp.path(), 1000);
        s.program = tmp.path().join("missing");
        let out = run(&s);
        assert!(out.spawn_error.is_some());
        assert!(out
            .describe_failure(s.timeout)
            .contains("could not be started"));
    }

    #[test]
    fn read_probe_uses_kernel_permissions() {
        if unsafe { libc::getuid() } != 0 {
            return; // switching users needs root
        }
        let tmp = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let open = tmp.path().join("open");
        let closed = tmp.path().join("closed");
        fs::create_dir(&open).unwrap();
        fs::create_dir(&closed).unwrap();
        fs::set_permissions(&closed, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(can_read_as(&open, 64011, 64011).unwrap());
        assert!(!can_read_as(&closed, 64011, 64011).unwrap());
        assert!(can_read_as(&closed, 0, 0).unwrap());
    }
}
