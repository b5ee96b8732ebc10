//! Server-sent events (the `text/event-stream` framing both APIs stream with): parsing
//! an upstream's stream into events for the fixture, and framing them again on replay.

use super::fixture::SseEvent;

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
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_string),
            data: data.into(),
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
}
