//! Pushing one image from the local store that holds it, then verifying it in the
//! registry through the distribution API. Only a verified image counts as published.
//!
//! - Docker's store: the Engine's push API (bollard) with the login as
//!   `X-Registry-Auth`; the registry reference is tagged first (the engine pushes by
//!   name) and untagged again afterwards, so the store is left as it was.
//! - podman's store: `podman push SOURCE docker://TARGET` with a throw-away
//!   `--authfile` (mode 0600) holding only this registry's login, so the secret is
//!   never on a command line. TLS is verified (`--tls-verify=true`, with a throw-away
//!   `--cert-dir` holding the CA bundle and certs.d's files for the host) except for
//!   loopback and insecure registries, as the engine does.
//!
//! A push cancelled by dropping its future stops: the engine aborts a push whose API
//! request goes away, and a podman push is killed. The temporary engine tag is then left
//! for the caller, whom [`PushObserver`] told about it before it was made.
//!
//! Verification: the tag resolves to the digest the push reported, the image config
//! is the local image's (same config digest, or at least the same
//! `kiln.inputs.digest`), it carries every required label non-empty, and every layer
//! blob exists in the repository.

use std::collections::BTreeMap;
use std::io::Write as _;

use anyhow::{anyhow, bail, Context as _};
use futures_util::StreamExt as _;
use serde::Serialize;

use super::client::Client;
use super::manifest::Manifest;
use super::reference::Reference;
use super::transport::Security;
use crate::labels;
use crate::store::{self, Store};

/// One image to publish.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// The local reference (`kiln.local/...:dev`).
    pub source: String,
    /// The store that holds it.
    pub store: Store,
    /// Where it goes.
    pub target: Reference,
    /// Labels the pushed config must carry, non-empty.
    pub required_labels: Vec<String>,
}

/// An image verified in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    /// `host/repository:tag`.
    pub reference: String,
    /// The manifest digest the tag resolves to.
    pub digest: String,
    /// The image config's digest (the local image id for Docker's store).
    pub config_digest: String,
    /// Layers plus config, in bytes, as the manifest lists them.
    pub size: u64,
    /// True when this call uploaded it; false when it was already there.
    pub pushed: bool,
}

/// What a push tells its caller while it runs (every method does nothing by default).
pub trait PushObserver: Sync {
    /// `reference` is about to be tagged in `store` (the engine pushes by name).
    fn tagging(&self, _store: Store, _reference: &str) {}
    /// The temporary tag `reference` is gone again.
    fn untagged(&self, _store: Store, _reference: &str) {}
    /// The engine failed an upload attempt and retries it (`status` is its message).
    fn retrying(&self, _target: &Reference, _status: &str) {}
    /// A layer reached the registry (pushed, or there already).
    fn layer_done(&self, _target: &Reference) {}
}

/// The observer that wants to know nothing.
pub struct Unobserved;
impl PushObserver for Unobserved {}

/// Pushes `req.source` from `req.store` to `req.target` and verifies the result in the
/// registry `client` talks to (which must be `req.target.host`). The login used is the
/// client's. Errors name the reference; they never contain the secret.
pub async fn push_and_verify(client: &Client, req: &PushRequest) -> anyhow::Result<Published> {
    push_and_verify_observed(client, req, &Unobserved).await
}

/// [`push_and_verify`], telling `observer` about temporary tags, retries and layers.
pub async fn push_and_verify_observed(
    client: &Client,
    req: &PushRequest,
    observer: &dyn PushObserver,
) -> anyhow::Result<Published> {
    let local = store::inspect(req.store, &req.source)
        .await?
        .ok_or_else(|| anyhow!("{} is not in {}'s image store", req.source, req.store))?;
    let reported = match req.store {
        Store::Docker => push_engine(client, req, observer).await?,
        Store::Podman => {
            let tls = PodmanTls {
                verify: client.security() == Security::Verified,
                trust: client.trust().clone(),
            };
            push_podman(client.credentials(), &tls, req).await?
        }
    };
    let mut published = verify(
        client,
        req,
        &local.id,
        local.labels.get(labels::INPUTS_DIGEST).map(String::as_str),
    )
    .await?;
    if let Some(d) = reported {
        if d != published.digest {
            bail!(
                "{}: the push reported digest {d} but the registry resolves the tag to {}",
                req.target,
                published.digest
            );
        }
    }
    published.pushed = true;
    Ok(published)
}

/// Reads `req.target` back and checks it is the local image (config digest
/// `local_id`, or the same inputs digest), with every required label and every layer.
pub async fn verify(
    client: &Client,
    req: &PushRequest,
    local_id: &str,
    inputs_digest: Option<&str>,
) -> anyhow::Result<Published> {
    let t = &req.target;
    let digest = client
        .manifest_digest(&t.repository, &t.tag)
        .await?
        .ok_or_else(|| anyhow!("{t}: the registry does not resolve the tag after the push"))?;
    let manifest: Manifest = client
        .manifest(&t.repository, &digest)
        .await?
        .ok_or_else(|| anyhow!("{t}: manifest {digest} is missing"))?;
    if manifest.digest != digest {
        bail!(
            "{t}: the registry serves manifest {} for digest {digest}",
            manifest.digest
        );
    }
    let got = client
        .config_labels(&t.repository, &manifest.config.digest)
        .await?;
    if manifest.config.digest != local_id {
        let same_inputs = inputs_digest.is_some()
            && got.get(labels::INPUTS_DIGEST).map(String::as_str) == inputs_digest;
        if !same_inputs {
            bail!(
                "{t}: the registry holds config {} but the local image {} is {local_id}",
                manifest.config.digest,
                req.source
            );
        }
    }
    let missing: Vec<&str> = req
        .required_labels
        .iter()
        .filter(|k| got.get(k.as_str()).is_none_or(|v| v.trim().is_empty()))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        bail!(
            "{t}: the pushed image config lacks the label(s) {}",
            missing.join(", ")
        );
    }
    for layer in &manifest.layers {
        if !client.blob_exists(&t.repository, &layer.digest).await? {
            bail!("{t}: layer {} is missing from the registry", layer.digest);
        }
    }
    Ok(Published {
        reference: t.to_string(),
        digest,
        config_digest: manifest.config.digest.clone(),
        size: manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>(),
        pushed: false,
    })
}

/// The engine push: tag, push with `X-Registry-Auth`, untag. Returns the digest the
/// engine reported.
async fn push_engine(
    client: &Client,
    req: &PushRequest,
    observer: &dyn PushObserver,
) -> anyhow::Result<Option<String>> {
    let docker = bollard::Docker::connect_with_local_defaults()
        .context("connecting to the Docker Engine")?;
    let name = req.target.name();
    let temporary = req.target.to_string();
    observer.tagging(Store::Docker, &temporary);
    docker
        .tag_image(
            &req.source,
            Some(bollard::query_parameters::TagImageOptions {
                repo: Some(name.clone()),
                tag: Some(req.target.tag.clone()),
            }),
        )
        .await
        .with_context(|| format!("tagging {} as {}", req.source, req.target))?;
    let creds = client.credentials().map(|c| c.for_engine(&req.target.host));
    let mut stream = docker.push_image(
        &name,
        Some(bollard::query_parameters::PushImageOptions {
            tag: Some(req.target.tag.clone()),
            platform: None,
        }),
        creds,
    );
    let mut digest = None;
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(e) = info.error_detail.and_then(|d| d.message) {
                    failure = Some(e);
                }
                if let Some(status) = info.status {
                    if status.starts_with("Retrying in") {
                        observer.retrying(&req.target, &status);
                    } else if status == "Pushed" || status == "Layer already exists" {
                        observer.layer_done(&req.target);
                    }
                    if let Some(d) = status.split("digest: ").nth(1) {
                        digest = d.split_whitespace().next().map(str::to_string);
                    }
                }
            }
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    // The registry tag was only the engine's way to name the push.
    if untag(Store::Docker, &temporary).await.is_ok() {
        observer.untagged(Store::Docker, &temporary);
    }
    if let Some(e) = failure {
        bail!("pushing {} to {} failed: {e}", req.source, req.target);
    }
    Ok(digest)
}

/// How podman's push treats TLS.
struct PodmanTls {
    verify: bool,
    trust: crate::tls::Trust,
}

/// A `--cert-dir` for podman: the CA bundle and certs.d's files for `host` (podman
/// reads `*.crt` as CAs and `*.cert`/`*.key` as the client certificate). `None` when
/// the system's roots are all there is.
fn podman_cert_dir(
    trust: &crate::tls::Trust,
    host: &str,
    dir: &std::path::Path,
) -> anyhow::Result<Option<std::path::PathBuf>> {
    let certs_d = crate::tls::HostCerts::read(&crate::tls::certs_d_root(), host)?;
    if trust.ca_bundle.is_none() && !certs_d.any() {
        return Ok(None);
    }
    let out = dir.join("certs");
    std::fs::create_dir(&out)?;
    if let Some(bundle) = &trust.ca_bundle {
        std::fs::copy(bundle, out.join("ca-bundle.crt"))
            .with_context(|| format!("copying --ca-bundle {}", bundle.display()))?;
    }
    for (i, ca) in certs_d.cas.iter().enumerate() {
        std::fs::copy(ca, out.join(format!("certs-d-{i}.crt")))?;
    }
    if let Some((cert, key)) = &certs_d.client {
        std::fs::copy(cert, out.join("client.cert"))?;
        std::fs::copy(key, out.join("client.key"))?;
    }
    Ok(Some(out))
}

/// Removes the temporary tag `reference` from `store`, never the image it names
/// (`noprune`). True when it was there; a tag that is already gone is fine (false).
pub async fn untag(store: Store, reference: &str) -> anyhow::Result<bool> {
    match store {
        Store::Docker => {
            let docker = bollard::Docker::connect_with_local_defaults()
                .context("connecting to the Docker Engine")?;
            match docker
                .remove_image(
                    reference,
                    Some(bollard::query_parameters::RemoveImageOptions {
                        force: false,
                        noprune: true,
                        ..Default::default()
                    }),
                    None,
                )
                .await
            {
                Ok(_) => Ok(true),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => Ok(false),
                Err(e) => Err(e).with_context(|| format!("removing the tag {reference}")),
            }
        }
        Store::Podman => {
            let out = tokio::process::Command::new("podman")
                .args(["untag", reference, reference])
                .output()
                .await
                .context("running podman untag")?;
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                Ok(true)
            } else if err.contains("not known") || err.contains("unknown") {
                Ok(false)
            } else {
                bail!("podman untag {reference} failed: {}", err.trim())
            }
        }
    }
}

/// The podman push, with the login in a temporary authfile; killed when the future is
/// dropped (a cancelled release).
async fn push_podman(
    creds: Option<&super::Credentials>,
    tls: &PodmanTls,
    req: &PushRequest,
) -> anyhow::Result<Option<String>> {
    let dir = tempfile::tempdir()?;
    let digest_file = dir.path().join("digest");
    let mut args: Vec<String> = vec!["push".into(), "--quiet".into()];
    if tls.verify {
        args.push("--tls-verify=true".into());
        if let Some(certs) = podman_cert_dir(&tls.trust, &req.target.host, dir.path())? {
            args.push(format!("--cert-dir={}", certs.display()));
        }
    } else {
        // Loopback and insecure registries: what the engine allows for them too.
        args.push("--tls-verify=false".into());
    }
    if let Some(c) = creds {
        let path = dir.path().join("auth.json");
        let mut f = std::fs::OpenOptions::new();
        f.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
        f.open(&path)?
            .write_all(c.authfile_json(&req.target.host).as_bytes())?;
        args.push(format!("--authfile={}", path.display()));
    } else {
        args.push("--creds=".into());
    }
    args.push(format!("--digestfile={}", digest_file.display()));
    args.push(req.source.clone());
    args.push(format!("docker://{}", req.target));
    let out = tokio::process::Command::new("podman")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("running podman push")?;
    if !out.status.success() {
        bail!(
            "podman push {} to {} failed: {}",
            req.source,
            req.target,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(std::fs::read_to_string(&digest_file)
        .ok()
        .map(|s| s.trim().to_string()))
}

/// The labels a published image must carry: the contract's for its kind (RULES.md,
/// Labels) — revision, version, created, source, title, `eval.*`, `kiln.inputs.digest`.
pub fn required_labels(local: &BTreeMap<String, String>) -> Vec<String> {
    use crate::naming::Kind;
    let kind = local.get(labels::TYPE).and_then(|t| {
        [
            Kind::Core,
            Kind::Benchmark,
            Kind::Task,
            Kind::Agent,
            Kind::Eval,
        ]
        .into_iter()
        .find(|k| k.as_str() == t)
    });
    let per_task =
        local.get(labels::BENCHMARK_ENV).map(String::as_str) == Some(labels::ENV_PER_TASK);
    let mut keys: Vec<String> = match kind {
        Some(k) => labels::required(k, per_task)
            .into_iter()
            .map(str::to_string)
            .collect(),
        None => labels::COMMON.iter().map(|s| s.to_string()).collect(),
    };
    for k in [labels::TYPE, labels::INPUTS_DIGEST] {
        if !keys.iter().any(|x| x == k) {
            keys.push(k.to_string());
        }
    }
    keys
}
