//! The repository's layout, read from the file system only: which bake files exist,
//! which core, agent and benchmark directories, and each benchmark's task directories.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The root bake file, relative to the repository root.
pub const ROOT_BAKE_FILE: &str = "docker-bake.hcl";
pub const BAKE_FILE: &str = "docker-bake.hcl";
pub const CORE_DIR: &str = "containers/core";
pub const AGENTS_DIR: &str = "containers/agents";
pub const BENCHMARKS_DIR: &str = "benchmarks";
pub const TASKS_DIR: &str = "tasks";

/// What the directories say, before any bake file is read.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Bake files in `-f` order, relative to the root: the root file, then every
    /// `docker-bake.hcl` under `containers/` and `benchmarks/` in byte order of their paths.
    pub bake_files: Vec<PathBuf>,
    /// Names of the directories under `containers/core/`, `containers/agents/`, `benchmarks/`
    /// (byte order).
    pub cores: Vec<String>,
    pub agents: Vec<String>,
    pub benchmarks: Vec<BenchmarkDir>,
}

#[derive(Debug, Clone)]
pub struct BenchmarkDir {
    pub name: String,
    /// Directory names under `benchmarks/<name>/tasks/`, in byte order.
    pub tasks: Vec<String>,
}

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

impl Layout {
    pub fn read(root: &Path) -> anyhow::Result<Layout> {
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
            benchmarks.push(BenchmarkDir { name, tasks });
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
            bake_files,
            cores,
            agents,
            benchmarks,
        })
    }
}

/// The bake file expected for an image directory, relative to the root.
pub fn bake_file_of(dir: &str, name: &str) -> PathBuf {
    Path::new(dir).join(name).join(BAKE_FILE)
}
