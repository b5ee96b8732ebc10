//! A small client for the OCI distribution API, enough to read back what a release
//! pushed: manifests (HEAD/GET), the image config blob, blob existence, tag lists and
//! the catalog. It answers the registry's `WWW-Authenticate` challenge itself: `Basic`
//! (send the login) or `Bearer` (fetch a token from the realm with the login).
//!
//! Why not the `oci-client` crate: it brings reqwest and a TLS stack (minutes of
//! compile on a 2-core CI machine) for six requests, and its auth flow is built around
//! bearer tokens; this client reuses hyper, which bollard already compiles. The cost:
//! plain HTTP only, which is what the Docker Engine itself allows without
//! configuration — registries on 127.0.0.0/8 and `localhost`. Any other registry is
//! refused with a message saying so.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
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

/// The manifest types kiln's pushes produce (Docker's and OCI's single-image manifests).
const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.image.manifest.v1+json";
/// Every manifest kind a tag can hold: the two above plus the multi-platform ones (OCI
/// image index, Docker manifest list). A tag holding an index answers 404 to an Accept
/// without them, which would pass for "absent".
const ANY_MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";
const TIMEOUT: Duration = Duration::from_secs(30);

/// What a tag holds, as one `HEAD` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagHead {
    /// `Docker-Content-Digest`.
    pub digest: String,
    /// `Content-Type` (empty when the registry gives none).
    pub media_type: String,
}

impl TagHead {
    /// True for an OCI image index or a Docker manifest list (a multi-platform tag).
    pub fn is_index(&self) -> bool {
        self.media_type.contains("image.index") || self.media_type.contains("manifest.list")
    }
}

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
    /// The `Authorization` value that last worked (Basic, or the last Bearer token).
    auth: Mutex<Option<String>>,
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
            auth: Mutex::new(None),
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

    /// Sends a request, answering one authentication challenge.
    async fn send(
        &self,
        method: Method,
        path: &str,
        accept: Option<&str>,
    ) -> anyhow::Result<Response> {
        let url = format!("{}{}", self.base, path);
        let cached = self.auth.lock().expect("auth lock").clone();
        let first = self
            .send_once(&method, &url, accept, cached.as_deref())
            .await?;
        if first.status != StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        let challenge = first
            .headers
            .get(hyper::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let Some(creds) = &self.creds else {
            bail!(
                "registry {} requires a login and {} has none for it (run `docker login {}`)",
                self.host,
                auth::config_path().display(),
                self.host
            );
        };
        let header = if challenge.to_ascii_lowercase().starts_with("bearer") {
            format!("Bearer {}", self.token(&challenge, creds).await?)
        } else {
            if cached.is_some() && !cached.as_deref().unwrap_or("").starts_with("Bearer") {
                return Err(self.refused(creds));
            }
            creds.basic_header()
        };
        let second = self.send_once(&method, &url, accept, Some(&header)).await?;
        if second.status == StatusCode::UNAUTHORIZED {
            return Err(self.refused(creds));
        }
        *self.auth.lock().expect("auth lock") = Some(header);
        Ok(second)
    }

    fn refused(&self, creds: &Credentials) -> anyhow::Error {
        anyhow!(
            "registry {} refused the login of user {:?} (from {}): wrong credentials? run `docker login {}`",
            self.host,
            creds.username,
            auth::config_path().display(),
            self.host
        )
    }

    /// A bearer token from the challenge's realm, fetched with the login.
    async fn token(&self, challenge: &str, creds: &Credentials) -> anyhow::Result<String> {
        let params = parse_challenge(challenge);
        let realm = params
            .get("realm")
            .ok_or_else(|| anyhow!("registry {}: a Bearer challenge without a realm", self.host))?;
        if !realm.starts_with("http://") {
            bail!("registry {}: its token service {realm} is not plain HTTP, which this client cannot reach", self.host);
        }
        let mut url = realm.clone();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        for key in ["service", "scope"] {
            if let Some(v) = params.get(key) {
                url.push(sep);
                url.push_str(&format!("{key}={}", v.replace(' ', "%20")));
                sep = '&';
            }
        }
        let resp = self
            .send_once(&Method::GET, &url, None, Some(&creds.basic_header()))
            .await?;
        if resp.status == StatusCode::UNAUTHORIZED || resp.status == StatusCode::FORBIDDEN {
            return Err(self.refused(creds));
        }
        let json: serde_json::Value = serde_json::from_slice(&resp.body).with_context(|| {
            format!(
                "registry {}: the token service's answer is not JSON",
                self.host
            )
        })?;
        json.get("token")
            .or_else(|| json.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| anyhow!("registry {}: the token service gave no token", self.host))
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

    /// What `tag` holds in `repository`, of any manifest kind (index and list included),
    /// by one `HEAD`; `None` when absent.
    pub async fn head_any(&self, repository: &str, tag: &str) -> anyhow::Result<Option<TagHead>> {
        let path = format!("/v2/{repository}/manifests/{tag}");
        let r = self
            .send(Method::HEAD, &path, Some(ANY_MANIFEST_ACCEPT))
            .await?;
        let header = |name: &str| {
            r.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        match r.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(TagHead {
                digest: header("docker-content-digest").ok_or_else(|| {
                    anyhow!(
                        "registry {}: HEAD {path} gave no Docker-Content-Digest",
                        self.host
                    )
                })?,
                media_type: header("content-type").unwrap_or_default(),
            })),
            _ => Err(self.unexpected(&format!("HEAD {path}"), &r)),
        }
    }

    /// Tries what a push does first, an upload, with the empty blob (`POST` an upload,
    /// `PUT` it with its digest), to learn why the registry refuses uploads; `Ok` when
    /// it accepts it. The empty blob is referenced by nothing.
    pub async fn probe_upload(&self, repository: &str) -> anyhow::Result<()> {
        const EMPTY: &str =
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let path = format!("/v2/{repository}/blobs/uploads/");
        let r = self.send(Method::POST, &path, None).await?;
        if !r.status.is_success() {
            return Err(self.unexpected(&format!("POST {path}"), &r));
        }
        let location = r
            .headers
            .get(hyper::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow!("registry {}: POST {path} gave no Location", self.host))?;
        // The Location is absolute or a path; the request goes to this registry either way.
        let mut upload = match location.find("/v2/") {
            Some(i) => location[i..].to_string(),
            None => bail!("registry {}: an upload Location {location:?}", self.host),
        };
        upload.push(if upload.contains('?') { '&' } else { '?' });
        upload.push_str(&format!("digest={EMPTY}"));
        let r = self.send(Method::PUT, &upload, None).await?;
        if !r.status.is_success() {
            let shown = upload.split('?').next().unwrap_or(&upload).to_string();
            return Err(self.unexpected(&format!("PUT {shown}"), &r));
        }
        Ok(())
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

/// The `key="value"` parameters of a `WWW-Authenticate` challenge.
fn parse_challenge(challenge: &str) -> BTreeMap<String, String> {
    let rest = challenge.split_once(' ').map_or("", |(_, r)| r);
    let mut out = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_string();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                value.push(c);
            }
            // Skip to the comma.
            for c in chars.by_ref() {
                if c == ',' {
                    break;
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        out.insert(key.to_ascii_lowercase(), value.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let p = parse_challenge(
            r#"Bearer realm="http://127.0.0.1:5001/token",service="registry",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(p["realm"], "http://127.0.0.1:5001/token");
        assert_eq!(p["service"], "registry");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#)["realm"],
            "Registry Realm"
        );
        assert!(parse_challenge("Basic").is_empty());
    }

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
