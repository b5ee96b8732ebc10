//! A Harbor dataset: every folder holding a `task.toml`, at any depth, is one task. A task
//! that cannot be read is left out with a message naming its file; the rest still lists
//! and builds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::config::{EnvironmentMode, Os, Step, TaskConfig};
use super::problem::{Problem, ProblemKind};

pub const TASK_FILE: &str = "task.toml";
pub const INSTRUCTION: &str = "instruction.md";
pub const ENVIRONMENT_DIR: &str = "environment";
pub const DOCKERFILE: &str = "Dockerfile";
pub const COMPOSE_FILES: &[&str] = &["docker-compose.yaml", "docker-compose.yml"];
pub const TESTS_DIR: &str = "tests";
pub const SOLUTION_DIR: &str = "solution";
pub const STEPS_DIR: &str = "steps";
pub const TEST_SCRIPT: &str = "test.sh";
pub const SOLVE_SCRIPT: &str = "solve.sh";

/// Folders never searched for tasks.
const SKIPPED: &[&str] = &["node_modules", "target", "__pycache__"];

#[derive(Debug)]
pub struct Dataset {
    pub root: PathBuf,
    /// The benchmark name kiln gives the dataset: its folder's name.
    pub name: String,
    /// In id order.
    pub tasks: Vec<Task>,
    /// Tasks left out, one each naming the file.
    pub problems: Vec<Problem>,
}

#[derive(Debug)]
pub struct Task {
    /// The folder relative to the dataset root, `/` written `.` (`verifier-mode-matrix.shared-default`).
    pub id: String,
    /// The task folder, relative to the dataset root (`.` when the root is the task).
    pub dir: PathBuf,
    pub config: TaskConfig,
    /// Step names in order (empty: a single-step task).
    pub steps: Vec<String>,
}

impl Task {
    /// `[task].name`, else the id.
    pub fn name(&self) -> &str {
        self.config.task.name.as_deref().unwrap_or(&self.id)
    }

    /// Why this task cannot run on this machine, if it cannot (it still lists, lints and,
    /// where it has a Dockerfile, builds).
    pub fn cannot_run(&self, root: &Path) -> Option<String> {
        let c = &self.config;
        let env = &c.environment;
        let why = if env.os == Some(Os::Windows) {
            "environment.os = \"windows\": Windows containers cannot run here".to_string()
        } else if !self.has_environment(root) {
            "no environment/Dockerfile, docker-compose.yaml or environment.docker_image: its environment comes from a cloud sandbox provider".to_string()
        } else if env.gpus.unwrap_or(0) > 0 {
            format!("environment.gpus = {}: no GPU here", env.gpus.unwrap_or(0))
        } else if env.tpu.is_some() {
            "environment.tpu: no TPU here".to_string()
        } else if self.compose_file(root).is_some() {
            "environment/docker-compose.yaml: compose environments (sidecars) are not run by kiln yet".to_string()
        } else if !env.mcp_servers.is_empty() {
            "environment.mcp_servers: kiln does not start MCP servers for an agent yet".to_string()
        } else if env.skills_dir.is_some() {
            "environment.skills_dir: kiln does not install agent skills yet".to_string()
        } else if !c.verifier.collect.is_empty() {
            "verifier.collect: sidecar collection needs a compose environment".to_string()
        } else {
            self.network_field_kiln_cannot_enforce()?
        };
        Some(why)
    }

    /// The first network setting kiln cannot enforce: a phase that differs from its
    /// baseline (a running container's network cannot be switched; Harbor refuses these
    /// too without dynamic policy).
    fn network_field_kiln_cannot_enforce(&self) -> Option<String> {
        let c = &self.config;
        let base = c.environment.network();
        let verifier_base = match &c.verifier.environment {
            Some(v) => v.network(),
            None => base,
        };
        let phases = [
            ("agent", c.agent.network_mode, base),
            ("verifier", c.verifier.network_mode, verifier_base),
        ];
        let steps = c.steps.iter().flat_map(|s| {
            [
                ("steps.agent", s.agent.network_mode, base),
                ("steps.verifier", s.verifier.network_mode, verifier_base),
            ]
        });
        for (phase, mode, baseline) in phases.into_iter().chain(steps) {
            if let Some(m) = mode {
                if m != baseline {
                    return Some(format!(
                        "{phase}.network_mode differs from its baseline: switching a running container's network is not supported (Harbor refuses it too without dynamic policy)"
                    ));
                }
            }
        }
        None
    }

    pub fn compose_file(&self, root: &Path) -> Option<PathBuf> {
        COMPOSE_FILES
            .iter()
            .map(|f| self.dir.join(ENVIRONMENT_DIR).join(f))
            .find(|p| root.join(p).is_file())
    }

    /// Whether kiln can make the task's environment: a Dockerfile, a compose file or a
    /// prebuilt image.
    pub fn has_environment(&self, root: &Path) -> bool {
        self.config.environment.docker_image.is_some()
            || root
                .join(&self.dir)
                .join(ENVIRONMENT_DIR)
                .join(DOCKERFILE)
                .is_file()
            || self.compose_file(root).is_some()
    }

    /// Whether the task's verifier runs in a container of its own.
    pub fn separate_verifier(&self) -> bool {
        let v = &self.config.verifier;
        v.environment_mode == Some(EnvironmentMode::Separate) || v.environment.is_some()
    }

    /// Whether the verifier of `step` (or of a single-step task) runs apart: the step's
    /// own setting, else the task's.
    pub fn separate_for(&self, step: Option<&Step>) -> bool {
        let Some(s) = step else {
            return self.separate_verifier();
        };
        match s.verifier.environment_mode {
            Some(EnvironmentMode::Separate) => true,
            Some(EnvironmentMode::Shared) => false,
            None => s.verifier.environment.is_some() || self.separate_verifier(),
        }
    }

    /// The folder a separate verifier's image is built from (relative to the dataset
    /// root): the step's own `tests/` when it has a test script, else the task's.
    pub fn verifier_dir(&self, root: &Path, step: Option<&Step>) -> PathBuf {
        if let Some(s) = step {
            let own = self.dir.join(STEPS_DIR).join(&s.name).join(TESTS_DIR);
            if root.join(&own).join(TEST_SCRIPT).is_file() {
                return own;
            }
        }
        self.dir.join(TESTS_DIR)
    }

    /// The first `solve.sh` oracle would need that is missing (per step in a
    /// multi-step task), relative to the dataset root.
    pub fn missing_solution(&self, root: &Path) -> Option<PathBuf> {
        self.phases().into_iter().find_map(|step| {
            let dir = match step {
                Some(s) => self.dir.join(STEPS_DIR).join(&s.name),
                None => self.dir.clone(),
            };
            let solve = dir.join(SOLUTION_DIR).join(SOLVE_SCRIPT);
            (!root.join(&solve).is_file()).then_some(solve)
        })
    }

    /// The hosts the task's scripts reach at run time: its tests (`tests/` and each
    /// step's) and its solution, each `*.sh` read as a script.
    pub fn run_hosts(&self, root: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
        let scan = |dirs: Vec<PathBuf>| {
            let mut hosts = BTreeSet::new();
            for dir in dirs {
                let Ok(entries) = std::fs::read_dir(root.join(&dir)) else {
                    continue;
                };
                for e in entries.flatten() {
                    let p = e.path();
                    if p.extension().is_some_and(|x| x == "sh") {
                        if let Ok(text) = std::fs::read_to_string(&p) {
                            hosts.extend(crate::fleet::hosts::script_hosts(&text));
                        }
                    }
                }
            }
            hosts
        };
        let in_steps = |sub: &str| {
            let mut dirs = vec![self.dir.join(sub)];
            dirs.extend(
                self.steps
                    .iter()
                    .map(|s| self.dir.join(STEPS_DIR).join(s).join(sub)),
            );
            dirs
        };
        (scan(in_steps(TESTS_DIR)), scan(in_steps(SOLUTION_DIR)))
    }

    /// The steps as a list of optional steps (one `None` for a single-step task).
    pub fn phases(&self) -> Vec<Option<&Step>> {
        if self.config.steps.is_empty() {
            vec![None]
        } else {
            self.config.steps.iter().map(Some).collect()
        }
    }
}

impl Dataset {
    /// Reads every task under `root` (not `.`-folders, `node_modules`, `target`).
    pub fn read(root: &Path) -> anyhow::Result<Dataset> {
        let name = dataset_name(root)?;
        let mut dirs = Vec::new();
        find_tasks(root, Path::new(""), &mut dirs)?;
        dirs.sort();
        let mut tasks = Vec::with_capacity(dirs.len());
        let mut problems = Vec::new();
        let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
        for dir in dirs {
            match read_task(root, &dir) {
                Ok(task) => {
                    let file = dir.join(TASK_FILE);
                    if let Some(first) = by_name.get(task.name()) {
                        problems.push(Problem::new(
                            ProblemKind::Naming,
                            &file,
                            format!(
                                "left out: task name {:?} is already the name of {}",
                                task.name(),
                                first.display()
                            ),
                        ));
                        continue;
                    }
                    by_name.insert(task.name().to_string(), file);
                    tasks.push(task);
                }
                Err(p) => problems.push(p),
            }
        }
        tasks.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Dataset {
            root: root.to_path_buf(),
            name,
            tasks,
            problems,
        })
    }

    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks
            .binary_search_by(|t| t.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.tasks[i])
    }
}

/// Whether `root` holds a task at any depth (what detection looks for).
pub fn holds_tasks(root: &Path) -> bool {
    let mut found = Vec::new();
    find_tasks_until_one(root, Path::new(""), &mut found);
    !found.is_empty()
}

fn find_tasks_until_one(root: &Path, rel: &Path, found: &mut Vec<PathBuf>) {
    if !found.is_empty() {
        return;
    }
    let dir = root.join(rel);
    if dir.join(TASK_FILE).is_file() {
        found.push(rel.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        if searched(&e) {
            find_tasks_until_one(root, &rel.join(e.file_name()), found);
        }
    }
}

fn searched(e: &std::fs::DirEntry) -> bool {
    let name = e.file_name();
    let name = name.to_string_lossy();
    e.file_type().is_ok_and(|t| t.is_dir())
        && !name.starts_with('.')
        && !SKIPPED.contains(&name.as_ref())
}

fn find_tasks(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let dir = root.join(rel);
    if dir.join(TASK_FILE).is_file() {
        out.push(rel.to_path_buf());
        return Ok(()); // a task's own folders (tests/, steps/) hold no tasks
    }
    let entries = std::fs::read_dir(&dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    for e in entries.flatten() {
        if searched(&e) {
            find_tasks(root, &rel.join(e.file_name()), out)?;
        }
    }
    Ok(())
}

/// The dataset's folder name (of the absolute path, so `-C .` names it too).
fn dataset_name(root: &Path) -> anyhow::Result<String> {
    let abs =
        std::fs::canonicalize(root).map_err(|e| anyhow::anyhow!("{}: {e}", root.display()))?;
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_else(|| "dataset".into());
    crate::naming::validate_fleet_name("dataset", &name).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e} (the dataset's folder name is its benchmark name)",
            abs.display()
        )
    })?;
    Ok(name)
}

/// The task id of folder `rel`: its path with `/` written `.`, or the folder's own name
/// when the dataset root is the task.
fn task_id(root: &Path, rel: &Path) -> String {
    if rel.as_os_str().is_empty() {
        return dataset_name(root).unwrap_or_else(|_| "task".into());
    }
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(".")
}

fn read_task(root: &Path, rel: &Path) -> Result<Task, Problem> {
    let file = rel.join(TASK_FILE);
    let id = task_id(root, rel);
    let naming = |message: String| Problem::new(ProblemKind::Naming, &file, message);
    crate::naming::validate_task_id(&id).map_err(|e| naming(format!("left out: {e}")))?;
    if !is_image_component(&crate::naming::task_component(&id)) {
        return Err(naming(format!(
            "left out: the folder name {id:?} cannot be part of an image name (letters, digits and '.', '_', '-' between them)"
        )));
    }
    let text = std::fs::read_to_string(root.join(&file))
        .map_err(|e| Problem::new(ProblemKind::Config, &file, e.to_string()))?;
    let config = TaskConfig::parse(&file, &text)?;
    let steps: Vec<String> = config.steps.iter().map(|s| s.name.clone()).collect();
    let task = Task {
        id,
        dir: rel.to_path_buf(),
        config,
        steps,
    };
    check_files(root, &task)?;
    Ok(task)
}

/// The files a task must have: an environment, an instruction and a test script (per
/// step in a multi-step task, where a shared top-level test also counts).
fn check_files(root: &Path, task: &Task) -> Result<(), Problem> {
    let d = root.join(&task.dir);
    let file = task.dir.join(TASK_FILE);
    let missing = |message: String| Problem::new(ProblemKind::Files, &file, message);
    let windows = task.config.environment.os == Some(Os::Windows);
    let script = |dir: &Path, base: &str| {
        let ext = if windows { "bat" } else { "sh" };
        dir.join(format!("{base}.{ext}"))
    };
    let shared_test = script(&d.join(TESTS_DIR), "test").is_file()
        || (task.separate_verifier() && d.join(TESTS_DIR).join(DOCKERFILE).is_file());
    if task.steps.is_empty() {
        if !d.join(INSTRUCTION).is_file() {
            return Err(missing(format!("left out: no {INSTRUCTION}")));
        }
        if !shared_test {
            return Err(missing(format!(
                "left out: no {}",
                script(&task.dir.join(TESTS_DIR), "test").display()
            )));
        }
    }
    for step in &task.steps {
        let s = d.join(STEPS_DIR).join(step);
        let rel = task.dir.join(STEPS_DIR).join(step);
        if !s.join(INSTRUCTION).is_file() {
            return Err(missing(format!(
                "left out: step {step:?} has no {}",
                rel.join(INSTRUCTION).display()
            )));
        }
        if !shared_test && !script(&s.join(TESTS_DIR), "test").is_file() {
            return Err(missing(format!(
                "left out: step {step:?} has no {} and the task no shared tests/",
                script(&rel.join(TESTS_DIR), "test").display()
            )));
        }
    }
    Ok(())
}

/// A path component of an image name: `[a-z0-9]+([._-][a-z0-9]+)*` with runs of `_` (as
/// the distribution spec allows `__`).
fn is_image_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && alnum(b[0])
        && alnum(b[b.len() - 1])
        && b.windows(2)
            .all(|w| alnum(w[0]) || alnum(w[1]) || w == b"__")
        && b.iter()
            .all(|&c| alnum(c) || matches!(c, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn task(root: &Path, dir: &str, name: &str) {
        write(
            root,
            &format!("{dir}/task.toml"),
            &format!("[task]\nname = \"{name}\"\n"),
        );
        write(root, &format!("{dir}/instruction.md"), "do it");
        write(root, &format!("{dir}/environment/Dockerfile"), "FROM x");
        write(root, &format!("{dir}/tests/test.sh"), "true");
    }

    #[test]
    fn bad_tasks_are_left_out_naming_their_file_and_the_rest_reads() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("set");
        task(&root, "a", "o/a");
        task(&root, "nested/b", "o/b");
        task(&root, "dup", "o/a");
        task(&root, "no-tests", "o/c");
        std::fs::remove_file(root.join("no-tests/tests/test.sh")).unwrap();
        task(&root, "not-toml", "o/d");
        write(&root, "not-toml/task.toml", "[task\n");
        task(&root, "schema", "o/e");
        write(&root, "schema/task.toml", "schema_version = \"2.0\"\n");
        task(&root, "Bad Name", "o/f");
        let ds = Dataset::read(&root).unwrap();
        let ids: Vec<&str> = ds.tasks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["a", "nested.b"]);
        assert_eq!(ds.name, "set");
        let all = ds
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        for f in [
            "dup/task.toml",
            "no-tests/task.toml",
            "not-toml/task.toml:1",
            "schema/task.toml",
            "Bad Name/task.toml",
        ] {
            assert!(all.contains(f), "{f} missing from:\n{all}");
        }
        assert!(all.contains("a/task.toml"), "{all}");
        // Each by kind, for `kiln lint`'s rule ids.
        let kind = |f: &str| {
            ds.problems
                .iter()
                .find(|p| p.file == Path::new(f))
                .map(|p| p.kind)
        };
        assert_eq!(kind("dup/task.toml"), Some(ProblemKind::Naming));
        assert_eq!(kind("no-tests/task.toml"), Some(ProblemKind::Files));
        assert_eq!(kind("not-toml/task.toml"), Some(ProblemKind::Config));
        assert_eq!(kind("schema/task.toml"), Some(ProblemKind::Config));
        assert_eq!(kind("Bad Name/task.toml"), Some(ProblemKind::Naming));
    }

    #[test]
    fn image_components() {
        assert!(is_image_component("a.b-c__d"));
        assert!(
            !is_image_component("a..b") && !is_image_component("-a") && !is_image_component("a b")
        );
    }
}
