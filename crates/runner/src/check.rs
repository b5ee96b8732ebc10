//! One check result, and the grader protocol that produces them
//! (docs/scenario-format.md §5): JSON lines in `$GRADER_OUT/checks.jsonl`, or one
//! JSON object on stdout, or the exit code of a single-check executable.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where a check comes from: a runner built-in or the scenario's graders.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Core,
    Scenario,
}

/// A normalized check, exactly as it appears in `result.json` `checks[]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Check {
    pub id: String,
    pub group: String,
    pub source: Source,
    pub passed: bool,
    pub skipped: bool,
    pub required: bool,
    pub weight: f64,
    /// False for checks of gates that were not evaluated (an earlier gate failed).
    pub counted: bool,
    pub duration_ms: u64,
    pub message: String,
    pub details: Map<String, Value>,
}

impl Check {
    pub fn new(id: &str, group: &str, source: Source, passed: bool) -> Check {
        Check {
            id: id.to_string(),
            group: group.to_string(),
            source,
            passed,
            skipped: false,
            required: false,
            weight: 1.0,
            counted: true,
            duration_ms: 0,
            message: String::new(),
            details: Map::new(),
        }
    }

    /// A failed check that stands for a grader that could not give an answer.
    pub fn grader_failure(id: &str, group: &str, reason: &str) -> Check {
        let mut c = Check::new(id, group, Source::Scenario, false);
        c.message = reason.to_string();
        c.details
            .insert("error".into(), Value::String(reason.to_string()));
        c
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Check {
        self.message = message.into();
        self
    }

    pub fn with_weight(mut self, weight: f64) -> Check {
        self.weight = weight;
        self
    }

    pub fn with_required(mut self, required: bool) -> Check {
        self.required = required;
        self
    }

    pub fn with_skipped(mut self, skipped: bool) -> Check {
        self.skipped = skipped;
        self
    }

    /// Takes part in scoring: counted and not skipped.
    pub fn scored(&self) -> bool {
        self.counted && !self.skipped
    }
}

/// One record as a grader writes it. Unknown keys are rejected so that a typo
/// (`"weigth"`) cannot silently fall back to a default.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub id: Option<String>,
    pub group: Option<String>,
    pub passed: bool,
    #[serde(default)]
    pub skipped: bool,
    pub weight: Option<f64>,
    pub required: Option<bool>,
    pub message: Option<String>,
    pub details: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordList {
    checks: Vec<Record>,
}

impl Record {
    fn validate(&self) -> Result<(), String> {
        if let Some(w) = self.weight {
            if !w.is_finite() || w < 0.0 {
                return Err(format!("weight must be a finite number >= 0, got {w}"));
            }
        }
        if let Some(id) = &self.id {
            if id.trim().is_empty() {
                return Err("id must not be empty".into());
            }
        }
        Ok(())
    }
}

/// Parses what a grader emitted. `Ok(None)` means it emitted nothing (the caller
/// falls back to the exit code or reports a failure); `Err` is unparseable output.
pub fn parse_records(
    checks_jsonl: Option<&str>,
    stdout: &str,
) -> Result<Option<Vec<Record>>, String> {
    if let Some(text) = checks_jsonl {
        let mut records = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let record: Record = serde_json::from_str(line)
                .map_err(|e| format!("checks.jsonl line {}: {e}", n + 1))?;
            record
                .validate()
                .map_err(|e| format!("checks.jsonl line {}: {e}", n + 1))?;
            records.push(record);
        }
        if !records.is_empty() {
            return Ok(Some(records));
        }
    }
    let trimmed = stdout.trim();
    if !trimmed.starts_with('{') {
        return Ok(None);
    }
    let value: Value =
        serde_json::from_str(trimmed).map_err(|e| format!("stdout is not one JSON object: {e}"))?;
    let records = if value.get("checks").is_some() && value.get("passed").is_none() {
        serde_json::from_value::<RecordList>(value)
            .map_err(|e| format!("stdout {{\"checks\": [...]}}: {e}"))?
            .checks
    } else {
        vec![serde_json::from_value::<Record>(value).map_err(|e| format!("stdout record: {e}"))?]
    };
    for r in &records {
        r.validate().map_err(|e| format!("stdout record: {e}"))?;
    }
    Ok(Some(records))
}

/// The last `max` bytes of `text`, cut at a character boundary.
pub fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.trim().to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_wins_over_stdout() {
        let jsonl =
            "{\"id\":\"a\",\"passed\":true}\n\n{\"id\":\"b\",\"passed\":false,\"weight\":0.5}\n";
        let got = parse_records(Some(jsonl), "{\"passed\":false}")
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].weight, Some(0.5));
    }

    #[test]
    fn stdout_single_object_and_list() {
        let one = parse_records(None, " {\"passed\":true,\"message\":\"ok\"}\n")
            .unwrap()
            .unwrap();
        assert_eq!(one[0].message.as_deref(), Some("ok"));
        let list = parse_records(
            None,
            "{\"checks\":[{\"id\":\"x\",\"passed\":true},{\"id\":\"y\",\"passed\":false}]}",
        )
        .unwrap()
        .unwrap();
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn nothing_emitted_is_none() {
        assert_eq!(parse_records(None, "just logs\n").unwrap(), None);
        assert_eq!(parse_records(Some("\n\n"), "").unwrap(), None);
    }

    #[test]
    fn bad_output_is_an_error_naming_the_line() {
        let err = parse_records(Some("{\"id\":\"a\",\"passed\":true}\n{\"id\":\"b\"}\n"), "")
            .unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        let err = parse_records(Some("{\"id\":\"a\",\"pass\":true}\n"), "").unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
        assert!(parse_records(None, "{not json").is_err());
        assert!(parse_records(None, "{\"passed\":true,\"weight\":-1}").is_err());
    }

    #[test]
    fn tail_keeps_the_end() {
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("é€x", 2), "x");
    }
}
