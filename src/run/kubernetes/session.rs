//! One run on the cluster as it goes: the Jobs submitted, watched, their pods' logs
//! read into results as they finish, stuck pods told from slow ones, everything of
//! the run deleted at the end.

use crate::printer::{errln, outln};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, LogParams, Patch, PatchParams, PostParams};

use super::manifest::{self, Entry, JobPlan};
use super::status::{container_times, finished, pod_failure, selector, stuck};
use super::{collect, pull_secret, Options, Run, Summary, CLEANUP_LIMIT, STUCK_LIMIT};
use crate::run::model::ModelSpec;

/// Benchmark, task, agent, repeat.
pub(super) type RunKey = (String, String, String, u32);

/// The state of a run on the cluster.
pub(super) struct Session<'a> {
    pub(super) run_id: String,
    pub(super) opts: &'a Options,
    pub(super) jobs: &'a [JobPlan],
    /// The image pull secret the run's pods use (a registry that needs a login).
    pub(super) pull_secret: Option<Secret>,
    pub(super) runs: &'a BTreeMap<RunKey, &'a Run>,
    pub(super) summary: Summary,
    /// Pods whose log has been read.
    pub(super) collected: BTreeSet<String>,
    /// (job index, completion index) with a result written.
    pub(super) results: BTreeSet<(usize, usize)>,
    /// How many repeats each (job, task) has: labels show `#k` when more than one.
    pub(super) repeats: BTreeMap<(usize, String), u32>,
}

impl Session<'_> {
    pub(super) async fn drive(&mut self) -> anyhow::Result<()> {
        let client = kube::Client::try_default()
            .await
            .context("connecting to the cluster of the current KUBECONFIG context")?;
        let ns = &self.opts.namespace;
        let jobs_api: Api<Job> = Api::namespaced(client.clone(), ns);
        let pods_api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let cms_api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), ns);
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        if let Some(s) = &self.pull_secret {
            secrets
                .create(&PostParams::default(), s)
                .await
                .with_context(|| format!("creating the image pull secret in namespace {ns}"))?;
        }
        if self.jobs.iter().any(|j| j.gateway.is_some()) {
            policies
                .create(
                    &PostParams::default(),
                    &manifest::network_policy(&self.run_id, ns),
                )
                .await
                .with_context(|| format!("creating a NetworkPolicy in namespace {ns}"))?;
        }
        let total: usize = self.jobs.iter().map(|j| j.entries.len()).sum();
        errln!(
            "kubernetes: run {} — {total} run(s) in {} Job(s) in namespace {ns}, at most {} pod(s) at a time",
            self.run_id,
            self.jobs.len(),
            self.opts.parallelism
        );

        let mut next_job = 0;
        // Parallelism each created, unfinished Job holds.
        let mut holding: BTreeMap<usize, i32> = BTreeMap::new();
        let mut finished_jobs: BTreeMap<usize, (String, String)> = BTreeMap::new();
        // Pods that cannot start, and since when kiln has seen them so.
        let mut stuck_since: BTreeMap<String, Instant> = BTreeMap::new();
        let mut last_progress = String::new();
        let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
        loop {
            // Create Jobs while there is room.
            let t = Instant::now();
            while next_job < self.jobs.len() {
                let used: i32 = holding.values().sum();
                let room = self.opts.parallelism as i32 - used;
                if room <= 0 {
                    break;
                }
                let mut plan = self.jobs[next_job].clone();
                plan.parallelism = room.min(plan.entries.len() as i32);
                if let Some(cm) = manifest::config_map(&self.run_id, ns, &plan) {
                    cms_api
                        .create(&PostParams::default(), &cm)
                        .await
                        .with_context(|| {
                            format!("creating ConfigMap {}", plan.config_map_name())
                        })?;
                }
                jobs_api
                    .create(
                        &PostParams::default(),
                        &manifest::job(&self.run_id, ns, &plan),
                    )
                    .await
                    .with_context(|| format!("creating Job {} in namespace {ns}", plan.name))?;
                holding.insert(next_job, plan.parallelism);
                next_job += 1;
            }
            self.summary.timing.create += t.elapsed();

            tokio::select! {
                _ = tokio::time::sleep(self.opts.poll) => {}
                _ = &mut interrupt => {
                    self.summary.interrupted = true;
                    return self.interrupted(&jobs_api, &pods_api, &cms_api, &policies, &secrets).await;
                }
            }

            let t = Instant::now();
            let job_list = jobs_api
                .list(&selector(&self.run_id))
                .await
                .context("listing kiln's Jobs")?;
            let pod_list = pods_api
                .list(&selector(&self.run_id))
                .await
                .context("listing kiln's pods")?;
            self.summary.timing.poll += t.elapsed();
            self.summary.timing.polls += 1;

            let plans = self.jobs;
            let index_of = |name: &str| plans.iter().position(|j| j.name == name);
            let (mut active, mut succeeded, mut failed) = (0, 0, 0);
            for job in &job_list.items {
                let Some(i) = job.metadata.name.as_deref().and_then(index_of) else {
                    continue;
                };
                if let Some(s) = &job.status {
                    active += s.active.unwrap_or(0);
                    succeeded += s.succeeded.unwrap_or(0);
                    failed += s.failed.unwrap_or(0);
                }
                if let Some(f) = finished(job) {
                    holding.remove(&i);
                    finished_jobs.entry(i).or_insert(f);
                }
            }
            let t = Instant::now();
            for pod in &pod_list.items {
                self.collect_pod(&pods_api, pod).await?;
            }
            for pod in &pod_list.items {
                let (Some(name), Some(why)) = (pod.metadata.name.clone(), stuck(pod)) else {
                    continue;
                };
                let since = *stuck_since.entry(name.clone()).or_insert_with(Instant::now);
                let job_name = pod
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("job-name"))
                    .cloned()
                    .unwrap_or_default();
                let Some(i) = index_of(&job_name) else {
                    continue;
                };
                if since.elapsed() < STUCK_LIMIT || finished_jobs.contains_key(&i) {
                    continue;
                }
                errln!(
                    "kubernetes: pod {name} could not start for {}s ({why}): giving Job {job_name} up",
                    STUCK_LIMIT.as_secs()
                );
                jobs_api
                    .delete(&job_name, &DeleteParams::background())
                    .await
                    .with_context(|| format!("deleting Job {job_name}"))?;
                holding.remove(&i);
                finished_jobs.insert(
                    i,
                    (
                        "Failed".into(),
                        format!("pod {name} could not start: {why}"),
                    ),
                );
            }
            self.summary.timing.collect += t.elapsed();

            let progress = format!(
                "kubernetes: {}/{total} done ({} passed, {} not passed, {} infra errors), {active} running; Jobs: {succeeded} succeeded, {failed} failed pod(s)",
                self.results.len(),
                self.summary.passed,
                self.summary.not_passed,
                self.summary.infra_errors
            );
            if progress != last_progress {
                errln!("{progress}");
                last_progress = progress;
            }
            if next_job == self.jobs.len() && finished_jobs.len() == self.jobs.len() {
                break;
            }
        }
        // Indexes of failed Jobs that left no pod to read.
        for (i, (kind, why)) in &finished_jobs {
            for (index, entry) in self.jobs[*i].entries.iter().enumerate() {
                if !self.results.contains(&(*i, index)) {
                    let reason = format!(
                        "Job {} ended {kind} ({why}) before index {index} left a result",
                        self.jobs[*i].name
                    );
                    self.write_result(
                        *i,
                        index,
                        entry,
                        None,
                        None,
                        "Unknown",
                        Some(&reason),
                        &reason,
                    )?;
                }
            }
        }
        let t = Instant::now();
        self.cleanup(&jobs_api, &cms_api, &policies, &secrets)
            .await?;
        self.summary.timing.cleanup = t.elapsed();
        Ok(())
    }

    /// Reads a finished pod's log (once) and writes its run's results.
    pub(super) async fn collect_pod(
        &mut self,
        pods_api: &Api<Pod>,
        pod: &Pod,
    ) -> anyhow::Result<()> {
        let Some(name) = pod.metadata.name.clone() else {
            return Ok(());
        };
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        if self.collected.contains(&name) || (phase != "Succeeded" && phase != "Failed") {
            return Ok(());
        }
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let annotations = pod.metadata.annotations.clone().unwrap_or_default();
        let job_name = labels.get("job-name").cloned().unwrap_or_default();
        let (Some(i), Some(index)) = (
            self.jobs.iter().position(|j| j.name == job_name),
            annotations
                .get(manifest::INDEX_ANNOTATION)
                .and_then(|v| v.parse::<usize>().ok()),
        ) else {
            return Ok(());
        };
        let Some(entry) = self.jobs[i].entries.get(index).cloned() else {
            return Ok(());
        };
        self.collected.insert(name.clone());
        let log = pods_api
            .logs(
                &name,
                &LogParams {
                    container: Some(manifest::CONTAINER.into()),
                    ..Default::default()
                },
            )
            .await
            .ok();
        let reason = (phase == "Failed").then(|| pod_failure(pod));
        let fallback_reason = match &reason {
            Some(r) => format!("pod {name} failed: {r}"),
            None => format!("pod {name} succeeded but its log holds no result"),
        };
        let (dir, score) = self.write_result(
            i,
            index,
            &entry,
            Some(pod),
            log.as_deref(),
            &phase,
            reason.as_deref(),
            &fallback_reason,
        )?;
        if let (Some(_), Some(spec)) = (&self.jobs[i].gateway, &self.opts.gateway) {
            self.gateway_counters(pods_api, &name, spec, &dir, score)
                .await?;
        }
        Ok(())
    }

    /// Keeps the gateway container's log beside the result and puts its final counters
    /// (its last stdout line) into result.json's `model` section, as a local run does.
    pub(super) async fn gateway_counters(
        &self,
        pods_api: &Api<Pod>,
        pod: &str,
        spec: &ModelSpec,
        dir: &Path,
        score: Option<f64>,
    ) -> anyhow::Result<()> {
        let log = pods_api
            .logs(
                pod,
                &LogParams {
                    container: Some(manifest::GATEWAY_CONTAINER.into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap_or_default();
        std::fs::write(dir.join("gateway.log"), &log)
            .with_context(|| format!("writing {}", dir.join("gateway.log").display()))?;
        let stats = log
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<crate::gateway::stats::Stats>(l).ok());
        let result = dir.join("result.json");
        match stats {
            Some(stats) if result.is_file() => crate::run::model::write_section(
                &result,
                crate::run::model::section(spec, &stats, score),
            ),
            _ => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn write_result(
        &mut self,
        i: usize,
        index: usize,
        entry: &Entry,
        pod: Option<&Pod>,
        log: Option<&str>,
        phase: &str,
        reason: Option<&str>,
        fallback_reason: &str,
    ) -> anyhow::Result<(PathBuf, Option<f64>)> {
        let job = &self.jobs[i];
        let run = self.runs[&(
            job.benchmark.clone(),
            entry.task.clone(),
            job.agent.clone(),
            entry.repeat,
        )];
        let (runner_exit, wall) = pod.map(container_times).unwrap_or((None, None));
        let record = collect::PodRecord {
            benchmark: &job.benchmark,
            task: &entry.task,
            agent: &job.agent,
            image: &job.image,
            on: "kubernetes",
            namespace: &self.opts.namespace,
            job: &job.name,
            pod: pod.and_then(|p| p.metadata.name.as_deref()),
            completion_index: index,
            pod_phase: phase,
            pod_reason: reason,
            runner_exit: runner_exit.map_or(-1, i64::from),
            wall_sec: wall,
            kiln_version: env!("CARGO_PKG_VERSION"),
            made_from: run.made_from.clone(),
        };
        let dir = run.dir.clone();
        let run_id = format!("{}-{}-{index}", self.run_id, job.name);
        let (dir, result) = collect::write(
            &dir,
            log,
            || {
                collect::infra_error_result(
                    &entry.task,
                    &run.info,
                    &job.agent,
                    job.model.as_deref(),
                    &run_id,
                    fallback_reason,
                )
            },
            &record,
        )?;
        self.results.insert((i, index));
        self.summary.timing.pods += Duration::from_secs_f64(result.timing.wall_sec.max(0.0));
        let label = if self
            .repeats
            .get(&(i, entry.task.clone()))
            .copied()
            .unwrap_or(1)
            > 1
        {
            format!(
                "{}/{} × {} #{}",
                job.benchmark, entry.task, job.agent, entry.repeat
            )
        } else {
            format!("{}/{} × {}", job.benchmark, entry.task, job.agent)
        };
        if result.status == "infra_error" {
            self.summary.infra_errors += 1;
            let why = result
                .errors
                .first()
                .map(|e| e.message.clone())
                .unwrap_or_default();
            outln!(
                "{label}: infra_error: {why} → {}",
                dir.join("result.json").display()
            );
        } else {
            if result.score.passed {
                self.summary.passed += 1;
            } else {
                self.summary.not_passed += 1;
            }
            let gates = match (result.score.highest_gate, result.score.n_gates) {
                (Some(h), Some(n)) => format!(", gates {h}/{n}"),
                _ => String::new(),
            };
            outln!(
                "{label}: {}, score {:.4} ({}{gates}), {:.1}s → {}",
                result.status,
                result.score.value,
                if result.score.passed {
                    "passed"
                } else {
                    "not passed"
                },
                result.timing.wall_sec,
                dir.join("result.json").display()
            );
        }
        let score = (result.status != "infra_error").then_some(result.score.value);
        Ok((dir, score))
    }

    /// Deletes the run's Jobs (their pods with them), ConfigMaps and pull secret.
    pub(super) async fn cleanup(
        &self,
        jobs_api: &Api<Job>,
        cms_api: &Api<ConfigMap>,
        policies: &Api<NetworkPolicy>,
        secrets: &Api<Secret>,
    ) -> anyhow::Result<()> {
        if self.pull_secret.is_some() {
            pull_secret::remove(secrets, &self.run_id).await?;
        }
        jobs_api
            .delete_collection(&DeleteParams::background(), &selector(&self.run_id))
            .await
            .context("deleting kiln's Jobs")?;
        cms_api
            .delete_collection(&DeleteParams::background(), &selector(&self.run_id))
            .await
            .context("deleting kiln's ConfigMaps")?;
        policies
            .delete_collection(&DeleteParams::background(), &selector(&self.run_id))
            .await
            .context("deleting kiln's NetworkPolicy")?;
        Ok(())
    }

    /// First Ctrl-C: delete Jobs and pods (foreground: the Job goes once its pods are
    /// gone) and wait for the pods to go; a second Ctrl-C leaves them.
    pub(super) async fn interrupted(
        &mut self,
        jobs_api: &Api<Job>,
        pods_api: &Api<Pod>,
        cms_api: &Api<ConfigMap>,
        policies: &Api<NetworkPolicy>,
        secrets: &Api<Secret>,
    ) -> anyhow::Result<()> {
        let ns = &self.opts.namespace;
        let how = format!(
            "kubectl delete jobs,configmaps,networkpolicies,secrets -n {ns} -l {}={} --cascade=foreground",
            manifest::RUN_LABEL,
            self.run_id
        );
        errln!(
            "kubernetes: interrupted: deleting run {}'s Jobs and pods (finished results are kept); Ctrl-C again to leave them",
            self.run_id
        );
        let work = async {
            // The login goes first, whatever happens to the rest.
            if self.pull_secret.is_some() {
                pull_secret::remove(secrets, &self.run_id).await?;
            }
            jobs_api
                .delete_collection(&DeleteParams::foreground(), &selector(&self.run_id))
                .await
                .context("deleting kiln's Jobs")?;
            cms_api
                .delete_collection(&DeleteParams::background(), &selector(&self.run_id))
                .await
                .context("deleting kiln's ConfigMaps")?;
            policies
                .delete_collection(&DeleteParams::background(), &selector(&self.run_id))
                .await
                .context("deleting kiln's NetworkPolicy")?;
            // Pods of a deleted Job get no grace from kiln: they are removed as the
            // kubelet stops them.
            pods_api
                .delete_collection(
                    &DeleteParams::background().grace_period(0),
                    &selector(&self.run_id),
                )
                .await
                .context("deleting kiln's pods")?;
            let deadline = Instant::now() + CLEANUP_LIMIT;
            loop {
                let pods = pods_api.list(&selector(&self.run_id)).await?;
                let jobs = jobs_api.list(&selector(&self.run_id)).await?;
                if pods.items.is_empty() && jobs.items.is_empty() {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "{} Job(s) and {} pod(s) still there after {} s",
                        jobs.items.len(),
                        pods.items.len(),
                        CLEANUP_LIMIT.as_secs()
                    );
                }
                // A pod whose Job is gone keeps the Job controller's tracking finalizer
                // when the controller missed it; nothing else will remove it.
                if jobs.items.is_empty() {
                    for pod in &pods.items {
                        let (Some(name), Some(f)) = (&pod.metadata.name, &pod.metadata.finalizers)
                        else {
                            continue;
                        };
                        if pod.metadata.deletion_timestamp.is_some() && !f.is_empty() {
                            let patch = serde_json::json!({"metadata": {"finalizers": null}});
                            let _ = pods_api
                                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                                .await;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            anyhow::Ok(())
        };
        tokio::select! {
            r = work => {
                r.with_context(|| format!("cleaning up; to finish by hand: {how}"))?;
                errln!("kubernetes: run {}'s Jobs and pods are deleted", self.run_id);
            }
            _ = tokio::signal::ctrl_c() => {
                errln!("kubernetes: leaving run {}'s Jobs and pods; delete them with:\n  {how}", self.run_id);
            }
        }
        Ok(())
    }
}
