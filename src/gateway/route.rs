//! The model routes the gateway records and replays, and what each API calls its
//! token counts and errors.

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// OpenAI's `POST /v1/chat/completions`.
    OpenAiChat,
    /// Anthropic's `POST /v1/messages`.
    AnthropicMessages,
}

impl Route {
    pub fn parse(text: &str) -> Option<Route> {
        match text {
            "POST /v1/chat/completions" => Some(Route::OpenAiChat),
            "POST /v1/messages" => Some(Route::AnthropicMessages),
            _ => None,
        }
    }

    /// From an HTTP method and path (a `/v1` prefix is optional, as some clients drop it).
    pub fn from_http(method: &str, path: &str) -> Option<Route> {
        let path = path.split('?').next().unwrap_or(path);
        let path = if path.starts_with("/v1/") {
            path.to_string()
        } else {
            format!("/v1{path}")
        };
        Route::parse(&format!("{method} {path}"))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Route::OpenAiChat => "POST /v1/chat/completions",
            Route::AnthropicMessages => "POST /v1/messages",
        }
    }

    pub fn path(self) -> &'static str {
        &self.as_str()[5..]
    }

    /// The error body this API's clients understand, so the agent shows the reason.
    pub fn error_body(self, kind: &str, message: &str) -> Value {
        match self {
            Route::OpenAiChat => {
                json!({"error": {"message": message, "type": kind, "code": kind}})
            }
            Route::AnthropicMessages => {
                json!({"type": "error", "error": {"type": kind, "message": message}})
            }
        }
    }
}

/// Input and output tokens an answer reports, in either API's words.
pub fn usage(body: &Value) -> (u64, u64) {
    let u = &body["usage"];
    let n = |k: &str| u[k].as_u64().unwrap_or(0);
    (
        n("prompt_tokens") + n("input_tokens"),
        n("completion_tokens") + n("output_tokens"),
    )
}

/// Token counts from a streamed answer: the last OpenAI chunk with `usage`, or
/// Anthropic's `message_start` (input) and `message_delta` (output) events.
pub fn stream_usage(events: &[crate::gateway::sse::SseEvent]) -> (u64, u64) {
    let (mut input, mut output) = (0, 0);
    for e in events {
        let Ok(v) = serde_json::from_str::<Value>(&e.data) else {
            continue;
        };
        let (i, o) = usage(&v);
        let (mi, mo) = usage(&v["message"]);
        if i + mi > 0 {
            input = i + mi;
        }
        if o + mo > 0 {
            output = o + mo;
        }
    }
    (input, output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            Route::from_http("POST", "/chat/completions"),
            Some(Route::OpenAiChat)
        );
        assert_eq!(
            Route::from_http("POST", "/v1/messages?beta=true"),
            Some(Route::AnthropicMessages)
        );
        assert_eq!(Route::from_http("GET", "/v1/messages"), None);
        assert_eq!(Route::OpenAiChat.path(), "/v1/chat/completions");
    }

    #[test]
    fn usage_in_both_dialects() {
        assert_eq!(
            usage(&json!({"usage": {"prompt_tokens": 7, "completion_tokens": 3}})),
            (7, 3)
        );
        assert_eq!(
            usage(&json!({"usage": {"input_tokens": 5, "output_tokens": 2}})),
            (5, 2)
        );
        let ev = |d: &str| crate::gateway::sse::SseEvent {
            event: None,
            data: d.into(),
            at_ms: None,
        };
        assert_eq!(
            stream_usage(&[
                ev(
                    r#"{"type":"message_start","message":{"usage":{"input_tokens":11,"output_tokens":1}}}"#
                ),
                ev(r#"{"type":"message_delta","usage":{"output_tokens":9}}"#),
                ev("[DONE]"),
            ]),
            (11, 9)
        );
    }
}
