//! kiln's own layout (RULES.md), read from the file system only: `docker-bake.hcl` at
//! the root, `containers/core/<c>/`, `containers/agents/<a>/`, `benchmarks/<b>/` with one
//! directory per task under `tasks/`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::{BenchmarkDir, FleetLayout, Layout, TaskSource};
use crate::naming::{self, Kind};

/// The root bake file, relative to the repository root.
pub const ROOT_BAKE_FILE: &str = "docker-bake.hcl";
pub const BAKE_FILE: &str = "docker-bake.hcl";
pub const CORE_DIR: &str = "containers/core";
pub const AGENTS_DIR: &str = "containers/agents";
pub const BENCHMARKS_DIR: &str = "benchmarks";
pub const TASKS_DIR: &str = "tasks";

/// Sorted names of the subdirectories of `dir` (none when it does not exist). Hidden
/// entries (`.git`, `.gitkeep`) are skipped.
pub fn subdirs(dir: &Path) -> anyhow::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// kiln's layout.
pub struct Kiln;

impl FleetLayout for Kiln {
    fn name(&self) -> &'static str {
        "kiln"
    }
    fn marker(&self) -> &'static str {
        ROOT_BAKE_FILE
    }
    fn strict(&self) -> bool {
        true
    }
    fn target(&self, kind: Kind, name: &str) -> String {
        match kind {
            Kind::Core | Kind::Eval => naming::core_target(name),
            Kind::Agent => naming::agent_target(name),
            Kind::Benchmark | Kind::Task => naming::benchmark_target(name),
        }
    }
    fn bake_file(&self, kind: Kind, name: &str) -> PathBuf {
        let dir = match kind {
            Kind::Core | Kind::Eval => CORE_DIR,
            Kind::Agent => AGENTS_DIR,
            Kind::Benchmark | Kind::Task => BENCHMARKS_DIR,
        };
        bake_file_of(dir, name)
    }

    fn read(&self, root: &Path) -> anyhow::Result<Layout> {
        if !root.join(ROOT_BAKE_FILE).is_file() {
            anyhow::bail!(
                "{} has no {ROOT_BAKE_FILE}: not a kiln repository (use -C <dir> to point at one)",
                root.display()
            );
        }
        let cores = subdirs(&root.join(CORE_DIR))?;
        let agents = subdirs(&root.join(AGENTS_DIR))?;
        let mut benchmarks = Vec::new();
        for name in subdirs(&root.join(BENCHMARKS_DIR))? {
            let tasks = subdirs(&root.join(BENCHMARKS_DIR).join(&name).join(TASKS_DIR))?;
            benchmarks.push(BenchmarkDir {
                name,
                tasks,
                task_source: TaskSource::Dirs,
            });
        }
        // Bake files: one per image directory, found by walking (a file deeper than the
        // image directory would still be read by kiln, and lint reports it).
        let mut others = Vec::new();
        for top in ["containers", BENCHMARKS_DIR] {
            let dir = root.join(top);
            if !dir.is_dir() {
                continue;
            }
            for entry in walkdir::WalkDir::new(&dir)
                .sort_by_file_name()
                .into_iter()
                .filter_entry(|e| {
                    // Task directories hold task content, never bake files; skipping them keeps a
                    // 2,000-task benchmark cheap to load.
                    !(top == BENCHMARKS_DIR
                        && e.depth() == 2
                        && e.file_type().is_dir()
                        && e.file_name() == TASKS_DIR)
                })
            {
                let entry = entry.with_context(|| format!("walking {}", dir.display()))?;
                if entry.file_type().is_file() && entry.file_name() == BAKE_FILE {
                    let rel = entry
                        .path()
                        .strip_prefix(root)
                        .unwrap_or(entry.path())
                        .to_path_buf();
                    others.push(rel);
                }
            }
        }
        others.sort();
        let mut bake_files = vec![PathBuf::from(ROOT_BAKE_FILE)];
        bake_files.extend(others);
        Ok(Layout {
            kind: &Kiln,
            bake_files,
            cores,
            agents,
            benchmarks,
            others: Vec::new(),
            dataset: None,
        })
    }
}

/// The bake file expected for an image directory, relative to the root.
pub fn bake_file_of(dir: &str, name: &str) -> PathBuf {
    Path::new(dir).join(name).join(BAKE_FILE)
}
