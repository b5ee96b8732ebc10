//! The model gateway recording through an HTTPS upstream: a small HTTPS server in the
//! test (rustls, a certificate from a test CA made here) in front of a replaying
//! gateway plays the OpenAI/Anthropic-compatible endpoint. With the CA bundle the
//! recording works, server-sent events included; with a wrong CA the agent gets an
//! error naming the upstream host and why. No Docker needed.

mod registry_support;

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use kiln::gateway::fixture::{Exchange, Fixture, Header};
use kiln::gateway::sse::SseEvent;
use kiln::gateway::{self, Mode, Options};
use registry_support::tls::{make_certs, Cert};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};

fn post(addr: SocketAddr, path: &str, body: &Value) -> (u16, String, String) {
    let body = body.to_string();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, rest) = out.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (status, ctype, rest.to_string())
}

fn upstream_fixture() -> Fixture {
    let mut header = Header::new();
    header.model = "gpt-test".into();
    Fixture {
        header,
        exchanges: vec![
            Exchange {
                route: "POST /v1/chat/completions".into(),
                request: json!({"model": "gpt-test", "messages": [{"role": "user", "content": "count"}]}),
                status: 200,
                response: Some(
                    json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "wc -l"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 2}}),
                ),
                events: None,
            },
            Exchange {
                route: "POST /v1/messages".into(),
                request: json!({"model": "gpt-test", "messages": [{"role": "user", "content": "count"}, {"role": "assistant", "content": "wc -l"}, {"role": "user", "content": "3"}]}),
                status: 200,
                response: None,
                events: Some(vec![
                    event(
                        r#"{"type":"message_start","message":{"usage":{"input_tokens":20,"output_tokens":1}}}"#,
                    ),
                    event(
                        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
                    ),
                    event(
                        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"3"}}"#,
                    ),
                    event(r#"{"type":"content_block_stop","index":0}"#),
                    event(
                        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":4}}"#,
                    ),
                    event(r#"{"type":"message_stop"}"#),
                ]),
            },
        ],
    }
}

/// An Anthropic stream event (named by its data's type), sent at once on replay.
fn event(data: &str) -> SseEvent {
    let v: serde_json::Value = serde_json::from_str(data).unwrap();
    SseEvent {
        event: Some(v["type"].as_str().unwrap().into()),
        data: data.into(),
        at_ms: None,
    }
}

/// An HTTPS front on a free 127.0.0.1 port for the plain-HTTP `backend`.
async fn https_front(certs: &Path, backend: SocketAddr) -> SocketAddr {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(certs.join("server.crt"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(certs.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A handshake the client refuses ends here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    addr
}

fn record_opts(upstream: String, out: &Path, ca: &Path) -> Options {
    Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        mode: Mode::Record {
            upstream,
            out: out.to_path_buf(),
            api_key: Some("sk-tls-test-secret".into()),
            redact: vec![],
            header: Box::new(Header {
                model: "gpt-test".into(),
                ..Header::new()
            }),
            ca_bundle: Some(ca.to_path_buf()),
        },
        stats: None,
        model: None,
    }
}

#[test]
fn records_through_an_https_upstream_with_the_ca_bundle() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path(), "127.0.0.1", Cert::Valid);
    let fixture = dir.path().join("upstream.jsonl");
    upstream_fixture().write(&fixture).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let backend = rt
        .block_on(gateway::start(&Options {
            listen: "127.0.0.1:0".parse().unwrap(),
            mode: Mode::Replay {
                fixture: fixture.clone(),
                lenient: false,
                speed: gateway::Speed(None),
            },
            stats: None,
            model: None,
        }))
        .unwrap();
    let front = rt.block_on(https_front(dir.path(), backend.addr));
    let url = format!("https://127.0.0.1:{}/v1", front.port());

    // The right CA: both routes recorded, the event stream as the upstream sent it.
    let recorded = dir.path().join("recorded.jsonl");
    let rec = rt
        .block_on(gateway::start(&record_opts(
            url.clone(),
            &recorded,
            &dir.path().join("ca.crt"),
        )))
        .unwrap();
    let first = &upstream_fixture().exchanges[0].request;
    let (st, _, body) = post(rec.addr, "/v1/chat/completions", first);
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("wc -l"), "{body}");
    let second = &upstream_fixture().exchanges[1].request;
    let (st, ct, _) = post(rec.addr, "/v1/messages", second);
    assert_eq!((st, ct.as_str()), (200, "text/event-stream"));
    let stats = rt.block_on(rec.stop()).unwrap();
    assert_eq!(stats.calls, 2);
    let f = Fixture::read(&recorded).unwrap();
    assert_eq!(f.exchanges.len(), 2);
    // The same stream, now with the times its events arrived.
    let untimed = |events: &Option<Vec<SseEvent>>| -> Vec<SseEvent> {
        let mut events = events.clone().unwrap();
        for e in &mut events {
            e.at_ms = None;
        }
        events
    };
    assert_eq!(
        untimed(&f.exchanges[1].events),
        untimed(&upstream_fixture().exchanges[1].events)
    );
    assert!(!std::fs::read_to_string(&recorded)
        .unwrap()
        .contains("sk-tls-test-secret"));

    // A wrong CA: the agent gets a 502 naming the upstream and why.
    let rec = rt
        .block_on(gateway::start(&record_opts(
            url,
            &dir.path().join("wrong.jsonl"),
            &dir.path().join("other-ca.crt"),
        )))
        .unwrap();
    let (st, _, body) = post(rec.addr, "/v1/chat/completions", first);
    assert_eq!(st, 502, "{body}");
    let host = format!("127.0.0.1:{}", front.port());
    assert!(
        body.contains(&host) && body.contains("unknown authority"),
        "{body}"
    );
    rt.block_on(rec.stop()).unwrap();
    rt.block_on(backend.stop()).unwrap();
}
