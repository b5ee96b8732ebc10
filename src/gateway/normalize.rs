//! The normalized conversation replay compares (docs/model-gateway.md, "Normalization"):
//! the model, then every message as role, text, tool calls (name + parsed arguments) and
//! tool results. Ids, names of parts, sampling parameters, `stream` and anything else
//! are left out: they change between runs without changing what the agent saw.

use serde_json::Value;

use super::route::Route;

/// One message, normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool` (a tool result, in either API).
    pub role: String,
    /// The text parts joined by newlines, `\r\n` as `\n`, trailing whitespace dropped.
    pub text: String,
    /// Tool calls: name and arguments (parsed when they are JSON text).
    pub tool_calls: Vec<(String, Value)>,
}

/// A request's conversation, normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub model: String,
    pub messages: Vec<Message>,
}

fn clean(text: &str) -> String {
    text.replace("\r\n", "\n").trim_end().to_string()
}

/// The text of a `content` that is a string, or an array of parts whose text parts count.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.clone()),
                _ if p["type"] == "text" => p["text"].as_str().map(str::to_string),
                _ if p["type"] == "tool_result" => Some(content_text(&p["content"])),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn arguments(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
        other => other.clone(),
    }
}

fn message(role: &str, text: String, tool_calls: Vec<(String, Value)>) -> Message {
    Message {
        role: role.to_string(),
        text: clean(&text),
        tool_calls,
    }
}

fn openai(body: &Value) -> Vec<Message> {
    let mut out = Vec::new();
    for m in body["messages"].as_array().into_iter().flatten() {
        let role = m["role"].as_str().unwrap_or("");
        // OpenAI's newer name for the system role means the same to the model.
        let role = if role == "developer" { "system" } else { role };
        let calls = m["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["function"]["name"].as_str().unwrap_or("").to_string(),
                    arguments(&c["function"]["arguments"]),
                )
            })
            .collect();
        out.push(message(role, content_text(&m["content"]), calls));
    }
    out
}

fn anthropic(body: &Value) -> Vec<Message> {
    let mut out = Vec::new();
    let system = content_text(&body["system"]);
    if !system.is_empty() {
        out.push(message("system", system, Vec::new()));
    }
    for m in body["messages"].as_array().into_iter().flatten() {
        let role = m["role"].as_str().unwrap_or("");
        let blocks = match &m["content"] {
            Value::Array(b) => b.clone(),
            other => vec![serde_json::json!({"type": "text", "text": content_text(other)})],
        };
        let (mut text, mut calls) = (Vec::new(), Vec::new());
        for b in &blocks {
            match b["type"].as_str() {
                Some("text") => text.push(b["text"].as_str().unwrap_or("").to_string()),
                Some("tool_use") => calls.push((
                    b["name"].as_str().unwrap_or("").to_string(),
                    b["input"].clone(),
                )),
                // A tool result is a message of its own, as in OpenAI's dialect.
                Some("tool_result") => {
                    out.push(message("tool", content_text(&b["content"]), Vec::new()))
                }
                _ => {}
            }
        }
        if !text.is_empty() || !calls.is_empty() {
            out.push(message(role, text.join("\n"), calls));
        }
    }
    out
}

/// Normalizes a request body of `route`.
pub fn conversation(route: Route, body: &Value) -> Conversation {
    Conversation {
        model: body["model"].as_str().unwrap_or("").to_string(),
        messages: match route {
            Route::OpenAiChat => openai(body),
            Route::AnthropicMessages => anthropic(body),
        },
    }
}

/// A short excerpt of where two texts first differ: `…recorded… ≠ …got…`.
fn excerpt_diff(recorded: &str, got: &str) -> String {
    let at = recorded
        .char_indices()
        .zip(got.chars())
        .find(|((_, a), b)| a != b)
        .map(|((i, _), _)| i)
        .unwrap_or_else(|| recorded.len().min(got.len()));
    let at = (0..=at)
        .rev()
        .find(|&i| recorded.is_char_boundary(i) && got.is_char_boundary(i))
        .unwrap_or(0);
    let window = |s: &str| -> String {
        let start = (0..=at.saturating_sub(30))
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        let tail: String = s[at.min(s.len())..].chars().take(40).collect();
        format!(
            "{}{}{}",
            if start > 0 { "…" } else { "" },
            &s[start..at.min(s.len())],
            tail
        )
    };
    format!(
        "at char {at}: recorded {:?}, got {:?}",
        window(recorded),
        window(got)
    )
}

/// Why `got` is not the recorded conversation, or None when they are the same.
pub fn difference(recorded: &Conversation, got: &Conversation) -> Option<String> {
    if recorded.model != got.model {
        return Some(format!(
            "model: recorded {:?}, got {:?}",
            recorded.model, got.model
        ));
    }
    for (i, (r, g)) in recorded.messages.iter().zip(&got.messages).enumerate() {
        let n = i + 1;
        if r.role != g.role {
            return Some(format!(
                "message {n}: role recorded {:?}, got {:?}",
                r.role, g.role
            ));
        }
        if r.text != g.text {
            return Some(format!(
                "message {n} ({}): text differs {}",
                r.role,
                excerpt_diff(&r.text, &g.text)
            ));
        }
        if r.tool_calls != g.tool_calls {
            let show = |c: &[(String, Value)]| {
                c.iter()
                    .map(|(n, a)| format!("{n}({a})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Some(format!(
                "message {n} ({}): tool calls recorded [{}], got [{}]",
                r.role,
                show(&r.tool_calls),
                show(&g.tool_calls)
            ));
        }
    }
    if recorded.messages.len() != got.messages.len() {
        return Some(format!(
            "{} messages recorded, got {}",
            recorded.messages.len(),
            got.messages.len()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn openai_ignores_ids_and_parameters() {
        let a = json!({"model": "m", "temperature": 0, "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi\r\n"}]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "bash", "arguments": "{\"cmd\": \"ls\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a b"}
        ]});
        let b = json!({"model": "m", "stream": true, "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [
                {"id": "call_XYZ", "type": "function", "function": {"name": "bash", "arguments": "{\"cmd\":\"ls\"}"}}]},
            {"role": "tool", "tool_call_id": "call_XYZ", "content": "a b"}
        ]});
        let (ca, cb) = (
            conversation(Route::OpenAiChat, &a),
            conversation(Route::OpenAiChat, &b),
        );
        assert_eq!(difference(&ca, &cb), None);
        assert_eq!(ca.messages[2].tool_calls[0].1, json!({"cmd": "ls"}));
    }

    #[test]
    fn anthropic_tool_results_are_messages() {
        let body = json!({"model": "claude", "system": [{"type": "text", "text": "sys"}], "messages": [
            {"role": "user", "content": "do it"},
            {"role": "assistant", "content": [{"type": "text", "text": "ok"},
                {"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {"cmd": "ls"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "out"}]}
        ]});
        let c = conversation(Route::AnthropicMessages, &body);
        let roles: Vec<&str> = c.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "tool"]);
        assert_eq!(c.messages[3].text, "out");
        assert_eq!(c.messages[2].tool_calls[0].0, "bash");
    }

    #[test]
    fn differences_name_message_and_place() {
        let conv = |texts: &[&str]| Conversation {
            model: "m".into(),
            messages: texts
                .iter()
                .map(|t| message("user", t.to_string(), vec![]))
                .collect(),
        };
        let d = difference(
            &conv(&["a", "line count: 42"]),
            &conv(&["a", "line count: 43"]),
        )
        .unwrap();
        assert!(
            d.starts_with("message 2 (user): text differs at char 13"),
            "{d}"
        );
        assert!(
            d.contains("\"line count: 42\"") && d.contains("\"line count: 43\""),
            "{d}"
        );
        let d = difference(&conv(&["a"]), &conv(&["a", "b"])).unwrap();
        assert_eq!(d, "1 messages recorded, got 2");
        let mut other = conv(&["a"]);
        other.model = "n".into();
        assert!(difference(&conv(&["a"]), &other)
            .unwrap()
            .starts_with("model:"));
        // Multi-byte text near the difference does not split a character.
        let d = difference(&conv(&["héllo wörld"]), &conv(&["héllo wärld"])).unwrap();
        assert!(d.contains("wörld") && d.contains("wärld"), "{d}");
    }
}
