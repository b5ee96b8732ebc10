//! The image pull secret of a run on a registry that needs a login: a
//! `kubernetes.io/dockerconfigjson` Secret built in memory from the user's Docker login
//! for the run registry (never written to disk, never printed), created in the run's
//! namespace before its Jobs, named in their pods' `imagePullSecrets`, and deleted
//! with the run's other objects (also on Ctrl-C or an error). `--dry-run` shows the
//! Secret with a placeholder instead of the login.

use crate::printer::errln;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, ListParams};

use super::manifest::{MANAGED_BY, RUN_LABEL};
use crate::registry::auth::{self, Credentials};

/// The Secret type the kubelet reads registry logins from.
pub const TYPE: &str = "kubernetes.io/dockerconfigjson";
/// Its one key.
pub const KEY: &str = ".dockerconfigjson";
/// What `--dry-run` shows instead of the login.
pub const PLACEHOLDER: &str = "<the login for the registry, from the Docker client configuration>";

/// The Secret's name for run `run_id`.
pub fn name(run_id: &str) -> String {
    format!("kiln-{run_id}-pull")
}

fn secret(run_id: &str, namespace: &str, body: Vec<u8>) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name(run_id)),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
                (RUN_LABEL.to_string(), run_id.to_string()),
            ])),
            ..Default::default()
        },
        type_: Some(TYPE.into()),
        data: Some(BTreeMap::from([(KEY.to_string(), ByteString(body))])),
        ..Default::default()
    }
}

/// The pull secret for `host` (`host[:port]`) holding `creds`. `None` when the login
/// cannot be handed to the kubelet (an identity token: the kubelet reads only user
/// and password).
pub fn for_login(run_id: &str, namespace: &str, host: &str, creds: &Credentials) -> Option<Secret> {
    let body = creds.dockerconfigjson(&auth::config_key(host))?;
    Some(secret(run_id, namespace, body.into_bytes()))
}

/// The `--dry-run` text of the Secret: its shape, the login replaced by a placeholder.
pub fn dry_run_text(run_id: &str, namespace: &str) -> anyhow::Result<String> {
    let mut s = secret(run_id, namespace, Vec::new());
    s.data = None;
    s.string_data = Some(BTreeMap::from([(KEY.to_string(), PLACEHOLDER.to_string())]));
    Ok(format!("---\n{}", serde_yaml::to_string(&s)?))
}

/// Deletes run `run_id`'s pull secret (nothing when there is none).
pub async fn remove(secrets: &Api<Secret>, run_id: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    secrets
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels(&format!("{RUN_LABEL}={run_id}")),
        )
        .await
        .context("deleting kiln's image pull secret")?;
    Ok(())
}

/// Deletes the pull secret of a run that stopped on an error (with a client of its
/// own: the run's may be what failed); says how to delete it by hand if that fails.
pub async fn remove_after_error(namespace: &str, run_id: &str) {
    let removed = async {
        let secrets: Api<Secret> = Api::namespaced(kube::Client::try_default().await?, namespace);
        remove(&secrets, run_id).await
    };
    if let Err(e) = removed.await {
        errln!(
            "kubernetes: {e:#}; delete it with: kubectl delete secret -n {namespace} {}",
            name(run_id)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    const PASSWORD: &str = "pull-secret-password-91";

    #[test]
    fn secret_is_what_the_kubelet_reads() {
        let creds = Credentials::basic("alice", PASSWORD);
        let s = for_login("ab12cd34", "evals", "registry.example:5000", &creds).unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["type"], TYPE);
        assert_eq!(v["metadata"]["name"], "kiln-ab12cd34-pull");
        assert_eq!(v["metadata"]["namespace"], "evals");
        assert_eq!(v["metadata"]["labels"]["kiln.dev/run"], "ab12cd34");
        assert_eq!(
            v["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "kiln"
        );
        // The API takes `data` base64-encoded.
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v["data"][KEY].as_str().unwrap())
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        let entry = &body["auths"]["registry.example:5000"];
        assert_eq!(entry["username"], "alice");
        assert_eq!(entry["password"], PASSWORD);
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(entry["auth"].as_str().unwrap())
                .unwrap(),
            format!("alice:{PASSWORD}").as_bytes()
        );
        // Docker Hub's login goes under Docker Hub's key.
        let hub = for_login("x", "n", "docker.io", &creds).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&hub.data.unwrap()[KEY].0).unwrap();
        assert!(body["auths"][auth::DOCKER_HUB_KEY].is_object());
        // An identity token cannot be handed to the kubelet.
        assert!(for_login("x", "n", "r.example", &Credentials::identity("a", PASSWORD)).is_none());
        // The dry run shows the Secret's shape, never the login.
        let text = dry_run_text("ab12cd34", "evals").unwrap();
        assert!(text.contains(PLACEHOLDER) && text.contains(TYPE), "{text}");
        assert!(!text.contains(PASSWORD));
    }
}
