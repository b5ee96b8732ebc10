//! The release gates that need no image: `kiln lint` is clean, and the work tree is
//! clean (as `cargo publish` requires; `--allow-dirty` overrides and the manifest says so).

use std::path::Path;

use anyhow::Context as _;

use crate::fleet::Fleet;

use super::{say, Halt, Options};

/// Every gate in the order a release checks it (for `--dry-run` and the docs).
pub fn describe(allow_dirty: bool, benchmarks: &[(String, usize)], version: &str) -> Vec<String> {
    let mut out = vec![
        "lint: `kiln lint` reports no violation".to_string(),
        if allow_dirty {
            "clean work tree: skipped (--allow-dirty); the manifest records dirty=true if `git status --porcelain` lists anything".to_string()
        } else {
            "clean work tree: `git status --porcelain` lists nothing".to_string()
        },
        "registry login: the registry accepts the login `docker login` stored for it ($DOCKER_CONFIG or ~/.docker/config.json)".to_string(),
        "build: every image below builds or is up to date, and carries every label of the contract (RULES.md, Labels)".to_string(),
    ];
    for (b, tasks) in benchmarks {
        out.push(format!(
            "validation: {b} is valid for the very images pushed: oracle scores 1.0 and null does not pass, on each of its {tasks} task(s) \
             (kiln validate's record, or kiln validate {b} when it has no verdict)"
        ));
    }
    out.push(format!(
        "immutable version: no tag {version} in the registry holds another image or a multi-platform index \
         (one HEAD per tag, any manifest kind; else refused; --force overrides); an identical image there is already published and not uploaded"
    ));
    out
}

/// `Err(message)` naming every violation when `kiln lint` is not clean.
pub fn lint(repo: &Path) -> anyhow::Result<Result<(), String>> {
    let report = crate::lint::lint(repo)?;
    if report.violations.is_empty() {
        return Ok(Ok(()));
    }
    let lines: Vec<String> = report
        .violations
        .iter()
        .take(20)
        .map(|v| format!("  {v}"))
        .collect();
    Ok(Err(format!(
        "kiln lint reports {} violation(s):\n{}",
        report.violations.len(),
        lines.join("\n")
    )))
}

/// The paths `git status --porcelain` lists (empty: clean).
pub fn dirty_paths(repo: &Path) -> anyhow::Result<Vec<String>> {
    let out = duct::cmd!("git", "status", "--porcelain")
        .dir(repo)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .context("running git status")?;
    if !out.status.success() {
        anyhow::bail!(
            "git status failed in {}: {}",
            repo.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.get(3..).unwrap_or(l).to_string())
        .collect())
}

/// The clean-work-tree gate: `Ok(true)` when paths changed and `--allow-dirty` lets
/// them through (the manifest records it). The manifest a previous release wrote is
/// kiln's own output, not a change; so is a Harbor task.toml that differs from HEAD
/// only by kiln's pin.
pub(super) fn work_tree(fleet: &Fleet, opts: &Options, harbor: bool) -> Result<bool, Halt> {
    let own_manifest = manifest_in_repo(&opts.repo, &opts.manifest);
    let mut dirty: Vec<String> = dirty_paths(&opts.repo)?
        .into_iter()
        .filter(|p| Some(p.as_str()) != own_manifest.as_deref())
        .collect();
    if harbor {
        let pins = super::harbor::own_pins(fleet, &dirty);
        dirty.retain(|p| !pins.contains(p));
    }
    if dirty.is_empty() {
        say("gate clean work tree: clean");
        return Ok(false);
    }
    if !opts.allow_dirty {
        let shown: Vec<&str> = dirty.iter().take(10).map(String::as_str).collect();
        return Err(Halt::Blocked(format!(
            "gate `clean work tree` failed: {} path(s) changed or untracked ({}{}); commit them, or pass --allow-dirty (recorded in the manifest)",
            dirty.len(),
            shown.join(", "),
            if dirty.len() > 10 { ", …" } else { "" }
        )));
    }
    say(&format!(
        "gate clean work tree: {} changed path(s), allowed by --allow-dirty",
        dirty.len()
    ));
    Ok(true)
}

/// The manifest's path relative to the repository, when it lies inside it.
fn manifest_in_repo(repo: &Path, manifest: &Path) -> Option<String> {
    let repo = repo.canonicalize().ok()?;
    let parent = match manifest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.canonicalize().ok()?,
        _ => std::env::current_dir().ok()?.canonicalize().ok()?,
    };
    let full = parent.join(manifest.file_name()?);
    Some(
        full.strip_prefix(&repo)
            .ok()?
            .to_string_lossy()
            .into_owned(),
    )
}
