//! kiln-bake: Docker Bake file resolution, identical to `docker buildx bake --print`.
//!
//! No Docker is involved: the files are parsed by kiln's own HCL parser (`lexer.rs`,
//! `parse.rs`, after Go's hashicorp/hcl v2) or with serde_json (HCL-JSON, `json.rs`) and
//! evaluated here with bake's semantics (`/work/shared/bake-parity/FEATURES.md`).
//!
//! # Use
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use kiln_bake::{BakeFiles, ResolveOptions};
//!
//! let cwd = std::path::Path::new(".");
//! let env: BTreeMap<String, String> = std::env::vars().collect(); // the caller passes env
//! let names = BakeFiles::discover(cwd, &env)?;                     // or the `-f` list
//! let files = BakeFiles::read(cwd, &names)?;                        // parse once
//! for task in ["t1", "t2"] {
//!     let mut env = env.clone();
//!     env.insert("EVAL_TASK_ID".into(), task.into());
//!     let opts = ResolveOptions { targets: vec!["benchmark-x".into()], env, ..Default::default() };
//!     let resolved = files.resolve(&opts)?;                          // cheap, repeatable
//!     let t = &resolved.targets["benchmark-x"];
//!     println!("{} {:?} {:?}", t.context(), t.args, t.tags);
//!     print!("{}", resolved.to_print_json());                       // exact `--print` bytes
//! }
//! # Ok::<(), kiln_bake::BakeError>(())
//! ```
//!
//! * `BakeFiles::read` parses each file once; `resolve` evaluates variables, targets and
//!   groups afresh for the given options, so one `BakeFiles` serves many resolutions.
//! * The library never reads the process environment: `ResolveOptions::env` is the whole
//!   environment bake would see (variable overrides, `BUILDX_BAKE_DISABLE_VARS_ENV_LOOKUP`,
//!   `SOURCE_DATE_EPOCH`, `--set t.args.X` without a value).
//! * Errors are `BakeError`, whose text is what buildx prints after `ERROR: `.
//! * `Resolved::targets` holds every printed target, `target:`-linked ones included (their
//!   `outputs` are `[cacheonly]` unless they were requested too).

mod ast;
mod attrs;
mod config;
mod encoding;
mod error;
mod eval;
mod fast_hash;
pub mod functions;
mod json;
mod lexer;
mod overrides;
mod parse;
mod print;
mod refs;
mod resolve;
mod source;
mod target;
mod template;
pub mod value;
mod vars;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use error::BakeError;
pub use target::{Attest, Entry, Secret, Ssh, Target};

/// Bytes of bake files from which `BakeFiles::from_bytes` parses on several threads.
const PARALLEL_PARSE_BYTES: usize = 256 << 10;

/// The file names bake looks for when no `-f` is given, in load order.
pub const DEFAULT_FILES: [&str; 8] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
    "docker-bake.json",
    "docker-bake.hcl",
    "docker-bake.override.json",
    "docker-bake.override.hcl",
];

/// Parsed bake files, ready to be resolved any number of times.
#[derive(Debug)]
pub struct BakeFiles {
    config: config::Config,
    cwd: PathBuf,
    cache: config::OwnCache,
}

/// What to resolve, and with which inputs (the `docker buildx bake` flags).
#[derive(Clone, Debug, Default)]
pub struct ResolveOptions {
    /// Requested targets or groups (empty means `default`); globs allowed.
    pub targets: Vec<String>,
    /// `--set` values, in command-line order.
    pub sets: Vec<String>,
    /// `--var NAME=VALUE` values (they beat the environment).
    pub vars: BTreeMap<String, String>,
    /// The environment bake sees.
    pub env: BTreeMap<String, String>,
    pub load: bool,
    pub push: bool,
    pub no_cache: bool,
    pub pull: bool,
    /// `--sbom` value, e.g. `true`.
    pub sbom: Option<String>,
    /// `--provenance` value, e.g. `false` or `mode=max`.
    pub provenance: Option<String>,
}

/// A group as printed: its own (deduped) target list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub description: String,
    pub targets: Vec<String>,
}

/// The result of a resolution: what `--print` prints.
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    pub groups: BTreeMap<String, Group>,
    pub targets: BTreeMap<String, Target>,
}

impl Resolved {
    /// The exact stdout of `docker buildx bake --print` (trailing newline included).
    pub fn to_print_json(&self) -> String {
        print::print_json(self)
    }
}

impl BakeFiles {
    /// The files bake would load in `cwd` without `-f`: `BUILDX_BAKE_FILE` (split on
    /// `BUILDX_BAKE_PATH_SEPARATOR`, default `:`) if set, else the default names that exist.
    pub fn discover(cwd: &Path, env: &BTreeMap<String, String>) -> Result<Vec<String>, BakeError> {
        if let Some(list) = env.get("BUILDX_BAKE_FILE").filter(|v| !v.is_empty()) {
            let sep = env
                .get("BUILDX_BAKE_PATH_SEPARATOR")
                .filter(|s| !s.is_empty())
                .map_or(":", String::as_str);
            return Ok(list
                .split(sep)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect());
        }
        let found: Vec<String> = DEFAULT_FILES
            .iter()
            .filter(|n| cwd.join(n).is_file())
            .map(|n| n.to_string())
            .collect();
        if found.is_empty() {
            return Err(BakeError::new("couldn't find a bake definition"));
        }
        Ok(found)
    }

    /// Reads and parses `paths` (relative to `cwd`), in order; a file that cannot be
    /// read is reported as buildx (Go's `os.ReadFile`) reports it.
    pub fn read(cwd: &Path, paths: &[String]) -> Result<BakeFiles, BakeError> {
        let mut sources = Vec::with_capacity(paths.len());
        for p in paths {
            let text = std::fs::read(cwd.join(p)).map_err(|e| read_error(p, &e))?;
            sources.push((p.clone(), text));
        }
        BakeFiles::from_read(cwd, sources)
    }

    /// [`BakeFiles::read`] for files the caller has already read from `cwd` (name, bytes).
    pub fn from_read(cwd: &Path, sources: Vec<(String, Vec<u8>)>) -> Result<BakeFiles, BakeError> {
        let mut files = BakeFiles::from_bytes(sources)?;
        files.cwd = cwd.to_path_buf();
        Ok(files)
    }

    /// Parses in-memory files (name, text); the name's extension picks the syntax.
    pub fn from_sources(sources: Vec<(String, String)>) -> Result<BakeFiles, BakeError> {
        BakeFiles::from_bytes(
            sources
                .into_iter()
                .map(|(name, text)| (name, text.into_bytes()))
                .collect(),
        )
    }

    /// Parses in-memory files given as bytes (what `read` loaded).
    pub fn from_bytes(sources: Vec<(String, Vec<u8>)>) -> Result<BakeFiles, BakeError> {
        let mut files = Vec::with_capacity(sources.len());
        // Per file: the offset of a byte HCL's scanner would refuse (not UTF-8, outside
        // comments); JSON files are decoded as Go's encoding/json does, lossily.
        let mut bad_bytes = Vec::with_capacity(sources.len());
        for (name, raw) in sources {
            let lower = name.to_ascii_lowercase();
            if lower.ends_with(".yml") || lower.ends_with(".yaml") {
                return Err(BakeError::new(format!(
                    "{name}: compose files are not supported by kiln"
                )));
            }
            let (text, bad) = if lower.ends_with(".json") {
                let text = String::from_utf8(raw)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                (text, None)
            } else {
                let (text, bad) = encoding::decode_hcl(raw);
                let bom = text.len();
                let text = encoding::strip_bom(text);
                let bom = bom - text.len();
                (text, bad.map(|at| at - bom))
            };
            bad_bytes.push(bad);
            files.push(source::SourceFile::new(name, text));
        }
        let parse_one = |i: usize| {
            let (name, text) = (&files[i].name, &files[i].text);
            let lower = name.to_ascii_lowercase();
            let hcl = || match bad_bytes[i] {
                Some(at) => Err(encoding::bad_encoding_error(i as u32, at)),
                None => parse::parse_hcl(i as u32, text),
            };
            if lower.ends_with(".json") {
                json::parse_json(i as u32, text)
            } else if lower.ends_with(".hcl") {
                hcl()
            } else {
                hcl().or_else(|e| json::parse_json(i as u32, text).map_err(|_| e))
            }
        };
        // Large fleets parse faster spread over the cores; below a few hundred KiB of text
        // (a parse of well under a millisecond) starting threads costs more than it saves.
        // (Asking for the core count reads cgroup files, so only when it can matter.)
        let total: usize = files.iter().map(|f| f.text.len()).sum();
        let workers = if total >= PARALLEL_PARSE_BYTES && files.len() > 1 {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(8)
        } else {
            1
        };
        let results: Vec<error::Result<ast::Body>> = if workers > 1 {
            let chunk = files.len().div_ceil(workers);
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..files.len())
                    .step_by(chunk)
                    .map(|start| {
                        let end = (start + chunk).min(files.len());
                        // The main thread's stack size: deep nesting (up to
                        // `parse::MAX_DEPTH`) must not depend on which thread parses.
                        std::thread::Builder::new()
                            .stack_size(8 << 20)
                            .spawn_scoped(s, move || (start..end).map(parse_one).collect())
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| match h {
                        Ok(h) => h.join().unwrap_or_default(),
                        Err(_) => Vec::new(),
                    })
                    .collect()
            })
        } else {
            (0..files.len()).map(parse_one).collect()
        };
        let mut bodies = Vec::with_capacity(results.len());
        for r in results {
            bodies.push(r.map_err(|e| e.render(&files))?);
        }
        if bodies.len() != files.len() {
            return Err(BakeError::new("internal error: a parser thread failed"));
        }
        let config = config::Config::build(files, bodies)?;
        Ok(BakeFiles {
            config,
            cwd: PathBuf::from("."),
            cache: config::OwnCache::default(),
        })
    }

    /// Target names as declared (block labels, before matrix expansion), in file order.
    pub fn target_labels(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .config
            .targets
            .iter()
            .map(|t| t.label.clone())
            .collect();
        names.dedup();
        target::dedupe_strings(names)
    }

    /// Group names as declared, in file order.
    pub fn group_labels(&self) -> Vec<String> {
        target::dedupe_strings(self.config.groups.iter().map(|g| g.label.clone()).collect())
    }

    /// Resolves the requested targets with the given inputs.
    pub fn resolve(&self, opts: &ResolveOptions) -> Result<Resolved, BakeError> {
        self.resolve_inner(opts)
            .map_err(|e| e.render(&self.config.files))
    }

    fn resolve_inner(&self, opts: &ResolveOptions) -> error::Result<Resolved> {
        let env_lookup = !config::env_flag(&opts.env, "BUILDX_BAKE_DISABLE_VARS_ENV_LOOKUP");
        let inputs = config::Inputs {
            vars: &opts.vars,
            env: &opts.env,
            env_lookup,
        };
        let session = config::Session::new(&self.config, inputs, self.cache.for_resolution());
        let mut sets = opts.sets.clone();
        if opts.push {
            sets.push("*.push=true".into());
        }
        if opts.load {
            sets.push("*.load=true".into());
        }
        if opts.no_cache {
            sets.push("*.no-cache=true".into());
        }
        if opts.pull {
            sets.push("*.pull=true".into());
        }
        if let Some(v) = &opts.sbom {
            sets.push(format!(
                "*.attest={}",
                overrides::canonical_attest("sbom", v)
            ));
        }
        if let Some(v) = &opts.provenance {
            sets.push(format!(
                "*.attest={}",
                overrides::canonical_attest("provenance", v)
            ));
        }
        let resolver = resolve::Resolver::new(&session, &sets, &opts.env, env_lookup)?;
        resolver.resolve(&opts.targets, &opts.env, Some(&self.cwd))
    }
}

/// One fuzzing round (used by `fuzz/` and the regression test): the first byte picks the
/// syntax and options, the rest is one bake file. Must never panic.
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let name = if mode & 1 == 1 {
        "docker-bake.json"
    } else {
        "docker-bake.hcl"
    };
    let Ok(files) = BakeFiles::from_bytes(vec![(name.to_string(), rest.to_vec())]) else {
        return;
    };
    let mut opts = ResolveOptions::default();
    if mode & 2 != 0 {
        for (k, v) in [
            ("A", "1"),
            ("B", "x,y"),
            ("C_JSON", "[1]"),
            ("SOURCE_DATE_EPOCH", "7"),
        ] {
            opts.env.insert(k.to_string(), v.to_string());
        }
    }
    if mode & 4 != 0 {
        opts.targets = files.target_labels();
        opts.targets.extend(files.group_labels());
    }
    if mode & 8 != 0 {
        opts.sets = vec![
            "*.tags+=x".into(),
            "*.args.A=1".into(),
            "*.output=type=docker".into(),
        ];
    }
    if mode & 16 != 0 {
        opts.push = true;
        opts.load = true;
        opts.sbom = Some("true".into());
    }
    if let Ok(r) = files.resolve(&opts) {
        std::hint::black_box(r.to_print_json());
    }
}

/// Go's wording for a file `os.ReadFile` could not read: `open <path>: no such file or
/// directory`, `read <path>: is a directory` (opening a directory succeeds; reading it
/// fails), the system's message in lower case.
fn read_error(path: &str, e: &std::io::Error) -> BakeError {
    let is_dir = e.kind() == std::io::ErrorKind::IsADirectory;
    let message = match e.raw_os_error() {
        Some(code) => {
            // Rust's "Is a directory (os error 21)" is Go's "is a directory".
            let text = std::io::Error::from_raw_os_error(code).to_string();
            let text = text.split(" (os error").next().unwrap_or_default();
            let mut chars = text.chars();
            (chars.next().into_iter())
                .flat_map(char::to_lowercase)
                .chain(chars)
                .collect()
        }
        None => e.to_string(),
    };
    let op = if is_dir { "read" } else { "open" };
    BakeError::new(format!("{op} {path}: {message}"))
}
