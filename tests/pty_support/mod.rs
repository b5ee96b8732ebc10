//! A command on a real pseudo-terminal (util-linux `script`): what we write is typed at
//! it, what it shows is read back. Used by the `kiln shell` tests.

#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One command on a pseudo-terminal: `script` gives it a terminal as stdin, stdout and
/// stderr, and copies what we write to it as typed keys.
pub struct Session {
    pub child: std::process::Child,
    keys: Option<std::process::ChildStdin>,
    screen: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// How long [`Session::wait_for`] waits.
    pub timeout: Duration,
}

impl Session {
    /// Starts `line` (a shell command line) in `cwd` with `env` added.
    pub fn start(line: &str, cwd: &Path, env: &[(&str, &str)], timeout: Duration) -> Session {
        let mut child = Command::new("script")
            .args(["-qec", line, "/dev/null"])
            .current_dir(cwd)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("util-linux script runs");
        let screen = Arc::new(Mutex::new(String::new()));
        let mut out = child.stdout.take().unwrap();
        let sink = screen.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Session {
            keys: child.stdin.take(),
            child,
            screen,
            reader: Some(reader),
            timeout,
        }
    }

    pub fn screen(&self) -> String {
        self.screen.lock().unwrap().replace('\r', "")
    }

    /// Waits until the screen shows `text`.
    pub fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + self.timeout;
        while !self.screen().contains(text) {
            if let Ok(Some(status)) = self.child.try_wait() {
                // The reader may still hold the last bytes.
                std::thread::sleep(Duration::from_millis(200));
                if self.screen().contains(text) {
                    return;
                }
                panic!(
                    "the session ended ({status}) before showing {text:?}:\n{}",
                    self.screen()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} within {:?}:\n{}",
                self.timeout,
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn type_line(&mut self, line: &str) {
        let keys = self.keys.as_mut().unwrap();
        keys.write_all(format!("{line}\n").as_bytes()).unwrap();
        keys.flush().unwrap();
    }

    /// The exit status `script -e` passes on (the command's), and the whole screen.
    pub fn finish(mut self) -> (i32, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the session did not end:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        drop(self.keys.take());
        self.reader.take().unwrap().join().unwrap();
        (status.code().unwrap_or(-1), self.screen())
    }
}

/// The container a `kiln shell` names on its first line (`container kiln-shell-…;`).
pub fn container_of(screen: &str) -> String {
    let at = screen
        .find("container kiln-shell-")
        .unwrap_or_else(|| panic!("no container named:\n{screen}"));
    screen[at + "container ".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// The pid of the kiln process a `kiln shell` container is named after (`kiln-shell-<pid>-…`).
pub fn kiln_pid(container: &str) -> i32 {
    container
        .trim_start_matches("kiln-shell-")
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The lines `docker ARGS` prints (it must succeed).
pub fn docker_lines(args: &[&str]) -> Vec<String> {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(out.status.success(), "docker {args:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Nothing of a `kiln shell` session is left: no container of that name or of that kiln
/// process, no network that names it.
pub fn assert_nothing_left(container: &str) {
    let pid = container
        .trim_start_matches("kiln-shell-")
        .split('-')
        .next()
        .unwrap();
    let containers = docker_lines(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(
        !containers.iter().any(|c| c == container),
        "{container} is still there: {containers:?}"
    );
    let owned = docker_lines(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=kiln.pid={pid}"),
        "--format",
        "{{.Names}}",
    ]);
    assert!(owned.is_empty(), "kiln {pid} left {owned:?}");
    let networks = docker_lines(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(
        !networks.iter().any(|n| n.contains(container)),
        "a network of {container} is left: {networks:?}"
    );
}

/// The names of the containers Docker knows, running or not.
pub fn containers() -> Vec<String> {
    docker_lines(&["ps", "-a", "--format", "{{.Names}}"])
}
