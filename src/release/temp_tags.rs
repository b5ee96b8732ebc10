//! The temporary local tags of a release: the engine pushes by name, so every push tags
//! `<registry>/<repository>:<tag>` in Docker's store and untags it when the push ends.
//! A push that ends by cancellation (Ctrl-C, fail-fast) or a process that is killed
//! would leave them behind, so each one is written down before it is made, in
//! `.kiln/release-tags/<pid>.json` with the process's start time (as `run::reap` labels
//! containers): the release removes what is left of its own when it ends, whatever the
//! ending, and the next release removes what a dead one left.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::registry::PushObserver;
use crate::run::reap;
use crate::store::Store;

/// One process's record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Record {
    pid: u32,
    pid_start: String,
    host: String,
    tags: BTreeSet<(Store, String)>,
}

impl Record {
    fn is_dead(&self, this_host: &str) -> bool {
        let labels = BTreeMap::from([
            (reap::LABEL_PID.to_string(), self.pid.to_string()),
            (reap::LABEL_PID_START.to_string(), self.pid_start.clone()),
            (reap::LABEL_HOST.to_string(), self.host.clone()),
        ]);
        reap::owner_is_dead(&labels, this_host)
    }
}

fn dir(repo: &Path) -> PathBuf {
    repo.join(".kiln").join("release-tags")
}

/// This process's temporary tags, mirrored in its state file.
pub struct TempTags {
    path: PathBuf,
    record: Mutex<Record>,
}

impl TempTags {
    pub fn new(repo: &Path) -> TempTags {
        let pid = std::process::id();
        TempTags {
            path: dir(repo).join(format!("{pid}.json")),
            record: Mutex::new(Record {
                pid,
                pid_start: reap::start_time(pid).unwrap_or_default(),
                host: reap::host_name(),
                tags: BTreeSet::new(),
            }),
        }
    }

    /// Writes the record (or removes the file when it holds no tag). Best effort: a
    /// record that cannot be written costs only the clean-up after a SIGKILL.
    fn save(&self, record: &Record) {
        if record.tags.is_empty() {
            let _ = std::fs::remove_file(&self.path);
            return;
        }
        let Some(parent) = self.path.parent() else {
            return;
        };
        if std::fs::create_dir_all(parent).is_err() {
            return;
        }
        if let Ok(tmp) = tempfile::NamedTempFile::new_in(parent) {
            if serde_json::to_writer(&tmp, record).is_ok() {
                let _ = tmp.persist(&self.path);
            }
        }
    }

    /// Removes every tag of this process still there; returns the ones that could not
    /// be removed, with why.
    pub async fn remove_all(&self) -> Vec<String> {
        let left: Vec<(Store, String)> = self
            .record
            .lock()
            .expect("tags")
            .tags
            .iter()
            .cloned()
            .collect();
        let mut problems = Vec::new();
        for (store, reference) in left {
            match crate::registry::push::untag(store, &reference).await {
                Ok(_) => self.untagged(store, &reference),
                Err(e) => problems.push(format!("{e:#}")),
            }
        }
        problems
    }
}

impl PushObserver for TempTags {
    fn tagging(&self, store: Store, reference: &str) {
        let mut r = self.record.lock().expect("tags");
        r.tags.insert((store, reference.to_string()));
        self.save(&r);
    }

    fn untagged(&self, store: Store, reference: &str) {
        let mut r = self.record.lock().expect("tags");
        if r.tags.remove(&(store, reference.to_string())) {
            self.save(&r);
        }
    }
}

/// A tag a dead release left, now removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub store: Store,
    pub reference: String,
    pub pid: u32,
}

/// Removes the temporary tags of release processes that no longer run (records of
/// live processes, and of other hosts sharing the directory, are left alone).
pub async fn clean_dead(repo: &Path) -> anyhow::Result<Vec<Leftover>> {
    let host = reap::host_name();
    let Ok(entries) = std::fs::read_dir(dir(repo)) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let Some(record) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
        else {
            continue;
        };
        if record.pid == std::process::id() || !record.is_dead(&host) {
            continue;
        }
        for (store, reference) in &record.tags {
            // Recorded before it was made: a process killed in between made none.
            if !crate::registry::push::untag(*store, reference).await? {
                continue;
            }
            out.push(Leftover {
                store: *store,
                reference: reference.clone(),
                pid: record.pid,
            });
        }
        let _ = std::fs::remove_file(&path);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_follow_the_tags_and_vanish_when_empty() {
        let repo = tempfile::tempdir().unwrap();
        let tags = TempTags::new(repo.path());
        tags.tagging(Store::Docker, "127.0.0.1:5000/core/base:v1");
        let saved: Record = serde_json::from_slice(&std::fs::read(&tags.path).unwrap()).unwrap();
        assert_eq!(saved.pid, std::process::id());
        assert!(!saved.pid_start.is_empty());
        assert_eq!(saved.tags.len(), 1);
        assert!(!saved.is_dead(&reap::host_name()), "this process is alive");
        let mut gone = saved.clone();
        gone.pid_start = "1".into();
        assert!(gone.is_dead(&reap::host_name()), "same pid, other start");
        tags.untagged(Store::Docker, "127.0.0.1:5000/core/base:v1");
        assert!(!tags.path.exists(), "an empty record is removed");
    }

    #[test]
    fn a_live_record_is_left_alone() {
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir(repo.path())).unwrap();
        // A record of this very process (pid 1 is alive and not ours: use ours, another file).
        let me = TempTags::new(repo.path());
        let live = Record {
            tags: BTreeSet::from([(Store::Docker, "127.0.0.1:1/x:v1".to_string())]),
            ..me.record.lock().unwrap().clone()
        };
        let other = dir(repo.path()).join("live.json");
        std::fs::write(&other, serde_json::to_vec(&live).unwrap()).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        assert!(rt.block_on(clean_dead(repo.path())).unwrap().is_empty());
        assert!(other.exists());
    }
}
