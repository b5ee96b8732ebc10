//! The release manifest: what a release published, verified, and why it was allowed
//! to (docs/release-manifest.md, docs/release-manifest.schema.json). Written
//! atomically after every verified image, so whatever stops a release, the file
//! lists only images that are in the registry as described.

use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    /// `HOST[:PORT][/PREFIX]` as given to `--registry`.
    pub registry: String,
    /// The `version` label of every image (`git describe --tags --always`): an immutable tag.
    pub version: String,
    /// Every tag pushed: the version first, then `--tag`s.
    pub tags: Vec<String>,
    pub revision: String,
    pub source: String,
    /// True when the work tree had changes and `--allow-dirty` let the release go on.
    pub dirty: bool,
    /// True when every selected image was published and no benchmark was blocked.
    pub complete: bool,
    pub benchmarks: Vec<BenchmarkEntry>,
    pub images: Vec<ImageEntry>,
}

/// A released benchmark (one with `eval.benchmark.released="true"`) and its gates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchmarkEntry {
    pub name: String,
    /// `shared-env` or `per-task`.
    pub env: String,
    pub tasks: usize,
    /// `published` or `blocked`.
    pub status: String,
    /// The failed gate and why, when blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Validation>,
    /// A Harbor dataset's tasks that were not published, with why (it cannot run or
    /// build here, or a gate failed for it); the other tasks are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_published: Vec<NotPublished>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotPublished {
    pub task: String,
    pub reason: String,
}

/// A benchmark's validation (kiln validate's record for the images released).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    pub valid: bool,
    pub tasks: Vec<TaskVerdict>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskVerdict {
    pub task: String,
    pub oracle_score: Option<f64>,
    pub null_score: Option<f64>,
    pub valid: bool,
}

/// One published reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageEntry {
    /// `host[:port]/repository:tag`.
    pub reference: String,
    /// The manifest digest the tag resolves to in the registry.
    pub digest: String,
    pub config_digest: String,
    /// Config and layers, in bytes.
    pub size: u64,
    /// `core`, `benchmark`, `task`, `agent` or `eval` (the `eval.type` label).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benchmark: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// `kiln.inputs.digest`.
    pub inputs_digest: String,
    pub revision: String,
    pub version: String,
    /// `pushed` (uploaded by this run) or `already-published` (found in the registry).
    pub status: String,
    /// The validation summary of the image's benchmark (benchmark, task and eval images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationSummary {
    pub valid: bool,
    pub tasks: usize,
}

impl Manifest {
    /// Writes the manifest to `path` atomically (a temporary file beside it, renamed).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut sorted = self.clone();
        sorted.images.sort_by(|a, b| a.reference.cmp(&b.reference));
        let tmp = tempfile::NamedTempFile::new_in(&dir)
            .with_context(|| format!("writing in {}", dir.display()))?;
        serde_json::to_writer_pretty(&tmp, &sorted)?;
        std::io::Write::write_all(&mut &tmp, b"\n")?;
        tmp.persist(path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}
