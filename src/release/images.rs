//! The release's build step: every selected image built or up to date (labels checked
//! by the build), then looked up in its store and held to the label contract. A
//! problem blocks the benchmark (or task) it belongs to; one of an image no benchmark
//! owns (an agent, a core image) blocks the whole release.

use std::collections::BTreeMap;

use crate::build::{Status, Summary};
use crate::ensure::{ensure, Settings, Use};
use crate::fleet::Fleet;
use crate::registry;
use crate::store;

use super::select::Selection;
use super::{Halt, Local, Options};

/// What the build left for the later steps.
pub(super) struct Built {
    pub summary: Summary,
    /// Every image that passed, by local name.
    pub locals: BTreeMap<String, Local>,
    /// Blocked units (benchmark or task) and why.
    pub blocked: BTreeMap<String, String>,
}

pub(super) fn build(
    rt: &tokio::runtime::Runtime,
    fleet: &Fleet,
    opts: &Options,
    sel: &Selection,
) -> Result<Built, Halt> {
    let settings = Settings {
        jobs: Some(opts.jobs),
        progress: opts.progress,
        ca_bundle: opts.ca_bundle.clone(),
        ..Settings::new(opts.backend)
    };
    let plan = sel.plan.clone();
    let summary = ensure(&fleet.root, Some(fleet), plan, &settings, None, Use::Run)?;
    let mut blocked = BTreeMap::new();
    let mut locals = BTreeMap::new();
    // Every built image looked up at once (one engine round trip each, concurrently).
    let found = rt.block_on(futures_util::future::join_all(
        sel.items
            .iter()
            .zip(&summary.outcomes)
            .map(|(item, outcome)| store::inspect(outcome.store, &item.local)),
    ));
    for ((item, outcome), found) in sel.items.iter().zip(&summary.outcomes).zip(found) {
        let problem = match &outcome.status {
            Status::Built { .. } | Status::UpToDate { .. } => match found? {
                Some(info) => {
                    let missing: Vec<String> = registry::push::required_labels(&info.labels)
                        .into_iter()
                        .filter(|k| info.labels.get(k).is_none_or(|v| v.trim().is_empty()))
                        .collect();
                    if missing.is_empty() {
                        let local = Local {
                            store: outcome.store,
                            id: info.id,
                            labels: info.labels,
                        };
                        locals.insert(item.local.clone(), local);
                        None
                    } else {
                        Some(format!(
                            "gate `labels` failed: {} lacks {}",
                            item.local,
                            missing.join(", ")
                        ))
                    }
                }
                None => Some(format!(
                    "gate `build` failed: {} is not in {}'s store after the build",
                    item.local, outcome.store
                )),
            },
            Status::Failed(why) => Some(format!("gate `build` failed: {}: {why}", item.local)),
            Status::NotBuilt(why) => Some(format!(
                "gate `build` failed: {}: not built ({why})",
                item.local
            )),
            Status::Interrupted => {
                Some(format!("gate `build` failed: {}: interrupted", item.local))
            }
        };
        if let Some(p) = problem {
            match item.owner() {
                Some(b) => {
                    blocked.entry(b.to_string()).or_insert(p);
                }
                None => return Err(Halt::Blocked(p)),
            }
        }
    }
    if summary.interrupted {
        return Err(Halt::Blocked("interrupted during the build".into()));
    }
    Ok(Built {
        summary,
        locals,
        blocked,
    })
}
