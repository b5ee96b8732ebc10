//! `kiln clean`: what kiln leaves in Docker's image store after its commands end.
//!
//! - `kiln clean RESULTS`: the kept state of the runs under RESULTS (the images their
//!   run.json names, `kiln run --keep-state`).
//! - `kiln clean`: everything kiln left, found by kiln's own labels and nothing else:
//!   the containers of kiln processes that died (they hold their images), every
//!   kept-state image ([`kept_state::LABEL`]), and the images kiln built that no tag
//!   names any more (label `kiln.inputs.digest`, untagged: what a rebuild leaves behind).
//!
//! An image without kiln's labels is never removed, even when a run.json names it.
//! `--dry-run` prints the plain docker commands and removes nothing. The results
//! themselves (result.json, logs) are never touched.

use crate::printer::{errln, outln};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::error::Failure;
use crate::run::kept_state;
use crate::run::reap;
use crate::store::Store;

/// What to clean.
#[derive(Debug, Clone)]
pub struct Options {
    /// A results directory: its kept state only. None: everything kiln left.
    pub results: Option<PathBuf>,
    pub dry_run: bool,
}

/// Cleans as `opts` says; returns the exit status (0 done, 1 something could not be removed).
pub fn run(opts: &Options) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    match &opts.results {
        Some(dir) => {
            let images = recorded_images(dir)?;
            runtime.block_on(clean_results(dir, &images, opts.dry_run))
        }
        None => runtime.block_on(clean_all(opts.dry_run)),
    }
}

/// The kept-state images the run.json files under `dir` name, with the run that kept
/// each (refused, naming `dir`, when `dir` holds no runs).
pub fn recorded_images(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    if !dir.is_dir() {
        return Err(Failure::usage(format!(
            "{} is not a directory (no results there; `kiln run` writes them)",
            dir.display()
        )));
    }
    let mut runs = 0;
    let mut out = Vec::new();
    // Hidden directories are runs being written, or moved aside: not results.
    let walk = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walk {
        let entry = entry.with_context(|| format!("walking {}", dir.display()))?;
        if entry.file_name() != "run.json" || !entry.file_type().is_file() {
            continue;
        }
        runs += 1;
        let run = entry.path().parent().unwrap_or(dir);
        if let Some(image) = kept_state::recorded(run).and_then(|k| k.image) {
            out.push((image, run.to_path_buf()));
        }
    }
    if runs == 0 {
        return Err(Failure::usage(format!(
            "{} holds no results (no run.json under it; `kiln run` writes them)",
            dir.display()
        )));
    }
    Ok(out)
}

async fn clean_results(
    dir: &Path,
    images: &[(String, PathBuf)],
    dry_run: bool,
) -> anyhow::Result<u8> {
    if images.is_empty() {
        outln!(
            "nothing to remove: no run under {} kept its state (kiln run --keep-state)",
            dir.display()
        );
        return Ok(0);
    }
    let (mut removed, mut failed) = (0, 0);
    for (image, run) in images {
        match kept_state::is_kept_state(image).await {
            Err(e) if dry_run => {
                outln!("docker image rm {image}");
                errln!("note: {e:#}: the command is printed unchecked");
            }
            Err(e) => return Err(e),
            Ok(None) => errln!("{image}: already gone (kept state of {})", run.display()),
            Ok(Some(false)) => {
                failed += 1;
                errln!(
                    "{image}: not a kept-state image (no {} label); left alone",
                    kept_state::LABEL
                );
            }
            Ok(Some(true)) if dry_run => outln!("docker image rm {image}"),
            Ok(Some(true)) => match kept_state::remove(image).await {
                Ok(_) => {
                    removed += 1;
                    outln!("removed {image} (kept state of {})", run.display());
                }
                Err(e) => {
                    failed += 1;
                    errln!("error: {e:#}");
                }
            },
        }
    }
    if !dry_run {
        errln!(
            "{removed} kept-state image(s) removed from Docker's image store; the results in {} are unchanged",
            dir.display()
        );
    }
    Ok(u8::from(failed > 0))
}

/// An image found by kiln's labels: its id and what names it.
struct Found {
    id: String,
    tags: Vec<String>,
}

impl Found {
    /// What `docker image rm` is given: the tag (only this name goes), else the id.
    fn reference(&self) -> &str {
        self.tags.first().map_or(self.id.as_str(), String::as_str)
    }
}

async fn images(docker: &bollard::Docker, filters: &[(&str, &str)]) -> anyhow::Result<Vec<Found>> {
    let mut map: HashMap<&str, Vec<&str>> = HashMap::new();
    for (k, v) in filters {
        map.entry(k).or_default().push(v);
    }
    let options = bollard::query_parameters::ListImagesOptionsBuilder::default()
        .filters(&map)
        .build();
    let list = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        docker.list_images(Some(options)),
    )
    .await
    .context("the Docker Engine did not list images within 30 s")?
    .context("listing images")?;
    Ok(list
        .into_iter()
        .map(|i| Found {
            id: i.id,
            tags: i
                .repo_tags
                .into_iter()
                .filter(|t| t != "<none>:<none>")
                .collect(),
        })
        .collect())
}

async fn clean_all(dry_run: bool) -> anyhow::Result<u8> {
    let docker = bollard::Docker::connect_with_local_defaults()
        .context("connecting to the Docker Engine")?;
    docker
        .ping()
        .await
        .map_err(|e| Failure::no_backend(format!("the Docker Engine does not answer: {e}")))?;
    let mut failed = 0;
    let mut say = |what: &str, command: String, result: anyhow::Result<()>| match result {
        _ if dry_run => outln!("{command}"),
        Ok(()) => outln!("removed {what}"),
        // A container (any, the user's too) still uses it: it stays, and says why.
        Err(e) if in_use(&e) => errln!("note: {what} stays: {e:#}"),
        Err(e) => {
            failed += 1;
            errln!("error: could not remove {what}: {e:#}");
        }
    };
    let dead = reap::dead(&[Store::Docker]).await?;
    for c in &dead {
        let result = if dry_run {
            Ok(())
        } else {
            reap::remove(Store::Docker, &c.name).await
        };
        say(
            &format!("container {} (kiln process {} is gone)", c.name, c.pid),
            format!("docker rm --force {}", c.name),
            result,
        );
    }
    let kept = images(&docker, &[("label", kept_state::LABEL)]).await?;
    let leftovers = images(
        &docker,
        &[
            ("label", crate::labels::INPUTS_DIGEST),
            ("dangling", "true"),
        ],
    )
    .await?;
    let mut seen = BTreeSet::new();
    let mut count = 0;
    for (kind, list) in [
        ("kept-state image", kept),
        ("unnamed kiln build", leftovers),
    ] {
        for image in list {
            if !seen.insert(image.id.clone()) {
                continue;
            }
            count += 1;
            // Every tag goes: each is a name for the same kiln image.
            let mut names = image.tags.clone();
            if names.is_empty() {
                names.push(image.id.clone());
            }
            let result = if dry_run {
                Ok(())
            } else {
                remove_names(&docker, &names).await
            };
            say(
                &format!("{kind} {}", image.reference()),
                format!("docker image rm {}", names.join(" ")),
                result,
            );
        }
    }
    if !dry_run {
        errln!(
            "{} container(s) and {count} image(s) of kiln's checked; images without kiln's labels are never touched",
            dead.len()
        );
    }
    Ok(u8::from(failed > 0))
}

/// The engine refused because a container uses the image (HTTP 409).
fn in_use(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<bollard::errors::Error>(),
            Some(bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                ..
            })
        )
    })
}

async fn remove_names(docker: &bollard::Docker, names: &[String]) -> anyhow::Result<()> {
    for name in names {
        docker
            .remove_image(
                name,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
            .with_context(|| format!("docker image rm {name}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_images_come_from_run_json() {
        let tmp = tempfile::tempdir().unwrap();
        let err = recorded_images(&tmp.path().join("nope")).unwrap_err();
        assert!(format!("{err}").contains("is not a directory"), "{err}");
        let err = recorded_images(tmp.path()).unwrap_err();
        assert!(format!("{err}").contains("holds no results"), "{err}");
        let kept = tmp.path().join("b/t/oracle");
        let plain = tmp.path().join("b/t/null");
        let hidden = tmp.path().join("b/t/.null.partial-x");
        for d in [&kept, &plain, &hidden] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(
            kept.join("run.json"),
            r#"{"kept_state": {"image": "kiln.local/kept-state/b--oracle:t-1", "image_id": null, "run_id": "1", "error": null}}"#,
        )
        .unwrap();
        std::fs::write(plain.join("run.json"), r#"{"kept_state": null}"#).unwrap();
        std::fs::write(
            hidden.join("run.json"),
            r#"{"kept_state": {"image": "x", "image_id": null, "run_id": null, "error": null}}"#,
        )
        .unwrap();
        let found = recorded_images(tmp.path()).unwrap();
        assert_eq!(
            found,
            vec![(
                "kiln.local/kept-state/b--oracle:t-1".to_string(),
                kept.clone()
            )]
        );
    }
}
