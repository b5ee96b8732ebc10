//! `kiln bake`: the arguments of `docker buildx bake`, resolved by `kiln_bake`.
//! With `--print` it writes exactly what buildx writes; building is for the backends.

use crate::printer::errln;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use kiln_bake::{BakeFiles, ResolveOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Build definition file (repeatable; default: docker-bake.hcl and friends, or the
    /// layout's bake files in an eval-containers fleet).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<String>,
    /// Override a target value (`targetpattern.key=value`, `+=` appends).
    #[arg(long = "set", value_name = "PATTERN.KEY=VALUE")]
    pub sets: Vec<String>,
    /// Set a bake variable (beats the environment).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Print the resolved options as JSON instead of building.
    #[arg(long)]
    pub print: bool,
    /// Shorthand for `--set=*.output=type=docker`.
    #[arg(long)]
    pub load: bool,
    /// Shorthand for `--set=*.output=type=registry`.
    #[arg(long)]
    pub push: bool,
    /// Do not use cache when building.
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always try to pull all referenced images.
    #[arg(long)]
    pub pull: bool,
    /// Shorthand for `--set=*.attest=type=sbom`.
    #[arg(long, value_name = "VALUE")]
    pub sbom: Option<String>,
    /// Shorthand for `--set=*.attest=type=provenance`.
    #[arg(long, value_name = "VALUE")]
    pub provenance: Option<String>,
    /// Targets or groups to resolve (default: `default`).
    #[arg(value_name = "TARGET|GROUP")]
    pub targets: Vec<String>,
}

pub fn run(repo: &Path, mut args: Args) -> anyhow::Result<ExitCode> {
    let env: BTreeMap<String, String> = crate::env::all();
    if args.files.is_empty() {
        // A layout whose bake files are not buildx's defaults names them itself (the
        // eval-containers fleet: the `-f` list of every upstream bake command).
        if let Ok(layout) = crate::fleet::layout::detect(repo) {
            if let Some(files) = layout.default_bake_files(repo)? {
                args.files = files.iter().map(|f| f.display().to_string()).collect();
            }
        }
    }
    match resolve(repo, &args, env) {
        Ok(json) if args.print => {
            let mut out = crate::printer::stdout();
            out.write_all(json.as_bytes())?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(_) => crate::backend::bake::run_passthrough(repo, &var_map(&args), &bake_args(&args)),
        Err(message) => {
            // buildx's shape: the last stderr line is `ERROR: <message>`, exit status 1.
            errln!("ERROR: {message}");
            Ok(super::Exit::Failed.into())
        }
    }
}

fn resolve(repo: &Path, args: &Args, env: BTreeMap<String, String>) -> Result<String, String> {
    let names = if args.files.is_empty() {
        BakeFiles::discover(repo, &env).map_err(|e| e.to_string())?
    } else {
        args.files.clone()
    };
    // A repeated request with nothing changed is answered from the cache; any file that
    // cannot be read goes the uncached way, which reports it. With the cache off, they
    // are read only below.
    let sources: Option<Vec<(String, Vec<u8>)>> = if crate::bake_cache::enabled(&env) {
        names
            .iter()
            .map(|n| Some((n.clone(), std::fs::read(repo.join(n)).ok()?)))
            .collect()
    } else {
        None
    };
    let mut request = bake_args(args);
    request.extend(args.vars.iter().map(|v| format!("--var={v}")));
    let key = sources
        .as_deref()
        .and_then(|files| crate::bake_cache::key(repo, &request, &env, files));
    if let Some(answer) = key.as_deref().and_then(|k| crate::bake_cache::get(&env, k)) {
        return Ok(answer);
    }
    // On a miss, the files read for the key are the ones parsed: each is read once.
    let files = match sources {
        Some(sources) => BakeFiles::from_read(repo, sources),
        None => BakeFiles::read(repo, &names),
    }
    .map_err(|e| e.to_string())?;
    let mut vars = BTreeMap::new();
    for v in &args.vars {
        let (k, val) = v
            .split_once('=')
            .ok_or_else(|| format!("invalid var {v}, expected NAME=VALUE"))?;
        vars.insert(k.to_string(), val.to_string());
    }
    let opts = ResolveOptions {
        targets: args.targets.clone(),
        sets: args.sets.clone(),
        vars,
        env,
        load: args.load,
        push: args.push,
        no_cache: args.no_cache,
        pull: args.pull,
        sbom: args.sbom.clone(),
        provenance: args.provenance.clone(),
    };
    let resolved = files.resolve(&opts).map_err(|e| e.to_string())?;
    let answer = resolved.to_print_json();
    if let Some(k) = &key {
        crate::bake_cache::put(&opts.env, k, &answer);
    }
    // The process ends soon after: freeing the parsed files and the resolution, and the
    // allocator handing the memory back, would cost more than the rest of the work.
    std::mem::forget(files);
    std::mem::forget(resolved);
    Ok(answer)
}

/// `--var NAME=VALUE` as environment variables for `docker buildx bake`.
fn var_map(args: &Args) -> BTreeMap<String, String> {
    args.vars
        .iter()
        .filter_map(|v| v.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The arguments `docker buildx bake` gets for the same request.
fn bake_args(args: &Args) -> Vec<String> {
    let mut out = Vec::new();
    for f in &args.files {
        out.extend(["-f".to_string(), f.clone()]);
    }
    for s in &args.sets {
        out.extend(["--set".to_string(), s.clone()]);
    }
    for (on, flag) in [
        (args.load, "--load"),
        (args.push, "--push"),
        (args.no_cache, "--no-cache"),
        (args.pull, "--pull"),
    ] {
        if on {
            out.push(flag.to_string());
        }
    }
    if let Some(v) = &args.sbom {
        out.push(format!("--sbom={v}"));
    }
    if let Some(v) = &args.provenance {
        out.push(format!("--provenance={v}"));
    }
    out.extend(args.targets.iter().cloned());
    out
}
