//! `.kiln/validation.json`: the verdict of every validated task, keyed by the input
//! digests (`kiln.inputs.digest`) of the two eval images it ran (oracle and null) and
//! the digest of the task's reference solution (which reaches oracle runs from outside
//! any image). A verdict counts only for exactly those: any change gives new digests,
//! and the task is validated again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// One task's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub benchmark: String,
    pub task: String,
    /// `kiln.inputs.digest` of the oracle eval image that ran.
    pub oracle_inputs: String,
    /// `kiln.inputs.digest` of the null eval image that ran.
    pub null_inputs: String,
    /// The digest of the task's `solution/` (oracle runs get it from outside the image).
    #[serde(default)]
    pub solution: String,
    /// `None` when the run gave no score (it failed before grading).
    pub oracle_score: Option<f64>,
    pub null_score: Option<f64>,
    pub null_passed: Option<bool>,
    /// Oracle scored 1.0 and null did not pass.
    pub valid: bool,
    /// Why not valid, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Record {
    /// By `benchmark/task`.
    pub verdicts: BTreeMap<String, Verdict>,
}

impl Record {
    pub fn path(repo: &Path) -> PathBuf {
        repo.join(".kiln").join("validation.json")
    }

    /// The record; none yet (or unreadable) is empty.
    pub fn load(repo: &Path) -> Record {
        std::fs::read(Record::path(repo))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The verdict for `benchmark/task` if it was reached with exactly these images.
    pub fn lookup(
        &self,
        benchmark: &str,
        task: &str,
        oracle: &str,
        null: &str,
        solution: &str,
    ) -> Option<&Verdict> {
        self.verdicts.get(&key(benchmark, task)).filter(|v| {
            v.oracle_inputs == oracle && v.null_inputs == null && v.solution == solution
        })
    }

    /// Stores verdicts and writes the file atomically (`.kiln/` is git-ignored).
    pub fn save(repo: &Path, verdicts: &[Verdict]) -> anyhow::Result<()> {
        let mut record = Record::load(repo);
        for v in verdicts {
            record
                .verdicts
                .insert(key(&v.benchmark, &v.task), v.clone());
        }
        let dir = repo.join(".kiln");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let ignore = dir.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(&ignore, "# kiln's local state; never committed\n*\n")?;
        }
        let tmp = tempfile::NamedTempFile::new_in(&dir)?;
        serde_json::to_writer_pretty(&tmp, &record)?;
        tmp.persist(Record::path(repo))
            .context("writing .kiln/validation.json")?;
        Ok(())
    }
}

fn key(benchmark: &str, task: &str) -> String {
    format!("{benchmark}/{task}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_count_only_for_the_same_images() {
        let dir = tempfile::tempdir().unwrap();
        let v = Verdict {
            benchmark: "b".into(),
            task: "t".into(),
            oracle_inputs: "sha256:o".into(),
            null_inputs: "sha256:n".into(),
            solution: "sha256:s".into(),
            oracle_score: Some(1.0),
            null_score: Some(0.0),
            null_passed: Some(false),
            valid: true,
            problem: None,
        };
        Record::save(dir.path(), std::slice::from_ref(&v)).unwrap();
        let r = Record::load(dir.path());
        assert_eq!(
            r.lookup("b", "t", "sha256:o", "sha256:n", "sha256:s"),
            Some(&v)
        );
        assert_eq!(
            r.lookup("b", "t", "sha256:o", "sha256:other", "sha256:s"),
            None
        );
        assert_eq!(
            r.lookup("b", "t", "sha256:o", "sha256:n", "sha256:changed"),
            None
        );
        assert_eq!(r.lookup("b", "u", "sha256:o", "sha256:n", "sha256:s"), None);
    }
}
