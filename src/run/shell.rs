//! `kiln shell`: a person in the agent's place. The task's eval image is built as
//! `kiln run` builds it (one plan, [`super::local::build`]), then started as `kiln run`
//! starts it, except that the runner's `shell` phase replaces the agent with an
//! interactive shell on this terminal: the runner prepares the task (services, fixtures,
//! setup, `/kiln` closed), then runs the shell as the agent user in `$WORKSPACE` with
//! the agent's environment (docs/scenario-format.md §7). What the shell sees is what
//! the agent sees, because the same code hands it over.
//!
//! Two optional views an agent does not get: `--with-solution` puts the task's
//! `solution/` where the oracle finds it (`/kiln/solutions/<task>/`, which the runner
//! copies to `$SOLUTION_DIR`), and `--with-tests` the task's `grading/` at [`TESTS_DIR`],
//! read-only. Both are bind mounts of the repository's files, so an edit on the host is
//! seen without a rebuild.
//!
//! The container is a plain `docker run --rm -it` (podman's when the image lives in
//! podman's store), so `--dry-run` prints the same command; kiln watches it and removes
//! the container however the session ends: the shell exits, SIGINT/SIGTERM, or SIGHUP
//! when the terminal closes. It carries the owner labels of [`super::reap`], so after a
//! SIGKILL the next `kiln run` or `kiln shell` removes it.

use crate::printer::errln;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::local;
use super::matrix::{self, Matrix, Selection};
use super::reap::{self, Owner, LABEL_RUN};
use super::{container, ORACLE};
use super::{refused, Options};
use crate::backend::shell::join;
use crate::error::Failure;
use crate::fleet::Fleet;
use crate::store::Store;

/// Where `--with-tests` shows the task's graders, read-only.
pub const TESTS_DIR: &str = "/tests";
/// The agent whose eval image the shell runs in unless `--agent` says otherwise: it
/// adds nothing to the benchmark but an agent that does nothing.
pub const DEFAULT_AGENT: &str = "null";

/// What `kiln shell` was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub benchmark: String,
    pub task: String,
    pub agent: String,
    /// Put the task's `solution/` where the oracle finds it.
    pub with_solution: bool,
    /// Show the task's `grading/` at [`TESTS_DIR`].
    pub with_tests: bool,
}

/// One shell container, ready to print or run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellSpec {
    /// Whose CLI runs it.
    pub store: Store,
    pub image: String,
    /// The container's name.
    pub name: String,
    pub task: String,
    pub agent: String,
    /// Stdin is a terminal: `-it`; otherwise `-i` (the shell reads commands from stdin).
    pub tty: bool,
    /// The host's `solution/` directory and where it is mounted (kiln's fleets:
    /// `/kiln/solutions/<task>/`; a Harbor task: `/solution`).
    pub solution: Option<(PathBuf, String)>,
    /// The host's graders (`grading/`, a Harbor task's `tests/`), mounted at [`TESTS_DIR`].
    pub tests: Option<PathBuf>,
    /// What the shell shows of graders that are not a mount at [`TESTS_DIR`] (an
    /// eval-containers image keeps its own); None: [`ShellSpec::tests`] says it.
    pub graders: Option<String>,
    pub labels: Vec<(String, String)>,
    /// `run` options before the image: the environment the agent gets, its user, workdir
    /// and network (only `-e NAME`: values are in [`ShellSpec::env`]).
    pub run_args: Vec<String>,
    /// After the image: the runner's `shell --task T`, or a shell for an image without it.
    pub command: Vec<String>,
    /// Values of the `-e NAME` options, in the CLI's environment (never an argument).
    pub env: Vec<(String, String)>,
}

impl ShellSpec {
    /// The `docker run` (or `podman run`) command, word by word. The image's entry point
    /// is the runner: `shell --task T` prepares the task and hands the terminal to a shell
    /// as the agent (bash when the image has it, else sh).
    pub fn argv(&self) -> Vec<String> {
        let mut argv: Vec<String> = vec![
            self.store.name().into(),
            "run".into(),
            "--rm".into(),
            if self.tty { "-it" } else { "-i" }.into(),
            "--name".into(),
            self.name.clone(),
        ];
        for (k, v) in &self.labels {
            argv.extend(["--label".into(), format!("{k}={v}")]);
        }
        argv.extend(self.run_args.iter().cloned());
        if let Some((dir, target)) = &self.solution {
            argv.extend(["--mount".into(), bind_mount(dir, target)]);
        }
        if let Some(dir) = &self.tests {
            argv.extend(["--mount".into(), bind_mount(dir, TESTS_DIR)]);
        }
        argv.push(self.image.clone());
        argv.extend(self.command.iter().cloned());
        argv
    }
}

/// A read-only bind mount of `source` at `target`, as `--mount` takes it.
fn bind_mount(source: &Path, target: &str) -> String {
    format!(
        "type=bind,source={},target={target},readonly",
        source.display()
    )
}

/// The request checked against the fleet: nothing built, nothing started.
pub struct Checked {
    fleet: Fleet,
    /// One run: the benchmark × agent × task, and the build request of its eval image.
    matrix: Matrix,
    solution: Option<PathBuf>,
    tests: Option<PathBuf>,
}

impl Checked {
    /// The eval image the shell runs in.
    pub fn image(&self) -> &str {
        &self.matrix.runs[0].image
    }
}

/// Checks every name and directory of `req` (unknown benchmark, agent or task: refused,
/// exit status 2).
pub fn check(
    repo: &Path,
    req: &Request,
    vars: std::collections::BTreeMap<String, String>,
) -> anyhow::Result<Checked> {
    crate::naming::validate_task_id(&req.task).map_err(|e| Failure::usage(e.to_string()))?;
    let fleet = Fleet::load(repo, vars)?;
    let selection = Selection {
        benchmarks: vec![req.benchmark.clone()],
        agents: vec![req.agent.clone()],
        tasks: vec![req.task.clone()],
        repeat: 1,
        ..Selection::default()
    };
    let matrix = matrix::select(&fleet, &selection).map_err(refused)?;
    let run = &matrix.runs[0];
    let task_dir = repo
        .join("benchmarks")
        .join(&run.benchmark)
        .join("tasks")
        .join(&run.task);
    // The oracle's image is useless without its solution: it gets it as in `kiln run`.
    let solution = if req.with_solution || run.agent == ORACLE {
        Some(mount_source(&task_dir, "solution", "--with-solution")?)
    } else {
        None
    };
    let tests = if req.with_tests {
        Some(mount_source(&task_dir, "grading", "--with-tests")?)
    } else {
        None
    };
    Ok(Checked {
        fleet,
        matrix,
        solution,
        tests,
    })
}

/// The absolute path of `task_dir/sub`, which must be a directory a bind mount can name.
fn mount_source(task_dir: &Path, sub: &str, flag: &str) -> anyhow::Result<PathBuf> {
    let dir = task_dir.join(sub);
    if !dir.is_dir() {
        return Err(Failure::usage(format!(
            "{flag}: the task has no {sub}/ directory ({} is missing)",
            dir.display()
        )));
    }
    let dir =
        std::fs::canonicalize(&dir).with_context(|| format!("resolving {}", dir.display()))?;
    if dir.to_string_lossy().contains(',') {
        // `--mount` separates its fields with commas.
        return Err(Failure::usage(format!(
            "{flag}: {} holds a comma, which a bind mount cannot name; move the repository",
            dir.display()
        )));
    }
    Ok(dir)
}

/// The container's name: kiln's pid makes it unique, the rest says what runs in it.
pub fn container_name(benchmark: &str, task: &str, agent: &str) -> String {
    let pid = std::process::id();
    let name = super::container_name(0, benchmark, task, agent, 1);
    let rest = name
        .strip_prefix(&format!("kiln-{pid}-0-"))
        .unwrap_or(&name);
    format!("kiln-shell-{pid}-{rest}")
}

fn spec(checked: &Checked, store: Store, tty: bool, labels: Vec<(String, String)>) -> ShellSpec {
    let run = &checked.matrix.runs[0];
    ShellSpec {
        store,
        image: run.image.clone(),
        name: container_name(&run.benchmark, &run.task, &run.agent),
        task: run.task.clone(),
        agent: run.agent.clone(),
        tty,
        solution: checked
            .solution
            .clone()
            .map(|dir| (dir, format!("{}/{}", container::SOLUTIONS_DIR, run.task))),
        tests: checked.tests.clone(),
        graders: None,
        labels,
        // As `kiln run` sets them (the runner's inputs, docs/scenario-format.md §7).
        run_args: vec![
            "--env".into(),
            format!("KILN_TASK_ID={}", run.task),
            "--env".into(),
            format!("KILN_AGENT_ID={}", run.agent),
        ],
        command: vec!["shell".into(), "--task".into(), run.task.clone()],
        env: Vec::new(),
    }
}

/// The `--dry-run` form: the command for a terminal, on the Docker Engine (where kiln
/// runs containers when it answers). It leaves out the labels naming this kiln process:
/// a pasted command outlives it, and the next `kiln run` would take the container for
/// a dead process's and remove it.
pub fn dry_run_spec(checked: &Checked) -> ShellSpec {
    spec(
        checked,
        Store::Docker,
        true,
        vec![(LABEL_RUN.into(), "true".into())],
    )
}

/// Prints the dry run: the command on stdout, what it leaves out on stderr.
pub fn print_dry_run(checked: &Checked) -> anyhow::Result<()> {
    let run = &checked.matrix.runs[0];
    errln!(
        "note: kiln shell first builds whatever of {} is out of date; the dry run builds and checks nothing \
         (`kiln build eval {} --agent {} --task-id {} --dry-run` prints that build)",
        run.image, run.benchmark, run.agent, run.task
    );
    let mut out = crate::printer::stdout();
    writeln!(out, "{}", join(&dry_run_spec(checked).argv()))?;
    Ok(())
}

/// Builds what is out of date, runs the shell and removes its container; returns the
/// exit status (the shell's, as `docker run` returns it; 130 after SIGINT/SIGTERM, 129
/// after SIGHUP).
pub fn run(repo: &Path, checked: &Checked, opts: &Options) -> anyhow::Result<u8> {
    let tty = std::io::stdin().is_terminal();
    let runtime = runtime()?;
    runtime.block_on(reap::reap_and_say(&[Store::Docker]))?;
    let images = local::build(repo, &checked.fleet, &checked.matrix, opts, &runtime)?;
    let (store, _digest) = images[checked.image()].clone();
    if store == Store::Podman {
        runtime.block_on(reap::reap_and_say(&[Store::Podman]))?;
    }
    let spec = spec(checked, store, tty, Owner::current().labels());
    run_spec(&runtime, &spec)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

/// Says what the shell is, then runs it until it ends (see [`attend`]).
pub fn run_spec(runtime: &tokio::runtime::Runtime, spec: &ShellSpec) -> anyhow::Result<u8> {
    let tty = spec.tty;
    say(&format!(
        "shell: task {} as agent {} (its user, workspace and environment), image {} [{}], \
         container {}; {}{}",
        spec.task,
        spec.agent,
        spec.image,
        spec.store,
        spec.name,
        match (&spec.graders, &spec.tests) {
            (Some(g), _) => g.clone(),
            (None, Some(_)) => format!("graders at {TESTS_DIR} (read-only)"),
            (None, None) => "graders hidden".into(),
        },
        match &spec.solution {
            Some((_, target)) => format!(", solution at {target}"),
            None => String::new(),
        },
    ));
    if !tty {
        say("stdin is not a terminal: the shell reads its commands from stdin (`run -i`, no TTY)");
    }
    runtime.block_on(attend(spec))
}

/// The shell of a Harbor task, as its agent would be: the task's environment image
/// (built first when out of date), `agent.user`, the workdir, `environment.env` and the
/// network policy; `/tests` and `/solution` only when asked. The image has no kiln
/// runner: the entry point becomes bash when the image has it, else sh.
pub fn harbor(
    fleet: &Fleet,
    task: &crate::fleet::layout::harbor::Task,
    image: &str,
    with_solution: bool,
    with_tests: bool,
    tty: bool,
) -> anyhow::Result<ShellSpec> {
    use crate::fleet::layout::harbor::{config::NetworkMode, dataset};
    let env = &task.config.environment;
    let dir = fleet.root.join(&task.dir);
    let abs = |p: PathBuf| std::fs::canonicalize(&p).unwrap_or(p);
    let mut run_args = Vec::new();
    if env.network() == NetworkMode::NoNetwork {
        run_args.extend(["--network".into(), "none".into()]);
    }
    if let Some(w) = &env.workdir {
        run_args.extend(["-w".into(), w.clone()]);
    }
    if let Some(u) = &task.config.agent.user {
        run_args.extend(["-u".into(), u.as_arg()]);
    }
    let mut values = Vec::new();
    for (k, v) in &env.env {
        let value = crate::run::harbor::expand_env(v)
            .with_context(|| format!("task {}: environment.env.{k}", task.id))?;
        run_args.extend(["-e".into(), k.clone()]);
        values.push((k.clone(), value));
    }
    run_args.extend(["--entrypoint".into(), "/bin/sh".into()]);
    let name = container_name(&fleet.benchmarks[0].name, &task.id, "harbor");
    Ok(ShellSpec {
        store: Store::Docker,
        image: image.to_string(),
        name,
        task: task.id.clone(),
        agent: "(none)".into(),
        tty,
        solution: with_solution.then(|| (abs(dir.join(dataset::SOLUTION_DIR)), "/solution".into())),
        tests: with_tests.then(|| abs(dir.join(dataset::TESTS_DIR))),
        graders: None,
        labels: Owner::current().labels(),
        run_args,
        command: vec![
            "-c".into(),
            "command -v bash >/dev/null 2>&1 && exec bash || exec sh".into(),
        ],
        env: values,
    })
}

/// A line on stderr that may find no terminal any more (after SIGHUP): never panics.
fn say(line: &str) {
    crate::printer::errln!("{line}");
}

/// Runs the container in the foreground until the shell ends or a signal comes, then
/// makes sure the container is gone.
async fn attend(spec: &ShellSpec) -> anyhow::Result<u8> {
    use tokio::signal::unix::{signal, SignalKind};
    // Handlers first: a signal from now on is kiln's to act on.
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let argv = spec.argv();
    let mut child = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .spawn()
        .with_context(|| format!("running {}", join(&argv)))?;
    let stopped = tokio::select! {
        status = child.wait() => {
            let status = status.context("waiting for the shell's container")?;
            remove(spec).await?;
            return Ok(exit_code(status));
        }
        _ = int.recv() => (130, "interrupted"),
        _ = term.recv() => (130, "terminated"),
        _ = hup.recv() => (129, "the terminal closed"),
    };
    // Removing the container ends the CLI's session, so it restores the terminal itself.
    let removed = remove(spec).await;
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
    removed?;
    say(&format!("{}: container {} removed", stopped.1, spec.name));
    Ok(stopped.0)
}

/// `docker run`'s status as a process exit status (128 + signal when killed by one).
fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => code.clamp(0, 255) as u8,
        (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
        (None, None) => 1,
    }
}

/// Removes the container if it is still there (`--rm` usually did) and waits until the
/// store no longer knows it, so nothing is left when kiln exits.
async fn remove(spec: &ShellSpec) -> anyhow::Result<()> {
    let cli = spec.store.name();
    let quiet = |args: &[&str]| {
        tokio::process::Command::new(cli)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
    };
    let _ = quiet(&["rm", "--force", &spec.name]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let exists = quiet(&["container", "inspect", &spec.name])
            .await
            .with_context(|| format!("running {cli} container inspect"))?
            .success();
        if !exists {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "container {} is still there after `{cli} rm --force`; remove it by hand",
                spec.name
            );
        }
        // `--rm` may be removing it already, which a second removal does not wait for.
        let _ = quiet(&["rm", "--force", &spec.name]).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ShellSpec {
        ShellSpec {
            store: Store::Docker,
            image: "kiln.local/evals/terminal-lite--null:dev-count-lines".into(),
            name: "kiln-shell-7-terminal-lite-count-lines-null".into(),
            task: "count-lines".into(),
            agent: "null".into(),
            tty: true,
            solution: None,
            tests: None,
            graders: None,
            labels: vec![("kiln.run".into(), "true".into())],
            run_args: vec![
                "--env".into(),
                "KILN_TASK_ID=count-lines".into(),
                "--env".into(),
                "KILN_AGENT_ID=null".into(),
            ],
            command: vec!["shell".into(), "--task".into(), "count-lines".into()],
            env: Vec::new(),
        }
    }

    #[test]
    fn plain_shell_hides_solution_and_tests() {
        assert_eq!(
            join(&spec().argv()),
            "docker run --rm -it --name kiln-shell-7-terminal-lite-count-lines-null \
             --label kiln.run=true --env KILN_TASK_ID=count-lines --env KILN_AGENT_ID=null \
             kiln.local/evals/terminal-lite--null:dev-count-lines shell --task count-lines"
        );
    }

    #[test]
    fn solution_and_tests_are_read_only_bind_mounts() {
        let mut s = spec();
        s.solution = Some((
            "/repo/benchmarks/b/tasks/count-lines/solution".into(),
            "/kiln/solutions/count-lines".into(),
        ));
        s.tests = Some("/repo/benchmarks/b/tasks/count-lines/grading".into());
        let argv = s.argv();
        let mounts: Vec<&str> = argv
            .windows(2)
            .filter(|w| w[0] == "--mount")
            .map(|w| w[1].as_str())
            .collect();
        assert_eq!(
            mounts,
            [
                "type=bind,source=/repo/benchmarks/b/tasks/count-lines/solution,target=/kiln/solutions/count-lines,readonly",
                "type=bind,source=/repo/benchmarks/b/tasks/count-lines/grading,target=/tests,readonly",
            ]
        );
        // Options before the image, the runner's arguments after it.
        let image = argv.iter().position(|a| a == &s.image).unwrap();
        assert_eq!(&argv[image + 1..], ["shell", "--task", "count-lines"]);
    }

    #[test]
    fn no_terminal_means_no_tty_and_podman_images_run_with_podman() {
        let mut s = spec();
        s.tty = false;
        s.store = Store::Podman;
        let argv = s.argv();
        assert_eq!(&argv[..4], ["podman", "run", "--rm", "-i"]);
    }

    #[test]
    fn names_are_valid_container_names() {
        let name = container_name("terminal-lite", "Fix.Config", "oracle");
        assert!(name.starts_with(&format!("kiln-shell-{}-", std::process::id())));
        assert!(name.ends_with("-terminal-lite-fix-config-oracle"), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(9)), 137);
    }
}
