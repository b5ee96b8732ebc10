//! A resolved bake target as the fleet and the plan use it: the fields of
//! `docker buildx bake --print` kiln needs, with no HCL or bake types.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    /// The build context, relative to the repository root (as bake prints it).
    pub context: String,
    /// The Dockerfile, relative to the context unless absolute.
    pub dockerfile: String,
    /// Named contexts: key (an image reference) → value (`target:<name>`, a path, `docker-image://…`).
    pub contexts: BTreeMap<String, String>,
    pub args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub tags: Vec<String>,
    /// The Dockerfile stage (`target` attribute).
    pub stage: Option<String>,
    pub secrets: Vec<TargetSecret>,
}

/// A bake `secret` entry: id and where its value comes from (never the value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetSecret {
    pub id: String,
    pub env: Option<String>,
    pub src: Option<String>,
}

impl Target {
    /// The Dockerfile's path relative to the repository root (or absolute).
    pub fn dockerfile_path(&self) -> std::path::PathBuf {
        let df = std::path::Path::new(&self.dockerfile);
        if df.is_absolute() {
            df.to_path_buf()
        } else {
            std::path::Path::new(&self.context).join(df)
        }
    }

    /// The targets this one links through `target:` named contexts, in key order.
    pub fn linked_targets(&self) -> impl Iterator<Item = (&str, &str)> {
        self.contexts
            .iter()
            .filter_map(|(k, v)| v.strip_prefix("target:").map(|t| (k.as_str(), t)))
    }
}
