//! The model gateway (docs/model-gateway.md): a small HTTP server that speaks
//! OpenAI's chat completions and Anthropic's messages API, and either replays a
//! fixture strictly or records an upstream into one.
//!
//! - [`fixture`]: the JSONL fixture format;
//! - [`route`]: the routes served, and each API's usage and error shapes;
//! - [`normalize`]: the conversation replay compares, and the diff it reports;
//! - [`replay`]: serving recorded turns in order (divergence, exhaustion);
//! - [`record`]: forwarding to an upstream and writing the fixture, secrets redacted;
//! - [`sse`]: server-sent event framing;
//! - [`stream_grammar`]: the event order each API's streamed answers follow;
//! - [`otel`]: converting OpenTelemetry GenAI spans into a fixture;
//! - [`stats`]: the counters `kiln run` puts into result.json;
//! - [`server`]: the HTTP server itself.

pub mod egress;
pub mod fixture;
pub mod normalize;
pub mod otel;
pub mod record;
pub mod replay;
pub mod route;
pub mod server;
pub mod sse;
pub mod stats;
pub mod stream_grammar;

use crate::printer::{errln, outln};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::Mutex;

use fixture::{Fixture, Header};
use stats::Stats;

/// What the gateway does with model calls.
#[derive(Debug, Clone)]
pub enum Mode {
    Replay {
        fixture: PathBuf,
        lenient: bool,
        /// Pacing of streamed answers.
        speed: Speed,
    },
    Record {
        upstream: String,
        out: PathBuf,
        /// The upstream API key (never written anywhere).
        api_key: Option<String>,
        /// `(name, value)` of secrets to keep out of the fixture.
        redact: Vec<(String, String)>,
        /// The fixture's header (benchmark, task, agent, model).
        header: Box<Header>,
        /// `--ca-bundle` for an https upstream (else `KILN_CA_BUNDLE`).
        ca_bundle: Option<PathBuf>,
    },
}

#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    pub mode: Mode,
    /// Write the counters here after every call.
    pub stats: Option<PathBuf>,
    /// The model `GET /v1/models` lists (default: the fixture's).
    pub model: Option<String>,
}

/// How fast replay sends a recorded stream: a factor over the recorded pace (`1` as
/// recorded, `2` twice as fast), or `max` (`None`: at once). Written and read as on
/// the command line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speed(pub Option<f64>);

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Speed, String> {
        if s == "max" {
            return Ok(Speed(None));
        }
        match s.parse::<f64>() {
            Ok(f) if f.is_finite() && f > 0.0 => Ok(Speed(Some(f))),
            _ => Err(format!(
                "{s:?} is neither a positive factor (1 = as recorded) nor `max`"
            )),
        }
    }
}

impl std::fmt::Display for Speed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(x) => write!(f, "{x}"),
            None => f.write_str("max"),
        }
    }
}

/// RFC 3339 UTC, to the second, for the fixture header.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Builds the gateway's state from `opts` (reads the fixture, checks the upstream URL).
pub fn state(opts: &Options) -> anyhow::Result<server::State> {
    let mut pace = None;
    let (engine, mode, model) = match &opts.mode {
        Mode::Replay {
            fixture,
            lenient,
            speed,
        } => {
            pace = speed.0;
            let f = Fixture::read(fixture)?;
            let r = replay::Replayer::new(f, &fixture.display().to_string(), *lenient);
            let model = r.model().to_string();
            (server::Engine::Replay(r), "replay", model)
        }
        Mode::Record {
            upstream,
            out,
            api_key,
            redact,
            header,
            ca_bundle,
        } => {
            let mut header = (**header).clone();
            header.recorded_at = now_rfc3339();
            header.source = "record".into();
            let rec = record::Recorder {
                upstream: record::Upstream::parse(upstream)?,
                trust: crate::tls::Trust::new(ca_bundle.clone()),
                api_key: api_key.clone(),
                secrets: redact.clone(),
                fixture: Fixture {
                    header: header.clone(),
                    exchanges: Vec::new(),
                },
                out: out.clone(),
            };
            // An empty fixture exists from the start: a run that makes no call still has one.
            rec.fixture.write(out)?;
            (server::Engine::Record(rec), "record", header.model)
        }
    };
    let mut stats = Stats {
        mode: mode.into(),
        ..Default::default()
    };
    if let server::Engine::Record(r) = &engine {
        stats.upstream = Some(r.upstream.display());
        stats.recorded_to = Some(r.out.display().to_string());
    }
    Ok(server::State {
        engine,
        stats,
        model: opts.model.clone().unwrap_or(model),
        stats_path: opts.stats.clone(),
        speed: pace,
    })
}

/// A gateway serving in the background of the current tokio runtime.
pub struct Running {
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<Stats>>,
}

impl Running {
    /// Stops serving and returns the final counters.
    pub async fn stop(self) -> anyhow::Result<Stats> {
        let _ = self.stop.send(());
        self.task.await.context("the gateway task panicked")?
    }
}

/// Binds `opts.listen` and serves in the background.
pub async fn start(opts: &Options) -> anyhow::Result<Running> {
    let state = Arc::new(Mutex::new(state(opts)?));
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("listening on {}", opts.listen))?;
    let addr = listener.local_addr()?;
    state.lock().await.write_stats()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    Ok(Running { addr, stop, task })
}

/// `kiln gateway replay|record`: serves in the foreground until SIGINT or SIGTERM, or
/// until the file `until` exists (how a sidecar ends with the container it serves).
/// The final counters go to stdout as one JSON line.
pub fn run_foreground(opts: &Options, until: Option<&Path>) -> anyhow::Result<Stats> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async {
        let running = start(opts).await?;
        errln!("kiln gateway: listening on http://{}", running.addr);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let appeared = async {
            match until {
                Some(file) => {
                    while !file.exists() {
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            _ = appeared => {}
        }
        let stats = running.stop().await?;
        errln!("kiln gateway: {}", stats.summary());
        outln!("{}", serde_json::to_string(&stats)?);
        Ok(stats)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_shape() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }
}
