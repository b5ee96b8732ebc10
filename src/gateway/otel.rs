//! `kiln gateway import-otel`: OpenTelemetry GenAI spans → a fixture.
//!
//! Input: OTLP/JSON as an OpenTelemetry collector's file exporter writes it (one
//! `{"resourceSpans": […]}` object per line; a single pretty-printed object works too).
//! Every span with `gen_ai.operation.name = "chat"` (or with `gen_ai.input.messages`)
//! becomes one exchange, in order of start time. Its messages come from the
//! `gen_ai.system_instructions`, `gen_ai.input.messages` and `gen_ai.output.messages`
//! attributes (JSON text, parts `text`, `tool_call`, `tool_call_response`), its model
//! from `gen_ai.request.model`/`gen_ai.response.model`, its tokens from
//! `gen_ai.usage.input_tokens`/`output_tokens`; `gen_ai.provider.name` (or the older
//! `gen_ai.system`) `anthropic` makes it a `/v1/messages` exchange, anything else a
//! chat completion. Span and trace ids, timings and other attributes are dropped.
//!
//! A failed request (span status ERROR: `error.type`, `error.message`, no output
//! messages) becomes a recorded error: the HTTP status (`http.response.status_code`, or
//! the status the SDK's error type stands for) and the provider's error body, so replay
//! answers that turn with the same error. Gateways such as litellm capture no request
//! content for a failed call; such a turn keeps an empty message list, which replay
//! matches by route and model only (docs/model-gateway.md). A messages attribute that is
//! a plain prompt rather than JSON is one user (or system) text.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use super::fixture::{Exchange, Fixture, Header};
use super::route::Route;

/// An OTLP `AnyValue` as plain JSON.
fn any_value(v: &Value) -> Value {
    if let Some(s) = v.get("stringValue") {
        return s.clone();
    }
    if let Some(i) = v.get("intValue") {
        // OTLP/JSON writes 64-bit integers as strings.
        return match i {
            Value::String(s) => s.parse::<i64>().map(Value::from).unwrap_or(i.clone()),
            other => other.clone(),
        };
    }
    for k in ["doubleValue", "boolValue"] {
        if let Some(x) = v.get(k) {
            return x.clone();
        }
    }
    if let Some(values) = v["arrayValue"]["values"].as_array() {
        return Value::Array(values.iter().map(any_value).collect());
    }
    Value::Null
}

fn attributes(span: &Value) -> BTreeMap<String, Value> {
    span["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| Some((a["key"].as_str()?.to_string(), any_value(&a["value"]))))
        .collect()
}

/// A list attribute (messages, or the system instructions' parts): JSON text (as the
/// conventions say) or already structured. A plain prompt (some instrumentations write
/// the text itself) is `Err(text)`.
fn list(attrs: &BTreeMap<String, Value>, key: &str) -> Result<Vec<Value>, String> {
    match attrs.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(a)) => Ok(a),
            _ if s.trim().is_empty() => Ok(Vec::new()),
            _ => Err(s.clone()),
        },
        Some(Value::Array(a)) => Ok(a.clone()),
        Some(other) => Err(other.to_string()),
    }
}

fn text_part(text: &str) -> Value {
    json!({"type": "text", "content": text})
}

/// Messages; a plain prompt is one message of `role`.
fn messages(attrs: &BTreeMap<String, Value>, key: &str, role: &str) -> Vec<Value> {
    list(attrs, key).unwrap_or_else(|text| vec![json!({"role": role, "parts": [text_part(&text)]})])
}

/// The system instructions' parts; a plain prompt is one text part.
fn instructions(attrs: &BTreeMap<String, Value>) -> Vec<Value> {
    list(attrs, "gen_ai.system_instructions").unwrap_or_else(|text| vec![text_part(&text)])
}

/// A failed request as the provider answered it.
struct Failure {
    status: u16,
    kind: &'static str,
    message: String,
}

/// The failure a span records (status code 2, ERROR), if any. The HTTP status is the
/// span's `http.response.status_code`, else a numeric `error.type`, else the status
/// the OpenAI/Anthropic SDK error class (and litellm's, which mirror them) stands for;
/// an unknown class is a 500.
fn failure(span: &Value, attrs: &BTreeMap<String, Value>) -> Option<Failure> {
    if span["status"]["code"].as_u64() != Some(2) && span["status"]["code"] != "STATUS_CODE_ERROR" {
        return None;
    }
    let error_type = attrs
        .get("error.type")
        .and_then(Value::as_str)
        .unwrap_or("");
    let class = error_type.rsplit(['.', ':']).next().unwrap_or("").trim();
    let status = attrs
        .get("http.response.status_code")
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
        .and_then(|n| u16::try_from(n).ok())
        .or_else(|| error_type.parse().ok())
        .unwrap_or(match class {
            "BadRequestError"
            | "ContextWindowExceededError"
            | "ContentPolicyViolationError"
            | "UnsupportedParamsError"
            | "InvalidRequestError" => 400,
            "AuthenticationError" => 401,
            "PermissionDeniedError" => 403,
            "NotFoundError" => 404,
            "Timeout" | "APITimeoutError" | "TimeoutError" => 408,
            "UnprocessableEntityError" => 422,
            "RateLimitError" => 429,
            "BadGatewayError" => 502,
            "ServiceUnavailableError" | "OverloadedError" => 503,
            _ => 500,
        });
    // The error `type` both APIs put in their error bodies.
    let kind = match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 => "timeout_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    };
    let message = attrs
        .get("error.message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .or_else(|| span["status"]["message"].as_str())
        .filter(|m| !m.is_empty())
        .map_or_else(|| format!("{error_type} (status {status})"), str::to_string);
    Some(Failure {
        status,
        kind,
        message,
    })
}

fn text_of(parts: &[Value]) -> String {
    parts
        .iter()
        .filter(|p| p["type"] == "text")
        .filter_map(|p| p["content"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn openai_messages(system: &[Value], input: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    if !system.is_empty() {
        out.push(json!({"role": "system", "content": text_of(system)}));
    }
    for m in input {
        let parts = m["parts"].as_array().cloned().unwrap_or_default();
        let role = m["role"].as_str().unwrap_or("user");
        for p in parts.iter().filter(|p| p["type"] == "tool_call_response") {
            out.push(json!({"role": "tool", "tool_call_id": p["id"], "content": as_text(&p["response"])}));
        }
        if role == "tool" {
            continue;
        }
        let calls: Vec<Value> = parts
            .iter()
            .filter(|p| p["type"] == "tool_call")
            .map(|p| json!({"id": p["id"], "type": "function", "function": {"name": p["name"], "arguments": as_text(&p["arguments"])}}))
            .collect();
        let mut msg = json!({"role": role, "content": text_of(&parts)});
        if !calls.is_empty() {
            msg["tool_calls"] = Value::Array(calls);
        }
        out.push(msg);
    }
    out
}

fn anthropic_blocks(parts: &[Value]) -> Vec<Value> {
    parts
        .iter()
        .filter_map(|p| match p["type"].as_str()? {
            "text" => Some(json!({"type": "text", "text": p["content"]})),
            "tool_call" => {
                let input = match &p["arguments"] {
                    Value::String(s) => serde_json::from_str(s).unwrap_or(json!({})),
                    other => other.clone(),
                };
                Some(json!({"type": "tool_use", "id": p["id"], "name": p["name"], "input": input}))
            }
            "tool_call_response" => Some(
                json!({"type": "tool_result", "tool_use_id": p["id"], "content": as_text(&p["response"])}),
            ),
            _ => None,
        })
        .collect()
}

fn exchange(
    attrs: &BTreeMap<String, Value>,
    failed: Option<Failure>,
    at: &str,
) -> anyhow::Result<Exchange> {
    let system = instructions(attrs);
    let input = messages(attrs, "gen_ai.input.messages", "user");
    let output = messages(attrs, "gen_ai.output.messages", "assistant");
    let str_attr = |k: &str| {
        attrs
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let model = str_attr("gen_ai.request.model");
    let provider = Some(str_attr("gen_ai.provider.name"))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| str_attr("gen_ai.system"));
    let route = if provider == "anthropic" {
        Route::AnthropicMessages
    } else {
        Route::OpenAiChat
    };
    let request = match route {
        Route::AnthropicMessages => {
            let msgs: Vec<Value> = input
                .iter()
                .map(|m| {
                    let role = match m["role"].as_str() {
                        Some("assistant") => "assistant",
                        _ => "user",
                    };
                    json!({"role": role, "content": anthropic_blocks(m["parts"].as_array().map(Vec::as_slice).unwrap_or(&[]))})
                })
                .collect();
            let mut request = json!({"model": model, "messages": msgs});
            if !system.is_empty() {
                request["system"] = Value::String(text_of(&system));
            }
            request
        }
        Route::OpenAiChat => json!({"model": model, "messages": openai_messages(&system, &input)}),
    };
    let recorded = |status: u16, response: Value| Exchange {
        route: route.as_str().into(),
        request: request.clone(),
        status,
        response: Some(response),
        events: None,
    };
    if let Some(f) = failed {
        return Ok(recorded(f.status, route.error_body(f.kind, &f.message)));
    }
    let Some(answer) = output.first() else {
        bail!("{at}: the span has no gen_ai.output.messages (was message content capture on?)");
    };
    let response_model = Some(str_attr("gen_ai.response.model"))
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| model.clone());
    let tokens = |k: &str| attrs.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (tin, tout) = (
        tokens("gen_ai.usage.input_tokens"),
        tokens("gen_ai.usage.output_tokens"),
    );
    let out_parts = answer["parts"].as_array().cloned().unwrap_or_default();
    let finish = answer["finish_reason"].as_str().unwrap_or("stop");
    let id = str_attr("gen_ai.response.id");
    let response = match route {
        Route::AnthropicMessages => {
            let stop = match finish {
                "tool_call" => "tool_use",
                "length" => "max_tokens",
                _ => "end_turn",
            };
            json!({"id": id, "type": "message", "role": "assistant", "model": response_model,
                "content": anthropic_blocks(&out_parts), "stop_reason": stop,
                "usage": {"input_tokens": tin, "output_tokens": tout}})
        }
        Route::OpenAiChat => {
            let mut message = openai_messages(&[], std::slice::from_ref(answer))
                .pop()
                .unwrap_or(json!({"role": "assistant", "content": ""}));
            message["role"] = json!("assistant");
            let finish = match finish {
                "tool_call" => "tool_calls",
                other => other,
            };
            json!({"id": id, "object": "chat.completion", "model": response_model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": tin, "completion_tokens": tout, "total_tokens": tin + tout}})
        }
    };
    Ok(recorded(200, response))
}

/// Converts OTLP/JSON `text` (from `origin`) into a fixture.
pub fn import(text: &str, origin: &str) -> anyhow::Result<Fixture> {
    let mut docs = Vec::new();
    match serde_json::from_str::<Value>(text) {
        Ok(v) => docs.push((1, v)),
        Err(_) => {
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let v: Value = serde_json::from_str(line)
                    .with_context(|| format!("{origin}:{}: not OTLP/JSON", n + 1))?;
                docs.push((n + 1, v));
            }
        }
    }
    let mut spans = Vec::new();
    for (line, doc) in &docs {
        let Some(resource_spans) = doc["resourceSpans"].as_array() else {
            bail!("{origin}:{line}: no resourceSpans (is this an OTLP/JSON trace file?)");
        };
        for rs in resource_spans {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for span in ss["spans"].as_array().into_iter().flatten() {
                    let attrs = attributes(span);
                    let chat = attrs.get("gen_ai.operation.name").and_then(Value::as_str)
                        == Some("chat")
                        || attrs.contains_key("gen_ai.input.messages");
                    if !chat {
                        continue;
                    }
                    let start: u128 = match &span["startTimeUnixNano"] {
                        Value::String(s) => s.parse().unwrap_or(0),
                        v => v.as_u64().unwrap_or(0).into(),
                    };
                    let at = format!(
                        "{origin}:{line}: span {} ({})",
                        span["spanId"].as_str().unwrap_or("?"),
                        span["name"].as_str().unwrap_or("")
                    );
                    let failed = failure(span, &attrs);
                    spans.push((start, at, attrs, failed));
                }
            }
        }
    }
    if spans.is_empty() {
        bail!("{origin}: no GenAI chat spans (gen_ai.operation.name = \"chat\") in the traces");
    }
    spans.sort_by_key(|(start, ..)| *start);
    let mut header = Header::new();
    header.source = "import-otel".into();
    header.recorded_at = super::now_rfc3339();
    let mut exchanges = Vec::new();
    for (_, at, attrs, failed) in spans {
        if header.model.is_empty() {
            header.model = attrs
                .get("gen_ai.request.model")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
        }
        exchanges.push(exchange(&attrs, failed, &at)?);
    }
    Ok(Fixture { header, exchanges })
}

/// Reads `traces`, converts, and writes the fixture to `out`.
pub fn import_file(traces: &Path, out: &Path, header: &Header) -> anyhow::Result<Fixture> {
    let text =
        std::fs::read_to_string(traces).with_context(|| format!("reading {}", traces.display()))?;
    let mut fixture = import(&text, &traces.display().to_string())?;
    for (ours, theirs) in [
        (&mut fixture.header.benchmark, &header.benchmark),
        (&mut fixture.header.task, &header.task),
        (&mut fixture.header.agent, &header.agent),
    ] {
        ours.clone_from(theirs);
    }
    fixture.header.score = header.score;
    fixture.write(out)?;
    Ok(fixture)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::normalize;

    fn attr(key: &str, value: Value) -> Value {
        let v = match value {
            Value::String(s) => json!({"stringValue": s}),
            Value::Number(n) => json!({"intValue": n.to_string()}),
            other => other,
        };
        json!({"key": key, "value": v})
    }

    /// A span as an OTel-instrumented client writes it (GenAI semantic conventions).
    fn span(start: u64, provider: &str, input: Value, output: Value) -> Value {
        json!({"traceId": "5b8efff798038103d269b633813fc60c", "spanId": format!("{start:016x}"),
        "name": "chat gpt-test", "kind": 3,
        "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 5).to_string(),
        "attributes": [
            attr("gen_ai.operation.name", json!("chat")),
            attr("gen_ai.provider.name", json!(provider)),
            attr("gen_ai.request.model", json!("gpt-test")),
            attr("gen_ai.response.model", json!("gpt-test-2025")),
            attr("gen_ai.usage.input_tokens", json!(120)),
            attr("gen_ai.usage.output_tokens", json!(8)),
            attr("gen_ai.system_instructions", json!(r#"[{"type":"text","content":"You are terse."}]"#)),
            attr("gen_ai.input.messages", json!(input.to_string())),
            attr("gen_ai.output.messages", json!(output.to_string())),
        ]})
    }

    fn export(spans: Vec<Value>) -> String {
        // One ExportTraceServiceRequest per line, as the collector's file exporter writes.
        spans
            .into_iter()
            .map(|s| {
                json!({"resourceSpans": [{"resource": {"attributes": [attr("service.name", json!("agent"))]},
                    "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.openai"}, "spans": [s]}]}]})
                .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn turns() -> (Value, Value, Value, Value) {
        let in1 = json!([{"role": "user", "parts": [{"type": "text", "content": "count lines"}]}]);
        let out1 = json!([{"role": "assistant", "finish_reason": "tool_call", "parts": [
            {"type": "tool_call", "id": "call_1", "name": "bash", "arguments": {"cmd": "wc -l f"}}]}]);
        let in2 = json!([
            {"role": "user", "parts": [{"type": "text", "content": "count lines"}]},
            {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "bash", "arguments": {"cmd": "wc -l f"}}]},
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "3 f"}]}]);
        let out2 = json!([{"role": "assistant", "finish_reason": "stop", "parts": [{"type": "text", "content": "3"}]}]);
        (in1, out1, in2, out2)
    }

    #[test]
    fn openai_spans_become_ordered_exchanges() {
        let (in1, out1, in2, out2) = turns();
        // Written out of order: the import orders by start time.
        let text = export(vec![
            span(2000, "openai", in2, out2),
            span(1000, "openai", in1, out1),
        ]);
        let f = import(&text, "traces.jsonl").unwrap();
        assert_eq!(f.header.model, "gpt-test");
        assert_eq!(f.exchanges.len(), 2);
        let first = &f.exchanges[0];
        assert_eq!(first.route, "POST /v1/chat/completions");
        let msg = &first.response.as_ref().unwrap()["choices"][0]["message"];
        assert_eq!(msg["tool_calls"][0]["function"]["name"], "bash");
        assert_eq!(
            first.response.as_ref().unwrap()["usage"]["prompt_tokens"],
            120
        );
        let conv = normalize::conversation(Route::OpenAiChat, &f.exchanges[1].request);
        let roles: Vec<&str> = conv.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "tool"]);
        assert_eq!(conv.messages[2].tool_calls[0].1, json!({"cmd": "wc -l f"}));
        assert_eq!(conv.messages[3].text, "3 f");
        // The imported fixture replays: its second request is what an agent would send.
        let mut r = crate::gateway::replay::Replayer::new(f.clone(), "t", false);
        r.answer(Route::OpenAiChat, &f.exchanges[0].request);
        assert!(matches!(
            r.answer(Route::OpenAiChat, &f.exchanges[1].request),
            crate::gateway::replay::Answer::Recorded(_)
        ));
    }

    #[test]
    fn anthropic_spans_become_messages() {
        let (_, _, in2, out2) = turns();
        let f = import(&export(vec![span(5, "anthropic", in2, out2)]), "t").unwrap();
        let e = &f.exchanges[0];
        assert_eq!(e.route, "POST /v1/messages");
        assert_eq!(e.request["system"], "You are terse.");
        let conv = normalize::conversation(Route::AnthropicMessages, &e.request);
        let roles: Vec<&str> = conv.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "tool"]);
        assert_eq!(e.response.as_ref().unwrap()["content"][0]["text"], "3");
        assert_eq!(e.response.as_ref().unwrap()["usage"]["output_tokens"], 8);
    }

    /// A failed call as litellm traces it: status ERROR, no content captured.
    fn failed_span(start: u64, error_type: &str, message: &str) -> Value {
        json!({"spanId": format!("{start:016x}"), "name": "litellm_request",
        "startTimeUnixNano": start.to_string(),
        "status": {"code": 2, "message": format!("litellm.{error_type}: {message}")},
        "attributes": [
            attr("gen_ai.operation.name", json!("chat")),
            attr("gen_ai.request.model", json!("gpt-test")),
            attr("gen_ai.input.messages", json!("[]")),
            attr("error.type", json!(error_type)),
            attr("error.message", json!(message)),
        ]})
    }

    #[test]
    fn failed_requests_become_recorded_errors_that_replay() {
        let (in1, out1, in2, out2) = turns();
        let text = export(vec![
            span(1000, "openai", in1, out1),
            failed_span(
                1500,
                "BadRequestError",
                "max_tokens or model output limit was reached",
            ),
            failed_span(1600, "RateLimitError", "slow down"),
            span(2000, "openai", in2, out2),
        ]);
        let f = import(&text, "mixed.jsonl").unwrap();
        let statuses: Vec<u16> = f.exchanges.iter().map(|e| e.status).collect();
        assert_eq!(statuses, [200, 400, 429, 200]);
        let err = f.exchanges[1].response.as_ref().unwrap();
        assert_eq!(err["error"]["type"], "invalid_request_error");
        assert!(err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens"));
        assert_eq!(
            f.exchanges[2].response.as_ref().unwrap()["error"]["type"],
            "rate_limit_error"
        );
        // Replay: the agent's retries (content unknown to the trace) get the same
        // errors, then the next answered turn is matched by content again.
        let mut r = crate::gateway::replay::Replayer::new(f.clone(), "t", false);
        r.answer(Route::OpenAiChat, &f.exchanges[0].request);
        let retry = &f.exchanges[3].request;
        for want in [400, 429] {
            match r.answer(Route::OpenAiChat, retry) {
                crate::gateway::replay::Answer::Recorded(e) => assert_eq!(e.status, want),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            r.answer(Route::OpenAiChat, retry),
            crate::gateway::replay::Answer::Recorded(e) if e.status == 200
        ));
        assert!(r.stats.diverged.is_empty(), "{:?}", r.stats.diverged);
        // Another model is still a divergence, content captured or not.
        let mut r = crate::gateway::replay::Replayer::new(f.clone(), "t", false);
        r.answer(Route::OpenAiChat, &f.exchanges[0].request);
        let other = json!({"model": "other", "messages": [{"role": "user", "content": "x"}]});
        assert!(matches!(
            r.answer(Route::OpenAiChat, &other),
            crate::gateway::replay::Answer::Error(400, "replay_diverged", _)
        ));
    }

    #[test]
    fn error_status_comes_from_the_span_first() {
        let mut s = failed_span(1, "APIError", "upstream gone");
        s["attributes"]
            .as_array_mut()
            .unwrap()
            .push(attr("http.response.status_code", json!(502)));
        let f = import(&export(vec![s, failed_span(2, "Weird", "")]), "t").unwrap();
        assert_eq!(f.exchanges[0].status, 502);
        assert_eq!(f.exchanges[1].status, 500);
        let msg = &f.exchanges[1].response.as_ref().unwrap()["error"]["message"];
        assert_eq!(msg, "litellm.Weird: ");
    }

    #[test]
    fn a_plain_prompt_is_one_user_message() {
        let mut s = span(
            1,
            "anthropic",
            json!("[]"),
            json!([{"role": "assistant", "parts": [{"type": "text", "content": "ok"}]}]),
        );
        for a in s["attributes"].as_array_mut().unwrap() {
            if a["key"] == "gen_ai.input.messages" {
                a["value"] = json!({"stringValue": "What is 2+2?"});
            }
            if a["key"] == "gen_ai.system_instructions" {
                a["value"] = json!({"stringValue": "Be brief."});
            }
        }
        let f = import(&export(vec![s]), "t").unwrap();
        let req = &f.exchanges[0].request;
        assert_eq!(req["system"], "Be brief.");
        assert_eq!(req["messages"][0]["content"][0]["text"], "What is 2+2?");
    }

    /// Every real trace of `../shared/traces` imports: one exchange per chat span, each
    /// failed request kept as a recorded error with its status.
    #[test]
    fn the_shared_real_traces_import_whole() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/traces");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            crate::printer::errln!("skipped: {} not found", dir.display());
            return;
        };
        let (mut files, mut failed_total) = (0, 0);
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let (mut chat, mut failed) = (0, 0);
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let doc: Value = serde_json::from_str(line).unwrap();
                for rs in doc["resourceSpans"].as_array().into_iter().flatten() {
                    for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                        for span in ss["spans"].as_array().into_iter().flatten() {
                            let a = attributes(span);
                            if a.get("gen_ai.operation.name").and_then(Value::as_str)
                                == Some("chat")
                                || a.contains_key("gen_ai.input.messages")
                            {
                                chat += 1;
                                failed += usize::from(span["status"]["code"] == 2);
                            }
                        }
                    }
                }
            }
            let f = import(&text, &path.display().to_string())
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            assert_eq!(f.exchanges.len(), chat, "{}", path.display());
            let errors = f.exchanges.iter().filter(|e| e.status >= 400).count();
            assert_eq!(errors, failed, "{}", path.display());
            files += 1;
            failed_total += failed;
        }
        assert!(
            files >= 41 && failed_total > 0,
            "{files} files, {failed_total} errors"
        );
    }

    #[test]
    fn bad_traces_are_refused_clearly() {
        let err = format!("{:#}", import("{\"x\": 1}", "t.json").unwrap_err());
        assert!(err.contains("no resourceSpans"), "{err}");
        let err = format!("{:#}", import("", "empty.json").unwrap_err());
        assert!(err.contains("empty.json: no GenAI chat spans"), "{err}");
        let no_output = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "ab", "name": "chat m",
            "attributes": [attr("gen_ai.operation.name", json!("chat"))]}]}]}]});
        let err = format!(
            "{:#}",
            import(&no_output.to_string(), "t.json").unwrap_err()
        );
        assert!(
            err.contains("span ab") && err.contains("no gen_ai.output.messages"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            import("{\"resourceSpans\": []}", "t.json").unwrap_err()
        );
        assert!(err.contains("no GenAI chat spans"), "{err}");
    }
}
