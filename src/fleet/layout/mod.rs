//! Fleet layouts: where a repository keeps its bake files, image directories and task
//! lists. Each layout is one file implementing [`FleetLayout`] and one entry of
//! [`LAYOUTS`]; everything else (fleet, list, bake, lint) asks the layout it was given.
//!
//! - [`kiln`]: kiln's own layout (`docker-bake.hcl` at the root, RULES.md);
//! - [`eval_containers`]: the eval-containers layout (`containers/docker-bake.hcl`);
//! - [`harbor`]: a Harbor dataset (`task.toml` files at any depth, no bake files).
//!
//! The layout is detected from the files unless the CLI forced one (`--layout`), see [`force`].

pub mod eval_containers;
pub mod harbor;
pub mod kiln;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::naming::Kind;

use super::target::Target;
use super::Env;

pub use kiln::{
    bake_file_of, subdirs, AGENTS_DIR, BAKE_FILE, BENCHMARKS_DIR, CORE_DIR, ROOT_BAKE_FILE,
    TASKS_DIR,
};

/// One way of laying out a fleet.
pub trait FleetLayout: Sync {
    /// The name `--layout` takes.
    fn name(&self) -> &'static str;
    /// What detection looks for, for the error when nothing matches (`docker-bake.hcl`).
    fn marker(&self) -> &'static str;
    /// Whether the repository at `root` is laid out this way.
    fn matches(&self, root: &Path) -> bool {
        root.join(self.marker()).is_file()
    }
    /// Reads the directories (no bake file is parsed).
    fn read(&self, root: &Path) -> anyhow::Result<Layout>;
    /// The bake target of an image directory.
    fn target(&self, kind: Kind, name: &str) -> String;
    /// The bake file of an image directory, relative to the root.
    fn bake_file(&self, kind: Kind, name: &str) -> PathBuf;
    /// The labels an image of `target` gets: its bake labels, plus whatever the layout
    /// keeps elsewhere (eval-containers: the Dockerfile's `LABEL`s).
    fn image_labels(
        &self,
        root: &Path,
        target: &Target,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let _ = root;
        Ok(target.labels.clone())
    }
    /// The benchmark kind a value of `eval.benchmark.env` means.
    fn env(&self, label: &str) -> Option<Env> {
        Env::parse(label)
    }
    /// The `-f` list `kiln bake` uses when given none; `None`: buildx's own default
    /// files (`docker-bake.hcl` and friends in the working directory).
    fn default_bake_files(&self, root: &Path) -> anyhow::Result<Option<Vec<PathBuf>>> {
        let _ = root;
        Ok(None)
    }
    /// Whether a broken image directory stops the whole fleet (kiln's own layout, where
    /// `kiln lint` keeps every directory right) or only drops that directory (a fleet
    /// kiln did not write: the rest still lists and builds).
    fn strict(&self) -> bool;
}

/// Every layout kiln knows, in detection order.
pub static LAYOUTS: &[&dyn FleetLayout] = &[
    &kiln::Kiln,
    &eval_containers::EvalContainers,
    &harbor::Harbor,
];

/// The names `--layout` accepts.
pub fn names() -> Vec<&'static str> {
    LAYOUTS.iter().map(|l| l.name()).collect()
}

/// The layout named `name`.
pub fn by_name(name: &str) -> Option<&'static dyn FleetLayout> {
    LAYOUTS.iter().copied().find(|l| l.name() == name)
}

static FORCED: OnceLock<&'static dyn FleetLayout> = OnceLock::new();

/// Makes every later [`detect`] answer `layout` (the CLI's `--layout`, set once before
/// any command runs, so no option struct has to carry it).
pub fn force(layout: &'static dyn FleetLayout) {
    let _ = FORCED.set(layout);
}

/// The layout of the repository at `root`: the forced one, or the only one whose marker
/// is there. None or several: an error saying what was looked for.
pub fn detect(root: &Path) -> anyhow::Result<&'static dyn FleetLayout> {
    if let Some(forced) = FORCED.get() {
        return Ok(*forced);
    }
    let found: Vec<&'static dyn FleetLayout> = LAYOUTS
        .iter()
        .copied()
        .filter(|l| l.matches(root))
        .collect();
    let looked = || {
        LAYOUTS
            .iter()
            .map(|l| format!("{} ({})", l.marker(), l.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match found.as_slice() {
        [one] => Ok(*one),
        [] => anyhow::bail!(
            "{} is not a fleet kiln can read: looked for {} and found none (use -C <dir> to point at one, --layout to force a layout)",
            root.display(),
            looked()
        ),
        _ => anyhow::bail!(
            "{} matches several layouts ({}): choose one with --layout",
            root.display(),
            found.iter().map(|l| l.name()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Detects the layout of `root` and reads it.
pub fn read(root: &Path) -> anyhow::Result<Layout> {
    detect(root)?.read(root)
}

/// What the directories say, before any bake file is read.
#[derive(Clone)]
pub struct Layout {
    pub kind: &'static dyn FleetLayout,
    /// Bake files in `-f` order, relative to the root.
    pub bake_files: Vec<PathBuf>,
    /// Names of the core, agent and benchmark image directories (byte order).
    pub cores: Vec<String>,
    pub agents: Vec<String>,
    pub benchmarks: Vec<BenchmarkDir>,
    /// Other image directories the fleet builds but kiln does not run (eval-containers'
    /// models and gateways): kind name and directory name.
    pub others: Vec<(&'static str, String)>,
    /// The tasks of a Harbor dataset (read once, with the layout).
    pub dataset: Option<std::sync::Arc<harbor::Dataset>>,
}

impl std::fmt::Debug for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layout")
            .field("kind", &self.kind.name())
            .field("bake_files", &self.bake_files)
            .field("cores", &self.cores)
            .field("agents", &self.agents)
            .field("benchmarks", &self.benchmarks)
            .field("others", &self.others)
            .field("dataset", &self.dataset.as_ref().map(|d| d.tasks.len()))
            .finish()
    }
}

impl Layout {
    pub fn target(&self, kind: Kind, name: &str) -> String {
        self.kind.target(kind, name)
    }
    pub fn bake_file(&self, kind: Kind, name: &str) -> PathBuf {
        self.kind.bake_file(kind, name)
    }
}

#[derive(Debug, Clone)]
pub struct BenchmarkDir {
    pub name: String,
    /// Task ids in byte order, when the layout lists them (kiln: the directories under
    /// `tasks/`; eval-containers: `tasks.txt`).
    pub tasks: Vec<String>,
    /// Where the ids come from.
    pub task_source: TaskSource,
}

/// Where a benchmark's task ids come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskSource {
    /// One directory per task (kiln).
    Dirs,
    /// A file listing one id a line (eval-containers' `tasks.txt`), relative to the root.
    File(PathBuf),
    /// Only the label `eval.benchmark.tasks` (a number): a shared-env benchmark's tasks
    /// are then `0` … `n-1`; a per-task benchmark's ids are not known before its build.
    CountLabel,
    /// Harbor: the folders holding a `task.toml`.
    Harbor,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_matches_names_every_marker() {
        let dir = tempfile::tempdir().unwrap();
        let err = detect(dir.path()).err().unwrap().to_string();
        for l in LAYOUTS {
            assert!(err.contains(l.marker()), "{err}");
            assert!(err.contains(l.name()), "{err}");
        }
    }

    #[test]
    fn each_marker_selects_its_layout_and_both_are_ambiguous() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("containers")).unwrap();
        std::fs::write(dir.path().join("containers/docker-bake.hcl"), "").unwrap();
        assert_eq!(detect(dir.path()).unwrap().name(), "eval-containers");
        std::fs::write(dir.path().join("docker-bake.hcl"), "").unwrap();
        let err = detect(dir.path()).err().unwrap().to_string();
        assert!(err.contains("--layout"), "{err}");
        std::fs::remove_file(dir.path().join("containers/docker-bake.hcl")).unwrap();
        assert_eq!(detect(dir.path()).unwrap().name(), "kiln");
    }

    #[test]
    fn names_are_unique() {
        let mut n = names();
        n.sort();
        n.dedup();
        assert_eq!(n.len(), LAYOUTS.len());
        assert!(by_name("eval-containers").is_some() && by_name("harbor").is_some());
    }
}
