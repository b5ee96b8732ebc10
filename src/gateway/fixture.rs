//! The fixture format (docs/model-gateway.md): JSONL, a versioned header on the first
//! line, then one exchange per line in the order the agent made them.

use std::io::Write as _;
use std::path::Path;

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::sse::SseEvent;

/// The one fixture version this kiln reads and writes.
pub const VERSION: u32 = 1;

/// The first line of a fixture.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always `"kiln-model-fixture"`.
    pub kind: String,
    pub version: u32,
    #[serde(default)]
    pub benchmark: String,
    #[serde(default)]
    pub task: String,
    #[serde(default)]
    pub agent: String,
    #[serde(default)]
    pub model: String,
    /// RFC 3339 UTC time the recording was made.
    #[serde(default)]
    pub recorded_at: String,
    /// The recorded run's score (`score.value` of its result.json), when known.
    #[serde(default)]
    pub score: Option<f64>,
    /// Where the recording came from (`record`, `import-otel`, …).
    #[serde(default)]
    pub source: String,
}

impl Header {
    pub fn new() -> Header {
        Header {
            kind: "kiln-model-fixture".into(),
            version: VERSION,
            ..Default::default()
        }
    }
}

/// One model call: the request the agent sent and the answer it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// `POST /v1/chat/completions` or `POST /v1/messages`.
    pub route: String,
    /// The request body as JSON.
    pub request: Value,
    /// The HTTP status of the answer (200 unless recorded otherwise).
    #[serde(default = "ok")]
    pub status: u16,
    /// The JSON answer; absent for a streamed answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    /// The streamed answer: one entry per server-sent event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<SseEvent>>,
}

fn ok() -> u16 {
    200
}

/// A whole fixture.
#[derive(Debug, Clone, PartialEq)]
pub struct Fixture {
    pub header: Header,
    pub exchanges: Vec<Exchange>,
}

impl Fixture {
    /// Parses fixture text; errors name `origin` and the line.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Fixture> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((n, first)) = lines.next() else {
            bail!("{origin}: empty fixture (the first line must be the header)");
        };
        let header: Header = serde_json::from_str(first)
            .with_context(|| format!("{origin}:{}: not a fixture header", n + 1))?;
        if header.kind != "kiln-model-fixture" {
            bail!(
                "{origin}:{}: kind {:?} is not \"kiln-model-fixture\"",
                n + 1,
                header.kind
            );
        }
        if header.version != VERSION {
            bail!(
                "{origin}:{}: fixture version {} is not supported (this kiln reads {VERSION})",
                n + 1,
                header.version
            );
        }
        let mut exchanges = Vec::new();
        for (n, line) in lines {
            let exchange: Exchange = serde_json::from_str(line)
                .with_context(|| format!("{origin}:{}: not a fixture exchange", n + 1))?;
            if super::route::Route::parse(&exchange.route).is_none() {
                bail!(
                    "{origin}:{}: route {:?} is not one the gateway serves",
                    n + 1,
                    exchange.route
                );
            }
            if exchange.response.is_none() == exchange.events.is_none() {
                bail!(
                    "{origin}:{}: an exchange has exactly one of `response` and `events`",
                    n + 1
                );
            }
            if let (Some(events), Some(route)) = (
                &exchange.events,
                super::route::Route::parse(&exchange.route),
            ) {
                super::stream_grammar::check(route, events).map_err(|why| {
                    anyhow::anyhow!(
                        "{origin}:{}: the streamed answer breaks the {} event grammar: {why}",
                        n + 1,
                        exchange.route
                    )
                })?;
            }
            exchanges.push(exchange);
        }
        Ok(Fixture { header, exchanges })
    }

    pub fn read(path: &Path) -> anyhow::Result<Fixture> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading fixture {}", path.display()))?;
        Fixture::parse(&text, &path.display().to_string())
    }

    pub fn to_jsonl(&self) -> String {
        let mut out = serde_json::to_string(&self.header).expect("serializes");
        out.push('\n');
        for e in &self.exchanges {
            out.push_str(&serde_json::to_string(e).expect("serializes"));
            out.push('\n');
        }
        out
    }

    /// Writes the fixture atomically (temporary file, then rename).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("creating a file in {}", dir.display()))?;
        tmp.write_all(self.to_jsonl().as_bytes())?;
        tmp.persist(path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Fixture {
        let mut header = Header::new();
        header.task = "count-lines".into();
        header.score = Some(1.0);
        Fixture {
            header,
            exchanges: vec![Exchange {
                route: "POST /v1/chat/completions".into(),
                request: serde_json::json!({"model": "m", "messages": []}),
                status: 200,
                response: Some(serde_json::json!({"choices": []})),
                events: None,
            }],
        }
    }

    #[test]
    fn round_trips() {
        let f = sample();
        assert_eq!(Fixture::parse(&f.to_jsonl(), "f").unwrap(), f);
    }

    #[test]
    fn errors_name_the_line() {
        let mut text = sample().to_jsonl();
        text.push_str("{\"route\": \"POST /v1/other\", \"request\": {}, \"response\": {}}\n");
        let err = format!("{:#}", Fixture::parse(&text, "x.jsonl").unwrap_err());
        assert!(
            err.contains("x.jsonl:3") && err.contains("/v1/other"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            Fixture::parse("{\"kind\":\"kiln-model-fixture\",\"version\":9}", "y").unwrap_err()
        );
        assert!(err.contains("y:1") && err.contains("version 9"), "{err}");
        assert!(Fixture::parse("", "z").is_err());
    }
}
