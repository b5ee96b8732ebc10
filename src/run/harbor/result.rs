//! What a trial leaves: the reward the tests wrote, read, and kiln's `result.json`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::anyhow;
use serde_json::json;

use super::docker::s;
use super::{Agent, Outcome};
use crate::fleet::layout::harbor::Task;

/// `reward.json` (an object of numbers) or else `reward.txt` (one number), from the
/// verifier's log folder. Neither, or either unreadable: an error naming the file.
pub fn read_reward(dir: &Path) -> anyhow::Result<BTreeMap<String, f64>> {
    let json = dir.join("reward.json");
    if json.is_file() {
        let text = std::fs::read_to_string(&json)?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| anyhow!("reward.json is not JSON: {e}"))?;
        let obj = v
            .as_object()
            .ok_or_else(|| anyhow!("reward.json is not an object of numbers"))?;
        return obj
            .iter()
            .map(|(k, v)| {
                v.as_f64()
                    .map(|n| (k.clone(), n))
                    .ok_or_else(|| anyhow!("reward.json: {k} is not a number"))
            })
            .collect();
    }
    let txt = dir.join("reward.txt");
    let text = std::fs::read_to_string(&txt).map_err(|_| {
        anyhow!("the tests wrote no reward (/logs/verifier/reward.json or reward.txt)")
    })?;
    let n: f64 = text
        .trim()
        .parse()
        .map_err(|_| anyhow!("reward.txt holds {:?}, not a number", text.trim()))?;
    Ok(BTreeMap::from([(s("reward"), n)]))
}

/// `result.json` (schema 2, as kiln's runner writes it) of one trial: the reward file's
/// `reward` as the score (pass: 1), every key of it under `rewards`.
pub fn write_result(
    out: &Path,
    benchmark: &str,
    task: &Task,
    agent: Agent,
    o: &Outcome,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let now = crate::labels::rfc3339_utc(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    );
    let status = if o.error.is_some() && o.reward.is_none() {
        "grader_error"
    } else if o.agent_timed_out {
        "agent_timeout"
    } else {
        "completed"
    };
    let value = o.reward.unwrap_or(0.0);
    let model = match agent {
        Agent::Kiln(a) => a
            .env
            .iter()
            .find(|(k, _)| k == "MODEL")
            .map(|(_, v)| v.as_str()),
        _ => None,
    };
    let result = json!({
        "schema_version": "2",
        "runner_version": env!("CARGO_PKG_VERSION"),
        "run_id": format!("{benchmark}-{}-{}-{}", task.id, agent.name(), std::process::id()),
        "status": status,
        "task": {"id": task.id, "title": task.name(), "prompt_variant": "default",
                 "prompt_sha256": "", "scenario_sha256": ""},
        "agent": {"id": agent.name(), "model": model.unwrap_or(""), "exit_code": null, "signal": null,
                  "timed_out": o.agent_timed_out, "wall_sec": o.wall_sec,
                  "privileges_dropped": task.config.agent.user.is_some(), "metrics": null},
        "score": {"mode": "reward", "value": value, "passed": o.reward == Some(1.0),
                  "raw_value": value, "threshold": 1.0, "highest_gate": null, "n_gates": null,
                  "caps_applied": []},
        "gates": [],
        "checks": [],
        "rewards": o.rewards,
        "fixtures": {},
        "timing": {"started_at": now, "finished_at": now, "wall_sec": o.wall_sec,
                   "prepare": null, "agent": null, "grade": null},
        "warnings": [],
        "errors": o.error.iter().map(|e| json!({"phase": "grade", "message": e})).collect::<Vec<_>>(),
        "model": null
    });
    std::fs::write(
        out.join("result.json"),
        serde_json::to_string_pretty(&result)?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewards_read_json_then_text_and_refuse_the_rest() {
        let d = tempfile::tempdir().unwrap();
        assert!(read_reward(d.path()).is_err());
        std::fs::write(d.path().join("reward.txt"), "1\n").unwrap();
        assert_eq!(read_reward(d.path()).unwrap()["reward"], 1.0);
        std::fs::write(d.path().join("reward.txt"), "yes").unwrap();
        assert!(read_reward(d.path())
            .unwrap_err()
            .to_string()
            .contains("\"yes\""));
        std::fs::write(d.path().join("reward.json"), r#"{"a": 0.5, "b": 1}"#).unwrap();
        let r = read_reward(d.path()).unwrap();
        assert_eq!((r["a"], r["b"]), (0.5, 1.0));
        std::fs::write(d.path().join("reward.json"), r#"{"a": "x"}"#).unwrap();
        assert!(read_reward(d.path()).is_err());
    }
}
