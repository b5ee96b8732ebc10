//! The rules over a task's shell scripts: a verifier (tests) that installs packages or
//! fetches from the internet when it runs, and any script or `RUN` that installs a
//! Python package without a version.

use super::python_deps::{self, Kind};
use super::shell::{self, Command};
use crate::lint::rules;

/// One finding in a script: the rule, the line (1-based) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub rule: &'static str,
    pub line: usize,
    pub message: String,
}

/// What a script is, for the rules that apply to it.
#[derive(Clone, Copy)]
pub struct Script<'a> {
    /// The tests: run-time installs and downloads count.
    pub verifier: bool,
    /// The text of a script a command runs (`uv run /tests/judge.py`), to read its
    /// inline dependencies; `None` when it is not one of the task's files.
    pub read: &'a dyn Fn(&str) -> Option<String>,
}

/// The findings in `text`, a shell script.
pub fn check(text: &str, script: Script) -> Vec<Hit> {
    let mut hits = Vec::new();
    for line in shell::lines(text) {
        check_line(&line.text, line.number, script, &mut hits);
    }
    hits.dedup();
    hits
}

/// The findings in one logical line (a Dockerfile `RUN` is one).
pub fn check_line(text: &str, line: usize, script: Script, hits: &mut Vec<Hit>) {
    let cmds = shell::commands(text);
    let mut hit = |rule: &'static str, message: String| {
        if !hits.iter().any(|h| h.rule == rule && h.line == line) {
            hits.push(Hit {
                rule,
                line,
                message,
            });
        }
    };
    for (i, cmd) in cmds.iter().enumerate() {
        let python = python_deps::install(cmd);
        if let Some(install) = &python {
            let loose: Vec<&str> = install
                .packages
                .iter()
                .filter(|p| !python_deps::is_pinned(p))
                .map(String::as_str)
                .collect();
            if !install.constrained && !loose.is_empty() {
                hit(
                    rules::UNPINNED_PYTHON_DEPENDENCY,
                    format!(
                        "`{}` installs {} without an exact version: pin each (==) or install from a constraints file",
                        short(cmd),
                        loose.join(", ")
                    ),
                );
            }
        }
        if !script.verifier {
            continue;
        }
        let installs = match &python {
            Some(i) if i.offline => false,
            Some(i) if i.kind == Kind::UvRun => {
                !i.packages.is_empty()
                    || i.runs_script
                        .as_deref()
                        .and_then(script.read)
                        .is_some_and(|t| !python_deps::script_dependencies(&t).is_empty())
            }
            Some(_) => true,
            None => installs_system_packages(cmd),
        };
        let next = cmds.get(i + 1).filter(|_| cmd.piped);
        let piped_to_shell = next.is_some_and(|n| {
            matches!(
                n.program(),
                "sh" | "bash" | "dash" | "zsh" | "python" | "python3" | "perl"
            )
        });
        let fetched = fetched_hosts(cmd);
        if installs || (piped_to_shell && !fetched.is_empty()) {
            hit(
                rules::VERIFIER_RUNTIME_INSTALL,
                format!(
                    "the tests install software when they run (`{}`): bake it into the image, so grading needs no network and gets the same versions every time",
                    short(cmd)
                ),
            );
        }
        if !fetched.is_empty() {
            hit(
                rules::VERIFIER_NETWORK_DOWNLOAD,
                format!(
                    "the tests fetch from {} when they run (`{}`): bake what they need into the image (grading then needs the internet and gets whatever is served that day)",
                    fetched.join(", "),
                    short(cmd)
                ),
            );
        }
    }
}

/// System package managers and language installers other than Python's.
fn installs_system_packages(cmd: &Command) -> bool {
    let args: Vec<&str> = cmd
        .args()
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let sub = args.first().copied().unwrap_or("");
    match cmd.program() {
        "apt-get" | "apt" | "aptitude" => sub == "install",
        "apk" => sub == "add",
        "yum" | "dnf" | "microdnf" | "tdnf" => sub == "install",
        "zypper" => sub == "install" || sub == "in",
        "pacman" => cmd.args().iter().any(|a| a.starts_with("-S")),
        "conda" | "mamba" | "micromamba" => sub == "install" || sub == "create",
        "npm" | "pnpm" | "yarn" => matches!(sub, "install" | "i" | "ci" | "add"),
        "npx" | "bunx" => true,
        "gem" | "cargo" => sub == "install",
        "go" => sub == "install" || sub == "get",
        "cpanm" => true,
        _ => false,
    }
}

/// The external hosts a download command (`curl`, `wget`, `git clone`/`fetch`/`pull`)
/// reaches; empty for anything else, a loopback address or a host chosen at run time.
fn fetched_hosts(cmd: &Command) -> Vec<String> {
    let downloads = match cmd.program() {
        "curl" | "wget" | "aria2c" => true,
        "git" => cmd.args().iter().any(|a| {
            matches!(
                a.as_str(),
                "clone" | "fetch" | "pull" | "ls-remote" | "submodule"
            )
        }),
        _ => false,
    };
    if !downloads {
        return Vec::new();
    }
    let mut hosts: Vec<String> = cmd
        .args()
        .iter()
        .flat_map(|a| crate::fleet::hosts::urls(a))
        .filter(|h| is_external(h))
        .collect();
    hosts.dedup();
    hosts
}

fn is_external(host: &str) -> bool {
    !(host.contains('$')
        || host.starts_with("127.")
        || host == "0.0.0.0"
        || host.ends_with(".localhost")
        || host == "host.docker.internal")
}

/// The command as a reader recognizes it: its first words.
fn short(cmd: &Command) -> String {
    let words: Vec<&str> = cmd.words.iter().take(4).map(String::as_str).collect();
    let mut s = words.join(" ");
    if cmd.words.len() > 4 {
        s.push_str(" …");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_of(text: &str, verifier: bool) -> Vec<(&'static str, usize)> {
        let read = |p: &str| {
            (p == "/tests/judge.py")
                .then(|| "# /// script\n# dependencies = [\"x\"]\n# ///\n".to_string())
        };
        check(
            text,
            Script {
                verifier,
                read: &read,
            },
        )
        .into_iter()
        .map(|h| (h.rule, h.line))
        .collect()
    }

    #[test]
    fn a_verifier_that_installs_and_downloads() {
        let script = "#!/bin/bash\napt-get update\napt-get install -y curl\ncurl -LsSf https://astral.sh/uv/0.9.7/install.sh | sh\nuvx --with pytest==8.4.1 pytest /tests\ncurl -s http://localhost:8000/ok\ngit clone https://github.com/o/r /tmp/r\nuv run /tests/judge.py\nuv run /tests/plain.py\npip install --no-index --find-links /tests/wheels x==1\n";
        assert_eq!(
            rules_of(script, true),
            [
                (rules::VERIFIER_RUNTIME_INSTALL, 3),
                (rules::VERIFIER_RUNTIME_INSTALL, 4),
                (rules::VERIFIER_NETWORK_DOWNLOAD, 4),
                (rules::VERIFIER_RUNTIME_INSTALL, 5),
                (rules::VERIFIER_NETWORK_DOWNLOAD, 7),
                (rules::VERIFIER_RUNTIME_INSTALL, 8),
            ]
        );
    }

    #[test]
    fn unpinned_python_in_any_script_and_nothing_else_outside_tests() {
        let script = "pip install requests numpy==2.0.2\napt-get install -y curl\npip install -c c.txt flask\n";
        assert_eq!(
            rules_of(script, false),
            [(rules::UNPINNED_PYTHON_DEPENDENCY, 1)]
        );
        let hits = check(
            script,
            Script {
                verifier: false,
                read: &|_| None,
            },
        );
        assert!(
            hits[0].message.contains("installs requests without"),
            "{}",
            hits[0].message
        );
    }
}
