//! `kiln release`: publishes the released benchmarks, every agent, the core images
//! the eval recipe needs and the eval images to an OCI registry — gated, pushed from
//! the store that holds each image, verified in the registry, and listed in a release
//! manifest.
//!
//! Order: select ([`select`]) → gates that need no image (lint, clean tree) → registry
//! login → build (every image up to date, labels checked) → validation of every
//! released benchmark for these very images → immutability of the version tag →
//! push and verify, each image as soon as it can go. A failed gate stops the release
//! before the first push, or (build, labels, validation) only the benchmark it
//! concerns. Re-running is safe: an image the registry already holds under a tag is
//! "already published" after one manifest request, and nothing is uploaded.

pub mod dry_run;
pub mod gates;
pub mod manifest;
pub mod select;

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Mutex;

use futures_util::StreamExt as _;

use crate::backend::detect::Requested;
use crate::build::Status;
use crate::fleet::Fleet;
use crate::labels::{self, BuildInfo};
use crate::registry::{self, Client, PushRequest, Reference, Registry};
use crate::store::{self, Store};
use crate::validate;

use manifest::{BenchmarkEntry, ImageEntry, Manifest, TaskVerdict, Validation, ValidationSummary};
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
    pub progress: crate::progress::Mode,
    /// `--ca-bundle`: for builds, and trusted for the registry's TLS.
    pub ca_bundle: Option<PathBuf>,
    /// `--insecure-registry` entries.
    pub insecure_registries: Vec<String>,
}

/// How a release ended.
#[derive(Debug)]
pub struct Outcome {
    pub manifest: Manifest,
    /// 0 complete; 1 a gate blocked something or a push/verification failed.
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
    let sel = select::select(fleet, info, &opts.only)?;
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
            &mut std::io::stdout().lock(),
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
    let say = |msg: &str| eprintln!("release: {msg}");
    let fail = |manifest: Manifest, msg: String| -> anyhow::Result<Outcome> {
        eprintln!("release: {msg}");
        eprintln!("release: nothing was pushed");
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
    let own_manifest = manifest_in_repo(&opts.repo, &opts.manifest);
    let dirty: Vec<String> = gates::dirty_paths(&opts.repo)?
        .into_iter()
        .filter(|p| Some(p.as_str()) != own_manifest.as_deref())
        .collect();
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
    for (item, outcome) in sel.items.iter().zip(&summary.outcomes) {
        let problem = match &outcome.status {
            Status::Built { .. } | Status::UpToDate { .. } => {
                match rt.block_on(store::inspect(outcome.store, &item.local))? {
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
                }
            }
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

    // Validation of every released benchmark still in the running, for these images.
    let to_validate: Vec<String> = sel
        .benchmarks
        .iter()
        .map(|b| b.name.clone())
        .filter(|b| !blocked.contains_key(b))
        .collect();
    let mut validations: BTreeMap<String, Validation> = BTreeMap::new();
    if !to_validate.is_empty() {
        let vopts = validate::Options {
            repo: opts.repo.clone(),
            benchmarks: to_validate,
            tasks: Vec::new(),
            jobs: opts.jobs,
            force: false,
            backend: opts.backend,
            progress: opts.progress,
            ca_bundle: opts.ca_bundle.clone(),
        };
        for bv in validate::validate(fleet, info, &vopts)? {
            let v = Validation {
                valid: bv.valid(),
                tasks: bv
                    .tasks
                    .iter()
                    .map(|t| TaskVerdict {
                        task: t.task.clone(),
                        oracle_score: t.oracle_score,
                        null_score: t.null_score,
                        valid: t.valid,
                    })
                    .collect(),
            };
            if !v.valid {
                let bad: Vec<String> = bv
                    .tasks
                    .iter()
                    .filter(|t| !t.valid)
                    .map(|t| {
                        format!(
                            "{}: {}",
                            t.task,
                            t.problem.as_deref().unwrap_or("not valid")
                        )
                    })
                    .collect();
                blocked
                    .entry(bv.benchmark.clone())
                    .or_insert(format!("gate `validation` failed: {}", bad.join("; ")));
            }
            validations.insert(bv.benchmark, v);
        }
    }
    for b in &sel.benchmarks {
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
        });
    }
    for (b, why) in &blocked {
        say(&format!("{b} is blocked, nothing of it is pushed: {why}"));
    }

    // What is already there, and whether a version tag would change.
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
    let checks = rt.block_on(async {
        futures_util::stream::iter(
            work.iter()
                .map(|(_, _, r)| client.manifest(&r.repository, &r.tag)),
        )
        .buffered(opts.jobs.max(1) * 4)
        .collect::<Vec<_>>()
        .await
    });
    let mut conflicts = Vec::new();
    let mut plan: Vec<(&Item, &Local, Reference, Option<registry::Published>)> = Vec::new();
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
            Some(m) if m.config.digest == local.id => Some(registry::Published {
                reference: reference.to_string(),
                digest: m.digest.clone(),
                config_digest: m.config.digest.clone(),
                size: m.config.size + m.layers.iter().map(|l| l.size).sum::<u64>(),
                pushed: false,
            }),
            Some(m) if reference.tag == info.version && !opts.force => {
                conflicts.push(format!(
                    "{reference} already exists as {} (config {}), but this release's {} is config {}: released versions are immutable (--force overwrites)",
                    m.digest, m.config.digest, item.local, local.id
                ));
                None
            }
            _ => None,
        };
        plan.push((item, local, reference.clone(), already));
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
    let total = plan.len();
    let progress = Progress::new(opts.progress, total);
    let manifest = Mutex::new(manifest);
    let failures = Mutex::new(Vec::<String>::new());
    let validation_of = |item: &Item| {
        item.owner()
            .and_then(|b| validations.get(b))
            .map(|v| ValidationSummary {
                valid: v.valid,
                tasks: v.tasks.len(),
            })
    };
    rt.block_on(async {
        futures_util::stream::iter(plan.iter().map(|(item, local, reference, already)| {
            let client = &client;
            let manifest = &manifest;
            let failures = &failures;
            let progress = &progress;
            let validation_of = &validation_of;
            async move {
                let result = match already {
                    Some(p) => Ok(p.clone()),
                    None => {
                        let req = PushRequest {
                            source: item.local.clone(),
                            store: local.store,
                            target: reference.clone(),
                            required_labels: registry::push::required_labels(&local.labels),
                        };
                        registry::push_and_verify(client, &req).await
                    }
                };
                match result {
                    Ok(p) => {
                        progress.done(&p);
                        let label = |k: &str| local.labels.get(k).cloned().unwrap_or_default();
                        let entry = ImageEntry {
                            reference: p.reference.clone(),
                            digest: p.digest.clone(),
                            config_digest: p.config_digest.clone(),
                            size: p.size,
                            kind: item.kind.clone(),
                            benchmark: item.benchmark.clone(),
                            agent: item.agent.clone(),
                            task: item.task.clone(),
                            inputs_digest: label(labels::INPUTS_DIGEST),
                            revision: label(labels::OCI_REVISION),
                            version: label(labels::OCI_VERSION),
                            status: if p.pushed {
                                "pushed"
                            } else {
                                "already-published"
                            }
                            .to_string(),
                            validation: validation_of(item),
                        };
                        let mut m = manifest.lock().expect("manifest");
                        m.images.push(entry);
                        if let Err(e) = m.write(&opts.manifest) {
                            failures
                                .lock()
                                .expect("failures")
                                .push(format!("writing the manifest: {e:#}"));
                        }
                    }
                    Err(e) => {
                        let msg = format!("{reference}: {e:#}");
                        progress.failed(&msg);
                        failures.lock().expect("failures").push(msg);
                    }
                }
            }
        }))
        .buffer_unordered(opts.jobs.max(1))
        .collect::<Vec<()>>()
        .await
    });
    progress.finish();
    let mut manifest = manifest.into_inner().expect("manifest");
    let failures = failures.into_inner().expect("failures");
    manifest.complete = failures.is_empty() && blocked.is_empty();
    manifest.write(&opts.manifest)?;
    print_table(&manifest);
    for f in &failures {
        eprintln!("release: FAILED {f}");
    }
    let pushed = manifest
        .images
        .iter()
        .filter(|i| i.status == "pushed")
        .count();
    eprintln!(
        "release: {} reference(s) published ({} pushed now, {} already there), {} failed, {} benchmark(s) blocked; manifest {}",
        manifest.images.len(),
        pushed,
        manifest.images.len() - pushed,
        failures.len(),
        blocked.len(),
        opts.manifest.display()
    );
    let exit_code = if manifest.complete { 0 } else { 1 };
    Ok(Outcome {
        manifest,
        exit_code,
    })
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
    println!(
        "{:<width$}  {:<9}  {:<17}  DIGEST",
        "REFERENCE", "KIND", "STATUS"
    );
    for i in &images {
        println!(
            "{:<width$}  {:<9}  {:<17}  {}",
            i.reference, i.kind, i.status, i.digest
        );
    }
}

/// Images done / total and bytes on a terminal; one plain line per image otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    bytes: Mutex<u64>,
}

impl Progress {
    fn new(mode: crate::progress::Mode, total: usize) -> Progress {
        use crate::progress::Mode;
        let tty = match mode {
            Mode::Tty => true,
            Mode::Auto => std::io::stderr().is_terminal(),
            Mode::Plain | Mode::Quiet => false,
        };
        let bar = tty.then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} images {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            bytes: Mutex::new(0),
        }
    }

    fn done(&self, p: &registry::Published) {
        let mut bytes = self.bytes.lock().expect("bytes");
        if p.pushed {
            *bytes += p.size;
        }
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                bar.set_message(format!("{:.1} MB pushed", *bytes as f64 / 1e6));
            }
            None => eprintln!(
                "release: {} {} {}",
                if p.pushed {
                    "pushed"
                } else {
                    "already published"
                },
                p.reference,
                p.digest
            ),
        }
    }

    fn failed(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("release: FAILED {msg}")),
            None => eprintln!("release: FAILED {msg}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
