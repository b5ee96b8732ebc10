//! The fleet's bake files, parsed once and resolved many times through `kiln_bake`.
//! This is the only module that touches bake types.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::target::Target;

pub struct Resolver {
    files: Vec<PathBuf>,
}

impl Resolver {
    /// Parses `files` (relative to `root`, in `-f` order).
    pub fn read(_root: &Path, files: &[PathBuf]) -> anyhow::Result<Resolver> {
        Ok(Resolver {
            files: files.to_vec(),
        })
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Names of every target the files define.
    pub fn target_names(&self) -> BTreeSet<String> {
        BTreeSet::new()
    }

    /// The value of bake variable `name` given `vars`.
    pub fn variable(&self, name: &str, vars: &BTreeMap<String, String>) -> anyhow::Result<String> {
        vars.get(name)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("bake resolver not available yet: variable {name}"))
    }

    /// Resolves `targets` (and the targets they link) with `vars`.
    pub fn resolve(
        &self,
        _targets: &[String],
        _vars: &BTreeMap<String, String>,
    ) -> anyhow::Result<BTreeMap<String, Target>> {
        anyhow::bail!("bake resolver not available yet")
    }
}
