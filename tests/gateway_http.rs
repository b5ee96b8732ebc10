//! The model gateway over real HTTP (no Docker): replay of JSON and SSE answers,
//! divergence and exhaustion as the agent sees them, and a record → replay round trip
//! whose upstream is a second gateway, with a secret that must not reach the fixture.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;

use kiln::gateway::fixture::{Exchange, Fixture, Header};
use kiln::gateway::sse::SseEvent;
use kiln::gateway::{self, Mode, Options};
use serde_json::{json, Value};

/// One HTTP/1.1 request on a fresh connection: (status, content type, body).
fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, String, String) {
    let body = body.to_string();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
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

fn chat(messages: &[(&str, &str)]) -> Value {
    let m: Vec<Value> = messages
        .iter()
        .map(|(r, c)| json!({"role": r, "content": c}))
        .collect();
    json!({"model": "gpt-test", "messages": m})
}

/// An Anthropic stream event recorded `at_ms` after the request.
fn anthropic_event(data: &str, at_ms: u64) -> SseEvent {
    let kind: Value = serde_json::from_str(data).unwrap();
    SseEvent {
        event: Some(kind["type"].as_str().unwrap().into()),
        data: data.into(),
        at_ms: Some(at_ms),
    }
}

fn fixture() -> Fixture {
    let mut header = Header::new();
    header.model = "gpt-test".into();
    header.score = Some(1.0);
    Fixture {
        header,
        exchanges: vec![
            Exchange {
                route: "POST /v1/chat/completions".into(),
                request: chat(&[("user", "count")]),
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
                    anthropic_event(
                        r#"{"type":"message_start","message":{"usage":{"input_tokens":20,"output_tokens":1}}}"#,
                        0,
                    ),
                    anthropic_event(
                        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
                        250,
                    ),
                    anthropic_event(
                        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"3"}}"#,
                        500,
                    ),
                    anthropic_event(r#"{"type":"content_block_stop","index":0}"#, 500),
                    anthropic_event(
                        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":4}}"#,
                        500,
                    ),
                    anthropic_event(r#"{"type":"message_stop"}"#, 500),
                ]),
            },
        ],
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A strict replay of `path`, streams sent at once.
fn replay_opts(path: &std::path::Path) -> Options {
    paced_replay_opts(path, None)
}

fn paced_replay_opts(path: &std::path::Path, speed: Option<f64>) -> Options {
    Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        mode: Mode::Replay {
            fixture: path.to_path_buf(),
            lenient: false,
            speed: gateway::Speed(speed),
        },
        stats: None,
        model: None,
    }
}

#[test]
fn replay_serves_json_and_sse_then_exhausts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.jsonl");
    fixture().write(&path).unwrap();
    let rt = rt();
    let g = rt.block_on(gateway::start(&replay_opts(&path))).unwrap();
    let (st, _, body) = call(g.addr, "GET", "/v1/models", &[], &json!({}));
    assert_eq!(st, 200);
    assert!(body.contains("gpt-test"), "{body}");
    let (st, ct, body) = call(
        g.addr,
        "POST",
        "/v1/chat/completions",
        &[],
        &chat(&[("user", "count")]),
    );
    assert_eq!((st, ct.as_str()), (200, "application/json"), "{body}");
    assert!(body.contains("wc -l"));
    let second = json!({"model": "gpt-test", "messages": [{"role": "user", "content": "count"}, {"role": "assistant", "content": [{"type": "text", "text": "wc -l"}]}, {"role": "user", "content": "3"}], "stream": true});
    let (st, ct, body) = call(
        g.addr,
        "POST",
        "/v1/messages",
        &[("anthropic-version", "2023-06-01")],
        &second,
    );
    assert_eq!((st, ct.as_str()), (200, "text/event-stream"), "{body}");
    assert!(body.starts_with("event: message_start\ndata: {"), "{body}");
    // What the agent got follows the Messages API's streaming grammar.
    kiln::gateway::stream_grammar::check(
        kiln::gateway::route::Route::AnthropicMessages,
        &kiln::gateway::sse::parse(&body),
    )
    .unwrap();
    let (st, _, body) = call(g.addr, "POST", "/v1/messages", &[], &second);
    assert_eq!(st, 400);
    assert!(
        body.contains("replay_exhausted") && body.contains("2 recorded turns"),
        "{body}"
    );
    let stats = rt.block_on(g.stop()).unwrap();
    let r = stats.replay.unwrap();
    assert_eq!((stats.calls, r.turns_served, r.exhausted), (3, 2, 1));
    assert_eq!((stats.input_tokens, stats.output_tokens), (30, 6));
}

#[test]
fn divergence_is_an_error_with_the_difference() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.jsonl");
    fixture().write(&path).unwrap();
    let rt = rt();
    let g = rt.block_on(gateway::start(&replay_opts(&path))).unwrap();
    let (st, _, body) = call(
        g.addr,
        "POST",
        "/v1/chat/completions",
        &[],
        &chat(&[("user", "count all")]),
    );
    assert_eq!(st, 400);
    let v: Value = serde_json::from_str(&body).unwrap();
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("kiln replay: diverged at turn 1: message 1 (user): text differs"),
        "{msg}"
    );
    let stats = rt.block_on(g.stop()).unwrap();
    assert_eq!(stats.replay.unwrap().diverged[0].turn, 1);
}

#[test]
fn record_through_a_second_gateway_round_trips_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let upstream_fixture = dir.path().join("upstream.jsonl");
    fixture().write(&upstream_fixture).unwrap();
    let recorded = dir.path().join("recorded.jsonl");
    let secret = "sk-kiln-test-secret-4242";
    let rt = rt();
    let upstream = rt
        .block_on(gateway::start(&replay_opts(&upstream_fixture)))
        .unwrap();
    let recorder = rt
        .block_on(gateway::start(&Options {
            listen: "127.0.0.1:0".parse().unwrap(),
            mode: Mode::Record {
                upstream: format!("http://{}/v1", upstream.addr),
                out: recorded.clone(),
                api_key: Some(secret.into()),
                redact: vec![("AGENT_TOKEN".into(), "tok-agent-777".into())],
                header: Box::new(Header {
                    model: "gpt-test".into(),
                    ..Header::new()
                }),
                ca_bundle: None,
            },
            stats: None,
            model: None,
        }))
        .unwrap();
    // The agent's own key header is dropped; a secret in a message body is redacted.
    let (st, _, body) = call(
        recorder.addr,
        "POST",
        "/v1/chat/completions",
        &[("authorization", "Bearer tok-agent-777")],
        &chat(&[("user", "count")]),
    );
    assert_eq!(st, 200, "{body}");
    let second = json!({"model": "gpt-test", "messages": [{"role": "user", "content": "count"}, {"role": "assistant", "content": "wc -l"}, {"role": "user", "content": "3"}]});
    let (st, ct, _) = call(
        recorder.addr,
        "POST",
        "/v1/messages",
        &[("x-api-key", "tok-agent-777")],
        &second,
    );
    assert_eq!((st, ct.as_str()), (200, "text/event-stream"));
    let (_, _, _) = call(
        recorder.addr,
        "POST",
        "/v1/chat/completions",
        &[],
        &chat(&[("user", "my token is tok-agent-777")]),
    );
    let rec_stats = rt.block_on(recorder.stop()).unwrap();
    rt.block_on(upstream.stop()).unwrap();
    assert_eq!(rec_stats.calls, 3);
    let text = std::fs::read_to_string(&recorded).unwrap();
    assert!(
        !text.contains(secret) && !text.contains("tok-agent-777"),
        "{text}"
    );
    assert!(text.contains("[redacted AGENT_TOKEN]"));
    // The recording replays: the same requests get the same answers.
    let f = Fixture::read(&recorded).unwrap();
    assert_eq!(f.exchanges.len(), 3);
    let without_times = |events: &Option<Vec<SseEvent>>| -> Vec<(Option<String>, String)> {
        events
            .iter()
            .flatten()
            .map(|e| (e.event.clone(), e.data.clone()))
            .collect()
    };
    assert_eq!(
        without_times(&f.exchanges[1].events),
        without_times(&fixture().exchanges[1].events)
    );
    let g = rt
        .block_on(gateway::start(&replay_opts(&recorded)))
        .unwrap();
    let (st, _, body) = call(
        g.addr,
        "POST",
        "/v1/chat/completions",
        &[],
        &chat(&[("user", "count")]),
    );
    assert_eq!(st, 200);
    assert!(body.contains("wc -l"));
    let (st, _, _) = call(g.addr, "POST", "/v1/messages", &[], &second);
    assert_eq!(st, 200);
    rt.block_on(g.stop()).unwrap();
}

/// `kiln gateway replay --until-file F` (a pod's sidecar) stops by itself once F exists
/// and prints its final counters as one JSON line on stdout.
#[test]
fn the_gateway_process_ends_when_told_by_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.jsonl");
    fixture().write(&path).unwrap();
    let done = dir.path().join("done");
    let stats = dir.path().join("stats.json");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["gateway", "replay"])
        .arg(&path)
        .args(["--listen", "127.0.0.1:0", "--stats"])
        .arg(&stats)
        .arg("--until-file")
        .arg(&done)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !stats.is_file() {
        assert!(
            std::time::Instant::now() < deadline,
            "the gateway did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "it ended before the file appeared"
    );
    std::fs::write(&done, "").unwrap();
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the gateway did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let counters: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(counters["mode"], "replay", "{last}");
    assert_eq!(counters["calls"], 0, "{last}");
}

/// A stream recorded from an upstream that paces it keeps each event's arrival time,
/// and replay sends the events at those times (divided by the speed), or at once.
#[test]
fn streams_are_recorded_and_replayed_at_their_pace() {
    let dir = tempfile::tempdir().unwrap();
    let upstream_fixture = dir.path().join("upstream.jsonl");
    let mut f = fixture();
    f.exchanges.truncate(2);
    f.exchanges.remove(0);
    f.write(&upstream_fixture).unwrap();
    let recorded = dir.path().join("recorded.jsonl");
    let rt = rt();
    // The upstream streams as recorded: events at 0, 250 and 500 ms.
    let upstream = rt
        .block_on(gateway::start(&paced_replay_opts(
            &upstream_fixture,
            Some(1.0),
        )))
        .unwrap();
    let recorder = rt
        .block_on(gateway::start(&Options {
            listen: "127.0.0.1:0".parse().unwrap(),
            mode: Mode::Record {
                upstream: format!("http://{}", upstream.addr),
                out: recorded.clone(),
                ca_bundle: None,
                api_key: None,
                redact: Vec::new(),
                header: Box::new(Header {
                    model: "gpt-test".into(),
                    ..Header::new()
                }),
            },
            stats: None,
            model: None,
        }))
        .unwrap();
    let request = f.exchanges[0].request.clone();
    let (st, _, _) = call(recorder.addr, "POST", "/v1/messages", &[], &request);
    assert_eq!(st, 200);
    rt.block_on(recorder.stop()).unwrap();
    rt.block_on(upstream.stop()).unwrap();
    let events = Fixture::read(&recorded).unwrap().exchanges[0]
        .events
        .clone()
        .unwrap();
    let times: Vec<u64> = events.iter().map(|e| e.at_ms.unwrap()).collect();
    assert!(
        times[0] < 200 && times[1] >= 200 && times[2] >= 450,
        "{times:?}"
    );
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // Replayed as recorded, four times faster, and at once.
    for (speed, at_least, below) in [
        (Some(1.0), 450, 5000),
        (Some(4.0), 100, 450),
        (None, 0, 100),
    ] {
        let g = rt
            .block_on(gateway::start(&paced_replay_opts(&recorded, speed)))
            .unwrap();
        let t = std::time::Instant::now();
        let (st, _, body) = call(g.addr, "POST", "/v1/messages", &[], &request);
        let ms = t.elapsed().as_millis();
        assert_eq!(st, 200, "{body}");
        assert!(body.contains("message_stop"), "{body}");
        assert!(
            (at_least..below).contains(&ms),
            "speed {speed:?}: the stream took {ms} ms, expected {at_least}..{below}"
        );
        rt.block_on(g.stop()).unwrap();
    }
}
