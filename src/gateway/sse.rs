//! Server-sent events (the `text/event-stream` framing both APIs stream with): parsing
//! an upstream's stream into events for the fixture (with each event's arrival time),
//! and framing them again on replay.

use serde::{Deserialize, Serialize};

/// One server-sent event: its `event:` name (Anthropic names them, OpenAI does not)
/// and its `data:` text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SseEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    pub data: String,
    /// Milliseconds from sending the request upstream to this event's arrival, when
    /// recorded: replay paces the stream by it (`--replay-speed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
}

/// Frames one event: `event: NAME` (when named), one `data:` line per line of data,
/// and the blank line that ends it.
pub fn frame(e: &SseEvent) -> String {
    let mut out = String::new();
    if let Some(name) = &e.event {
        out.push_str("event: ");
        out.push_str(name);
        out.push('\n');
    }
    for line in e.data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// Parses a whole stream. Lines are split on `\n`, `\r\n` or `\r`; comments (`:`) and
/// fields other than `event` and `data` are dropped; an event without data is dropped,
/// as the SSE specification says.
pub fn parse(text: &str) -> Vec<SseEvent> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = Vec::new();
    let (mut event, mut data): (Option<String>, Vec<String>) = (None, Vec::new());
    for line in text.split('\n') {
        if line.is_empty() {
            if !data.is_empty() {
                out.push(SseEvent {
                    event: event.take(),
                    data: data.join("\n"),
                    at_ms: None,
                });
            }
            event = None;
            data.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_string()),
            "data" => data.push(value.to_string()),
            _ => {}
        }
    }
    if !data.is_empty() {
        out.push(SseEvent {
            event,
            data: data.join("\n"),
            at_ms: None,
        });
    }
    out
}

/// Parses a stream that arrived in `chunks` (bytes, milliseconds since the request was
/// sent): each event gets the arrival time of the chunk that completed it (the one that
/// brought its closing blank line); the events are the ones [`parse`] finds in the
/// whole text.
pub fn parse_timed(chunks: &[(bytes::Bytes, u64)]) -> Vec<SseEvent> {
    let (mut text, mut times, mut counted_to) = (Vec::new(), Vec::new(), 0);
    for (bytes, ms) in chunks {
        text.extend_from_slice(bytes);
        // Events end at blank lines, so the text after the last counted one parses alone.
        if let Some(end) = last_blank_line(&text, counted_to) {
            let new = parse(&String::from_utf8_lossy(&text[counted_to..end])).len();
            times.resize(times.len() + new, *ms);
            counted_to = end;
        }
    }
    let mut events = parse(&String::from_utf8_lossy(&text));
    let last = chunks.last().map(|(_, ms)| *ms);
    for (i, e) in events.iter_mut().enumerate() {
        e.at_ms = times.get(i).copied().or(last);
    }
    events
}

/// The end of the last blank line (`\n\n` or `\n\r\n`) in `text` past `after`: every
/// event before it is complete.
fn last_blank_line(text: &[u8], after: usize) -> Option<usize> {
    (after.max(1)..text.len()).rev().find_map(|i| {
        let line_end = text[i] == b'\n';
        let blank =
            text[i - 1] == b'\n' || (i >= 2 && text[i - 1] == b'\r' && text[i - 2] == b'\n');
        (line_end && blank).then_some(i + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_string),
            data: data.into(),
            at_ms: None,
        }
    }

    #[test]
    fn frames_and_parses_back() {
        let events = vec![
            ev(Some("message_start"), r#"{"type":"message_start"}"#),
            ev(None, "line one\nline two"),
            ev(None, "[DONE]"),
        ];
        let text: String = events.iter().map(frame).collect();
        assert_eq!(
            text.lines().take(3).collect::<Vec<_>>(),
            [
                "event: message_start",
                r#"data: {"type":"message_start"}"#,
                ""
            ]
        );
        assert_eq!(parse(&text), events);
    }

    #[test]
    fn parse_tolerates_crlf_comments_and_no_space() {
        let text = ": keep-alive\r\nevent:ping\r\ndata:{}\r\n\r\nid: 7\ndata: x\n\nevent: empty\n\ndata: tail";
        assert_eq!(
            parse(text),
            vec![ev(Some("ping"), "{}"), ev(None, "x"), ev(None, "tail")]
        );
    }

    #[test]
    fn timed_events_take_the_time_of_the_chunk_that_completed_them() {
        let chunk = |t: &str, ms| (bytes::Bytes::from(t.to_string()), ms);
        let events = parse_timed(&[
            chunk("event: a\ndata: 1\n\nevent: b\nda", 10),
            chunk("ta: 2\r", 20),
            chunk("\n\r\n", 35),
            chunk(": comment\n\ndata: 3", 50),
        ]);
        let got: Vec<(&str, Option<u64>)> =
            events.iter().map(|e| (e.data.as_str(), e.at_ms)).collect();
        assert_eq!(got, [("1", Some(10)), ("2", Some(35)), ("3", Some(50))]);
        assert!(parse_timed(&[]).is_empty());
    }
}
