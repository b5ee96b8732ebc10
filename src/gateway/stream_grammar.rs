//! The event grammar of each API's streamed answer, checked when a fixture is read so
//! that replay never hands an agent a stream its SDK would choke on.
//!
//! Anthropic Messages (`stream: true`):
//!
//! ```text
//! message_start
//! ( content_block_start(index = i)  content_block_delta(index = i)*  content_block_stop(index = i) )*
//! message_delta+
//! message_stop
//! ```
//!
//! with `ping` allowed anywhere, block indexes counting up from 0, each event's JSON
//! `type` equal to its event name, and an `error` event allowed to end the stream at
//! any point (the API sends one when it fails mid-answer).
//!
//! OpenAI chat completions: every `data` is a JSON object (a `chat.completion.chunk`;
//! Azure's first chunk has an empty `object`) and nothing follows a `[DONE]` or an
//! `{"error": …}` object. The end marker itself is not required: the SDKs stop at the
//! end of the stream, and some compatible servers never send it.

use serde_json::Value;

use super::route::Route;
use super::sse::SseEvent;

/// Checks `events` against `route`'s grammar; the error says which event is wrong.
pub fn check(route: Route, events: &[SseEvent]) -> Result<(), String> {
    match route {
        Route::AnthropicMessages => check_anthropic(events),
        Route::OpenAiChat => check_openai(events),
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum State {
    Start,
    /// After `message_start`, between blocks; the next block's index.
    Between(u64),
    /// Inside block `index`.
    InBlock(u64),
    /// After the first `message_delta`.
    Delta,
    Stopped,
}

fn check_anthropic(events: &[SseEvent]) -> Result<(), String> {
    let mut state = State::Start;
    for (i, e) in events.iter().enumerate() {
        let n = i + 1;
        let data: Value = serde_json::from_str(&e.data)
            .map_err(|err| format!("event {n}: data is not JSON ({err})"))?;
        let kind = data["type"].as_str().unwrap_or("");
        if let Some(name) = &e.event {
            if name != kind {
                return Err(format!(
                    "event {n}: named {name:?} but its data has type {kind:?}"
                ));
            }
        }
        let index = data["index"].as_u64();
        state = match (state, kind) {
            (State::Stopped, _) => {
                return Err(format!("event {n}: {kind:?} after message_stop"));
            }
            (s, "ping") => s,
            (_, "error") => State::Stopped,
            (State::Start, "message_start") => State::Between(0),
            (State::Start, _) => {
                return Err(format!(
                    "event {n}: the stream starts with {kind:?}, not message_start"
                ))
            }
            (State::Between(next), "content_block_start") if index == Some(next) => {
                State::InBlock(next)
            }
            (State::InBlock(at), "content_block_delta") if index == Some(at) => State::InBlock(at),
            (State::InBlock(at), "content_block_stop") if index == Some(at) => {
                State::Between(at + 1)
            }
            (State::Between(_) | State::Delta, "message_delta") => State::Delta,
            (State::Delta, "message_stop") => State::Stopped,
            (s, _) => {
                let expected = match s {
                    State::Between(next) => {
                        format!("content_block_start with index {next} or message_delta")
                    }
                    State::InBlock(at) => {
                        format!("content_block_delta or content_block_stop with index {at}")
                    }
                    _ => "message_delta or message_stop".to_string(),
                };
                return Err(format!(
                    "event {n}: {kind:?}{} where {expected} belongs",
                    index
                        .map(|i| format!(" with index {i}"))
                        .unwrap_or_default()
                ));
            }
        };
    }
    if state == State::Stopped {
        Ok(())
    } else {
        Err("the stream ends without message_stop".into())
    }
}

fn check_openai(events: &[SseEvent]) -> Result<(), String> {
    let mut ended = false;
    for (i, e) in events.iter().enumerate() {
        let n = i + 1;
        if ended {
            return Err(format!("event {n}: data after the end of the stream"));
        }
        if e.data.trim() == "[DONE]" {
            ended = true;
            continue;
        }
        let data: Value = serde_json::from_str(&e.data)
            .map_err(|err| format!("event {n}: data is neither JSON nor [DONE] ({err})"))?;
        if !data.is_object() {
            return Err(format!("event {n}: data is not a JSON object"));
        }
        if data.get("error").is_some() {
            ended = true;
            continue;
        }
        match data["object"].as_str() {
            None | Some("" | "chat.completion.chunk") => {}
            Some(other) => {
                return Err(format!(
                    "event {n}: object {other:?} is not \"chat.completion.chunk\""
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(kind: &str, extra: Value) -> SseEvent {
        let mut data = json!({"type": kind});
        if let (Some(d), Some(x)) = (data.as_object_mut(), extra.as_object()) {
            d.extend(x.clone());
        }
        SseEvent {
            event: Some(kind.into()),
            data: data.to_string(),
            at_ms: None,
        }
    }

    /// A text block then a tool call, as the Messages API streams them.
    fn good() -> Vec<SseEvent> {
        vec![
            ev(
                "message_start",
                json!({"message": {"id": "m", "usage": {"input_tokens": 5}}}),
            ),
            ev(
                "content_block_start",
                json!({"index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            ev("ping", json!({})),
            ev(
                "content_block_delta",
                json!({"index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
            ),
            ev("content_block_stop", json!({"index": 0})),
            ev(
                "content_block_start",
                json!({"index": 1, "content_block": {"type": "tool_use", "id": "t", "name": "bash", "input": {}}}),
            ),
            ev(
                "content_block_delta",
                json!({"index": 1, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
            ),
            ev("content_block_stop", json!({"index": 1})),
            ev(
                "message_delta",
                json!({"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
            ),
            ev("message_stop", json!({})),
        ]
    }

    #[test]
    fn anthropic_accepts_the_documented_sequence() {
        assert_eq!(check(Route::AnthropicMessages, &good()), Ok(()));
        // No content blocks at all is allowed (an empty answer).
        let empty = [good()[0].clone(), good()[8].clone(), good()[9].clone()];
        assert_eq!(check(Route::AnthropicMessages, &empty), Ok(()));
        // An error event ends a stream at any point.
        let mut failed = good()[..4].to_vec();
        failed.push(ev(
            "error",
            json!({"error": {"type": "overloaded_error", "message": "x"}}),
        ));
        assert_eq!(check(Route::AnthropicMessages, &failed), Ok(()));
    }

    #[test]
    fn anthropic_refuses_what_an_sdk_would_choke_on() {
        let cases: Vec<(Vec<SseEvent>, &str)> = vec![
            (good()[1..].to_vec(), "starts with \"content_block_start\""),
            (good()[..9].to_vec(), "without message_stop"),
            (
                {
                    let mut g = good();
                    g.remove(4); // block 0 never stopped
                    g
                },
                "event 5: \"content_block_start\" with index 1 where content_block_delta or content_block_stop with index 0 belongs",
            ),
            (
                {
                    let mut g = good();
                    g[3] = ev("content_block_delta", json!({"index": 7, "delta": {}}));
                    g
                },
                "event 4",
            ),
            (
                {
                    let mut g = good();
                    g.push(ev("message_delta", json!({})));
                    g
                },
                "after message_stop",
            ),
            (
                {
                    let mut g = good();
                    g[9].event = Some("message_end".into());
                    g
                },
                "named \"message_end\" but its data has type \"message_stop\"",
            ),
            (
                {
                    let mut g = good();
                    g.remove(8); // message_stop straight after a block
                    g
                },
                "\"message_stop\" where content_block_start with index 2 or message_delta belongs",
            ),
        ];
        for (events, want) in cases {
            let err = check(Route::AnthropicMessages, &events).unwrap_err();
            assert!(err.contains(want), "{err}  (wanted {want})");
        }
    }

    #[test]
    fn openai_chunks_end_with_done() {
        let chunk = |c: &str| SseEvent {
            event: None,
            data:
                json!({"object": "chat.completion.chunk", "choices": [{"delta": {"content": c}}]})
                    .to_string(),
            at_ms: None,
        };
        let done = SseEvent {
            event: None,
            data: "[DONE]".into(),
            at_ms: None,
        };
        assert_eq!(
            check(Route::OpenAiChat, &[chunk("a"), chunk("b"), done.clone()]),
            Ok(())
        );
        assert_eq!(check(Route::OpenAiChat, &[chunk("a")]), Ok(()));
        let err = check(Route::OpenAiChat, &[done.clone(), chunk("a")]).unwrap_err();
        assert!(err.contains("event 2: data after the end"), "{err}");
        let bad = SseEvent {
            event: None,
            data: "{\"object\": \"chat.completion\"}".into(),
            at_ms: None,
        };
        let err = check(Route::OpenAiChat, &[bad, done]).unwrap_err();
        assert!(err.contains("event 1: object"), "{err}");
    }
}
