//! The HTTP side: one hyper HTTP/1.1 server that routes model calls to the replayer or
//! the recorder, answers `GET /v1/models`, frames streamed answers as SSE, and keeps
//! the counters.

use crate::printer::errln;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Response};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::fixture::Exchange;
use super::record::Recorder;
use super::replay::{Answer, Replayer};
use super::route::{self, Route};
use super::sse;
use super::sse::SseEvent;
use super::stats::Stats;

pub enum Engine {
    Replay(Replayer),
    Record(Recorder),
}

pub struct State {
    pub engine: Engine,
    pub stats: Stats,
    /// The model `GET /v1/models` lists.
    pub model: String,
    /// Where the counters are written after every call (and once at start).
    pub stats_path: Option<PathBuf>,
    /// Replay pacing: streamed events are sent at their recorded times divided by this
    /// factor; `None` sends them at once.
    pub speed: Option<f64>,
}

impl State {
    pub fn snapshot(&self) -> Stats {
        let mut s = self.stats.clone();
        if let Engine::Replay(r) = &self.engine {
            s.replay = Some(r.stats.clone());
        }
        s
    }

    pub fn write_stats(&self) -> anyhow::Result<()> {
        let Some(path) = &self.stats_path else {
            return Ok(());
        };
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, serde_json::to_string_pretty(&self.snapshot())? + "\n")
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn json_response(status: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(body.to_string()))
        .expect("a valid response")
}

/// A recorded stream, each event sent at its recorded time (`at_ms`, from `start`)
/// divided by `speed`; at once without a speed or a recorded time.
fn stream_body(events: &[SseEvent], start: Instant, speed: Option<f64>) -> Body {
    let paced = speed.filter(|_| events.iter().any(|e| e.at_ms.is_some()));
    let Some(speed) = paced else {
        return full(events.iter().map(sse::frame).collect::<String>());
    };
    let start = tokio::time::Instant::from_std(start);
    let events = events.to_vec();
    let frames = futures_util::stream::iter(events).then(move |e| async move {
        if let Some(ms) = e.at_ms {
            let due = Duration::from_secs_f64(ms as f64 / 1000.0 / speed);
            tokio::time::sleep_until(start + due).await;
        }
        Ok::<_, Infallible>(Frame::data(Bytes::from(sse::frame(&e))))
    });
    http_body_util::BodyExt::boxed(StreamBody::new(frames))
}

fn recorded_response(e: &Exchange, start: Instant, speed: Option<f64>) -> Response<Body> {
    match (&e.events, &e.response) {
        (Some(events), _) => Response::builder()
            .status(e.status)
            .header("content-type", "text/event-stream")
            .header("cache-control", "no-cache")
            .body(stream_body(events, start, speed))
            .expect("a valid response"),
        (None, Some(body)) => json_response(e.status, body),
        (None, None) => json_response(500, &json!({"error": "empty exchange"})),
    }
}

fn tokens(e: &Exchange) -> (u64, u64) {
    match (&e.events, &e.response) {
        (Some(events), _) => route::stream_usage(events),
        (None, Some(body)) => route::usage(body),
        _ => (0, 0),
    }
}

async fn handle(state: Arc<Mutex<State>>, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    if method == "GET" && matches!(path.as_str(), "/v1/models" | "/models") {
        let model = state.lock().await.model.clone();
        return json_response(
            200,
            &json!({"object": "list", "data": [{"id": model, "object": "model", "type": "model", "owned_by": "kiln"}]}),
        );
    }
    if method == "GET" && path == "/healthz" {
        return json_response(200, &json!({"ok": true}));
    }
    let Some(route) = Route::from_http(&method, &path) else {
        return json_response(
            404,
            &json!({"error": {"message": format!("kiln gateway: no route {method} {path}"), "type": "not_found"}}),
        );
    };
    let anthropic_version = req
        .headers()
        .get("anthropic-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let started = Instant::now();
    let raw = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return json_response(
                400,
                &route.error_body("bad_request", &format!("reading the request: {e}")),
            )
        }
    };
    let body: Value = match serde_json::from_slice(&raw) {
        Ok(v) => v,
        Err(e) => {
            return json_response(
                400,
                &route.error_body("bad_request", &format!("the request is not JSON: {e}")),
            )
        }
    };
    let mut st = state.lock().await;
    let response = match &mut st.engine {
        Engine::Replay(r) => match r.answer(route, &body) {
            Answer::Recorded(e) => {
                let (i, o) = tokens(&e);
                st.stats.input_tokens += i;
                st.stats.output_tokens += o;
                recorded_response(&e, started, st.speed)
            }
            Answer::Error(status, kind, message) => {
                errln!("kiln gateway: {message}");
                json_response(status, &route.error_body(kind, &message))
            }
        },
        Engine::Record(rec) => match rec.forward(route, &raw, anthropic_version.as_deref()).await {
            Ok(answer) => match rec.append(route, &raw, &answer) {
                Ok(e) => {
                    let (i, o) = tokens(&e);
                    st.stats.input_tokens += i;
                    st.stats.output_tokens += o;
                    Response::builder()
                        .status(answer.status)
                        .header("content-type", answer.content_type.as_str())
                        .body(full(answer.body()))
                        .expect("a valid response")
                }
                Err(e) => json_response(
                    500,
                    &route.error_body("record_failed", &format!("kiln gateway: {e:#}")),
                ),
            },
            Err(e) => json_response(
                502,
                &route.error_body("upstream_unreachable", &format!("kiln gateway: {e:#}")),
            ),
        },
    };
    st.stats.calls += 1;
    st.stats.wait_sec += started.elapsed().as_secs_f64();
    if let Err(e) = st.write_stats() {
        errln!("kiln gateway: {e:#}");
    }
    response
}

/// Serves on `listener` until `shutdown` resolves; returns the final counters.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<Mutex<State>>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<Stats> {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer): (tokio::net::TcpStream, SocketAddr) = match accepted {
                    Ok(a) => a,
                    Err(e) => { errln!("kiln gateway: accept: {e}"); continue; }
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
            _ = &mut shutdown => break,
        }
    }
    let st = state.lock().await;
    st.write_stats()?;
    Ok(st.snapshot())
}
