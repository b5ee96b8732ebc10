//! A small client for the OCI distribution API, enough to read back what a release
//! pushed: manifests (HEAD/GET), the image config blob, blob existence, tag lists and
//! the catalog. Authentication (Basic, or bearer tokens per scope) is `super::token`'s;
//! this client only carries its requests.
//!
//! HTTPS through hyper-rustls with kiln's one TLS set-up (`crate::tls`); plain HTTP
//! only where `transport` allows it (loopback, insecure hosts). Transient failures are
//! retried as `transport::RetryPolicy` says; any other 4xx fails at once with the
//! registry's own error message.
//!
//! Why not the `oci-client` crate: it brings reqwest and a second TLS/HTTP stack
//! (minutes of compile on a 2-core CI machine) for a handful of requests, and neither
//! docker's certs.d nor its insecure-registry rules; this client reuses hyper and
//! hyper-rustls, which bollard and kube already compile.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client as HyperClient};
use hyper_util::rt::TokioExecutor;
use sha2::{Digest as _, Sha256};

use super::auth::{self, Credentials};
use super::manifest::Manifest;
use super::manifest::{parse_manifest, MANIFEST_ACCEPT};
use super::reference::Registry;
use super::token::{self, Tokens};
use super::transport::{self, RetryPolicy, Security, Transport};

const TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a loopback or insecure host may take to answer the TLS hello before it
/// counts as plain HTTP (a TLS server answers a hello at once).
const TLS_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

type Https = HttpsConnector<HttpConnector>;

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

/// A registry connection with its login.
pub struct Client {
    host: String,
    base: String,
    security: Security,
    /// Set once the scheme a loopback or insecure host speaks is known.
    scheme: Mutex<Option<&'static str>>,
    retry: RetryPolicy,
    trust: crate::tls::Trust,
    http: HyperClient<Https, Full<Bytes>>,
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
        let transport = Transport::new(None, Vec::new())?;
        let (security, http) = connector(&transport, &registry.host)?;
        Ok(Client {
            host: registry.host.clone(),
            // Docker Hub's names are not its API endpoint.
            base: format!(
                "https://{}",
                super::reference::endpoint_host(&registry.host)
            ),
            security,
            scheme: Mutex::new(None),
            retry: transport.retry,
            trust: transport.trust,
            http,
            creds,
            tokens: Tokens::default(),
            requests: AtomicUsize::new(0),
        })
    }

    /// The same client reaching its registry as `transport` says (CA bundle,
    /// insecure hosts, retry bounds).
    pub fn over(mut self, transport: &Transport) -> anyhow::Result<Client> {
        let (security, http) = connector(transport, &self.host)?;
        self.security = security;
        self.http = http;
        self.retry = transport.retry;
        self.trust = transport.trust.clone();
        *self.scheme.lock().expect("scheme lock") = None;
        Ok(self)
    }

    /// How this client reaches its registry.
    pub fn security(&self) -> Security {
        self.security
    }

    /// The CA bundle it trusts besides the system's roots and certs.d.
    pub fn trust(&self) -> &crate::tls::Trust {
        &self.trust
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

    /// One request, retried on 429/502/503/504 and dropped connections as
    /// `self.retry` allows. `url` may be a path on the registry (`/v2/…`) or a full URL
    /// (a token realm).
    async fn send_once(
        &self,
        method: &Method,
        url: &str,
        accept: Option<&str>,
        authz: Option<&str>,
    ) -> anyhow::Result<Response> {
        let started = std::time::Instant::now();
        let mut waited = Duration::ZERO;
        let mut n = 0;
        loop {
            let outcome = self.attempt(method, url, accept, authz).await;
            let retry_after = match &outcome {
                Ok(r) if transport::retryable_status(r.status.as_u16()) => r
                    .headers
                    .get(hyper::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| transport::parse_retry_after(v, std::time::SystemTime::now())),
                Ok(_) | Err(Failure::Final(_)) => return outcome.map_err(Failure::into_error),
                Err(Failure::Dropped(_)) => None,
            };
            n += 1;
            let delay = self.retry.delay(n, retry_after);
            if n > self.retry.retries || waited + delay > self.retry.budget {
                let tries = format!(
                    "{n} tries in {:.1} s (bounds: {}={}, {}={})",
                    started.elapsed().as_secs_f64(),
                    crate::env::REGISTRY_RETRIES.name,
                    self.retry.retries,
                    crate::env::REGISTRY_RETRY_SECS.name,
                    self.retry.budget.as_secs()
                );
                let last = match outcome {
                    Ok(r) => self.unexpected(&format!("{method} {}", display_path(url)), &r),
                    Err(f) => f.into_error(),
                };
                bail!("{last:#} (gave up after {tries})");
            }
            tokio::time::sleep(delay).await;
            waited += delay;
        }
    }

    /// The full URL for `url` (a registry path gets the scheme this host speaks).
    async fn resolve(&self, url: &str) -> Result<String, Failure> {
        if !url.starts_with('/') {
            return Ok(url.to_string());
        }
        if self.security == Security::Verified {
            return Ok(format!("{}{url}", self.base));
        }
        if let Some(scheme) = *self.scheme.lock().expect("scheme lock") {
            return Ok(format!("{scheme}://{}{url}", self.host));
        }
        // A loopback or insecure host: HTTPS when it speaks it, else plain HTTP.
        let probe = format!("https://{}/v2/", self.host);
        let answer = tokio::time::timeout(
            TLS_PROBE_TIMEOUT,
            self.exchange(&Method::GET, &probe, None, None),
        )
        .await;
        let scheme = match answer {
            Ok(Ok(_)) => "https",
            // It answered the TLS hello in plain HTTP, or hung up on it.
            Ok(Err(e)) if crate::tls::is_plain_http_answer(e.as_ref()) || hung_up(&e) => "http",
            Ok(Err(e)) => return Err(Failure::Final(self.describe(e))),
            // A plain-HTTP server that waits for a request line the TLS hello never
            // completes: what docker does for such hosts, plain HTTP.
            Err(_) => "http",
        };
        *self.scheme.lock().expect("scheme lock") = Some(scheme);
        Ok(format!("{scheme}://{}{url}", self.host))
    }

    /// One HTTP exchange, with its failure sorted into worth-retrying or not.
    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        accept: Option<&str>,
        authz: Option<&str>,
    ) -> Result<Response, Failure> {
        let url = self.resolve(url).await?;
        self.exchange(method, &url, accept, authz)
            .await
            .map_err(
                |e| match e.downcast_ref::<hyper_util::client::legacy::Error>() {
                    // The connection was made, then dropped or reset: worth another try.
                    Some(h) if !h.is_connect() && !is_tls(&e) => Failure::Dropped(self.describe(e)),
                    _ => Failure::Final(self.describe(e)),
                },
            )
    }

    async fn exchange(
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
            Err(_) => Err(anyhow!(Timeout)),
            Ok(r) => r,
        }
    }

    /// A transport failure as a sentence naming the host.
    fn describe(&self, e: anyhow::Error) -> anyhow::Error {
        if e.is::<Timeout>() {
            return anyhow!(
                "registry {} did not answer within {} s",
                self.host,
                TIMEOUT.as_secs()
            );
        }
        if let Some(text) = crate::tls::explain(&self.host, e.as_ref()) {
            return anyhow!("registry {}: {text}", self.host);
        }
        let cause = std::error::Error::source(e.root_cause())
            .map(|s| s.to_string())
            .unwrap_or_else(|| e.root_cause().to_string());
        let cause = if cause.is_empty() {
            format!("{e:#}")
        } else {
            cause
        };
        anyhow!("registry {} does not answer ({cause})", self.host)
    }

    /// Sends a request with the authorization its scope has (see `token`), answering
    /// one authentication challenge.
    async fn send(
        &self,
        method: Method,
        path: &str,
        accept: Option<&str>,
    ) -> anyhow::Result<Response> {
        let url = path.to_string();
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
        let text = transport::registry_message(&r.body).unwrap_or_else(|| {
            String::from_utf8_lossy(&r.body)
                .trim()
                .chars()
                .take(300)
                .collect()
        });
        if text.is_empty() {
            anyhow!("registry {}: {what} answered {}", self.host, r.status)
        } else {
            anyhow!(
                "registry {}: {what} answered {}: {text}",
                self.host,
                r.status
            )
        }
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
            .send(Method::HEAD, &path, Some(MANIFEST_ACCEPT))
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
        let content_type = r
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        parse_manifest(digest, &content_type, &r.body)
            .map(Some)
            .with_context(|| format!("registry {}: {path}", self.host))
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

/// Why an attempt failed: worth another try or not.
enum Failure {
    Dropped(anyhow::Error),
    Final(anyhow::Error),
}

impl Failure {
    fn into_error(self) -> anyhow::Error {
        match self {
            Failure::Dropped(e) | Failure::Final(e) => e,
        }
    }
}

#[derive(Debug)]
struct Timeout;

impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("timed out")
    }
}

impl std::error::Error for Timeout {}

fn is_tls(e: &anyhow::Error) -> bool {
    crate::tls::rustls_error(e.as_ref()).is_some()
}

/// True when the peer closed the connection during the TLS handshake.
fn hung_up(e: &anyhow::Error) -> bool {
    if is_tls(e) {
        return false;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e.as_ref());
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            );
        }
        cur = err.source();
    }
    false
}

/// A URL for messages: the path of a registry URL, a token realm without its query.
fn display_path(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// The hyper client for `host`: TLS as `transport` says for it, plain HTTP allowed
/// on the connector only because token realms and loopback/insecure hosts may use it
/// (the registry's own URLs are https for a verified host, see `Client::resolve`).
fn connector(
    transport: &Transport,
    host: &str,
) -> anyhow::Result<(Security, HyperClient<Https, Full<Bytes>>)> {
    let security = transport.security(host);
    let config = match security {
        Security::Insecure => crate::tls::unverified_config()?,
        Security::Verified | Security::Loopback => {
            crate::tls::client_config(&transport.trust, host)?
        }
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*config).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok((
        security,
        HyperClient::builder(TokioExecutor::new()).build(https),
    ))
}

/// The token service's requests go through the client's own connection set-up.
impl token::Transport for Client {
    async fn exchange(
        &self,
        method: Method,
        url: &str,
        authorization: Option<&str>,
        form: Option<String>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        // A registry reached over verified TLS never sends its login to a plain-HTTP
        // token service: that would be a silent downgrade.
        if self.security == Security::Verified && !url.starts_with("https://") {
            bail!(
                "registry {}: its token service {} is not HTTPS; refusing to send the login in the clear",
                self.host,
                display_path(url)
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
    fn remote_registries_are_https_and_never_plain() {
        let c = Client::with_credentials(&Registry::parse("registry.example.com").unwrap(), None)
            .unwrap();
        assert_eq!(c.security(), Security::Verified);
        assert_eq!(c.base, "https://registry.example.com");
        let local =
            Client::with_credentials(&Registry::parse("127.0.0.1:5000").unwrap(), None).unwrap();
        assert_eq!(local.security(), Security::Loopback);
    }
}
