//! The fleet's bake files, parsed once and resolved many times through `kiln_bake`.
//! This is the only module that touches bake types.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::target::{Target, TargetSecret};

/// A target kiln adds, in memory only, to read variable values through bake's own
/// evaluation (the resolver has no variable accessor). Its name starts with `_`, so it is
/// never a fleet target, and it is resolved only when a variable is asked for.
const PROBE_FILE: &str = "<kiln: variables>.hcl";
const PROBE_TARGET: &str = "_kiln_variables";

pub struct Resolver {
    files: Vec<PathBuf>,
    bake: kiln_bake::BakeFiles,
    target_names: BTreeSet<String>,
    /// Target name → the files that define it (several: bake merges them silently).
    defined_in: BTreeMap<String, Vec<PathBuf>>,
}

impl Resolver {
    /// Reads and parses `files` (relative to `root`, in `-f` order), once.
    pub fn read(root: &Path, files: &[PathBuf]) -> anyhow::Result<Resolver> {
        Resolver::read_with(root, files, Vec::new())
    }

    /// Like [`Resolver::read`], with extra in-memory files (name, HCL text) after `files`.
    pub fn read_with(
        root: &Path,
        files: &[PathBuf],
        extra: Vec<(String, String)>,
    ) -> anyhow::Result<Resolver> {
        let mut sources = Vec::with_capacity(files.len() + 1 + extra.len());
        let mut target_names = BTreeSet::new();
        let mut defined_in: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        for f in files {
            let text = std::fs::read_to_string(root.join(f))
                .with_context(|| format!("reading {}", f.display()))?;
            for t in target_blocks(&text) {
                defined_in.entry(t.clone()).or_default().push(f.clone());
                target_names.insert(t);
            }
            sources.push((f.to_string_lossy().into_owned(), text));
        }
        let probe = format!(
            "target \"{PROBE_TARGET}\" {{\n  args = {{\n    {r} = {r}\n    {t} = {t}\n  }}\n}}\n",
            r = crate::naming::VAR_REGISTRY,
            t = crate::naming::VAR_TAG
        );
        sources.push((PROBE_FILE.to_string(), probe));
        for (name, text) in extra {
            target_names.extend(target_blocks(&text));
            sources.push((name, text));
        }
        // Paths in the files are relative to the repository root, and so stay relative here:
        // the commands kiln prints run from the root, as bake resolves them from its cwd.
        let bake =
            kiln_bake::BakeFiles::from_sources(sources).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Resolver {
            files: files.to_vec(),
            bake,
            target_names,
            defined_in,
        })
    }

    /// The bake files, in `-f` order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Names of the targets the files define (`target "<name>"` blocks).
    pub fn target_names(&self) -> &BTreeSet<String> {
        &self.target_names
    }

    /// The files that define target `name` (more than one: bake merges them).
    pub fn files_defining(&self, name: &str) -> &[PathBuf] {
        self.defined_in.get(name).map_or(&[], Vec::as_slice)
    }

    /// The value of the fleet-wide bake variable `name` (`REGISTRY` or `TAG`) given `vars`.
    pub fn variable(&self, name: &str, vars: &BTreeMap<String, String>) -> anyhow::Result<String> {
        let mut resolved = self.resolve(&[PROBE_TARGET.to_string()], vars)?;
        resolved
            .remove(PROBE_TARGET)
            .and_then(|mut t| t.args.remove(name))
            .ok_or_else(|| anyhow::anyhow!("bake variable {name} has no value"))
    }

    /// Resolves `targets` (and the targets they link) with `vars` as the environment bake
    /// sees, exactly as `NAME=value … docker buildx bake --print <targets>` would.
    pub fn resolve(
        &self,
        targets: &[String],
        vars: &BTreeMap<String, String>,
    ) -> anyhow::Result<BTreeMap<String, Target>> {
        let opts = kiln_bake::ResolveOptions {
            targets: targets.to_vec(),
            env: vars.clone(),
            ..Default::default()
        };
        let resolved = self
            .bake
            .resolve(&opts)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        resolved
            .targets
            .into_iter()
            .map(|(name, t)| Ok((name, convert(t)?)))
            .collect()
    }
}

fn convert(t: kiln_bake::Target) -> anyhow::Result<Target> {
    if t.dockerfile_inline.is_some() {
        anyhow::bail!(
            "target {:?} uses dockerfile-inline, which kiln does not build (podman and the Engine API need a file)",
            t.name
        );
    }
    let context = t.context().to_string();
    let dockerfile = t.dockerfile().to_string();
    let nonempty = |s: String| (!s.is_empty()).then_some(s);
    Ok(Target {
        context,
        dockerfile,
        contexts: t.contexts,
        args: t.args,
        labels: t.labels,
        tags: t.tags,
        stage: t.target,
        secrets: t
            .secrets
            .into_iter()
            .map(|s| TargetSecret {
                id: s.id,
                env: nonempty(s.env),
                src: nonempty(s.src),
            })
            .collect(),
        name: t.name,
    })
}

/// Names of `target "<name>"` blocks at the top level of an HCL file (a text scan: fleet
/// targets are written literally).
fn target_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with(char::is_whitespace) {
            continue;
        }
        if let Some(rest) = line.strip_prefix("target") {
            let rest = rest.trim_start();
            if let Some(rest) = rest.strip_prefix('"') {
                if let Some(end) = rest.find('"') {
                    out.push(rest[..end].to_string());
                }
            }
        }
    }
    out
}
