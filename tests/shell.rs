//! `kiln shell` through a real pseudo-terminal (util-linux `script`) on the real Docker
//! Engine: a command typed at the shell runs as the agent in the task's workspace;
//! `--with-tests` shows the graders at /tests and without it nothing does; after the
//! shell exits, or kiln is interrupted, none of kiln's containers or networks of that
//! session are left. The dry run and the refusals need no engine. Opt-in for the
//! engine part: `KILN_TEST_DOCKER=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod fleet_support;
mod pty_support;

use pty_support::{assert_nothing_left, container_of, docker_lines, kiln_pid};

const BENCHMARK: &str = "terminal-lite";
const TASK: &str = "count-lines";
/// One session at a time: the first one builds the eval image.
static ENGINE: Mutex<()> = Mutex::new(());
/// Long enough for a first build of the eval image on a busy machine.
const SESSION_TIMEOUT: Duration = Duration::from_secs(900);

fn enabled() -> bool {
    if std::env::var("KILN_TEST_DOCKER").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("skipped: set KILN_TEST_DOCKER=1 to open kiln shells on the Docker Engine");
    false
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `kiln <args>` in the repository with no PATH: it can start nothing.
fn kiln_without_engine(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .current_dir(repo())
        .env("PATH", "")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// One `kiln shell` of the task on a pseudo-terminal.
struct Session;

impl Session {
    fn start(runner: &Path, args: &[&str]) -> pty_support::Session {
        let line = std::iter::once(env!("CARGO_BIN_EXE_kiln"))
            .chain(["shell", BENCHMARK, "--task-id", TASK, "--progress", "plain"])
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        pty_support::Session::start(
            &line,
            &repo(),
            &[("KILN_RUNNER", runner.to_str().unwrap())],
            SESSION_TIMEOUT,
        )
    }
}

/// Typed at the shell: what it shows proves the command ran there (the echo of the
/// typed line shows `$((6*7))`, only the shell's output shows 42).
const PROBE: &str = "echo UID-$(id -u) CWD-$(pwd); ls /tests; \
                     cat /kiln/tasks/count-lines/grading/test.sh; echo END-$((6*7))";

#[test]
fn a_shell_through_a_terminal_sees_what_the_agent_sees() {
    if !enabled() {
        return;
    }
    let _engine = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let runner = fleet_support::static_runner();

    // --with-tests: the graders at /tests, the hidden copy still hidden; `exit 3` is
    // kiln's exit status.
    let started = Instant::now();
    let mut s = Session::start(&runner, &["--with-tests"]);
    s.wait_for("shell: /bin/sh as uid 1000");
    s.type_line(PROBE);
    s.wait_for("END-42");
    s.type_line("exit 3");
    let (code, screen) = s.finish();
    eprintln!("session with --with-tests: {:?}", started.elapsed());
    assert_eq!(code, 3, "{screen}");
    let out = &screen[screen.find("END-$((6*7))").expect("the typed line")..];
    assert!(out.contains("UID-1000 CWD-/workspace"), "{screen}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().any(|w| w == "test.sh")),
        "ls /tests shows no test.sh:\n{screen}"
    );
    assert!(
        out.contains("/kiln/tasks/count-lines/grading/test.sh: Permission denied"),
        "{screen}"
    );
    assert!(screen.contains("graders at /tests (read-only)"), "{screen}");
    assert_nothing_left(&container_of(&screen));

    // Without it: no /tests, and the graders stay hidden.
    let started = Instant::now();
    let mut s = Session::start(&runner, &[]);
    s.wait_for("shell: /bin/sh as uid 1000");
    s.type_line(PROBE);
    s.wait_for("END-42");
    s.type_line("exit");
    let (code, screen) = s.finish();
    eprintln!("session without --with-tests: {:?}", started.elapsed());
    assert_eq!(code, 0, "{screen}");
    let out = &screen[screen.find("END-$((6*7))").expect("the typed line")..];
    assert!(
        out.contains("cannot access '/tests': No such file or directory"),
        "{screen}"
    );
    assert!(!out.contains("test.sh\n"), "{screen}");
    assert!(screen.contains("graders hidden"), "{screen}");
    assert_nothing_left(&container_of(&screen));

    // SIGINT to kiln (Ctrl-C outside the shell's raw terminal): the container goes,
    // kiln exits 130.
    let started = Instant::now();
    let mut s = Session::start(&runner, &[]);
    s.wait_for("shell: /bin/sh as uid 1000");
    let container = container_of(&s.screen());
    let pid = kiln_pid(&container);
    // SAFETY: kill(2) on the pid of the kiln process this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let (code, screen) = s.finish();
    eprintln!("interrupted session: {:?}", started.elapsed());
    assert_eq!(code, 130, "{screen}");
    assert!(
        screen.contains(&format!("interrupted: container {container} removed")),
        "{screen}"
    );
    assert_nothing_left(&container);
}

#[test]
fn the_terminal_closing_removes_the_container() {
    if !enabled() {
        return;
    }
    let _engine = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let runner = fleet_support::static_runner();
    let mut s = Session::start(&runner, &[]);
    s.wait_for("shell: /bin/sh as uid 1000");
    let container = container_of(&s.screen());
    assert!(
        docker_lines(&["ps", "--format", "{{.Names}}"]).contains(&container),
        "{container} is not running"
    );
    // Killing `script` closes the terminal's master side: kiln gets SIGHUP.
    s.child.kill().unwrap();
    let _ = s.child.wait();
    let deadline = Instant::now() + Duration::from_secs(30);
    while docker_lines(&["ps", "-a", "--format", "{{.Names}}"]).contains(&container) {
        assert!(
            Instant::now() < deadline,
            "{container} is still there 30 s after its terminal closed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_nothing_left(&container);
}

#[test]
fn dry_run_prints_the_docker_run_command() {
    let out = kiln_without_engine(&[
        "shell",
        BENCHMARK,
        "--task-id",
        TASK,
        "--with-tests",
        "--dry-run",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // The name carries kiln's pid, different every time.
    let at = stdout.find("kiln-shell-").expect("a container name") + "kiln-shell-".len();
    let digits = stdout[at..].find('-').unwrap();
    let stdout = format!("{}PID{}", &stdout[..at], &stdout[at + digits..]);
    let grading = repo().join("benchmarks/terminal-lite/tasks/count-lines/grading");
    assert_eq!(
        stdout,
        format!(
            "docker run --rm -it --name kiln-shell-PID-terminal-lite-count-lines-null \
             --label kiln.run=true --env KILN_TASK_ID=count-lines --env KILN_AGENT_ID=null \
             --mount type=bind,source={},target=/tests,readonly \
             kiln.local/evals/terminal-lite-count-lines--null:dev shell --task count-lines\n",
            grading.canonicalize().unwrap().display()
        )
    );
    assert!(stderr.contains("builds and checks nothing"), "{stderr}");
}

#[test]
fn unknown_names_are_refused_and_nothing_starts() {
    for (args, needle) in [
        (
            &["shell", BENCHMARK, "--task-id", "count-line"][..],
            "unknown task of benchmark \"terminal-lite\" \"count-line\"; closest: count-lines",
        ),
        (
            &["shell", "terminal-lit", "--task-id", TASK][..],
            "unknown benchmark \"terminal-lit\"; closest: terminal-lite",
        ),
        (
            &["shell", BENCHMARK, "--task-id", TASK, "--agent", "orcale"][..],
            "unknown agent \"orcale\"; closest: oracle",
        ),
        (&["shell", BENCHMARK, "--task-id", "../etc"][..], "../etc"),
    ] {
        let out = kiln_without_engine(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("shell: task"),
            "{args:?} started: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
