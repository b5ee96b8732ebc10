//! The eval images a matrix needs, as `kiln run` gets them: one plan built (or, when
//! every image is up to date in Docker's store, only checked), or with `--no-build`
//! the images as they are. `kiln regrade` gets the current graders the same way.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::matrix;
use super::{refused, Options};
use crate::backend::detect::Requested;
use crate::error::Failure;
use crate::fleet::Fleet;
use crate::plan::{self, BuildSpec};
use crate::store::{self, Store};

/// The stores and input digests of `images` as they are (`--no-build`).
pub(crate) async fn existing_images(
    images: &[String],
) -> anyhow::Result<HashMap<String, (Store, String)>> {
    let mut out = HashMap::new();
    let mut missing = Vec::new();
    for image in images {
        let mut found = None;
        for s in [Store::Docker, Store::Podman] {
            if let Ok(Some(info)) = store::inspect(s, image).await {
                found = Some((s, info));
                break;
            }
        }
        match found {
            Some((s, info)) => {
                let digest = info
                    .labels
                    .get(crate::labels::INPUTS_DIGEST)
                    .cloned()
                    .unwrap_or_default();
                out.insert(image.clone(), (s, digest));
            }
            None => missing.push(image.as_str()),
        }
    }
    if !missing.is_empty() {
        anyhow::bail!(
            "{} in neither Docker's nor podman's image store; run without --no-build to build {}",
            missing.join(", ") + if missing.len() == 1 { " is" } else { " are" },
            if missing.len() == 1 { "it" } else { "them" }
        );
    }
    Ok(out)
}

/// Every spec of the plan, when each is up to date in Docker's store (its input digest
/// label matches): image → (id, digest). None as soon as one is not (then the plan is built).
async fn all_current(
    repo: &Path,
    specs: &[BuildSpec],
) -> anyhow::Result<Option<HashMap<String, String>>> {
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut digests = HashMap::new();
    for spec in specs {
        let mut bases = BTreeMap::new();
        for base in &spec.bases {
            let id = match ids.get(base) {
                Some(id) => id.clone(),
                None => match store::inspect(Store::Docker, base).await? {
                    Some(info) => info.id,
                    None => return Ok(None),
                },
            };
            bases.insert(base.clone(), id);
        }
        let root = if spec.context.is_absolute() {
            spec.context.clone()
        } else {
            repo.join(&spec.context)
        };
        let owned = spec.clone();
        let digest = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
            let ctx = crate::context::walk(&root, &owned.dockerfile)?;
            crate::digest::input_digest(&owned, &ctx, &bases)
        })
        .await??;
        match store::inspect(Store::Docker, &spec.image).await? {
            Some(info) if info.labels.get(crate::labels::INPUTS_DIGEST) == Some(&digest) => {
                ids.insert(spec.image.clone(), info.id);
                digests.insert(spec.image.clone(), digest);
            }
            _ => return Ok(None),
        }
    }
    Ok(Some(digests))
}

/// Builds whatever the matrix's eval images need (one plan) and returns each eval
/// image's store and input digest.
pub(crate) fn build(
    repo: &Path,
    fleet: &Fleet,
    matrix: &matrix::Matrix,
    opts: &Options,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<HashMap<String, (Store, String)>> {
    crate::stage::stage_runner(repo)?;
    let info = opts
        .build_info
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no build information to build with (a kiln bug)"))?;
    let plan = plan::plan_without_bake(fleet, &matrix.request, info).map_err(refused)?;
    ensure(repo, plan, Some(fleet), &matrix.images, opts, runtime)
}

/// Builds what of `plan` is out of date (checked first in Docker's store: when all is
/// current, no backend is even probed) and returns the store and input digest of each
/// of `images`. `bake_fleet` makes the bake requests of a plan that has none yet.
pub(crate) fn ensure(
    repo: &Path,
    mut plan: plan::Plan,
    bake_fleet: Option<&Fleet>,
    images: &[String],
    opts: &Options,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<HashMap<String, (Store, String)>> {
    let settings = opts.build_settings();
    crate::ensure::prepare(repo, &mut plan, &settings);
    // Everything up to date in Docker's store (the usual case once built): no backend
    // probe, no build.
    if opts.backend != Requested::Podman {
        if let Some(digests) = runtime.block_on(all_current(repo, &plan.builds))? {
            return Ok(images
                .iter()
                .map(|i| {
                    (
                        i.clone(),
                        (Store::Docker, digests.get(i).cloned().unwrap_or_default()),
                    )
                })
                .collect());
        }
    }
    let summary = crate::ensure::ensure_prepared(
        repo,
        bake_fleet,
        plan,
        &settings,
        None,
        crate::ensure::Use::Run,
    )?;
    if summary.interrupted {
        return Err(Failure::interrupted(
            "interrupted while building; nothing was run",
        ));
    }
    if !summary.ok() {
        anyhow::bail!(
            "building the eval images failed; nothing was run (see the build output above)"
        );
    }
    let mut out = HashMap::new();
    for image in images {
        let store = summary
            .outcomes
            .iter()
            .find(|o| &o.image == image)
            .map(|o| o.store)
            .ok_or_else(|| anyhow::anyhow!("the plan did not build {image} (a kiln bug: the plan and the eval name disagree)"))?;
        let (store, digest) = runtime.block_on(prefer_engine(image, store))?;
        out.insert(image.clone(), (store, digest));
    }
    Ok(out)
}

/// An image current in podman's store that the engine holds with the same inputs runs
/// on the engine: kiln runs containers there when it can. Returns the store and the
/// image's input digest.
async fn prefer_engine(image: &str, store: Store) -> anyhow::Result<(Store, String)> {
    let digest = |info: Option<store::ImageInfo>| {
        info.and_then(|i| i.labels.get(crate::labels::INPUTS_DIGEST).cloned())
    };
    let here = digest(store::inspect(store, image).await?).ok_or_else(|| {
        anyhow::anyhow!(
            "{image} has no {} label after its build",
            crate::labels::INPUTS_DIGEST
        )
    })?;
    if store == Store::Podman {
        if let Ok(d) = store::inspect(Store::Docker, image).await {
            if digest(d).as_deref() == Some(here.as_str()) {
                return Ok((Store::Docker, here));
            }
        }
    }
    Ok((store, here))
}
