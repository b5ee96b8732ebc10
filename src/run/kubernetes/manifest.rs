//! The Kubernetes objects of a run, built from kiln's plan without contacting anything:
//! one Indexed Job per group of runs that share an image (a shared-env benchmark ×
//! agent × model, or one task of a per-task benchmark), and for oracle groups one
//! ConfigMap holding the reference solutions, mounted only into that Job's pods.
//! With `--replay`, every pod also runs kiln's model gateway as a second container
//! (the fixture comes in the same ConfigMap); the agent reaches it on the pod's
//! loopback, and a NetworkPolicy denies the run's pods every other destination where
//! the cluster's network enforces policies.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar, ExecAction,
    KeyToPath, Lifecycle, LifecycleHandler, LocalObjectReference, PodSpec, PodTemplateSpec, Volume,
    VolumeMount,
};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicySpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
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
/// The runner's container.
pub const CONTAINER: &str = "runner";
/// The model gateway's container (`--replay` only).
pub const GATEWAY_CONTAINER: &str = "gateway";
/// Where the gateway listens: the pod's loopback, which only its containers share.
pub const GATEWAY_ADDR: &str = "127.0.0.1:8080";
/// The volume both containers share: the gateway's counters, and the file the runner
/// writes when it is done (the gateway then exits, and the pod can complete).
const SHARED_DIR: &str = "/kiln-gateway";
const FIXTURE_KEY: &str = "fixture";
const FIXTURE_PATH: &str = "/kiln-fixture/fixture.jsonl";

/// The model gateway of a replaying Job.
#[derive(Debug, Clone)]
pub struct GatewayPlan {
    /// The gateway image in the run registry (kiln's binary on debian:bookworm-slim).
    pub image: String,
    pub fixture: Vec<u8>,
    pub lenient: bool,
    pub speed: crate::gateway::Speed,
}

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
    pub gateway: Option<GatewayPlan>,
    /// The image pull secret its pods use (a registry that needs a login).
    pub pull_secret: Option<String>,
}

impl JobPlan {
    /// The ConfigMap with the Job's solutions and replay fixture.
    pub fn config_map_name(&self) -> String {
        format!("{}-files", self.name)
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

/// The ConfigMap with an oracle Job's solutions and a replaying Job's fixture, or None
/// when the Job has neither.
pub fn config_map(run_id: &str, namespace: &str, job: &JobPlan) -> Option<ConfigMap> {
    if job.solutions.is_empty() && job.gateway.is_none() {
        return None;
    }
    let mut data: BTreeMap<String, ByteString> = job
        .solutions
        .iter()
        .enumerate()
        .map(|(i, f)| (solution_key(i), ByteString(f.bytes.clone())))
        .collect();
    if let Some(g) = &job.gateway {
        data.insert(FIXTURE_KEY.into(), ByteString(g.fixture.clone()));
    }
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
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    let mut containers = Vec::new();
    if job.solutions.is_empty() && job.gateway.is_none() {
        // Nothing to mount.
    } else {
        let mut items: Vec<KeyToPath> = (0..job.solutions.len())
            .map(|i| KeyToPath {
                key: solution_key(i),
                path: solution_key(i),
                mode: None,
            })
            .collect();
        if job.gateway.is_some() {
            items.push(KeyToPath {
                key: FIXTURE_KEY.into(),
                path: FIXTURE_KEY.into(),
                mode: None,
            });
        }
        volumes.push(Volume {
            name: "files".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: job.config_map_name(),
                default_mode: Some(0o755),
                items: Some(items),
                optional: Some(false),
            }),
            ..Default::default()
        });
        // One read-only subPath mount per file: the files appear as plain files (a whole
        // ConfigMap volume would show symlinks into `..data`, which the runner copies as
        // links), and only under /kiln/solutions.
        mounts.extend(job.solutions.iter().enumerate().map(|(i, f)| VolumeMount {
            name: "files".into(),
            mount_path: format!("{}/{}", super::super::container::SOLUTIONS_DIR, f.path),
            sub_path: Some(solution_key(i)),
            read_only: Some(true),
            ..Default::default()
        }));
    }
    if let Some(g) = &job.gateway {
        volumes.push(Volume {
            name: "gateway".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        });
        let shared = VolumeMount {
            name: "gateway".into(),
            mount_path: SHARED_DIR.into(),
            ..Default::default()
        };
        mounts.push(shared.clone());
        let base = format!("http://{GATEWAY_ADDR}");
        let agent_env = super::super::model::ModelNet::agent_env(&base);
        let names: Vec<&str> = agent_env.iter().map(|(k, _)| k.as_str()).collect();
        envs.push(env("KILN_PASS_ENV", &names.join(",")));
        envs.extend(agent_env.iter().map(|(k, v)| env(k, v)));
        envs.push(env("KILN_DONE_FILE", &format!("{SHARED_DIR}/done")));
        let stats = format!("{SHARED_DIR}/stats.json");
        let mut command: Vec<String> = [
            "/usr/local/bin/kiln",
            "gateway",
            "replay",
            FIXTURE_PATH,
            "--listen",
            GATEWAY_ADDR,
            "--stats",
            &stats,
            "--until-file",
            &format!("{SHARED_DIR}/done"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if g.lenient {
            command.push("--lenient".into());
        }
        command.extend(["--speed".into(), g.speed.to_string()]);
        // The kubelet starts a pod's containers in order and waits for a postStart hook
        // before the next: the runner starts once the gateway has written its first
        // counters, i.e. listens.
        let listening = format!("until [ -s {stats} ]; do sleep 0.1; done");
        containers.push(Container {
            name: GATEWAY_CONTAINER.into(),
            image: Some(g.image.clone()),
            image_pull_policy: Some("IfNotPresent".into()),
            command: Some(command),
            volume_mounts: Some(vec![
                shared,
                VolumeMount {
                    name: "files".into(),
                    mount_path: FIXTURE_PATH.into(),
                    sub_path: Some(FIXTURE_KEY.into()),
                    read_only: Some(true),
                    ..Default::default()
                },
            ]),
            lifecycle: Some(Lifecycle {
                post_start: Some(LifecycleHandler {
                    exec: Some(ExecAction {
                        command: Some(vec!["sh".into(), "-c".into(), listening]),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    containers.push(Container {
        name: CONTAINER.into(),
        image: Some(job.image.clone()),
        // Tags are content digests: a present image is the right one.
        image_pull_policy: Some("IfNotPresent".into()),
        args: Some(args),
        env: Some(envs),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        ..Default::default()
    });
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
                    containers,
                    volumes: (!volumes.is_empty()).then_some(volumes),
                    image_pull_secrets: job
                        .pull_secret
                        .as_ref()
                        .map(|name| vec![LocalObjectReference { name: name.clone() }]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// For a replaying run: its pods may send nothing anywhere (their gateway is on the
/// pod's own loopback, which no policy touches). Enforced where the cluster's network
/// plugin implements NetworkPolicy.
pub fn network_policy(run_id: &str, namespace: &str) -> NetworkPolicy {
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(format!("kiln-{run_id}-no-egress")),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
                (RUN_LABEL.to_string(), run_id.to_string()),
            ])),
            ..Default::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    RUN_LABEL.to_string(),
                    run_id.to_string(),
                )])),
                ..Default::default()
            },
            policy_types: Some(vec!["Egress".into()]),
            egress: Some(vec![]),
            ..Default::default()
        }),
    }
}

/// The YAML documents and kubectl commands a run amounts to (`--dry-run`).
pub fn dry_run_text(run_id: &str, namespace: &str, jobs: &[JobPlan]) -> anyhow::Result<String> {
    let mut out = String::new();
    if jobs.iter().any(|j| j.gateway.is_some()) {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&network_policy(run_id, namespace))?);
    }
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
        format!("kubectl delete jobs,configmaps,networkpolicies,secrets -n {namespace} -l {sel} --cascade=foreground"),
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
            gateway: None,
            pull_secret: None,
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
        assert!(pod.image_pull_secrets.is_none());
        let with_login = JobPlan {
            pull_secret: Some("kiln-abc123-pull".into()),
            ..plan(true, "null")
        };
        let pod = job("abc123", "ns", &with_login)
            .spec
            .unwrap()
            .template
            .spec
            .unwrap();
        assert_eq!(pod.image_pull_secrets.unwrap()[0].name, "kiln-abc123-pull");
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

    #[test]
    fn a_replaying_pod_runs_the_gateway_first_on_its_loopback() {
        let mut p = plan(true, "mini-swe-agent");
        p.gateway = Some(GatewayPlan {
            image: "r:1/kiln-gateway@sha256:ab".into(),
            fixture: b"{}\n".to_vec(),
            lenient: false,
            speed: crate::gateway::Speed(None),
        });
        let cm = config_map("abc123", "ns", &p).unwrap();
        assert_eq!(cm.binary_data.unwrap()[FIXTURE_KEY].0, b"{}\n");
        let pod = job("abc123", "ns", &p).spec.unwrap().template.spec.unwrap();
        let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, [GATEWAY_CONTAINER, CONTAINER]);
        let gateway = &pod.containers[0];
        let command = gateway.command.as_ref().unwrap().join(" ");
        assert!(
            command.contains("gateway replay /kiln-fixture/fixture.jsonl --listen 127.0.0.1:8080")
        );
        assert!(command.contains("--until-file /kiln-gateway/done"));
        assert!(gateway.lifecycle.as_ref().unwrap().post_start.is_some());
        let env: BTreeMap<&str, &str> = pod.containers[1]
            .env
            .iter()
            .flatten()
            .map(|e| (e.name.as_str(), e.value.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(env["OPENAI_BASE_URL"], "http://127.0.0.1:8080/v1");
        assert_eq!(env["KILN_DONE_FILE"], "/kiln-gateway/done");
        assert!(env["KILN_PASS_ENV"]
            .split(',')
            .any(|n| n == "ANTHROPIC_BASE_URL"));
        let text = dry_run_text("abc123", "ns", &[p]).unwrap();
        assert!(text.contains("kind: NetworkPolicy"));
    }
}
