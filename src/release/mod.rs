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
mod images;
pub mod manifest;
mod publish;
pub mod select;
pub mod temp_tags;
mod validation;

use crate::printer::{errln, outln};
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::backend::detect::Requested;
use crate::error::Exit;
use crate::fleet::Fleet;
use crate::labels::BuildInfo;
use crate::registry::{self, Client, Reference, Registry};
use crate::store::Store;
use manifest::{BenchmarkEntry, Manifest};
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
        let out = &mut crate::printer::stdout();
        dry_run::print(out, fleet, opts, &sel, &tags, &info.version)?;
        return Ok(Outcome {
            manifest,
            exit_code: 0,
        });
    }
    let release = Release {
        fleet,
        info,
        opts,
        sel: &sel,
        tags: &tags,
    };
    let exit_code = match release.steps(&mut manifest) {
        Ok(code) => code,
        Err(Halt::Blocked(why)) => {
            say(&why);
            say("nothing was pushed");
            1
        }
        Err(Halt::Interrupted) => {
            manifest.write(&opts.manifest)?;
            say("interrupted before the first push; nothing was pushed");
            Exit::Interrupted.code()
        }
        Err(Halt::Error(e)) => return Err(e),
    };
    Ok(Outcome {
        manifest,
        exit_code,
    })
}

/// Why a release stopped before its first push.
enum Halt {
    /// A gate failed for the whole release (the message names it).
    Blocked(String),
    Interrupted,
    Error(anyhow::Error),
}

impl From<anyhow::Error> for Halt {
    fn from(e: anyhow::Error) -> Halt {
        Halt::Error(e)
    }
}

/// A line of the release's account, on stderr.
fn say(msg: &str) {
    errln!("release: {msg}");
}

/// One release, between its selection and its outcome.
struct Release<'a> {
    fleet: &'a Fleet,
    info: &'a BuildInfo,
    opts: &'a Options,
    sel: &'a select::Selection,
    tags: &'a [String],
}

impl Release<'_> {
    /// The steps in order; each page-long step lives in its own module: the gates that
    /// need no image ([`gates`]), the registry login, the build ([`images`]), validation
    /// ([`validation`]), what the registry holds ([`check`]), then push and verify
    /// ([`publish`]). Returns the exit status.
    fn steps(&self, manifest: &mut Manifest) -> Result<u8, Halt> {
        let opts = self.opts;
        gates::lint(&opts.repo)?
            .map_err(|why| Halt::Blocked(format!("gate `lint` failed: {why}")))?;
        say("gate lint: clean");
        manifest.dirty = gates::work_tree(self.fleet, opts, self.sel.harbor.is_some())?;

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(opts.jobs.clamp(2, 8))
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)?;
        let transport =
            registry::Transport::new(opts.ca_bundle.clone(), opts.insecure_registries.clone())?;
        let transport = rt.block_on(transport.with_engine_insecure());
        let client = Client::new(&opts.registry)?.over(&transport)?;
        if let Err(e) = rt.block_on(client.ping()) {
            return Err(Halt::Blocked(format!(
                "gate `registry login` failed: {e:#}"
            )));
        }
        say(&format!(
            "gate registry login: {} accepts the login",
            opts.registry.host
        ));

        let built = images::build(&rt, self.fleet, opts, self.sel)?;
        let mut blocked = built.blocked;
        let validations = validation::run(
            self.fleet,
            self.info,
            opts,
            self.sel,
            &built.summary,
            &mut blocked,
        )?;
        self.record_units(manifest, &blocked, &validations);

        // From here on Ctrl-C stops the release (no new push, the ones in flight cancelled).
        let signals = publish::Signals::install(&rt)?;
        let temp = temp_tags::TempTags::new(&opts.repo);
        for l in rt.block_on(temp_tags::clean_dead(&opts.repo))? {
            say(&format!(
                "removed the temporary tag {} ({} store) left by kiln release process {}, which is no longer running",
                l.reference, l.store, l.pid
            ));
        }
        let work = self.work(&built.locals, &blocked);
        let jobs = check::plan(&rt, &client, &work, self.info, opts, &signals)?;
        Ok(self.publish(
            &rt,
            &client,
            &jobs,
            &signals,
            &temp,
            manifest,
            &blocked,
            &validations,
        ))
    }

    /// Each released benchmark (or the dataset) in the manifest: published or blocked, and why.
    fn record_units(
        &self,
        manifest: &mut Manifest,
        blocked: &BTreeMap<String, String>,
        validations: &BTreeMap<String, manifest::Validation>,
    ) {
        let sel = self.sel;
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
            let v = validations.get(&self.fleet.benchmarks[0].name).cloned();
            manifest
                .benchmarks
                .push(harbor::entry(self.fleet, tasks, blocked, v));
            for (task, why) in &tasks.left_out {
                say(&format!(
                    "task {task} is not published: it cannot run here: {why}"
                ));
            }
        }
        for (unit, why) in blocked {
            say(&format!(
                "{} is blocked, nothing of it is pushed: {why}",
                sel.unit_name(unit)
            ));
        }
    }

    /// Every (image, tag) to publish: the images of units no gate blocked.
    fn work<'s>(
        &'s self,
        locals: &'s BTreeMap<String, Local>,
        blocked: &BTreeMap<String, String>,
    ) -> Vec<(&'s Item, &'s Local, Reference)> {
        self.sel
            .items
            .iter()
            .filter(|i| i.owner().is_none_or(|b| !blocked.contains_key(b)))
            .filter_map(|i| locals.get(&i.local).map(|l| (i, l)))
            .flat_map(|(i, l)| {
                self.tags
                    .iter()
                    .map(move |t| (i, l, target(&self.opts.registry, i, t)))
            })
            .collect()
    }

    /// Pushes and verifies every job, rewriting the manifest after each verified image;
    /// then the closing table and account. Returns the exit status.
    #[allow(clippy::too_many_arguments)]
    fn publish(
        &self,
        rt: &tokio::runtime::Runtime,
        client: &Client,
        jobs: &[publish::Job],
        signals: &publish::Signals,
        temp: &temp_tags::TempTags,
        manifest: &mut Manifest,
        blocked: &BTreeMap<String, String>,
        validations: &BTreeMap<String, manifest::Validation>,
    ) -> u8 {
        let opts = self.opts;
        let progress = publish::Progress::new(opts.progress, jobs.len());
        let mut write_failures = Vec::new();
        let (mut failures, stop) = rt.block_on(publish::publish(
            client,
            jobs,
            opts.jobs,
            signals,
            temp,
            &progress,
            |job, p| {
                let validation = publish::validation_of(self.sel, validations, job.item);
                manifest.images.push(publish::entry(job, p, validation));
                if let Err(e) = manifest.write(&opts.manifest) {
                    write_failures.push(format!("writing the manifest: {e:#}"));
                }
            },
        ));
        progress.finish();
        failures.extend(write_failures);
        // Whatever ended the pushes, no temporary tag stays in the local store.
        for problem in rt.block_on(temp.remove_all()) {
            say(&problem);
        }
        manifest.complete = failures.is_empty() && blocked.is_empty() && stop.is_none();
        if let Err(e) = manifest.write(&opts.manifest) {
            failures.push(format!("writing the manifest: {e:#}"));
        }
        print_table(manifest);
        if opts.pin && stop.is_none() {
            failures.extend(harbor::pin(self.fleet, opts, self.sel, manifest, blocked));
        }
        for f in &failures {
            say(&format!("FAILED {f}"));
        }
        let pushed = manifest
            .images
            .iter()
            .filter(|i| i.status == "pushed")
            .count();
        say(&format!(
            "{} reference(s) published ({} pushed now, {} already there), {} failed, {} {}(s) blocked; {} registry request(s); manifest {}",
            manifest.images.len(),
            pushed,
            manifest.images.len() - pushed,
            failures.len(),
            blocked.len(),
            if self.sel.harbor.is_some() { "task" } else { "benchmark" },
            client.request_count(),
            opts.manifest.display()
        ));
        match &stop {
            Some(publish::Stop::Interrupted) => {
                say(&format!(
                    "interrupted: {} of {} reference(s) published and listed in the manifest; run the same release again to complete it",
                    manifest.images.len(),
                    jobs.len()
                ));
                Exit::Interrupted.code()
            }
            Some(publish::Stop::FailFast(why)) => {
                say(&format!("stopped (fail-fast): {why}"));
                1
            }
            None if manifest.complete && failures.is_empty() => 0,
            None => 1,
        }
    }
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
