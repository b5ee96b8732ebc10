//! What a release target already holds, as cheaply as it can be told: one `HEAD` of the
//! tag, with an Accept of every manifest kind, so a multi-platform index counts as
//! there (a narrower Accept answers 404 for it and the tag would pass for absent).
//! A tag whose digest an earlier release verified for this very image (its manifest
//! says so) is already published after that `HEAD`; any other single-image manifest is
//! read once (`GET` by digest) to compare its config with the local image.

use std::collections::BTreeMap;

use crate::registry::{Client, Published, Reference};

use super::Local;

/// What a target reference holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Existing {
    Absent,
    /// This very image (same config).
    Same(Published),
    /// Something else, described for the refusal.
    Other(String),
}

pub(super) async fn existing(
    client: &Client,
    target: &Reference,
    local: &Local,
    known: &BTreeMap<String, Published>,
) -> anyhow::Result<Existing> {
    let Some(head) = client.head_any(&target.repository, &target.tag).await? else {
        return Ok(Existing::Absent);
    };
    if head.is_index() {
        return Ok(Existing::Other(format!(
            "a multi-platform index {} ({})",
            head.digest, head.media_type
        )));
    }
    if let Some(p) = known.get(&target.to_string()) {
        if p.digest == head.digest && p.config_digest == local.id {
            return Ok(Existing::Same(p.clone()));
        }
    }
    Ok(
        match client.manifest(&target.repository, &head.digest).await? {
            None => Existing::Absent,
            Some(m) if m.config.digest == local.id => Existing::Same(Published {
                reference: target.to_string(),
                digest: m.digest.clone(),
                config_digest: m.config.digest.clone(),
                size: m.config.size + m.layers.iter().map(|l| l.size).sum::<u64>(),
                pushed: false,
            }),
            Some(m) => Existing::Other(format!("{} (config {})", m.digest, m.config.digest)),
        },
    )
}
