//! One run's trajectory in the HTML report: what the agent saw and did (its model
//! exchanges from the gateway's record, its own stdout/stderr), then, apart and marked
//! as hidden from the agent, what the grader found (score, gates, checks, the graders'
//! logs), then the runner's log. Everything is collapsed (`<details>`) and log files
//! show only their tail, so a page with many long runs stays small and readable.

use std::fmt::Write as _;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::escape;
use super::Row;

/// How much of the end of each log file is shown.
const TAIL_BYTES: u64 = 8 * 1024;
/// How much of one message is shown.
const MESSAGE_CHARS: usize = 4000;

/// The last [`TAIL_BYTES`] of `file` (None when it cannot be read), and how many bytes
/// came before them.
fn tail(file: &Path) -> Option<(String, u64)> {
    let mut f = std::fs::File::open(file).ok()?;
    let len = f.metadata().ok()?.len();
    let skip = len.saturating_sub(TAIL_BYTES);
    f.seek(SeekFrom::Start(skip)).ok()?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ok()?;
    Some((String::from_utf8_lossy(&bytes).into_owned(), skip))
}

fn log(h: &mut String, label: &str, file: &Path) {
    let Some((text, skipped)) = tail(file) else {
        return;
    };
    let before = if skipped > 0 {
        format!(" (last {} bytes; {skipped} before)", text.len())
    } else {
        String::new()
    };
    let _ = write!(
        h,
        "<details class=\"log\"><summary>{}{before}</summary><pre>{}</pre></details>",
        escape(label),
        escape(&text)
    );
}

fn clip(s: &str) -> String {
    if s.chars().count() <= MESSAGE_CHARS {
        return s.to_string();
    }
    let head: String = s.chars().take(MESSAGE_CHARS).collect();
    format!(
        "{head}… [{} more characters]",
        s.chars().count() - MESSAGE_CHARS
    )
}

/// A message's text, from either API's shape (a string, or parts with `text`).
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| {
                p.get("text")
                    .and_then(Value::as_str)
                    .map(String::from)
                    .or_else(|| p.get("content").map(text_of))
                    .or_else(|| {
                        p.get("input").map(|i| {
                            format!(
                                "[tool call {}: {i}]",
                                p.get("name").and_then(Value::as_str).unwrap_or("?")
                            )
                        })
                    })
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A message as `role: text` plus its tool calls (OpenAI's `tool_calls`).
fn message(h: &mut String, m: &Value) {
    let role = m.get("role").and_then(Value::as_str).unwrap_or("?");
    let mut text = text_of(m.get("content").unwrap_or(&Value::Null));
    if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
        for c in calls {
            let f = c.get("function").unwrap_or(c);
            let _ = write!(
                text,
                "\n[tool call {}: {}]",
                f.get("name").and_then(Value::as_str).unwrap_or("?"),
                f.get("arguments").map(text_of).unwrap_or_default()
            );
        }
    }
    let _ = write!(
        h,
        "<div class=\"msg {r}\"><b>{r}</b><pre>{}</pre></div>",
        escape(&clip(text.trim())),
        r = escape(role)
    );
}

/// The answer of one exchange: the JSON answer's message(s), or a stream's text.
fn answer(h: &mut String, exchange: &Value) {
    if let Some(r) = exchange.get("response") {
        if let Some(choices) = r.get("choices").and_then(Value::as_array) {
            for c in choices {
                if let Some(m) = c.get("message") {
                    message(h, m);
                }
            }
        } else if r.get("content").is_some() {
            // Anthropic: the response is the assistant message.
            let mut m = r.clone();
            m["role"] = Value::from("assistant");
            message(h, &m);
        } else {
            let _ = write!(h, "<pre>{}</pre>", escape(&clip(&r.to_string())));
        }
    } else if let Some(events) = exchange.get("events").and_then(Value::as_array) {
        // A stream: the text deltas joined (both APIs), else the raw event data.
        let mut text = String::new();
        for e in events {
            let Some(data) = e.get("data").and_then(Value::as_str) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(data) else {
                continue;
            };
            let delta = v
                .pointer("/choices/0/delta/content")
                .or_else(|| v.pointer("/delta/text"))
                .and_then(Value::as_str);
            if let Some(d) = delta {
                text.push_str(d);
            }
        }
        let _ = write!(
            h,
            "<div class=\"msg assistant\"><b>assistant (streamed, {} events)</b><pre>{}</pre></div>",
            events.len(),
            escape(&clip(&text))
        );
    }
}

/// Where the gateway's record of the run's exchanges is: result.json's
/// `model.fixture`, as given to `kiln run` (absolute, or relative to where kiln ran,
/// tried from here and from the results' parent directories).
fn fixture_path(result: &Value, run_dir: &Path) -> Option<PathBuf> {
    let f = PathBuf::from(result.pointer("/model/fixture")?.as_str()?);
    if f.is_absolute() {
        return f.is_file().then_some(f);
    }
    std::iter::once(PathBuf::from("."))
        .chain(run_dir.ancestors().map(Path::to_path_buf))
        .map(|base| base.join(&f))
        .find(|p| p.is_file())
}

fn exchanges(h: &mut String, result: &Value, run_dir: &Path) {
    let Some(model) = result.get("model").filter(|m| !m.is_null()) else {
        h.push_str("<p class=\"note\">No model gateway record for this run.</p>");
        return;
    };
    let _ = write!(
        h,
        "<p>{} model calls, {} in / {} out tokens, {:.2}s waiting on the model ({}).</p>",
        model["calls"],
        model["input_tokens"],
        model["output_tokens"],
        model["wait_sec"].as_f64().unwrap_or(0.0),
        escape(model["mode"].as_str().unwrap_or("")),
    );
    let Some(path) = fixture_path(result, run_dir) else {
        let _ = write!(
            h,
            "<p class=\"note\">The gateway's record {} is not found: no exchanges to show.</p>",
            escape(
                &result
                    .pointer("/model/fixture")
                    .map(text_of)
                    .unwrap_or_default()
            )
        );
        return;
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let mut seen = 0;
    for (i, line) in text.lines().skip(1).enumerate() {
        let Ok(x) = serde_json::from_str::<Value>(line) else {
            let _ = write!(
                h,
                "<p class=\"err\">{} line {}: not an exchange</p>",
                escape(&path.display().to_string()),
                i + 2
            );
            continue;
        };
        let req = &x["request"];
        let mut messages: Vec<Value> = Vec::new();
        if let Some(system) = req.get("system") {
            messages.push(serde_json::json!({"role": "system", "content": system}));
        }
        messages.extend(req["messages"].as_array().cloned().unwrap_or_default());
        // Each request repeats the conversation so far: show only what is new.
        let new = &messages[seen.min(messages.len())..];
        let _ = write!(
            h,
            "<details class=\"exchange\"><summary>call {} · {} · status {} · new messages: {}</summary>",
            i + 1,
            escape(x["route"].as_str().unwrap_or("")),
            x["status"],
            new.len()
        );
        for m in new {
            message(h, m);
        }
        answer(h, &x);
        h.push_str("</details>");
        // The answer becomes part of the next request's conversation.
        seen = messages.len() + 1;
    }
}

fn grader(h: &mut String, result: &Value, run_dir: &Path) {
    let score = &result["score"];
    let _ = write!(
        h,
        "<p>score {} ({}), raw {}, passed {}</p>",
        score["value"],
        escape(score["mode"].as_str().unwrap_or("")),
        score["raw_value"],
        score["passed"]
    );
    if let Some(gates) = result["gates"].as_array().filter(|g| !g.is_empty()) {
        h.push_str("<table class=\"gates\"><tr><th>gate</th><th>evaluated</th><th>passed</th><th>fraction</th><th>threshold</th></tr>");
        for g in gates {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(g["name"].as_str().unwrap_or("")),
                g["evaluated"],
                g["passed"],
                g["frac"],
                g["threshold"]
            );
        }
        h.push_str("</table>");
    }
    if let Some(checks) = result["checks"].as_array().filter(|c| !c.is_empty()) {
        h.push_str("<table class=\"checks\"><tr><th>check</th><th>group</th><th>source</th><th>result</th><th>weight</th><th>message</th></tr>");
        for c in checks {
            let verdict = if c["skipped"] == true {
                "skipped"
            } else if c["counted"] == false {
                "not counted"
            } else if c["passed"] == true {
                "passed"
            } else {
                "failed"
            };
            let _ = write!(
                h,
                "<tr class=\"check\"><td>{}{}</td><td>{}</td><td>{}</td><td class=\"{}\">{verdict}</td><td>{}</td><td>{}</td></tr>",
                escape(c["id"].as_str().unwrap_or("")),
                if c["required"] == true { " (required)" } else { "" },
                escape(c["group"].as_str().unwrap_or("")),
                escape(c["source"].as_str().unwrap_or("")),
                if verdict == "failed" { "no" } else { "yes" },
                c["weight"],
                escape(&clip(c["message"].as_str().unwrap_or("")))
            );
        }
        h.push_str("</table>");
    }
    if let Some(rewards) = result["rewards"].as_object().filter(|r| !r.is_empty()) {
        let _ = write!(
            h,
            "<p>rewards: {}</p>",
            escape(&Value::Object(rewards.clone()).to_string())
        );
    }
    if let Ok(sources) = std::fs::read_dir(run_dir.join("grader")) {
        let mut sources: Vec<PathBuf> = sources.filter_map(|e| e.ok().map(|e| e.path())).collect();
        sources.sort();
        for s in sources {
            let name = s
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            log(
                h,
                &format!("grader/{name}/stdout.log"),
                &s.join("stdout.log"),
            );
            log(
                h,
                &format!("grader/{name}/stderr.log"),
                &s.join("stderr.log"),
            );
        }
    }
}

/// The trajectory of run `r` as a collapsed section with the id `id`.
pub fn section(h: &mut String, r: &Row, id: &str) {
    let run_dir = r.path.parent().unwrap_or(Path::new("."));
    let result: Value = std::fs::read_to_string(&r.path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let _ = write!(
        h,
        "<details class=\"trajectory\" id=\"{id}\"><summary>trajectory: {} × {}{}</summary>\
         <div class=\"part agent-part\"><h3>The agent: what it saw and did</h3>",
        escape(&r.task),
        escape(&r.agent),
        r.repeat.map(|k| format!(" #{k}")).unwrap_or_default()
    );
    exchanges(h, &result, run_dir);
    log(h, "agent/stdout.log", &run_dir.join("agent/stdout.log"));
    log(h, "agent/stderr.log", &run_dir.join("agent/stderr.log"));
    h.push_str("</div><div class=\"part grader-part\"><h3>The grader (hidden from the agent)</h3>");
    // A regraded result's grader logs are its regrade's.
    let graded_in = match &r.regraded {
        Some(g) => super::regraded::log_dir(run_dir, g.n),
        None => run_dir.to_path_buf(),
    };
    grader(h, &result, &graded_in);
    h.push_str("</div><div class=\"part\"><h3>The runner</h3>");
    log(h, "runner.stderr.log", &run_dir.join("runner.stderr.log"));
    h.push_str("</div></details>");
}
