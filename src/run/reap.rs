//! Which kiln process owns a container, and removing the containers of kiln processes
//! that are gone (killed with SIGKILL, or a machine that lost power mid-run).
//!
//! Every container `kiln run` starts carries [`LABEL_PID`] (the kiln process id),
//! [`LABEL_PID_START`] (that process's start time in clock ticks since boot, from
//! `/proc/<pid>/stat`, so a recycled pid does not pass for the old process),
//! [`LABEL_HOST`] (the machine's host name: only this machine can tell whether the
//! pid is alive) and [`LABEL_RUN_ID`] (one id per `kiln run` command). Before a run
//! starts, [`reap`] lists the containers carrying [`LABEL_PID`], keeps those whose
//! process is alive (or that come from another host), and removes the others.

use crate::printer::errln;
use std::collections::BTreeMap;

use anyhow::Context as _;

use crate::store::Store;

pub const LABEL_RUN: &str = "kiln.run";
pub const LABEL_PID: &str = "kiln.pid";
pub const LABEL_PID_START: &str = "kiln.pid-start";
pub const LABEL_HOST: &str = "kiln.host";
pub const LABEL_RUN_ID: &str = "kiln.run-id";

/// The identity of this kiln process, as its containers' labels give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub pid_start: String,
    pub host: String,
    pub run_id: String,
}

impl Owner {
    /// This process, with a fresh run id.
    pub fn current() -> Owner {
        let pid = std::process::id();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Owner {
            pid,
            pid_start: start_time(pid).unwrap_or_default(),
            host: host_name(),
            run_id: format!("{}-{pid}", now.as_millis()),
        }
    }

    /// The labels every container of this process carries.
    pub fn labels(&self) -> Vec<(String, String)> {
        vec![
            (LABEL_RUN.into(), "true".into()),
            (LABEL_PID.into(), self.pid.to_string()),
            (LABEL_PID_START.into(), self.pid_start.clone()),
            (LABEL_HOST.into(), self.host.clone()),
            (LABEL_RUN_ID.into(), self.run_id.clone()),
        ]
    }
}

/// Field 22 of `/proc/<pid>/stat` (start time after boot, in clock ticks).
pub fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_string)
}

pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Whether the process these labels name is gone. Containers from another host, or
/// without the labels, are never judged dead.
pub fn owner_is_dead(labels: &BTreeMap<String, String>, this_host: &str) -> bool {
    let (Some(pid), Some(start)) = (
        labels.get(LABEL_PID).and_then(|p| p.parse::<u32>().ok()),
        labels.get(LABEL_PID_START),
    ) else {
        return false;
    };
    if labels.get(LABEL_HOST).map(String::as_str) != Some(this_host) {
        return false;
    }
    start_time(pid).as_deref() != Some(start.as_str())
}

/// A container found and removed.
#[derive(Debug, Clone)]
pub struct Reaped {
    pub store: Store,
    pub name: String,
    pub pid: String,
    pub run_id: String,
}

/// Removes the containers of dead kiln processes in `stores` (a store that does not
/// answer is skipped) and returns them; the caller says so.
pub async fn reap(stores: &[Store]) -> anyhow::Result<Vec<Reaped>> {
    let found = dead(stores).await?;
    for r in &found {
        remove(r.store, &r.name).await?;
    }
    Ok(found)
}

/// The containers of dead kiln processes in `stores` (a store that does not answer is
/// skipped), left as they are.
pub async fn dead(stores: &[Store]) -> anyhow::Result<Vec<Reaped>> {
    let host = host_name();
    let mut out = Vec::new();
    for store in stores {
        let found = match store {
            Store::Docker => docker_containers().await,
            Store::Podman => tokio::task::spawn_blocking(podman_containers)
                .await
                .context("listing podman containers")?,
        };
        let Ok(found) = found else { continue };
        for (name, labels) in found {
            if !owner_is_dead(&labels, &host) {
                continue;
            }
            out.push(Reaped {
                store: *store,
                name,
                pid: labels.get(LABEL_PID).cloned().unwrap_or_default(),
                run_id: labels.get(LABEL_RUN_ID).cloned().unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// [`reap`], saying on stderr what it removed (what `kiln run` and `kiln validate` do
/// before they start containers of their own).
pub async fn reap_and_say(stores: &[Store]) -> anyhow::Result<()> {
    for r in reap(stores).await? {
        errln!(
            "removed container {} ({} store) left by kiln process {} (run {}), which is no longer running",
            r.name, r.store, r.pid, r.run_id
        );
    }
    Ok(())
}

type Found = Vec<(String, BTreeMap<String, String>)>;

async fn docker_containers() -> anyhow::Result<Found> {
    let docker = bollard::Docker::connect_with_local_defaults()?;
    let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&std::collections::HashMap::from([(
            "label",
            vec![LABEL_PID],
        )]))
        .build();
    let list = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        docker.list_containers(Some(options)),
    )
    .await
    .context("the Docker Engine did not list containers within 10 s")??;
    Ok(list
        .into_iter()
        .filter_map(|c| {
            let name = c.names?.first()?.trim_start_matches('/').to_string();
            Some((name, c.labels.unwrap_or_default().into_iter().collect()))
        })
        .collect())
}

fn podman_containers() -> anyhow::Result<Found> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct PodmanContainer {
        names: Vec<String>,
        #[serde(default)]
        labels: Option<BTreeMap<String, String>>,
    }
    let out = duct::cmd!(
        "podman",
        "ps",
        "--all",
        "--filter",
        format!("label={LABEL_PID}"),
        "--format",
        "json"
    )
    .stdout_capture()
    .stderr_null()
    .unchecked()
    .run()?;
    if !out.status.success() {
        anyhow::bail!("podman ps failed");
    }
    let list: Vec<PodmanContainer> = serde_json::from_slice(&out.stdout)?;
    Ok(list
        .into_iter()
        .filter_map(|c| Some((c.names.first()?.clone(), c.labels.unwrap_or_default())))
        .collect())
}

/// Force-removes a container (a running one is killed). Gone already is fine.
pub async fn remove(store: Store, name: &str) -> anyhow::Result<()> {
    match store {
        Store::Docker => {
            let docker = bollard::Docker::connect_with_local_defaults()?;
            let options = bollard::query_parameters::RemoveContainerOptionsBuilder::default()
                .force(true)
                .build();
            match docker.remove_container(name, Some(options)).await {
                Ok(())
                | Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => Ok(()),
                Err(e) => Err(e).with_context(|| format!("removing container {name}")),
            }
        }
        Store::Podman => {
            let name = name.to_string();
            tokio::task::spawn_blocking(move || {
                let out = duct::cmd!("podman", "rm", "--force", "--ignore", &name)
                    .stdout_null()
                    .stderr_capture()
                    .unchecked()
                    .run()?;
                if !out.status.success() {
                    anyhow::bail!(
                        "podman could not remove container {name}: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
                Ok(())
            })
            .await?
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_gone_one_is_dead() {
        let me = Owner::current();
        assert!(!me.pid_start.is_empty());
        let labels: BTreeMap<String, String> = me.labels().into_iter().collect();
        assert!(!owner_is_dead(&labels, &me.host));
        let mut recycled = labels.clone();
        recycled.insert(LABEL_PID_START.into(), "1".into());
        assert!(
            owner_is_dead(&recycled, &me.host),
            "same pid, other start time"
        );
        let mut elsewhere = recycled.clone();
        elsewhere.insert(LABEL_HOST.into(), "another-host".into());
        assert!(!owner_is_dead(&elsewhere, &me.host));
        assert!(!owner_is_dead(&BTreeMap::new(), &me.host));
    }
}
