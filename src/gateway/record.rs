//! Recording: forward each model call to an upstream API, hand its answer back, and
//! append the exchange to the fixture. The upstream key is the gateway's alone: the
//! agent's `Authorization` and `x-api-key` headers are dropped, kiln sends its own,
//! and no header is ever written; the values of the secrets named with
//! `--redact-env` (and the key) are replaced in everything written. An `https://`
//! upstream goes through kiln's one TLS set-up (`crate::tls`: system roots,
//! `--ca-bundle`/`KILN_CA_BUNDLE`, certs.d).

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use serde_json::Value;

use super::fixture::{Exchange, Fixture};
use super::route::Route;
use super::sse;

/// An upstream base URL, `http[s]://host[:port][/prefix]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    /// True for `https://`.
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path prefix before `/v1/…` (without a trailing slash).
    pub prefix: String,
}

impl Upstream {
    pub fn parse(url: &str) -> anyhow::Result<Upstream> {
        let (tls, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            (None, None) => bail!("--upstream {url:?}: not an http:// or https:// URL"),
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.contains('@') {
            bail!(
                "--upstream: credentials do not belong in the URL; pass the key with --api-key-env"
            );
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse()
                    .with_context(|| format!("--upstream {url}: port {p:?} is not a number"))?,
            ),
            None => (authority.to_string(), if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            bail!("--upstream {url}: no host");
        }
        let prefix = path.trim_end_matches('/');
        let prefix = prefix.strip_suffix("/v1").unwrap_or(prefix).to_string();
        Ok(Upstream {
            tls,
            host,
            port,
            prefix,
        })
    }

    pub fn display(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}:{}{}", self.host, self.port, self.prefix)
    }

    /// `host:port`, the name TLS errors and certs.d use.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

pub struct Recorder {
    pub upstream: Upstream,
    /// What an https upstream's certificate is checked against.
    pub trust: crate::tls::Trust,
    pub api_key: Option<String>,
    /// `(name, value)` of every secret to keep out of the fixture.
    pub secrets: Vec<(String, String)>,
    pub fixture: Fixture,
    pub out: PathBuf,
}

/// What the upstream answered: the body as it arrived, in chunks with their arrival
/// times (milliseconds after the request was sent), which a streamed answer's replay
/// is paced by.
pub struct Forwarded {
    pub status: u16,
    pub content_type: String,
    pub chunks: Vec<(Bytes, u64)>,
}

impl Forwarded {
    /// The whole body.
    pub fn body(&self) -> Bytes {
        match self.chunks.as_slice() {
            [(one, _)] => one.clone(),
            many => many.iter().flat_map(|(b, _)| b.iter().copied()).collect(),
        }
    }
}

impl Recorder {
    /// Sends one request upstream (one connection per call: model calls are seconds
    /// apart, and a fresh connection never carries state between them).
    pub async fn forward(
        &self,
        route: Route,
        body: &Bytes,
        anthropic_version: Option<&str>,
    ) -> anyhow::Result<Forwarded> {
        let stream =
            tokio::net::TcpStream::connect((self.upstream.host.as_str(), self.upstream.port))
                .await
                .with_context(|| {
                    format!("connecting to the upstream {}", self.upstream.display())
                })?;
        let mut sender = if self.upstream.tls {
            let authority = self.upstream.authority();
            let config = crate::tls::client_config(&self.trust, &authority)?;
            let name = rustls::pki_types::ServerName::try_from(self.upstream.host.clone())
                .with_context(|| {
                    format!("--upstream {}: not a host name", self.upstream.display())
                })?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map_err(|e| match crate::tls::explain(&authority, &e) {
                    Some(text) => {
                        anyhow::anyhow!("the upstream {}: {text}", self.upstream.display())
                    }
                    None => anyhow::anyhow!(
                        "TLS with the upstream {} failed: {e}",
                        self.upstream.display()
                    ),
                })?;
            handshake(tls).await?
        } else {
            handshake(stream).await?
        };
        let mut req = hyper::Request::post(format!("{}{}", self.upstream.prefix, route.path()))
            .header(
                "host",
                format!("{}:{}", self.upstream.host, self.upstream.port),
            )
            .header("content-type", "application/json");
        if let Some(key) = &self.api_key {
            req = match route {
                Route::OpenAiChat => req.header("authorization", format!("Bearer {key}")),
                Route::AnthropicMessages => req.header("x-api-key", key.as_str()),
            };
        }
        if route == Route::AnthropicMessages {
            req = req.header(
                "anthropic-version",
                anthropic_version.unwrap_or("2023-06-01"),
            );
        }
        let sent = std::time::Instant::now();
        let resp = sender
            .send_request(req.body(Full::new(body.clone()))?)
            .await
            .with_context(|| format!("calling the upstream {}", self.upstream.display()))?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_string();
        let mut body = resp.into_body();
        let mut chunks = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.context("reading the upstream's answer")?;
            if let Ok(data) = frame.into_data() {
                let ms = u64::try_from(sent.elapsed().as_millis()).unwrap_or(u64::MAX);
                chunks.push((data, ms));
            }
        }
        Ok(Forwarded {
            status,
            content_type,
            chunks,
        })
    }

    fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        if let Some(key) = self.api_key.as_deref().filter(|k| !k.is_empty()) {
            out = out.replace(key, "[redacted upstream key]");
        }
        for (name, value) in &self.secrets {
            if !value.is_empty() {
                out = out.replace(value.as_str(), &format!("[redacted {name}]"));
            }
        }
        out
    }

    /// Appends one exchange (secrets replaced) and rewrites the fixture, so a run that
    /// stops half-way leaves every call made until then. Returns the exchange written.
    pub fn append(
        &mut self,
        route: Route,
        request: &Bytes,
        answer: &Forwarded,
    ) -> anyhow::Result<Exchange> {
        let request: Value = serde_json::from_str(&self.redact(&String::from_utf8_lossy(request)))
            .context("the agent's request is not JSON")?;
        let (response, events) = if answer.content_type.starts_with("text/event-stream") {
            let mut events = sse::parse_timed(&answer.chunks);
            for e in &mut events {
                e.data = self.redact(&e.data);
            }
            (None, Some(events))
        } else {
            let text = self.redact(&String::from_utf8_lossy(&answer.body()));
            let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
            (Some(v), None)
        };
        let exchange = Exchange {
            route: route.as_str().into(),
            request,
            status: answer.status,
            response,
            events,
        };
        self.fixture.exchanges.push(exchange.clone());
        self.fixture.write(&self.out)?;
        Ok(exchange)
    }
}

/// An HTTP/1 connection over `io` (plain TCP or TLS); the connection runs on its own task.
async fn handshake<T>(io: T) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .context("HTTP handshake with the upstream")?;
    tokio::spawn(conn);
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls() {
        let u = Upstream::parse("http://127.0.0.1:8080/v1/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.prefix.as_str()),
            ("127.0.0.1", 8080, "")
        );
        let u = Upstream::parse("http://proxy/openai").unwrap();
        assert_eq!((u.port, u.prefix.as_str()), (80, "/openai"));
        let u = Upstream::parse("https://api.openai.com/v1").unwrap();
        assert_eq!((u.tls, u.port, u.prefix.as_str()), (true, 443, ""));
        assert_eq!(u.display(), "https://api.openai.com:443");
        for bad in ["ftp://x", "http://u:p@h/", "http://h:x/"] {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redaction_covers_key_and_named_secrets() {
        let r = Recorder {
            upstream: Upstream::parse("http://h").unwrap(),
            trust: Default::default(),
            api_key: Some("sk-upstream-1".into()),
            secrets: vec![("TOKEN".into(), "tok-42".into())],
            fixture: Fixture {
                header: super::super::fixture::Header::new(),
                exchanges: vec![],
            },
            out: PathBuf::from("/nonexistent"),
        };
        assert_eq!(
            r.redact("a sk-upstream-1 b tok-42"),
            "a [redacted upstream key] b [redacted TOKEN]"
        );
    }
}
