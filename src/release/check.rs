//! What a release target already holds, as cheaply as it can be told: one `HEAD` of the
//! tag, with an Accept of every manifest kind, so a multi-platform index counts as
//! there (a narrower Accept answers 404 for it and the tag would pass for absent).
//! A tag whose digest an earlier release verified for this very image (its manifest
//! says so) is already published after that `HEAD`; any other single-image manifest is
//! read once (`GET` by digest) to compare its config with the local image.

use std::collections::BTreeMap;

use futures_util::StreamExt as _;

use crate::labels::BuildInfo;
use crate::registry::{Client, Published, Reference};

use super::publish::{Job, Signals};
use super::select::Item;
use super::{Halt, Local, Options};

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

/// The pushes to make: what each target already holds (one `HEAD` per tag, concurrent),
/// and the immutable-version gate: a version tag that holds another image is refused
/// unless `--force`.
pub(super) fn plan<'a>(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    work: &[(&'a Item, &'a Local, Reference)],
    info: &BuildInfo,
    opts: &Options,
    signals: &Signals,
) -> Result<Vec<Job<'a>>, Halt> {
    let known = previously_published(&opts.manifest);
    let checks = rt.block_on(async {
        let all =
            futures_util::stream::iter(work.iter().map(|(_, l, r)| existing(client, r, l, &known)))
                .buffered(opts.jobs.max(1) * 4)
                .collect::<Vec<_>>();
        tokio::select! {
            done = all => Some(done),
            _ = signals.wait() => None,
        }
    });
    let checks = checks.ok_or(Halt::Interrupted)?;
    let mut conflicts = Vec::new();
    let mut jobs = Vec::new();
    for ((item, local, reference), check) in work.iter().zip(checks) {
        let existing = check
            .map_err(|e| Halt::Blocked(format!("reading {reference} from the registry: {e:#}")))?;
        let already = match existing {
            Existing::Absent => None,
            Existing::Same(p) => Some(p),
            Existing::Other(what) if reference.tag == info.version && !opts.force => {
                conflicts.push(format!(
                    "registry {}: {reference} already exists as {what}, but this release's {} is config {}: released versions are immutable (--force overrides)",
                    opts.registry.host, item.local, local.id
                ));
                None
            }
            Existing::Other(_) => None,
        };
        jobs.push(Job {
            item,
            local,
            reference: reference.clone(),
            already,
        });
    }
    if !conflicts.is_empty() {
        return Err(Halt::Blocked(format!(
            "gate `immutable version` failed:\n  {}",
            conflicts.join("\n  ")
        )));
    }
    Ok(jobs)
}

/// What earlier releases published and verified, by reference (the manifest they left):
/// a tag that still resolves to the digest listed there holds that very image.
pub(super) fn previously_published(path: &std::path::Path) -> BTreeMap<String, Published> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<super::manifest::Manifest>(&b).ok())
        .map(|m| {
            m.images
                .into_iter()
                .map(|i| {
                    let p = Published {
                        reference: i.reference.clone(),
                        digest: i.digest,
                        config_digest: i.config_digest,
                        size: i.size,
                        pushed: false,
                    };
                    (i.reference, p)
                })
                .collect()
        })
        .unwrap_or_default()
}
