//! Getting eval images to the run registry, tagged by content: the tag is the image's
//! input digest (label `kiln.inputs.digest`), so a run never collides with a released
//! tag, two different builds never share a tag, and a re-run finds its images there.

use anyhow::{bail, Context as _};
use bollard::query_parameters::{PushImageOptions, TagImageOptions};
use futures_util::StreamExt as _;

use crate::store::{self, Store};

/// `<registry>/<repository without kiln's registry host>:inputs-<hex>`.
pub fn registry_ref(registry: &str, local: &str, inputs_digest: &str) -> String {
    let without_tag = match local.rfind(':') {
        Some(i) if !local[i..].contains('/') => &local[..i],
        _ => local,
    };
    let path = without_tag
        .split_once('/')
        .map(|(_, rest)| rest)
        .unwrap_or(without_tag);
    let hex = inputs_digest
        .strip_prefix("sha256:")
        .unwrap_or(inputs_digest);
    format!("{}/{path}:inputs-{hex}", registry.trim_end_matches('/'))
}

/// The input digest of a local image in Docker's store.
pub async fn inputs_digest(local: &str) -> anyhow::Result<String> {
    let info = store::inspect(Store::Docker, local)
        .await?
        .ok_or_else(|| anyhow::anyhow!("{local} is not in Docker's image store"))?;
    info.labels
        .get(crate::labels::INPUTS_DIGEST)
        .cloned()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{local} has no {} label: build it with kiln",
                crate::labels::INPUTS_DIGEST
            )
        })
}

/// Tags `local` as `remote` and pushes it from Docker's store. Layers the registry
/// already holds are not sent again.
pub async fn push(local: &str, remote: &str) -> anyhow::Result<()> {
    let docker = bollard::Docker::connect_with_local_defaults()
        .context("connecting to the Docker Engine")?;
    let (repo, tag) = remote.rsplit_once(':').expect("registry_ref has a tag");
    docker
        .tag_image(
            local,
            Some(TagImageOptions {
                repo: Some(repo.to_string()),
                tag: Some(tag.to_string()),
            }),
        )
        .await
        .with_context(|| format!("tagging {local} as {remote}"))?;
    let mut stream = docker.push_image(
        repo,
        Some(PushImageOptions {
            tag: Some(tag.to_string()),
            platform: None,
        }),
        None,
    );
    while let Some(item) = stream.next().await {
        let info = item.with_context(|| format!("pushing {remote}"))?;
        if let Some(err) = info.error_detail {
            bail!(
                "pushing {remote}: {}",
                err.message.unwrap_or_else(|| "unknown error".into())
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_tags_replace_the_fleet_registry_and_tag() {
        assert_eq!(
            registry_ref(
                "127.0.0.1:5000/kiln",
                "kiln.local/evals/terminal-lite-count-lines--null:dev",
                "sha256:abcd"
            ),
            "127.0.0.1:5000/kiln/evals/terminal-lite-count-lines--null:inputs-abcd"
        );
        assert_eq!(
            registry_ref("r:1/", "kiln.local/evals/x--y", "ff"),
            "r:1/evals/x--y:inputs-ff"
        );
    }
}
