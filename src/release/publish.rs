//! The push phase of a release: up to `--jobs` pushes at a time, each verified, until
//! done or stopped. Two things stop it early, and both cancel the pushes in flight
//! (dropping a push aborts it) and start no new one:
//!
//! - SIGINT or SIGTERM ([`Signals`]; a second one exits at once with 130);
//! - fail-fast ([`super::fail_fast`]): [`super::fail_fast::LIMIT`] failures of one
//!   kind in a row against the registry. When they were upload attempts the engine
//!   retries (it does not say why), kiln tries one upload itself to name the cause.
//!
//! A registry tag is made by the manifest `PUT`, the last step of a push, after every
//! blob is there: a push stopped at any point leaves no tag pointing at part of an image.

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt as _;
use tokio::sync::watch;

use crate::labels;
use crate::printer::{self, errln, Mode};
use crate::registry::{self, Client, Published, PushObserver, PushRequest, Reference};
use crate::store::Store;

use super::fail_fast::{self, FailFast};
use super::manifest::{ImageEntry, Validation, ValidationSummary};
use super::select::{Item, Selection};
use super::temp_tags::TempTags;
use super::Local;

/// One reference to publish.
pub(super) struct Job<'a> {
    pub item: &'a Item,
    pub local: &'a Local,
    pub reference: Reference,
    /// Found in the registry already (nothing to push).
    pub already: Option<Published>,
}

/// Why the push phase stopped before the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    Interrupted,
    /// Fail-fast, with the error to report.
    FailFast(String),
}

/// SIGINT/SIGTERM for the phases of a release that talk to the registry.
pub(super) struct Signals {
    rx: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Signals {
    /// Listens from now on (in `rt`). A second signal exits the process with 130: the
    /// next release removes the temporary tags this one leaves.
    pub fn install(rt: &tokio::runtime::Runtime) -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        let _inside = rt.enter();
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let (tx, rx) = watch::channel(false);
        let task = rt.spawn(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            errln!("release: interrupted: no new push; cancelling the ones in flight");
            tx.send_replace(true);
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            errln!("release: interrupted again: exiting now; the next release removes the temporary tags left behind");
            std::process::exit(crate::error::Exit::Interrupted.code().into());
        });
        Ok(Signals { rx, task })
    }

    pub fn interrupted(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once a signal came.
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|v| *v).await;
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the pushes tell: temporary tags to the record, retries and layers to fail-fast.
struct Watcher<'a> {
    tags: &'a TempTags,
    fail_fast: &'a FailFast,
    stop: &'a watch::Sender<Option<Stop>>,
    /// The reference and engine message of the retry that tripped fail-fast.
    retried: &'a Mutex<Option<(Reference, String)>>,
}

impl PushObserver for Watcher<'_> {
    fn tagging(&self, store: Store, reference: &str) {
        self.tags.tagging(store, reference);
    }

    fn untagged(&self, store: Store, reference: &str) {
        self.tags.untagged(store, reference);
    }

    fn retrying(&self, target: &Reference, status: &str) {
        if self.fail_fast.failure(fail_fast::RETRIED) {
            self.retried
                .lock()
                .expect("retried")
                .get_or_insert_with(|| (target.clone(), status.to_string()));
            self.stop.send_if_modified(|s| {
                let first = s.is_none();
                if first {
                    *s = Some(Stop::FailFast(String::new()));
                }
                first
            });
        }
    }

    fn layer_done(&self, _target: &Reference) {
        self.fail_fast.success();
    }
}

/// Pushes and verifies `jobs`, `concurrency` at a time; `done` gets every verified
/// reference as it comes. Returns the failures and why it stopped early, if it did.
pub(super) async fn publish(
    client: &Client,
    jobs: &[Job<'_>],
    concurrency: usize,
    signals: &Signals,
    tags: &TempTags,
    progress: &Progress,
    mut done: impl FnMut(&Job<'_>, &Published),
) -> (Vec<String>, Option<Stop>) {
    let fail_fast = FailFast::default();
    let (stop_tx, mut stop_rx) = watch::channel(None::<Stop>);
    let retried = Mutex::new(None);
    let watcher = Watcher {
        tags,
        fail_fast: &fail_fast,
        stop: &stop_tx,
        retried: &retried,
    };
    let mut failures = Vec::new();
    let mut running = FuturesUnordered::new();
    let mut next = 0;
    loop {
        if signals.interrupted() {
            stop_tx.send_replace(Some(Stop::Interrupted));
        }
        if stop_rx.borrow().is_some() {
            break;
        }
        while running.len() < concurrency.max(1) && next < jobs.len() {
            let job = &jobs[next];
            next += 1;
            let watcher = &watcher;
            running.push(async move {
                let result = match &job.already {
                    Some(p) => Ok(p.clone()),
                    None => {
                        let req = PushRequest {
                            source: job.item.local.clone(),
                            store: job.local.store,
                            target: job.reference.clone(),
                            required_labels: registry::push::required_labels(&job.local.labels),
                        };
                        registry::push_and_verify_observed(client, &req, watcher).await
                    }
                };
                (job, result)
            });
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            Some((job, result)) = running.next() => match result {
                Ok(p) => {
                    fail_fast.success();
                    progress.done(&p);
                    done(job, &p);
                }
                Err(e) => {
                    let msg = format!("{}: {e:#}", job.reference);
                    progress.failed(&msg);
                    let kind = fail_fast::kind_of(&msg, &job.reference.to_string(), &job.item.local);
                    if fail_fast.failure(&kind) {
                        stop_tx.send_if_modified(|s| {
                            let first = s.is_none();
                            if first {
                                *s = Some(Stop::FailFast(format!(
                                    "{} pushes in a row to registry {} failed the same way; the last: {msg}",
                                    fail_fast::LIMIT,
                                    client.host()
                                )));
                            }
                            first
                        });
                    }
                    failures.push(msg);
                }
            },
            _ = stop_rx.changed() => {}
            _ = signals.wait() => {}
        }
    }
    // Cancels the pushes in flight.
    drop(running);
    let stop = stop_rx.borrow().clone();
    let stop = match stop {
        Some(Stop::FailFast(m)) if m.is_empty() => {
            let (target, status) = retried
                .lock()
                .expect("retried")
                .clone()
                .unwrap_or_else(|| (jobs[0].reference.clone(), String::new()));
            let cause = match client.probe_upload(&target.repository).await {
                Err(e) => format!("kiln's own test upload: {e:#}"),
                Ok(()) => "kiln's own test upload to it went through".to_string(),
            };
            Some(Stop::FailFast(format!(
                "the engine retried {} uploads in a row to registry {} (the last for {target}: {status:?}) without one succeeding; {cause}",
                fail_fast::LIMIT,
                client.host()
            )))
        }
        other => other,
    };
    (failures, stop)
}

/// Images done / total and bytes on a terminal; one plain line per image otherwise.
pub(super) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    bytes: Mutex<u64>,
}

impl Progress {
    pub fn new(mode: Mode, total: usize) -> Progress {
        let tty = printer::resolve(mode) == Mode::Tty;
        let bar = tty.then(|| {
            let bar = printer::multi().add(indicatif::ProgressBar::new(total as u64));
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

    fn done(&self, p: &Published) {
        let mut bytes = self.bytes.lock().expect("bytes");
        if p.pushed {
            *bytes += p.size;
        }
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                bar.set_message(format!("{:.1} MB pushed", *bytes as f64 / 1e6));
            }
            None => errln!(
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
        errln!("release: FAILED {msg}");
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The manifest's entry of a published (or already published) image.
pub(super) fn entry(
    job: &Job<'_>,
    p: &Published,
    validation: Option<ValidationSummary>,
) -> ImageEntry {
    let label = |k: &str| job.local.labels.get(k).cloned().unwrap_or_default();
    ImageEntry {
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
        validation,
    }
}

/// The validation an image was published on: its benchmark's, or a Harbor task's own.
pub(super) fn validation_of(
    sel: &Selection,
    validations: &BTreeMap<String, Validation>,
    item: &Item,
) -> Option<ValidationSummary> {
    match &sel.harbor {
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
    }
}
