//! `BuildSpec`: one image to build, in the form every backend consumes.
//! It is the hand-off between the plan (which knows the fleet) and the
//! backends (which know only how to build one image).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// An image's labels, sorted by key. Keys and values are shared, not copied: an eval image
/// carries its benchmark's and its agent's labels, and a large fleet has tens of thousands
/// of evals. A sorted vector, not a `BTreeMap`: a third of the memory for the twenty-odd
/// labels of an image, and a large plan's time goes mostly to fresh memory.
pub type Labels = litemap::LiteMap<Arc<str>, Arc<str>>;

/// An image's build args, sorted by name, shared and sorted as [`Labels`] are (their
/// values are mostly the names of other images of the plan).
pub type Args = litemap::LiteMap<Arc<str>, Arc<str>>;

/// One image build, fully resolved: no bake, fleet or HCL types past this point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSpec {
    /// The plan node's name as users see it: the bake target, plus the task for per-task bases.
    pub name: String,
    /// The bake target this image comes from (for `docker buildx bake`).
    pub bake_target: String,
    /// The image reference to tag once the build succeeded.
    pub image: String,
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile, as a path relative to `context` unless absolute.
    pub dockerfile: PathBuf,
    /// The Dockerfile stage to build (`--target`), when set.
    pub target: Option<String>,
    pub args: Args,
    pub labels: Labels,
    pub secrets: Vec<Secret>,
    /// Images this one is built on (its `FROM` lines that name fleet or local images).
    pub bases: Vec<String>,
    /// Indexes, in the plan's list, of the builds that must finish first.
    pub deps: Vec<usize>,
}

/// A build secret: its id and where its value comes from. The value itself never
/// enters a `BuildSpec`, so it cannot reach a printed command or a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub id: String,
    /// Read from this environment variable.
    pub env: Option<String>,
    /// Or read from this file.
    pub src: Option<PathBuf>,
}

/// One `docker buildx bake` invocation: the bake backend builds a whole request
/// (its target and every `target:` context it links) in one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BakeRequest {
    /// Bake files, in `-f` order, relative to the repository root.
    pub files: Vec<PathBuf>,
    /// Bake variables set through the environment (for example `EVAL_TASK_ID`).
    pub vars: BTreeMap<String, String>,
    /// `--set` overrides (tags, kiln's build-time labels), in order.
    pub sets: Vec<String>,
    /// The targets or groups to build.
    pub targets: Vec<String>,
    /// Indexes, in the plan's list of `BuildSpec`s, of the images this request produces.
    pub builds: Vec<usize>,
}

/// A bake file (JSON, buildx's own format) made from specs: `{"target": {<bake target>: {…}}}`, fields in this order, empty ones left out;
/// borrowed from the spec, so a dry run writes it without copying.
#[derive(serde::Serialize)]
pub struct Definition<'a> {
    target: BTreeMap<&'a str, DefinitionTarget<'a>>,
}

#[derive(serde::Serialize)]
struct DefinitionTarget<'a> {
    context: String,
    dockerfile: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
    #[serde(skip_serializing_if = "Args::is_empty", serialize_with = "map")]
    args: &'a Args,
    #[serde(skip_serializing_if = "Labels::is_empty", serialize_with = "map")]
    labels: &'a Labels,
    tags: [&'a str; 1],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    secret: Vec<String>,
}

/// A sorted map of text as a JSON object.
fn map<K, V, S>(m: &&litemap::LiteMap<K, V>, s: S) -> Result<S::Ok, S::Error>
where
    K: AsRef<str>,
    V: AsRef<str>,
    S: serde::Serializer,
{
    s.collect_map(m.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
}

impl<'a> Definition<'a> {
    /// Every spec as one target of one bake file.
    pub fn of(specs: &'a [BuildSpec]) -> Self {
        let mut all = Definition {
            target: BTreeMap::new(),
        };
        for spec in specs {
            all.target.extend(Definition::new(spec).target);
        }
        all
    }

    pub fn new(spec: &'a BuildSpec) -> Self {
        let target = DefinitionTarget {
            context: spec.context.to_string_lossy().into_owned(),
            dockerfile: spec.dockerfile.to_string_lossy().into_owned(),
            target: spec.target.as_deref(),
            args: &spec.args,
            labels: &spec.labels,
            tags: [&spec.image],
            secret: spec.secrets.iter().map(Secret::word).collect(),
        };
        Definition {
            target: BTreeMap::from([(spec.bake_target.as_str(), target)]),
        }
    }
}

impl Secret {
    /// `id=ID,env=VAR` or `id=ID,src=FILE`: how `--secret` (podman, buildx) names it.
    pub fn word(&self) -> String {
        let mut word = format!("id={}", self.id);
        if let Some(env) = &self.env {
            word.push_str(&format!(",env={env}"));
        } else if let Some(src) = &self.src {
            word.push_str(&format!(",src={}", src.display()));
        }
        word
    }
}
