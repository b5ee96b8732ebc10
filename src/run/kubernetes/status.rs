//! What the Jobs and pods of a run say: finished or not, why a pod failed, and whether
//! a pending pod can never start (a pull that fails, no node to schedule on).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;

use super::manifest;

pub(super) fn selector(run_id: &str) -> ListParams {
    ListParams::default().labels(&format!("{}={run_id}", manifest::RUN_LABEL))
}

/// A Job's final condition (`Complete` or `Failed`) with its reason and message.
pub(super) fn finished(job: &Job) -> Option<(String, String)> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| {
            (
                c.type_.clone(),
                format!(
                    "{}{}",
                    c.reason.clone().unwrap_or_default(),
                    c.message
                        .as_ref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
            )
        })
}

/// Why a pod failed, from its status.
pub(super) fn pod_failure(pod: &Pod) -> String {
    let Some(status) = &pod.status else {
        return "no pod status".into();
    };
    let mut parts = Vec::new();
    if let Some(r) = &status.reason {
        parts.push(r.clone());
    }
    if let Some(m) = &status.message {
        parts.push(m.clone());
    }
    for cs in status.container_statuses.iter().flatten() {
        if let Some(t) = cs.state.as_ref().and_then(|s| s.terminated.as_ref()) {
            parts.push(format!(
                "container {} {} (exit {}{})",
                cs.name,
                t.reason.as_deref().unwrap_or("terminated"),
                t.exit_code,
                t.signal
                    .map(|s| format!(", signal {s}"))
                    .unwrap_or_default()
            ));
        }
    }
    if parts.is_empty() {
        "the pod failed without a reason".into()
    } else {
        parts.join("; ")
    }
}

/// Why a pod that has not finished cannot start, when it is for a reason retrying does
/// not usually fix: a failing image pull, a container that cannot be created, or no node
/// to schedule it on.
pub(super) fn stuck(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    for cs in status.container_statuses.iter().flatten() {
        let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let reason = w.reason.as_deref().unwrap_or_default();
        if matches!(
            reason,
            "ErrImagePull"
                | "ImagePullBackOff"
                | "InvalidImageName"
                | "ErrImageNeverPull"
                | "CreateContainerConfigError"
                | "CreateContainerError"
        ) {
            return Some(match &w.message {
                Some(m) => format!("{reason}: {m}"),
                None => reason.to_string(),
            });
        }
    }
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        })
        .map(|c| format!("Unschedulable: {}", c.message.as_deref().unwrap_or("")))
}

pub(super) fn container_times(pod: &Pod) -> (Option<i32>, Option<f64>) {
    let term = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref());
    match term {
        Some(t) => {
            let wall = match (&t.started_at, &t.finished_at) {
                (Some(a), Some(b)) => Some((b.0 - a.0).num_milliseconds().max(0) as f64 / 1000.0),
                _ => None,
            };
            (Some(t.exit_code), wall)
        }
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn pods_that_cannot_start_are_told_from_slow_ones() {
        let pull = pod(serde_json::json!({
            "phase": "Pending",
            "containerStatuses": [{
                "name": "runner", "image": "r/x:1", "imageID": "", "ready": false,
                "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"r/x:1\""}}
            }]
        }));
        assert_eq!(
            stuck(&pull).as_deref(),
            Some("ImagePullBackOff: Back-off pulling image \"r/x:1\"")
        );
        let unschedulable = pod(serde_json::json!({
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                            "message": "0/1 nodes are available"}]
        }));
        assert_eq!(
            stuck(&unschedulable).as_deref(),
            Some("Unschedulable: 0/1 nodes are available")
        );
        // Still being created, or running: not stuck.
        let creating = pod(serde_json::json!({
            "phase": "Pending",
            "containerStatuses": [{
                "name": "runner", "image": "r/x:1", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}
            }]
        }));
        assert_eq!(stuck(&creating), None);
        assert_eq!(stuck(&pod(serde_json::json!({"phase": "Running"}))), None);
    }
}
