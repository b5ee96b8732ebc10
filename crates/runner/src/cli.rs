//! Command line of the runner (docs/scenario-format.md §7). Hand-parsed: the
//! binary must stay small and static, and the flags are few.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::layout::{lookup_user, Layout, AGENT_UID};
use crate::result::Status;
use crate::run::{Run, Settings};
use crate::scenario::{self, Task};
use crate::state::State;

pub const USAGE: &str = "\
usage: runner [<phase>] [options]
       runner shell [options] [-- COMMAND [ARG]...]
       runner list [--tasks-dir DIR]
       runner validate [--task ID] [--tasks-dir DIR]
       runner --version

phases: prepare | agent | grade | all   (all = prepare, agent, grade; the default)
shell:  prepare, then COMMAND in the agent's place (its user, cwd, environment) on this
        terminal instead of the agent (default: bash if the image has it, else sh)
        regrade   grade a kept state (a committed container of `all --keep-state`):
                  start the services, then grade with the tasks of --tasks-dir

options:
  --task ID              task to run (default: $KILN_TASK_ID, else the only task in /kiln/tasks)
  --output DIR           output directory (default /output)
  --prompt-variant V     prompts/<V>.md instead of [agent].prompt_variant
  --agent-timeout SEC    instead of [agent].timeout_sec
  --model M              given to the agent as MODEL (default $KILN_MODEL)
  --agent-id A           given to the agent as AGENT_ID (default $KILN_AGENT_ID, /opt/agent/name)
  --pass-env NAME        pass this variable of the runner's environment to the agent (repeatable;
                         also $KILN_PASS_ENV, comma-separated)
  --keep-state           all: after the agent, print the state-ready line on stderr and
                         wait (at most 600 s) until kiln has committed the container
  --tasks-dir DIR        list/validate/regrade the tasks in DIR instead of /kiln/tasks
test-only options (never used in eval images):
  --unsafe-test-root DIR       resolve /kiln, /opt/agent, /workspace, /run/kiln, /output under DIR
  --unsafe-test-agent-uid UID  run the agent as UID:UID instead of 1000:1000 (needs --unsafe-test-root)
  --no-drop-privileges         run the agent as the runner's own user (graders are NOT hidden)
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Phase(String),
    List,
    Validate,
    Version,
    Help,
}

#[derive(Debug, Default)]
pub struct Args {
    pub command: Option<Command>,
    pub task: Option<String>,
    pub output: Option<PathBuf>,
    pub prompt_variant: Option<String>,
    pub agent_timeout: Option<u64>,
    pub model: Option<String>,
    pub agent_id: Option<String>,
    pub pass_env: Vec<String>,
    pub tasks_dir: Option<PathBuf>,
    pub keep_state: bool,
    pub test_root: Option<PathBuf>,
    pub test_agent_uid: Option<u32>,
    pub no_drop_privileges: bool,
    /// `shell`: what runs in the agent's place (the words after `--`).
    pub shell_command: Vec<String>,
}

/// What `shell` runs without `-- COMMAND`: bash when the image has it, else sh (decided
/// in the image, where busybox images have no bash).
pub const DEFAULT_SHELL: [&str; 3] = [
    "/bin/sh",
    "-c",
    "command -v bash >/dev/null 2>&1 && exec bash || exec sh",
];

pub fn parse(argv: &[String]) -> Result<Args, String> {
    let mut args = Args::default();
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        if arg == "--" {
            args.shell_command = it.by_ref().cloned().collect();
            if args.shell_command.is_empty() {
                return Err("-- needs a command after it".into());
            }
            break;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag {
            "--task" => args.task = Some(value(flag)?),
            "--output" => args.output = Some(PathBuf::from(value(flag)?)),
            "--prompt-variant" => args.prompt_variant = Some(value(flag)?),
            "--agent-timeout" => {
                let v = value(flag)?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("--agent-timeout: {v:?} is not a number of seconds"))?;
                if secs == 0 {
                    return Err("--agent-timeout must be > 0".into());
                }
                args.agent_timeout = Some(secs);
            }
            "--model" => args.model = Some(value(flag)?),
            "--agent-id" => args.agent_id = Some(value(flag)?),
            "--pass-env" => args.pass_env.push(value(flag)?),
            "--tasks-dir" => args.tasks_dir = Some(PathBuf::from(value(flag)?)),
            "--unsafe-test-root" => args.test_root = Some(PathBuf::from(value(flag)?)),
            "--unsafe-test-agent-uid" => {
                let v = value(flag)?;
                args.test_agent_uid = Some(
                    v.parse()
                        .map_err(|_| format!("--unsafe-test-agent-uid: {v:?} is not a uid"))?,
                );
            }
            "--no-drop-privileges" => args.no_drop_privileges = true,
            "--keep-state" => args.keep_state = true,
            "--version" | "-V" => args.command = Some(Command::Version),
            "--help" | "-h" | "help" => args.command = Some(Command::Help),
            _ if flag.starts_with('-') => return Err(format!("unknown option {flag:?}")),
            name => {
                if args.command.is_some() {
                    return Err(format!("unexpected argument {name:?}"));
                }
                args.command = Some(match name {
                    "prepare" | "agent" | "grade" | "regrade" | "all" | "shell" => {
                        Command::Phase(name.to_string())
                    }
                    "list" => Command::List,
                    "validate" => Command::Validate,
                    _ => return Err(format!("unknown phase or command {name:?} (prepare, agent, grade, regrade, all, shell, list, validate)")),
                });
            }
        }
    }
    if args.test_agent_uid.is_some() && args.test_root.is_none() {
        return Err("--unsafe-test-agent-uid only works with --unsafe-test-root".into());
    }
    let phase = match &args.command {
        Some(Command::Phase(p)) => Some(p.as_str()),
        None => Some("all"),
        _ => None,
    };
    if args.tasks_dir.is_some() && phase.is_some_and(|p| p != "regrade") {
        return Err("--tasks-dir only applies to list, validate and regrade".into());
    }
    if args.keep_state && phase != Some("all") {
        return Err("--keep-state only applies to all".into());
    }
    if !args.shell_command.is_empty() && args.command != Some(Command::Phase("shell".into())) {
        return Err("-- COMMAND only applies to the shell phase".into());
    }
    Ok(args)
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("kiln-runner: {msg}\n\n{USAGE}");
    ExitCode::from(2)
}

/// The task at `index` of a comma-separated task table (`KILN_TASK_TABLE`): an Indexed
/// Kubernetes Job runs one pod per entry and gives each its `JOB_COMPLETION_INDEX`.
pub fn task_from_table(table: &str, index: &str) -> Result<String, String> {
    let i: usize = index
        .trim()
        .parse()
        .map_err(|_| format!("JOB_COMPLETION_INDEX={index:?} is not an index"))?;
    let entries: Vec<&str> = table.split(',').map(str::trim).collect();
    match entries.get(i) {
        Some(id) if !id.is_empty() => Ok(id.to_string()),
        _ => Err(format!(
            "JOB_COMPLETION_INDEX {i} has no task in KILN_TASK_TABLE ({} entries)",
            entries.len()
        )),
    }
}

/// The task to run: --task › $KILN_TASK_ID › the entry of $KILN_TASK_TABLE at
/// $JOB_COMPLETION_INDEX › the only task in the image.
fn choose_task(args: &Args, tasks_dir: &std::path::Path) -> Result<String, String> {
    let ids = scenario::task_ids(tasks_dir);
    let from_table = || -> Result<Option<String>, String> {
        match std::env::var("KILN_TASK_TABLE") {
            Ok(table) if !table.is_empty() => {
                let index = std::env::var("JOB_COMPLETION_INDEX").map_err(|_| {
                    "KILN_TASK_TABLE is set but JOB_COMPLETION_INDEX is not".to_string()
                })?;
                task_from_table(&table, &index).map(Some)
            }
            _ => Ok(None),
        }
    };
    let wanted = match args
        .task
        .clone()
        .or_else(|| std::env::var("KILN_TASK_ID").ok().filter(|s| !s.is_empty()))
    {
        Some(id) => Some(id),
        None => from_table()?,
    };
    match wanted {
        Some(id) if ids.contains(&id) => Ok(id),
        Some(id) => Err(format!(
            "task {id:?} is not in {} (tasks: {})",
            tasks_dir.display(),
            list_or_none(&ids)
        )),
        None if ids.len() == 1 => Ok(ids[0].clone()),
        None => Err(format!(
            "choose a task with --task or KILN_TASK_ID; {} holds: {}",
            tasks_dir.display(),
            list_or_none(&ids)
        )),
    }
}

fn list_or_none(ids: &[String]) -> String {
    if ids.is_empty() {
        "none".into()
    } else {
        ids.join(", ")
    }
}

fn load_task(dir: &std::path::Path) -> Result<Task, String> {
    scenario::load(dir)
        .map_err(|errs| format!("invalid task {}:\n  {}", dir.display(), errs.join("\n  ")))
}

pub fn main(argv: &[String]) -> ExitCode {
    let args = match parse(argv) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    let layout = match &args.test_root {
        Some(root) => Layout::under(root),
        None => Layout::image(),
    };
    let tasks_dir = args.tasks_dir.clone().unwrap_or_else(|| layout.tasks_dir());
    match args.command.clone() {
        // `docker run IMAGE [--task T]` runs everything.
        None => run_phase("all", &args, layout, &tasks_dir),
        Some(Command::Help) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(Command::Version) => {
            println!(
                "kiln-runner {} (result schema {})",
                env!("CARGO_PKG_VERSION"),
                crate::result::SCHEMA_VERSION
            );
            ExitCode::SUCCESS
        }
        Some(Command::List) => {
            for id in scenario::task_ids(&tasks_dir) {
                println!("{id}");
            }
            ExitCode::SUCCESS
        }
        Some(Command::Validate) => {
            let ids = match &args.task {
                Some(id) => vec![id.clone()],
                None => scenario::task_ids(&tasks_dir),
            };
            if ids.is_empty() {
                eprintln!(
                    "kiln-runner: no tasks (directories with a scenario.toml) in {}",
                    tasks_dir.display()
                );
                return ExitCode::from(2);
            }
            let mut bad = 0;
            for id in &ids {
                match load_task(&tasks_dir.join(id)) {
                    Ok(t) => println!("ok {id} ({})", scenario::mode_name(t.mode())),
                    Err(e) => {
                        bad += 1;
                        eprintln!("{e}");
                    }
                }
            }
            if bad > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        Some(Command::Phase(phase)) => run_phase(&phase, &args, layout, &tasks_dir),
    }
}

fn run_phase(phase: &str, args: &Args, layout: Layout, tasks_dir: &std::path::Path) -> ExitCode {
    let id = match choose_task(args, tasks_dir) {
        Ok(id) => id,
        Err(e) => return usage_error(&e),
    };
    let task = match load_task(&tasks_dir.join(&id)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("kiln-runner: {e}");
            return ExitCode::from(2);
        }
    };
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| layout.default_output());
    crate::log::to_file(&output.join("runner.log"));
    crate::process::install_signal_handlers();

    let mut pass_env = args.pass_env.clone();
    if let Ok(list) = std::env::var("KILN_PASS_ENV") {
        pass_env.extend(
            list.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        );
    }
    let agent_id = args
        .agent_id
        .clone()
        .or_else(|| {
            std::env::var("KILN_AGENT_ID")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .or_else(|| {
            std::fs::read_to_string(layout.agent_name_file())
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "unknown".into());
    let output_owner = match std::env::var("KILN_OUTPUT_OWNER") {
        Ok(v) if !v.is_empty() => match v
            .split_once(':')
            .and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)))
        {
            Some(pair) => Some(pair),
            None => return usage_error(&format!("KILN_OUTPUT_OWNER={v:?} is not uid:gid")),
        },
        _ => None,
    };
    let agent_user = if args.no_drop_privileges {
        None
    } else {
        let uid = args.test_agent_uid.unwrap_or(AGENT_UID);
        // An image may already name uid 1000; its gid is used then, else gid = uid.
        let gid = lookup_user(&layout.passwd(), crate::layout::AGENT_USER)
            .filter(|(u, _, _)| *u == uid)
            .map(|(_, g, _)| g)
            .unwrap_or(uid);
        Some((uid, gid))
    };
    let settings = Settings {
        layout,
        output: output.clone(),
        prompt_variant: args.prompt_variant.clone(),
        agent_timeout: args.agent_timeout,
        model: args
            .model
            .clone()
            .or_else(|| std::env::var("KILN_MODEL").ok())
            .unwrap_or_default(),
        agent_id,
        pass_env,
        agent_user,
        output_owner,
    };

    let exit = |status: Status| {
        if status == Status::InfraError {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    };
    match phase {
        "all" => {
            let mut run = Run::new(settings, task, None);
            run.prepare();
            if run.state.prepare_ok {
                run.agent();
            }
            if args.keep_state && !run.state.has_infra_error() {
                run.offer_state();
            }
            let result = if run.state.has_infra_error() {
                run.infra_result()
            } else {
                run.grade()
            };
            exit(run.finish(result))
        }
        "prepare" => {
            let mut run = Run::new(settings, task, None);
            run.prepare();
            if run.state.prepare_ok {
                run.detach_services();
                ExitCode::SUCCESS
            } else {
                let result = run.infra_result();
                exit(run.finish(result))
            }
        }
        "agent" | "grade" | "regrade" => {
            let state = match State::load(&output) {
                Ok(s) if s.task_id == id => s,
                Ok(s) => {
                    return usage_error(&format!(
                        "{} belongs to task {:?}, not {id:?}",
                        State::path(&output).display(),
                        s.task_id
                    ))
                }
                Err(e) => return usage_error(&e),
            };
            let mut run = Run::new(settings, task, Some(state));
            if phase == "regrade" {
                let result = run.regrade();
                return exit(run.finish(result));
            }
            if phase == "agent" {
                run.agent();
                if run.state.has_infra_error() {
                    let result = run.infra_result();
                    return exit(run.finish(result));
                }
                run.detach_services();
                ExitCode::SUCCESS
            } else {
                let result = run.grade();
                exit(run.finish(result))
            }
        }
        "shell" => {
            let mut run = Run::new(settings, task, None);
            run.prepare();
            if !run.state.prepare_ok {
                // The reason is already on stderr (the runner's log).
                eprintln!("kiln-runner: prepare failed; no shell started");
                return ExitCode::from(1);
            }
            let argv: Vec<String> = if args.shell_command.is_empty() {
                DEFAULT_SHELL.iter().map(|s| s.to_string()).collect()
            } else {
                args.shell_command.clone()
            };
            let err = run.exec_shell(&argv);
            eprintln!("kiln-runner: {err}");
            ExitCode::from(1)
        }
        _ => unreachable!("parse() accepts only the five phases"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn task_table_entry_by_completion_index() {
        assert_eq!(task_from_table("a,b,a", "2").unwrap(), "a");
        assert_eq!(task_from_table("a, b", "1").unwrap(), "b");
        assert!(task_from_table("a,b", "2").unwrap_err().contains("no task"));
        assert!(task_from_table("a,b", "x")
            .unwrap_err()
            .contains("not an index"));
        assert!(task_from_table("a,,b", "1").is_err());
    }

    #[test]
    fn parses_phases_and_flags() {
        let a = parse(&argv(
            "all --task t1 --output=/out --pass-env A --pass-env B --agent-timeout 5",
        ))
        .unwrap();
        assert_eq!(a.command, Some(Command::Phase("all".into())));
        assert_eq!(a.task.as_deref(), Some("t1"));
        assert_eq!(a.output, Some(PathBuf::from("/out")));
        assert_eq!(a.pass_env, vec!["A", "B"]);
        assert_eq!(a.agent_timeout, Some(5));
        let a = parse(&argv("regrade --task t1 --tasks-dir /kiln/regrade/tasks")).unwrap();
        assert_eq!(a.command, Some(Command::Phase("regrade".into())));
        assert_eq!(a.tasks_dir, Some(PathBuf::from("/kiln/regrade/tasks")));
        assert!(parse(&argv("--keep-state --task t1")).unwrap().keep_state);
    }

    #[test]
    fn shell_takes_the_command_after_the_separator() {
        let a = parse(&argv("shell --task t1 -- /bin/ls -l --task")).unwrap();
        assert_eq!(a.command, Some(Command::Phase("shell".into())));
        assert_eq!(a.task.as_deref(), Some("t1"));
        assert_eq!(a.shell_command, vec!["/bin/ls", "-l", "--task"]);
        assert!(parse(&argv("shell")).unwrap().shell_command.is_empty());
    }

    #[test]
    fn rejects_bad_usage() {
        for (line, needle) in [
            ("all --bogus", "unknown option \"--bogus\""),
            ("fly", "unknown phase"),
            ("all grade", "unexpected argument"),
            ("all --task", "--task needs a value"),
            ("all --agent-timeout soon", "not a number"),
            (
                "all --unsafe-test-agent-uid 5",
                "only works with --unsafe-test-root",
            ),
            (
                "all --tasks-dir /x",
                "only applies to list, validate and regrade",
            ),
            ("grade --keep-state", "only applies to all"),
            ("all -- /bin/sh", "only applies to the shell phase"),
            ("shell --", "needs a command"),
        ] {
            let err = parse(&argv(line)).unwrap_err();
            assert!(err.contains(needle), "{line}: {err}");
        }
    }
}
