//! `kiln release`: publishes the released benchmarks, every agent, the core images
//! the eval recipe needs and the eval images to an OCI registry — gated, pushed from
//! the store that holds each image, verified in the registry, and listed in a release
//! manifest.
//!
//! Order: select ([`select`]) → gates that need no image (lint, clean tree) → registry
//! login → build (every image up to date, labels checked) → validation of every
//! released benchmark for these very images ([`validation`]) → what each tag holds
//! ([`check`]: one `HEAD` per tag, any manifest kind) and immutability of the version
//! tag → push and verify ([`publish`]), each image as soon as it can go. A failed gate stops the
//! release before the first push, or (build, labels, validation) only the benchmark it
//! concerns. Re-running is safe: an image the registry already holds under a tag is
//! "already published", and nothing is uploaded. Ctrl-C, fail-fast ([`fail_fast`]) and
//! the temporary engine tags ([`temp_tags`]) are about stopping early without leaving
//! anything half-done: docs/release-manifest.md, "When a release stops early".
//!
//! A Harbor dataset goes through the same steps with its tasks as the units published
//! or blocked ([`harbor`]: selection, validation, and `--pin` after the push).

mod check;
pub mod dry_run;
pub mod fail_fast;
pub mod gates;
pub mod harbor;
pub mod manifest;
mod publish;
pub mod select;
pub mod temp_tags;
mod validation;

use crate::printer::{errln, outln};
use std::collections::BTreeMap;
use std::path::PathBuf;

use futures_util::StreamExt as _;

use crate::backend::detect::Requested;
use crate::build::Status;
use crate::fleet::Fleet;
use crate::labels::{self, BuildInfo};
use crate::registry::{self, Client, Reference, Registry};
use crate::store::{self, Store};
use crate::validate;
use manifest::{BenchmarkEntry, ImageEntry, Manifest, ValidationSummary};
use select::Item;

/// How to release.
#[derive(Debug, Clone)]
pub struct Options {
    pub repo: PathBuf,
    pub registry: Registry,
    /// Extra tags (`--tag`), after the version.
    pub tags: Vec<String>,
    /// `--only` benchmark or agent names.
    pub only: Vec<String>,
    /// Where the manifest goes.
    pub manifest: PathBuf,
    pub dry_run: bool,
    /// Overwrite a version tag that names another image.
    pub force: bool,
    pub allow_dirty: bool,
    pub jobs: usize,
    pub backend: Requested,
    pub progress: crate::printer::Mode,
    /// `--ca-bundle`: for builds, and trusted for the registry's TLS.
    pub ca_bundle: Option<PathBuf>,
    /// `--insecure-registry` entries.
    pub insecure_registries: Vec<String>,
    /// `--base-map`/`--base`: public bases replaced by local ones (Harbor datasets).
    pub base_map: crate::plan::base_map::BaseMap,
    /// `--pin`: write each published Harbor task's digest reference into its task.toml.
    pub pin: bool,
}

/// How a release ended.
#[derive(Debug)]
pub struct Outcome {
    pub manifest: Manifest,
    /// 0 complete; 1 a gate blocked something or a push/verification failed (or
    /// fail-fast stopped the pushes); 130 interrupted (SIGINT/SIGTERM).
    pub exit_code: u8,
}

/// One image's state through the release.
#[derive(Debug, Clone)]
struct Local {
    store: Store,
    id: String,
    labels: BTreeMap<String, String>,
}

/// The tags of a release: the version, then `--tag`s, each once.
pub fn release_tags(version: &str, extra: &[String]) -> anyhow::Result<Vec<String>> {
    let mut tags = vec![version.to_string()];
    for t in extra {
        if !registry::reference::valid_tag(t) {
            return Err(crate::error::Failure::usage(format!(
                "--tag {t:?} is not a valid image tag (letters, digits, . _ -, at most 128, not starting with . or -)"
            )));
        }
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    if !registry::reference::valid_tag(version) {
        return Err(crate::error::Failure::usage(format!(
            "the version {version:?} (git describe --tags --always, or KILN_VERSION) is not a valid image tag"
        )));
    }
    Ok(tags)
}

/// Where `item` goes with `tag`.
fn target(reg: &Registry, item: &Item, tag: &str) -> Reference {
    let repository = if reg.prefix.is_empty() {
        item.path.clone()
    } else {
        format!("{}/{}", reg.prefix, item.path)
    };
    Reference {
        host: reg.host.clone(),
        repository,
        tag: tag.to_string(),
    }
}

/// Runs a release (or prints it, with `dry_run`). Refused input is a usage error
/// (exit 2); a failed gate or push ends with exit 1 in [`Outcome`].
pub fn release(fleet: &Fleet, info: &BuildInfo, opts: &Options) -> anyhow::Result<Outcome> {
    let tags = release_tags(&info.version, &opts.tags)?;
    let sel = match fleet.layout.dataset {
        Some(_) => harbor::select(fleet, info, &opts.only, &opts.base_map)?,
        None => select::select(fleet, info, &opts.only)?,
    };
    let mut manifest = Manifest {
        schema_version: manifest::SCHEMA_VERSION,
        registry: opts.registry.to_string(),
        version: info.version.clone(),
        tags: tags.clone(),
        revision: info.revision.clone(),
        source: info.source.clone(),
        ..Default::default()
    };
    if opts.dry_run {
        dry_run::print(
            &mut crate::printer::stdout(),
            fleet,
            opts,
            &sel,
            &tags,
            &info.version,
        )?;
        return Ok(Outcome {
            manifest,
            exit_code: 0,
        });
    }
    let say = |msg: &str| errln!("release: {msg}");
    let fail = |manifest: Manifest, msg: String| -> anyhow::Result<Outcome> {
        errln!("release: {msg}");
        errln!("release: nothing was pushed");
        Ok(Outcome {
            manifest,
            exit_code: 1,
        })
    };

    // Gates that need no image.
    if let Err(why) = gates::lint(&opts.repo)? {
        return fail(manifest, format!("gate `lint` failed: {why}"));
    }
    say("gate lint: clean");
    // The manifest a previous release wrote is kiln's own output, not a change.
    // So is a task.toml that differs from HEAD only by kiln's pin.
    let own_manifest = manifest_in_repo(&opts.repo, &opts.manifest);
    let mut dirty: Vec<String> = gates::dirty_paths(&opts.repo)?
        .into_iter()
        .filter(|p| Some(p.as_str()) != own_manifest.as_deref())
        .collect();
    if sel.harbor.is_some() {
        let pins = harbor::own_pins(fleet, &dirty);
        dirty.retain(|p| !pins.contains(p));
    }
    if !dirty.is_empty() {
        if !opts.allow_dirty {
            let shown: Vec<&str> = dirty.iter().take(10).map(String::as_str).collect();
            return fail(
                manifest,
                format!(
                    "gate `clean work tree` failed: {} path(s) changed or untracked ({}{}); commit them, or pass --allow-dirty (recorded in the manifest)",
                    dirty.len(),
                    shown.join(", "),
                    if dirty.len() > 10 { ", …" } else { "" }
                ),
            );
        }
        manifest.dirty = true;
        say(&format!(
            "gate clean work tree: {} changed path(s), allowed by --allow-dirty",
            dirty.len()
        ));
    } else {
        say("gate clean work tree: clean");
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.jobs.clamp(2, 8))
        .enable_all()
        .build()?;
    let transport =
        registry::Transport::new(opts.ca_bundle.clone(), opts.insecure_registries.clone())?;
    let transport = rt.block_on(transport.with_engine_insecure());
    let client = Client::new(&opts.registry)?.over(&transport)?;
    if let Err(e) = rt.block_on(client.ping()) {
        return fail(manifest, format!("gate `registry login` failed: {e:#}"));
    }
    say(&format!(
        "gate registry login: {} accepts the login",
        opts.registry.host
    ));

    // Build: every image up to date, labels checked by the executor.
    let summary = validate::build_for_runs(
        fleet,
        sel.plan.clone(),
        opts.backend,
        opts.jobs,
        false,
        opts.progress,
        opts.ca_bundle.as_deref(),
    )?;
    let mut blocked: BTreeMap<String, String> = BTreeMap::new();
    let mut locals: BTreeMap<String, Local> = BTreeMap::new();
    // Every built image looked up at once (one engine round trip each, concurrently).
    let mut inspected = rt
        .block_on(futures_util::future::join_all(
            sel.items
                .iter()
                .zip(&summary.outcomes)
                .map(|(item, outcome)| store::inspect(outcome.store, &item.local)),
        ))
        .into_iter();
    for (item, outcome) in sel.items.iter().zip(&summary.outcomes) {
        let found = inspected.next().expect("one lookup per item");
        let problem = match &outcome.status {
            Status::Built { .. } | Status::UpToDate { .. } => match found? {
                Some(info) => {
                    let missing: Vec<String> = registry::push::required_labels(&info.labels)
                        .into_iter()
                        .filter(|k| info.labels.get(k).is_none_or(|v| v.trim().is_empty()))
                        .collect();
                    if missing.is_empty() {
                        locals.insert(
                            item.local.clone(),
                            Local {
                                store: outcome.store,
                                id: info.id,
                                labels: info.labels,
                            },
                        );
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
                None => return fail(manifest, p),
            }
        }
    }
    if summary.interrupted {
        return fail(manifest, "interrupted during the build".into());
    }

    // Validation, for these very images.
    let validations = validation::run(fleet, info, opts, &sel, &summary, &mut blocked)?;
    for b in sel.benchmarks.iter().filter(|_| sel.harbor.is_none()) {
        manifest.benchmarks.push(BenchmarkEntry {
            name: b.name.clone(),
            env: b.env.as_str().to_string(),
            tasks: b.tasks.len(),
            status: if blocked.contains_key(&b.name) {
                "blocked"
            } else {
                "published"
            }
            .to_string(),
            blocked_by: blocked.get(&b.name).cloned(),
            validation: validations.get(&b.name).cloned(),
            not_published: Vec::new(),
        });
    }
    if let Some(tasks) = &sel.harbor {
        let v = validations.get(&fleet.benchmarks[0].name).cloned();
        manifest
            .benchmarks
            .push(harbor::entry(fleet, tasks, &blocked, v));
        for (task, why) in &tasks.left_out {
            say(&format!(
                "task {task} is not published: it cannot run here: {why}"
            ));
        }
    }
    for (unit, why) in &blocked {
        say(&format!(
            "{} is blocked, nothing of it is pushed: {why}",
            sel.unit_name(unit)
        ));
    }

    // From here on Ctrl-C stops the release (no new push, the ones in flight cancelled).
    let signals = publish::Signals::install(&rt)?;
    let tags_of_this_run = temp_tags::TempTags::new(&opts.repo);
    for l in rt.block_on(temp_tags::clean_dead(&opts.repo))? {
        say(&format!(
            "removed the temporary tag {} ({} store) left by kiln release process {}, which is no longer running",
            l.reference, l.store, l.pid
        ));
    }

    // What is already there (one HEAD per tag), and whether a version tag would change.
    let work: Vec<(&Item, &Local, Reference)> = sel
        .items
        .iter()
        .filter(|i| i.owner().is_none_or(|b| !blocked.contains_key(b)))
        .filter_map(|i| locals.get(&i.local).map(|l| (i, l)))
        .flat_map(|(i, l)| {
            tags.iter()
                .map(move |t| (i, l, target(&opts.registry, i, t)))
        })
        .collect();
    let known = previously_published(&opts.manifest);
    let checks = rt.block_on(async {
        let all = futures_util::stream::iter(
            work.iter()
                .map(|(_, l, r)| check::existing(&client, r, l, &known)),
        )
        .buffered(opts.jobs.max(1) * 4)
        .collect::<Vec<_>>();
        tokio::select! {
            done = all => Some(done),
            _ = signals.wait() => None,
        }
    });
    let Some(checks) = checks else {
        manifest.write(&opts.manifest)?;
        errln!("release: interrupted before the first push; nothing was pushed");
        return Ok(Outcome {
            manifest,
            exit_code: crate::error::Exit::Interrupted.code(),
        });
    };
    let mut conflicts = Vec::new();
    let mut jobs: Vec<publish::Job> = Vec::new();
    for ((item, local, reference), check) in work.iter().zip(checks) {
        let existing = match check {
            Ok(m) => m,
            Err(e) => {
                return fail(
                    manifest,
                    format!("reading {reference} from the registry: {e:#}"),
                )
            }
        };
        let already = match existing {
            check::Existing::Absent => None,
            check::Existing::Same(p) => Some(p),
            check::Existing::Other(what) if reference.tag == info.version && !opts.force => {
                conflicts.push(format!(
                    "registry {}: {reference} already exists as {what}, but this release's {} is config {}: released versions are immutable (--force overwrites)",
                    opts.registry.host, item.local, local.id
                ));
                None
            }
            check::Existing::Other(_) => None,
        };
        jobs.push(publish::Job {
            item,
            local,
            reference: reference.clone(),
            already,
        });
    }
    if !conflicts.is_empty() {
        return fail(
            manifest,
            format!(
                "gate `immutable version` failed:\n  {}",
                conflicts.join("\n  ")
            ),
        );
    }

    // Push and verify; the manifest is rewritten after every verified image.
    let progress = publish::Progress::new(opts.progress, jobs.len());
    let validation_of = |item: &Item| match &sel.harbor {
        // A Harbor task is published on its own verdict.
        Some(_) => item
            .benchmark
            .as_ref()
            .and_then(|b| validations.get(b))
            .and_then(|v| v.tasks.iter().find(|t| Some(&t.task) == item.task.as_ref()))
            .map(|t| ValidationSummary {
                valid: t.valid,
                tasks: 1,
            }),
        None => item
            .owner()
            .and_then(|b| validations.get(b))
            .map(|v| ValidationSummary {
                valid: v.valid,
                tasks: v.tasks.len(),
            }),
    };
    let mut write_failures = Vec::new();
    let (mut failures, stop) = rt.block_on(publish::publish(
        &client,
        &jobs,
        opts.jobs,
        &signals,
        &tags_of_this_run,
        &progress,
        |job, p| {
            let label = |k: &str| job.local.labels.get(k).cloned().unwrap_or_default();
            manifest.images.push(ImageEntry {
                reference: p.reference.clone(),
                digest: p.digest.clone(),
                config_digest: p.config_digest.clone(),
                size: p.size,
                kind: job.item.kind.clone(),
                benchmark: job.item.benchmark.clone(),
                agent: job.item.agent.clone(),
                task: job.item.task.clone(),
                inputs_digest: label(labels::INPUTS_DIGEST),
                revision: label(labels::OCI_REVISION),
                version: label(labels::OCI_VERSION),
                status: if p.pushed {
                    "pushed"
                } else {
                    "already-published"
                }
                .to_string(),
                validation: validation_of(job.item),
            });
            if let Err(e) = manifest.write(&opts.manifest) {
                write_failures.push(format!("writing the manifest: {e:#}"));
            }
        },
    ));
    progress.finish();
    failures.extend(write_failures);
    // Whatever ended the pushes, no temporary tag stays in the local store.
    for problem in rt.block_on(tags_of_this_run.remove_all()) {
        errln!("release: {problem}");
    }
    drop(signals);
    manifest.complete = failures.is_empty() && blocked.is_empty() && stop.is_none();
    manifest.write(&opts.manifest)?;
    print_table(&manifest);
    if opts.pin && stop.is_none() {
        failures.extend(harbor::pin(fleet, opts, &sel, &manifest, &blocked));
    }
    for f in &failures {
        errln!("release: FAILED {f}");
    }
    let pushed = manifest
        .images
        .iter()
        .filter(|i| i.status == "pushed")
        .count();
    errln!(
        "release: {} reference(s) published ({} pushed now, {} already there), {} failed, {} {}(s) blocked; {} registry request(s); manifest {}",
        manifest.images.len(),
        pushed,
        manifest.images.len() - pushed,
        failures.len(),
        blocked.len(),
        if sel.harbor.is_some() { "task" } else { "benchmark" },
        client.request_count(),
        opts.manifest.display()
    );
    let exit_code = match &stop {
        Some(publish::Stop::Interrupted) => {
            errln!(
                "release: interrupted: {} of {} reference(s) published and listed in the manifest; run the same release again to complete it",
                manifest.images.len(),
                jobs.len()
            );
            crate::error::Exit::Interrupted.code()
        }
        Some(publish::Stop::FailFast(why)) => {
            errln!("release: stopped (fail-fast): {why}");
            1
        }
        None if manifest.complete && failures.is_empty() => 0,
        None => 1,
    };
    Ok(Outcome {
        manifest,
        exit_code,
    })
}

/// What earlier releases published and verified, by reference (the manifest they left):
/// a tag that still resolves to the digest listed there holds that very image.
fn previously_published(path: &std::path::Path) -> BTreeMap<String, registry::Published> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
        .map(|m| {
            m.images
                .into_iter()
                .map(|i| {
                    (
                        i.reference.clone(),
                        registry::Published {
                            reference: i.reference,
                            digest: i.digest,
                            config_digest: i.config_digest,
                            size: i.size,
                            pushed: false,
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The manifest's path relative to the repository, when it lies inside it.
fn manifest_in_repo(repo: &std::path::Path, manifest: &std::path::Path) -> Option<String> {
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

/// The closing table: one line per published reference.
fn print_table(m: &Manifest) {
    let mut images = m.images.clone();
    images.sort_by(|a, b| a.reference.cmp(&b.reference));
    let width = images
        .iter()
        .map(|i| i.reference.len())
        .max()
        .unwrap_or(9)
        .max(9);
    outln!(
        "{:<width$}  {:<9}  {:<17}  DIGEST",
        "REFERENCE",
        "KIND",
        "STATUS"
    );
    for i in &images {
        outln!(
            "{:<width$}  {:<9}  {:<17}  {}",
            i.reference,
            i.kind,
            i.status,
            i.digest
        );
    }
}
