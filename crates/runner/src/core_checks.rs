//! The runner's built-in checks (docs/scenario-format.md §4). They need nothing
//! from the image but the runner itself.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::check::{Check, Source};
use crate::fsutil;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    ProcessExitsClean,
    NoUnhandledErrors,
    FixturesUnchanged,
    ServicesHealthy,
    NoSecretsInWorkspace,
}

pub const ALL: [Builtin; 5] = [
    Builtin::ProcessExitsClean,
    Builtin::NoUnhandledErrors,
    Builtin::FixturesUnchanged,
    Builtin::ServicesHealthy,
    Builtin::NoSecretsInWorkspace,
];

impl Builtin {
    pub fn id(self) -> &'static str {
        match self {
            Builtin::ProcessExitsClean => "process_exits_clean",
            Builtin::NoUnhandledErrors => "no_unhandled_errors",
            Builtin::FixturesUnchanged => "fixtures_unchanged",
            Builtin::ServicesHealthy => "services_healthy",
            Builtin::NoSecretsInWorkspace => "no_secrets_in_workspace",
        }
    }

    pub fn from_id(id: &str) -> Option<Builtin> {
        ALL.into_iter().find(|b| b.id() == id)
    }

    /// The DEC-bench gate each built-in belongs to unless the scenario says otherwise.
    pub fn default_gate(self) -> &'static str {
        match self {
            Builtin::ProcessExitsClean | Builtin::NoUnhandledErrors => "functional",
            Builtin::FixturesUnchanged => "correct",
            Builtin::ServicesHealthy => "robust",
            Builtin::NoSecretsInWorkspace => "production",
        }
    }
}

/// What the built-ins look at.
pub struct Facts<'a> {
    pub agent_exit_code: Option<i32>,
    pub agent_signal: Option<i32>,
    pub agent_timed_out: bool,
    pub agent_ran: bool,
    pub agent_logs: Vec<PathBuf>,
    pub workspace: &'a Path,
    pub fixtures: &'a BTreeMap<String, String>,
    /// Service name → ready at grade time (before any restart).
    pub services: &'a BTreeMap<String, bool>,
}

const ERROR_MARKERS: [&str; 3] = ["unhandled", "traceback", "panic:"];
const MAX_SCAN_BYTES: u64 = 1024 * 1024;

pub fn run(builtin: Builtin, paths: &[String], facts: &Facts) -> Check {
    let id = builtin.id();
    let mut check = Check::new(id, "", Source::Core, false);
    let (passed, message, details): (bool, String, Value) = match builtin {
        Builtin::ProcessExitsClean => {
            let ok = facts.agent_ran && facts.agent_exit_code == Some(0) && !facts.agent_timed_out;
            let msg = if !facts.agent_ran {
                "the agent did not run".to_string()
            } else if facts.agent_timed_out {
                "the agent timed out".to_string()
            } else if let Some(sig) = facts.agent_signal {
                format!("the agent was killed by signal {sig}")
            } else {
                format!("the agent exited {}", facts.agent_exit_code.unwrap_or(-1))
            };
            (ok, msg, json!({}))
        }
        Builtin::NoUnhandledErrors => {
            let mut hits = Vec::new();
            let mut read_any = false;
            for log in &facts.agent_logs {
                let Ok(text) = fs::read(log) else { continue };
                read_any = true;
                let text = String::from_utf8_lossy(&text).to_lowercase();
                for (n, line) in text.lines().enumerate() {
                    if let Some(marker) = ERROR_MARKERS.iter().find(|m| line.contains(*m)) {
                        let name = log
                            .file_name()
                            .unwrap_or_default()
                            .to_string_lossy()
                            .to_string();
                        hits.push(format!("{name}:{}: {marker}", n + 1));
                    }
                }
            }
            if !read_any {
                // No log is no evidence either way: fail rather than pass by default.
                (
                    false,
                    "no agent log to inspect".to_string(),
                    json!({"error": "agent logs missing"}),
                )
            } else if hits.is_empty() {
                (true, String::new(), json!({}))
            } else {
                (
                    false,
                    format!("{} error marker(s) in the agent logs", hits.len()),
                    json!({"hits": hits.iter().take(20).collect::<Vec<_>>()}),
                )
            }
        }
        Builtin::FixturesUnchanged => {
            let patterns: Vec<glob::Pattern> = paths
                .iter()
                .filter_map(|p| glob::Pattern::new(p).ok())
                .collect();
            let mut changed = Vec::new();
            let mut checked = 0;
            for (rel, digest) in facts.fixtures {
                if !patterns.is_empty() && !patterns.iter().any(|p| p.matches(rel)) {
                    continue;
                }
                checked += 1;
                match fsutil::sha256_file(&facts.workspace.join(rel)) {
                    Ok(now) if &now == digest => {}
                    Ok(_) => changed.push(format!("{rel}: modified")),
                    Err(_) => changed.push(format!("{rel}: missing")),
                }
            }
            if checked == 0 {
                (
                    false,
                    "no fixture matched; nothing to compare".to_string(),
                    json!({"error": "no fixtures recorded"}),
                )
            } else if changed.is_empty() {
                (true, format!("{checked} fixture(s) unchanged"), json!({}))
            } else {
                (false, changed.join("; "), json!({"changed": changed}))
            }
        }
        Builtin::ServicesHealthy => {
            let down: Vec<&String> = facts
                .services
                .iter()
                .filter(|(_, up)| !**up)
                .map(|(n, _)| n)
                .collect();
            if down.is_empty() {
                (
                    true,
                    format!("{} service(s) ready", facts.services.len()),
                    json!({}),
                )
            } else {
                (
                    false,
                    format!(
                        "not ready at grade time: {}",
                        down.iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    json!({"down": down}),
                )
            }
        }
        Builtin::NoSecretsInWorkspace => {
            let mut hits = Vec::new();
            for rel in fsutil::walk_files(facts.workspace) {
                let path = facts.workspace.join(&rel);
                if fs::metadata(&path)
                    .map(|m| m.len() > MAX_SCAN_BYTES)
                    .unwrap_or(true)
                {
                    continue;
                }
                let Ok(bytes) = fs::read(&path) else { continue };
                if let Some(kind) = find_secret(&bytes) {
                    hits.push(format!("{rel}: {kind}"));
                }
            }
            if hits.is_empty() {
                (true, String::new(), json!({}))
            } else {
                (false, hits.join("; "), json!({"files": hits}))
            }
        }
    };
    check.passed = passed;
    check.message = message;
    if let Value::Object(map) = details {
        check.details = map;
    }
    check
}

/// Prefix, minimum length of the token after it, and the characters it may hold.
const SECRET_SHAPES: [(&str, usize, &str); 6] = [
    ("sk-ant-", 20, "alnum-_"),
    ("sk-", 32, "alnum-_"),
    ("ghp_", 36, "alnum"),
    ("github_pat_", 22, "alnum_"),
    ("AKIA", 16, "upperdigit"),
    ("xoxb-", 10, "alnum-"),
];

fn allowed(class: &str, b: u8) -> bool {
    match class {
        "alnum-_" => b.is_ascii_alphanumeric() || b == b'-' || b == b'_',
        "alnum" => b.is_ascii_alphanumeric(),
        "alnum_" => b.is_ascii_alphanumeric() || b == b'_',
        "upperdigit" => b.is_ascii_uppercase() || b.is_ascii_digit(),
        "alnum-" => b.is_ascii_alphanumeric() || b == b'-',
        _ => false,
    }
}

/// The kind of API-key-like literal in `bytes`, if any (never the secret itself).
pub fn find_secret(bytes: &[u8]) -> Option<&'static str> {
    for (prefix, min, class) in SECRET_SHAPES {
        let p = prefix.as_bytes();
        let mut i = 0;
        while i + p.len() <= bytes.len() {
            let slack_prefix = prefix == "xoxb-"
                && bytes[i..].len() >= 5
                && &bytes[i..i + 3] == b"xox"
                && bytes[i + 4] == b'-'
                && b"baprs".contains(&bytes[i + 3]);
            if &bytes[i..i + p.len()] == p || slack_prefix {
                let boundary =
                    i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
                let run = bytes[i + p.len()..]
                    .iter()
                    .take_while(|b| allowed(class, **b))
                    .count();
                if boundary && run >= min {
                    return Some(prefix);
                }
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_shapes() {
        assert_eq!(
            find_secret(b"key = \"sk-ant-api03-abcdefghijklmnopqrstuvwxyz\""),
            Some("sk-ant-")
        );
        assert_eq!(find_secret(b"AWS AKIAABCDEFGHIJKLMNOP end"), Some("AKIA"));
        assert_eq!(find_secret(b"token xoxp-1234567890-abc"), Some("xoxb-"));
        assert_eq!(
            find_secret(b"ghp_0123456789abcdefghijklmnopqrstuvwxyz"),
            Some("ghp_")
        );
        // Not secrets: too short, placeholders, or inside a word ("task-...").
        assert_eq!(find_secret(b"sk-short and AKIA123"), None);
        assert_eq!(
            find_secret(b"ask-0123456789abcdef0123456789abcdef0123"),
            None
        );
        assert_eq!(find_secret(b"POSTGRES_URL=${POSTGRES_URL}"), None);
    }

    #[test]
    fn fixtures_and_process_checks() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path();
        fs::create_dir_all(ws.join("in")).unwrap();
        fs::write(ws.join("in/a.csv"), "a").unwrap();
        fs::write(ws.join("notes.md"), "n").unwrap();
        let mut fixtures = BTreeMap::new();
        fixtures.insert(
            "in/a.csv".to_string(),
            fsutil::sha256_file(&ws.join("in/a.csv")).unwrap(),
        );
        fixtures.insert("notes.md".to_string(), "0".repeat(64));
        let services = BTreeMap::new();
        fs::write(
            ws.join("agent.log"),
            "all good\nThread panicked: panic: boom\n",
        )
        .unwrap();
        let facts = Facts {
            agent_exit_code: Some(0),
            agent_signal: None,
            agent_timed_out: false,
            agent_ran: true,
            agent_logs: vec![ws.join("agent.log")],
            workspace: ws,
            fixtures: &fixtures,
            services: &services,
        };
        assert!(run(Builtin::ProcessExitsClean, &[], &facts).passed);
        let all = run(Builtin::FixturesUnchanged, &[], &facts);
        assert!(!all.passed);
        assert_eq!(all.message, "notes.md: modified");
        assert!(run(Builtin::FixturesUnchanged, &["in/*".into()], &facts).passed);
        assert!(!run(Builtin::FixturesUnchanged, &["out/*".into()], &facts).passed);
        let errs = run(Builtin::NoUnhandledErrors, &[], &facts);
        assert!(
            !errs.passed && errs.message.contains("1 error marker"),
            "{errs:?}"
        );
        assert!(run(Builtin::ServicesHealthy, &[], &facts).passed);
        let timed_out = Facts {
            agent_timed_out: true,
            agent_exit_code: None,
            agent_signal: Some(15),
            ..facts
        };
        assert!(!run(Builtin::ProcessExitsClean, &[], &timed_out).passed);
    }
}
