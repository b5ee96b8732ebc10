//! A small client for the OCI distribution API, enough to read back what a release
//! pushed: manifests (HEAD/GET), the image config blob, blob existence, tag lists and
//! the catalog. Authentication (Basic, or bearer tokens per scope) is `super::token`'s;
//! this client only carries its requests.
//!
//! Why not the `oci-client` crate: it brings reqwest and a TLS stack (minutes of
//! compile on a 2-core CI machine) for six requests, and its auth flow is built around
//! bearer tokens; this client reuses hyper, which bollard already compiles. The cost:
//! plain HTTP only, which is what the Docker Engine itself allows without
//! configuration — registries on 127.0.0.0/8 and `localhost`. Any other registry is
//! refused with a message saying so.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client as HyperClient};
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::auth::{self, Credentials};
use super::reference::Registry;
use super::token::{self, Tokens, Transport};

/// The manifest types kiln's pushes produce (Docker's and OCI's single-image manifests).
const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.image.manifest.v1+json";
const TIMEOUT: Duration = Duration::from_secs(30);

/// One blob a manifest points at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: Option<String>,
    pub digest: String,
    pub size: u64,
}

/// A single-image manifest as the registry serves it.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest's digest (what a tag resolves to).
    pub digest: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct ManifestJson {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// A registry connection with its login.
pub struct Client {
    host: String,
    base: String,
    http: HyperClient<HttpConnector, Full<Bytes>>,
    creds: Option<Credentials>,
    /// Basic or per-scope bearer tokens, as the registry asked.
    tokens: Tokens,
    requests: AtomicUsize,
}

struct Response {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl Client {
    /// A client for `registry` with the login `docker login` left for it (if any).
    pub fn new(registry: &Registry) -> anyhow::Result<Client> {
        let creds = auth::lookup(&registry.host)?;
        Client::with_credentials(registry, creds)
    }

    /// A client with explicit credentials (`None`: anonymous).
    pub fn with_credentials(
        registry: &Registry,
        creds: Option<Credentials>,
    ) -> anyhow::Result<Client> {
        if !registry.is_loopback() {
            bail!(
                "registry {}: kiln talks plain HTTP to registries on this machine only \
                 (127.0.0.0/8, localhost); HTTPS registries are not supported yet",
                registry.host
            );
        }
        Ok(Client {
            host: registry.host.clone(),
            base: format!("http://{}", registry.host),
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
            creds,
            tokens: Tokens::default(),
            requests: AtomicUsize::new(0),
        })
    }

    /// The registry host this client talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The login in use, if any.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.creds.as_ref()
    }

    /// Tokens fetched from the registry's token service so far.
    pub fn token_fetches(&self) -> usize {
        self.tokens.fetched()
    }

    /// HTTP requests sent so far (token fetches and retries included).
    pub fn request_count(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    async fn send_once(
        &self,
        method: &Method,
        url: &str,
        accept: Option<&str>,
        authz: Option<&str>,
    ) -> anyhow::Result<Response> {
        let mut req = hyper::Request::builder().method(method.clone()).uri(url);
        if let Some(a) = accept {
            req = req.header(hyper::header::ACCEPT, a);
        }
        if let Some(a) = authz {
            req = req.header(hyper::header::AUTHORIZATION, a);
        }
        let req = req.body(Full::new(Bytes::new()))?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let fut = async {
            let resp = self.http.request(req).await?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await?.to_bytes();
            anyhow::Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(TIMEOUT, fut).await {
            Err(_) => bail!(
                "registry {} did not answer within {} s",
                self.host,
                TIMEOUT.as_secs()
            ),
            Ok(Err(e)) => {
                let cause = std::error::Error::source(e.root_cause())
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| e.root_cause().to_string());
                Err(anyhow!("registry {} does not answer ({cause})", self.host))
            }
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// Sends a request with the authorization its scope has (see `token`), answering
    /// one authentication challenge.
    async fn send(
        &self,
        method: Method,
        path: &str,
        accept: Option<&str>,
    ) -> anyhow::Result<Response> {
        let url = format!("{}{}", self.base, path);
        let scope = token::scope_for(&method, path);
        let creds = self.creds.as_ref();
        let sent = self.tokens.authorization(scope.as_deref(), creds);
        let first = self
            .send_once(&method, &url, accept, sent.as_deref())
            .await?;
        if first.status != StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        let challenge = first
            .headers
            .get(hyper::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok());
        let header = self
            .tokens
            .answer(
                self,
                &self.host,
                challenge,
                scope.as_deref(),
                creds,
                sent.as_deref(),
            )
            .await?;
        let second = self.send_once(&method, &url, accept, Some(&header)).await?;
        if second.status == StatusCode::UNAUTHORIZED {
            return Err(match creds {
                Some(c) => token::refused(&self.host, c, scope.as_deref()),
                None => token::no_login(&self.host),
            });
        }
        Ok(second)
    }

    fn unexpected(&self, what: &str, r: &Response) -> anyhow::Error {
        let text = String::from_utf8_lossy(&r.body);
        anyhow!(
            "registry {}: {what} answered {}: {}",
            self.host,
            r.status,
            text.trim().chars().take(300).collect::<String>()
        )
    }

    /// Checks that the registry answers and accepts the login (`GET /v2/`).
    pub async fn ping(&self) -> anyhow::Result<()> {
        let r = self.send(Method::GET, "/v2/", None).await?;
        if r.status.is_success() {
            Ok(())
        } else {
            Err(self.unexpected("GET /v2/", &r))
        }
    }

    /// The digest `tag` resolves to in `repository` (`HEAD` of the manifest); `None` when absent.
    pub async fn manifest_digest(
        &self,
        repository: &str,
        tag: &str,
    ) -> anyhow::Result<Option<String>> {
        let path = format!("/v2/{repository}/manifests/{tag}");
        let r = self
            .send(Method::HEAD, &path, Some(MANIFEST_ACCEPT))
            .await?;
        match r.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(r
                .headers
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)),
            _ => Err(self.unexpected(&format!("HEAD {path}"), &r)),
        }
    }

    /// The manifest `reference` (a tag or digest) names in `repository`; `None` when absent.
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> anyhow::Result<Option<Manifest>> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let r = self.send(Method::GET, &path, Some(MANIFEST_ACCEPT)).await?;
        if r.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !r.status.is_success() {
            return Err(self.unexpected(&format!("GET {path}"), &r));
        }
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&r.body)));
        let parsed: ManifestJson = serde_json::from_slice(&r.body).with_context(|| {
            format!(
                "registry {}: {path} is not a single-image manifest",
                self.host
            )
        })?;
        Ok(Some(Manifest {
            digest,
            config: parsed.config,
            layers: parsed.layers,
        }))
    }

    /// The labels of an image config blob (checked against its digest).
    pub async fn config_labels(
        &self,
        repository: &str,
        digest: &str,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let path = format!("/v2/{repository}/blobs/{digest}");
        let r = self.send(Method::GET, &path, None).await?;
        if !r.status.is_success() {
            return Err(self.unexpected(&format!("GET {path}"), &r));
        }
        let got = format!("sha256:{}", hex::encode(Sha256::digest(&r.body)));
        if got != digest {
            bail!(
                "registry {}: blob {digest} of {repository} has digest {got}",
                self.host
            );
        }
        let config: serde_json::Value = serde_json::from_slice(&r.body)
            .with_context(|| format!("registry {}: config {digest} is not JSON", self.host))?;
        Ok(config
            .pointer("/config/Labels")
            .and_then(|l| l.as_object())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// True when `repository` holds the blob `digest` (`HEAD`).
    pub async fn blob_exists(&self, repository: &str, digest: &str) -> anyhow::Result<bool> {
        let path = format!("/v2/{repository}/blobs/{digest}");
        let r = self.send(Method::HEAD, &path, None).await?;
        match r.status {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            _ => Err(self.unexpected(&format!("HEAD {path}"), &r)),
        }
    }

    /// The tags of `repository`, sorted (empty when the repository does not exist).
    pub async fn tags(&self, repository: &str) -> anyhow::Result<Vec<String>> {
        self.paged(&format!("/v2/{repository}/tags/list"), "tags")
            .await
    }

    /// Every repository in the registry, sorted.
    pub async fn catalog(&self) -> anyhow::Result<Vec<String>> {
        self.paged("/v2/_catalog", "repositories").await
    }

    /// A paginated list (`n` and `last`, as the distribution spec pages them).
    async fn paged(&self, path: &str, key: &str) -> anyhow::Result<Vec<String>> {
        const PAGE: usize = 1000;
        let mut all: Vec<String> = Vec::new();
        loop {
            let mut url = format!("{path}?n={PAGE}");
            if let Some(last) = all.last() {
                url.push_str(&format!("&last={last}"));
            }
            let r = self.send(Method::GET, &url, None).await?;
            if r.status == StatusCode::NOT_FOUND {
                break;
            }
            if !r.status.is_success() {
                return Err(self.unexpected(&format!("GET {url}"), &r));
            }
            let v: serde_json::Value = serde_json::from_slice(&r.body)?;
            let page: Vec<String> = v[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let n = page.len();
            all.extend(page);
            if n < PAGE {
                break;
            }
        }
        all.sort();
        all.dedup();
        Ok(all)
    }
}

/// The token service's requests go through the client's own connection set-up.
impl Transport for Client {
    async fn exchange(
        &self,
        method: Method,
        url: &str,
        authorization: Option<&str>,
        form: Option<String>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        if !url.starts_with("http://") {
            bail!(
                "registry {}: its token service {url} is not plain HTTP, which this client cannot reach",
                self.host
            );
        }
        let mut req = hyper::Request::builder().method(method).uri(url);
        if let Some(a) = authorization {
            req = req.header(hyper::header::AUTHORIZATION, a);
        }
        if form.is_some() {
            req = req.header(
                hyper::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
        }
        let req = req.body(Full::new(Bytes::from(form.unwrap_or_default())))?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let fut = async {
            let resp = self.http.request(req).await?;
            let status = resp.status();
            anyhow::Ok((status, resp.into_body().collect().await?.to_bytes()))
        };
        match tokio::time::timeout(TIMEOUT, fut).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(anyhow!(
                "registry {}: its token service {} does not answer ({})",
                self.host,
                url.split('?').next().unwrap_or(url),
                e.root_cause()
            )),
            Err(_) => bail!(
                "registry {}: its token service did not answer within {} s",
                self.host,
                TIMEOUT.as_secs()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_registries_are_refused_clearly() {
        let err = Client::with_credentials(&Registry::parse("registry.example.com").unwrap(), None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("registry.example.com") && err.contains("HTTPS"),
            "{err}"
        );
    }
}
