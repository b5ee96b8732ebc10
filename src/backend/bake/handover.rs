//! Handing local bases to a builder that cannot read the engine's image store
//! (`remote`, `docker-container`, `kubernetes` drivers): each base is exported once
//! into a content-addressed OCI layout, `.kiln/oci/<image id>/` (tag `image`), with
//! `skopeo copy docker-daemon:<id> oci:<dir>:image`, and passed to bake as the named
//! context `oci-layout://<dir>:image` of every target that builds on it.
//!
//! Why skopeo: it writes a valid OCI layout straight from the engine in one step
//! (the engine's own export, `docker save`, is a Docker archive that would need
//! converting), and the layout is addressed by the image id, so a layout is reused
//! for as long as the base is unchanged and never goes stale. Each new export removes
//! the layouts of images the engine no longer holds (a base that was rebuilt).

use std::path::Path;

use crate::plan::{BakeRequest, BuildSpec};
use crate::store::{self, Store};

use super::super::{child, shell, Env, Stop};

/// Where the layouts live, relative to the repository root.
pub const DIR: &str = ".kiln/oci";

/// The tag of the one image in each layout.
const TAG: &str = "image";

/// The (target, base) pairs of `request` whose base the request does not build
/// itself: an outside base, or a fleet image built by an earlier request (its
/// `target:` link is replaced by the layout, so the chain stops at the request).
pub fn needs(request: &BakeRequest, builds: &[BuildSpec]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for &i in &request.builds {
        let spec = &builds[i];
        for base in &spec.bases {
            let built_here = request.builds.iter().any(|&j| builds[j].image == *base);
            let pair = (spec.bake_target.clone(), base.clone());
            if !built_here && !out.contains(&pair) {
                out.push(pair);
            }
        }
    }
    out
}

/// `<target>.contexts.<base>=oci-layout://<layout>:image`.
pub fn context_set(target: &str, base: &str, layout: &str) -> String {
    format!("{target}.contexts.{base}=oci-layout://{layout}:{TAG}")
}

/// The dry run's stand-in for a layout directory whose id is known only at build time.
pub fn layout_placeholder(base: &str) -> String {
    format!("{DIR}/<id of {base}>")
}

/// `skopeo copy docker-daemon:<source> oci:<layout>:image`; `source` is the image id
/// when known (what runs), the reference in the dry run.
pub fn export_command(source: &str, layout: &str) -> Vec<String> {
    vec![
        "skopeo".into(),
        "copy".into(),
        "--quiet".into(),
        format!("docker-daemon:{source}"),
        format!("oci:{layout}:{TAG}"),
    ]
}

/// Exports `base` from the engine's store into its layout unless that layout
/// exists already; returns the layout directory (relative to the repository).
pub async fn export(env: &Env, label: &str, base: &str) -> Result<String, Stop> {
    let info = store::inspect(Store::Docker, base).await?.ok_or_else(|| {
        Stop::Failed(format!(
            "base image {base} is not in Docker's image store, so it cannot be handed to the builder; \
             make local bases with scripts/make-bases.sh (kiln pulls nothing)"
        ))
    })?;
    let hex = info.id.trim_start_matches("sha256:").to_string();
    let layout = format!("{DIR}/{hex}");
    let dest = env.repo.join(&layout);
    if dest.join("index.json").is_file() {
        return Ok(layout);
    }
    let parent = env.repo.join(DIR);
    std::fs::create_dir_all(&parent)
        .map_err(|e| Stop::Failed(format!("creating {}: {e}", parent.display())))?;
    ignore_kiln_dir(&env.repo);
    // Written under a temporary name and renamed: a layout that exists is complete.
    let tmp = tempfile::Builder::new()
        .prefix(".export-")
        .tempdir_in(&parent)
        .map_err(|e| Stop::Failed(format!("creating a directory in {}: {e}", parent.display())))?;
    let tmp_rel = format!(
        "{DIR}/{}",
        tmp.path().file_name().unwrap().to_string_lossy()
    );
    let argv = export_command(&info.id, &tmp_rel);
    let run = child::run(env, label, &Default::default(), &argv, None).await?;
    if !run.success {
        return Err(Stop::Failed(format!(
            "exporting {base} for the builder failed: {} failed:\n{}",
            shell::join(&argv),
            child::tail(&run.output, 10)
        )));
    }
    let tmp = tmp.keep();
    prune(&parent).await;
    if std::fs::rename(&tmp, &dest).is_err() {
        // Another build exported the same id meanwhile: keep theirs.
        let _ = std::fs::remove_dir_all(&tmp);
        if !dest.join("index.json").is_file() {
            return Err(Stop::Failed(format!(
                "could not move the layout of {base} to {}",
                dest.display()
            )));
        }
    }
    Ok(layout)
}

/// Removes the layouts in `dir` whose image is no longer in the engine's store, and
/// exports a killed kiln left half-written (over an hour old). Best effort.
async fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let stale = if name.starts_with(".export-") {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600)
        } else {
            name.len() == 64
                && name.bytes().all(|b| b.is_ascii_hexdigit())
                && matches!(
                    store::inspect(Store::Docker, &format!("sha256:{name}")).await,
                    Ok(None)
                )
        };
        if stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// `.kiln/` holds local state only; make sure git ignores it.
fn ignore_kiln_dir(repo: &Path) {
    let ignore = repo.join(".kiln/.gitignore");
    if !ignore.exists() {
        let _ = std::fs::write(ignore, "# kiln's local state; never committed\n*\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn spec(target: &str, image: &str, bases: &[&str]) -> BuildSpec {
        let mut s = crate::backend::test_support::sample();
        s.bake_target = target.into();
        s.image = image.into();
        s.bases = bases.iter().map(|b| b.to_string()).collect();
        s
    }

    #[test]
    fn needs_only_bases_the_request_does_not_build() {
        let builds = vec![
            spec("core-base", "k/core/base:dev", &["debian:bookworm-slim"]),
            spec("agent-a", "k/agents/a:dev", &["k/core/base:dev"]),
            spec("bench-b", "k/benchmarks/b:dev", &["k/core/base:dev"]),
            spec(
                "core-eval",
                "k/evals/b--a:dev",
                &["k/agents/a:dev", "k/benchmarks/b:dev"],
            ),
        ];
        let request = |builds: Vec<usize>| BakeRequest {
            files: vec![],
            vars: BTreeMap::new(),
            sets: vec![],
            targets: vec![],
            builds,
        };
        assert_eq!(
            needs(&request(vec![0, 1]), &builds),
            vec![("core-base".to_string(), "debian:bookworm-slim".to_string())]
        );
        assert_eq!(
            needs(&request(vec![2, 3]), &builds),
            vec![
                ("bench-b".to_string(), "k/core/base:dev".to_string()),
                ("core-eval".to_string(), "k/agents/a:dev".to_string())
            ]
        );
        assert_eq!(
            context_set("core-base", "debian:bookworm-slim", ".kiln/oci/ab"),
            "core-base.contexts.debian:bookworm-slim=oci-layout://.kiln/oci/ab:image"
        );
    }

    /// Needs the engine (`KILN_TEST_DOCKER=1`) and `debian:bookworm-slim` in it.
    #[test]
    fn prune_keeps_only_layouts_of_images_the_engine_holds() {
        if std::env::var("KILN_TEST_DOCKER").as_deref() != Ok("1") {
            crate::printer::errln!("skipped: set KILN_TEST_DOCKER=1");
            return;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let held = rt
            .block_on(store::inspect(Store::Docker, "debian:bookworm-slim"))
            .unwrap()
            .expect("debian:bookworm-slim (scripts/make-bases.sh makes it)")
            .id;
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join(held.trim_start_matches("sha256:"));
        let gone = dir.path().join("0".repeat(64));
        let other = dir.path().join("notes");
        for d in [&kept, &gone, &other] {
            std::fs::create_dir(d).unwrap();
        }
        rt.block_on(prune(dir.path()));
        assert!(kept.is_dir() && other.is_dir());
        assert!(!gone.exists());
    }
}
