//! The Kubernetes objects of a run, built from kiln's plan without contacting anything:
//! one Indexed Job per group of runs that share an image (a shared-env benchmark ×
//! agent × model, or one task of a per-task benchmark), and for oracle groups one
//! ConfigMap holding the reference solutions, mounted only into that Job's pods.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EnvVar, KeyToPath, PodSpec, PodTemplateSpec,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;

/// Label on everything kiln creates.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "kiln");
/// Label naming the kiln run (`kubectl delete jobs,configmaps -l kiln.dev/run=ID`).
pub const RUN_LABEL: &str = "kiln.dev/run";
pub const BENCHMARK_LABEL: &str = "kiln.dev/benchmark";
pub const AGENT_LABEL: &str = "kiln.dev/agent";
pub const TASK_LABEL: &str = "kiln.dev/task";
/// Annotation holding the completion-index table as JSON, for people reading the Job.
pub const TABLE_ANNOTATION: &str = "kiln.dev/task-table";
/// The pod annotation the Job controller sets to the pod's completion index.
pub const INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";
/// The runner's container: the only one in the pod.
pub const CONTAINER: &str = "runner";

/// One completion index of a Job: which task it runs, and which repeat of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub task: String,
    /// 1-based.
    pub repeat: u32,
}

/// One solution file for an oracle Job: where it goes under `/kiln/solutions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolutionFile {
    /// `<task>/<path inside solution/>`.
    pub path: String,
    pub bytes: Vec<u8>,
}

/// One Job to create.
#[derive(Debug, Clone)]
pub struct JobPlan {
    /// The Job's name (a DNS label, at most 52 characters so pod names fit).
    pub name: String,
    pub benchmark: String,
    pub agent: String,
    pub model: Option<String>,
    /// The image in the run registry.
    pub image: String,
    /// One per completion index.
    pub entries: Vec<Entry>,
    /// Shared-env: the task comes from the table; per-task: every entry is the same task,
    /// passed as `--task` exactly as a local run does.
    pub shared_env: bool,
    pub agent_timeout: Option<u64>,
    /// Per pod: the task's timeouts added up, plus a margin.
    pub deadline_sec: i64,
    pub parallelism: i32,
    /// Oracle Jobs only.
    pub solutions: Vec<SolutionFile>,
}

impl JobPlan {
    pub fn config_map_name(&self) -> String {
        format!("{}-solutions", self.name)
    }

    /// The comma-separated task ids the runner picks from by completion index.
    pub fn table(&self) -> String {
        self.entries
            .iter()
            .map(|e| e.task.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn labels(run_id: &str, job: &JobPlan) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string());
    l.insert(RUN_LABEL.to_string(), run_id.to_string());
    l.insert(BENCHMARK_LABEL.to_string(), job.benchmark.clone());
    l.insert(AGENT_LABEL.to_string(), job.agent.clone());
    if !job.shared_env {
        if let Some(e) = job.entries.first() {
            l.insert(TASK_LABEL.to_string(), e.task.clone());
        }
    }
    l
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        ..Default::default()
    }
}

/// The ConfigMap key of solution file `i` (keys cannot hold `/`).
fn solution_key(i: usize) -> String {
    format!("file-{i}")
}

/// The ConfigMap with an oracle Job's solutions, or None for other agents.
pub fn config_map(run_id: &str, namespace: &str, job: &JobPlan) -> Option<ConfigMap> {
    if job.solutions.is_empty() {
        return None;
    }
    let data = job
        .solutions
        .iter()
        .enumerate()
        .map(|(i, f)| (solution_key(i), ByteString(f.bytes.clone())))
        .collect();
    Some(ConfigMap {
        metadata: ObjectMeta {
            name: Some(job.config_map_name()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels(run_id, job)),
            ..Default::default()
        },
        binary_data: Some(data),
        ..Default::default()
    })
}

/// The Job for `job`.
pub fn job(run_id: &str, namespace: &str, job: &JobPlan) -> Job {
    let labels = labels(run_id, job);
    let mut args = vec!["all".to_string()];
    let mut envs = vec![env("KILN_AGENT_ID", &job.agent)];
    if job.shared_env {
        envs.push(env("KILN_TASK_TABLE", &job.table()));
    } else if let Some(e) = job.entries.first() {
        args.extend(["--task".to_string(), e.task.clone()]);
    }
    if let Some(secs) = job.agent_timeout {
        args.extend(["--agent-timeout".to_string(), secs.to_string()]);
    }
    if let Some(model) = &job.model {
        envs.push(env("KILN_MODEL", model));
    }
    let (volumes, mounts) = if job.solutions.is_empty() {
        (None, None)
    } else {
        // One read-only subPath mount per file: the files appear as plain files (a whole
        // ConfigMap volume would show symlinks into `..data`, which the runner copies as
        // links), and only under /kiln/solutions.
        let volume = Volume {
            name: "solutions".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: job.config_map_name(),
                default_mode: Some(0o755),
                items: Some(
                    (0..job.solutions.len())
                        .map(|i| KeyToPath {
                            key: solution_key(i),
                            path: solution_key(i),
                            mode: None,
                        })
                        .collect(),
                ),
                optional: Some(false),
            }),
            ..Default::default()
        };
        let mounts = job
            .solutions
            .iter()
            .enumerate()
            .map(|(i, f)| VolumeMount {
                name: "solutions".into(),
                mount_path: format!("{}/{}", super::super::container::SOLUTIONS_DIR, f.path),
                sub_path: Some(solution_key(i)),
                read_only: Some(true),
                ..Default::default()
            })
            .collect();
        (Some(vec![volume]), Some(mounts))
    };
    let table: Vec<serde_json::Value> = job
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| serde_json::json!({"index": i, "task": e.task, "repeat": e.repeat}))
        .collect();
    let completions = job.entries.len() as i32;
    Job {
        metadata: ObjectMeta {
            name: Some(job.name.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([(
                TABLE_ANNOTATION.to_string(),
                serde_json::Value::Array(table).to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(JobSpec {
            completion_mode: Some("Indexed".into()),
            completions: Some(completions),
            parallelism: Some(job.parallelism.clamp(1, completions.max(1))),
            // A failed pod is an infrastructure error kiln reports; a re-run retries it.
            backoff_limit: Some(0),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    active_deadline_seconds: Some(job.deadline_sec),
                    containers: vec![Container {
                        name: CONTAINER.into(),
                        image: Some(job.image.clone()),
                        // Tags are content digests: a present image is the right one.
                        image_pull_policy: Some("IfNotPresent".into()),
                        args: Some(args),
                        env: Some(envs),
                        volume_mounts: mounts,
                        ..Default::default()
                    }],
                    volumes,
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The YAML documents and kubectl commands a run amounts to (`--dry-run`).
pub fn dry_run_text(run_id: &str, namespace: &str, jobs: &[JobPlan]) -> anyhow::Result<String> {
    let mut out = String::new();
    for j in jobs {
        if let Some(cm) = config_map(run_id, namespace, j) {
            out.push_str("---\n");
            out.push_str(&serde_yaml::to_string(&cm)?);
        }
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&job(run_id, namespace, j))?);
    }
    Ok(out)
}

/// The kubectl commands that do what kiln does with `manifests.yaml`.
pub fn kubectl_commands(run_id: &str, namespace: &str) -> Vec<String> {
    let sel = format!("{RUN_LABEL}={run_id}");
    vec![
        format!("kubectl create -n {namespace} -f manifests.yaml"),
        format!("kubectl get jobs -n {namespace} -l {sel} --watch"),
        format!(
            "kubectl logs -n {namespace} -l {sel} -c {CONTAINER} --prefix --tail=-1   # results between the KILN RESULT markers"
        ),
        format!("kubectl delete jobs,configmaps -n {namespace} -l {sel} --cascade=foreground"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(shared: bool, agent: &str) -> JobPlan {
        JobPlan {
            name: "kiln-abc123-0".into(),
            benchmark: "metric-definition-audit".into(),
            agent: agent.into(),
            model: None,
            image: "127.0.0.1:5000/evals/x:inputs-1".into(),
            entries: vec![
                Entry {
                    task: "churn-dashboard".into(),
                    repeat: 1,
                },
                Entry {
                    task: "q3-revenue-dashboard".into(),
                    repeat: 1,
                },
            ],
            shared_env: shared,
            agent_timeout: None,
            deadline_sec: 2400,
            parallelism: 5,
            solutions: if agent == "oracle" {
                vec![SolutionFile {
                    path: "churn-dashboard/solve.sh".into(),
                    bytes: b"#!/bin/sh\n".to_vec(),
                }]
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn shared_env_job_is_indexed_with_a_task_table() {
        let j = job("abc123", "ns", &plan(true, "null"));
        let spec = j.spec.unwrap();
        assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
        assert_eq!(spec.completions, Some(2));
        assert_eq!(spec.parallelism, Some(2), "clamped to completions");
        assert_eq!(spec.backoff_limit, Some(0));
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.active_deadline_seconds, Some(2400));
        let c = &pod.containers[0];
        assert_eq!(c.args.as_deref(), Some(&["all".to_string()][..]));
        assert!(
            c.command.is_none(),
            "the image's entry point (the runner) runs"
        );
        let env = c.env.as_ref().unwrap();
        assert!(env.iter().any(|e| e.name == "KILN_TASK_TABLE"
            && e.value.as_deref() == Some("churn-dashboard,q3-revenue-dashboard")));
        assert!(pod.volumes.is_none());
        let labels = j.metadata.labels.unwrap();
        assert_eq!(labels[RUN_LABEL], "abc123");
        assert!(!labels.contains_key(TASK_LABEL));
    }

    #[test]
    fn per_task_job_passes_the_task_like_a_local_run() {
        let mut p = plan(false, "null");
        p.entries.truncate(1);
        p.agent_timeout = Some(30);
        let j = job("abc123", "ns", &p);
        let c = &j.spec.unwrap().template.spec.unwrap().containers[0];
        assert_eq!(
            c.args.clone().unwrap(),
            ["all", "--task", "churn-dashboard", "--agent-timeout", "30"]
        );
        assert!(!c
            .env
            .as_ref()
            .unwrap()
            .iter()
            .any(|e| e.name == "KILN_TASK_TABLE"));
        assert_eq!(j.metadata.labels.unwrap()[TASK_LABEL], "churn-dashboard");
    }

    #[test]
    fn solutions_reach_oracle_pods_only() {
        let p = plan(true, "oracle");
        let cm = config_map("abc123", "ns", &p).unwrap();
        assert_eq!(cm.binary_data.unwrap()["file-0"].0, b"#!/bin/sh\n");
        let pod = job("abc123", "ns", &p).spec.unwrap().template.spec.unwrap();
        let m = &pod.containers[0].volume_mounts.as_ref().unwrap()[0];
        assert_eq!(m.mount_path, "/kiln/solutions/churn-dashboard/solve.sh");
        assert_eq!(m.sub_path.as_deref(), Some("file-0"));
        assert_eq!(m.read_only, Some(true));
        assert!(config_map("abc123", "ns", &plan(true, "null")).is_none());
    }

    #[test]
    fn dry_run_prints_yaml_documents() {
        let text = dry_run_text("abc123", "ns", &[plan(true, "oracle")]).unwrap();
        assert_eq!(text.matches("---\n").count(), 2);
        assert!(text.contains("kind: ConfigMap"));
        assert!(text.contains("kind: Job"));
        assert!(text.contains("completionMode: Indexed"));
        assert!(text.contains("automountServiceAccountToken: false"));
    }
}
