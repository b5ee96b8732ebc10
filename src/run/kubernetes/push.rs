//! Getting eval images to the run registry, tagged by content: the tag is the image's
//! input digest (label `kiln.inputs.digest`), so a run never collides with a released
//! tag, two different builds never share a tag, and a re-run finds its images there.
//! Pushing and checking the result is the release pipeline's code
//! (`registry::push_and_verify`); the release gates are not applied here.

use anyhow::{anyhow, bail};

use crate::labels;
use crate::registry::{self, Client, Published, PushRequest, Reference};
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

/// Puts the image `local` of `store` into the run registry under its content tag,
/// unless the registry already holds that very image there. `built` is the input
/// digest the build produced: the image is pushed by its id, so a build of another
/// kiln between this run's build and its push cannot change what is pushed.
pub async fn publish(
    client: &Client,
    registry: &str,
    store: Store,
    local: &str,
    built: &str,
) -> anyhow::Result<Published> {
    let info = store::inspect(store, local)
        .await?
        .ok_or_else(|| anyhow!("{local} is not in {store}'s image store"))?;
    let inputs = info.labels.get(labels::INPUTS_DIGEST).ok_or_else(|| {
        anyhow!(
            "{local} has no {} label: build it with kiln",
            labels::INPUTS_DIGEST
        )
    })?;
    if inputs != built {
        bail!("{local} changed since this run built it (inputs {inputs}, built {built}): another build replaced it; run again");
    }
    let target = Reference::parse(&registry_ref(registry, local, inputs))?;
    if let Some(m) = client.manifest(&target.repository, &target.tag).await? {
        if m.config.digest == info.id {
            return Ok(Published {
                reference: target.to_string(),
                size: m.config.size + m.layers.iter().map(|l| l.size).sum::<u64>(),
                digest: m.digest,
                config_digest: m.config.digest,
                pushed: false,
            });
        }
    }
    let req = PushRequest {
        source: info.id.clone(),
        store,
        target,
        required_labels: registry::push::required_labels(&info.labels),
    };
    registry::push_and_verify(client, &req).await
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
