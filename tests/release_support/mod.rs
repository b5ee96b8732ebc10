//! The release fixture fleet in a git repository of its own, run through the kiln
//! binary, and what the release tests read back (shared by `release_registry.rs` and
//! `release_faults.rs`).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kiln::registry::{Client, Credentials, Registry};
use serde_json::Value;

use crate::fleet_support;
use crate::registry_support::{TestRegistry, USER};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A git repository holding a copy of the release fixture fleet.
pub struct Fleet {
    dir: tempfile::TempDir,
    pub registry_root: String,
    runner: PathBuf,
}

pub fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.email=kiln@test", "-c", "user.name=kiln"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "git {args:?} failed");
}

impl Fleet {
    pub fn new(unique: &str) -> Fleet {
        let src = repo_root().join("tests/fixtures/release/fleet");
        let dir = tempfile::tempdir().unwrap();
        for entry in walkdir::WalkDir::new(&src).min_depth(1) {
            let entry = entry.unwrap();
            let to = dir.path().join(entry.path().strip_prefix(&src).unwrap());
            if entry.file_type().is_dir() {
                std::fs::create_dir_all(&to).unwrap();
            } else {
                std::fs::copy(entry.path(), &to).unwrap();
            }
        }
        git(dir.path(), &["init", "-q"]);
        git(dir.path(), &["add", "-A"]);
        git(dir.path(), &["commit", "-qm", "fixture"]);
        Fleet {
            dir,
            registry_root: format!("kiln-test.local/release-{unique}"),
            runner: fleet_support::static_runner(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn commit(&self, msg: &str) {
        git(self.path(), &["add", "-A"]);
        git(self.path(), &["commit", "-qm", msg]);
    }

    pub fn command(&self, docker_config: &Path, version: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.arg("-C")
            .arg(self.path())
            .args(args)
            .current_dir(self.path())
            .env("DOCKER_CONFIG", docker_config)
            .env("REGISTRY", &self.registry_root)
            .env("KILN_VERSION", version)
            .env(
                "KILN_SOURCE",
                "https://example.invalid/kiln-release-fixture",
            )
            .env("KILN_RUNNER", &self.runner);
        cmd
    }

    pub fn kiln(&self, docker_config: &Path, version: &str, args: &[&str]) -> Output {
        self.command(docker_config, version, args)
            .output()
            .expect("kiln runs")
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // Remove every image this test built (by its unique registry root).
        let out = Command::new("docker")
            .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .output();
        if let Ok(out) = out {
            let mine: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with(&self.registry_root))
                .map(str::to_string)
                .collect();
            if !mine.is_empty() {
                let _ = Command::new("docker").arg("rmi").args(&mine).output();
            }
        }
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn read_manifest(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub fn client(reg: &TestRegistry) -> Client {
    Client::with_credentials(
        &Registry::parse(&reg.host()).unwrap(),
        Some(Credentials::basic(USER, reg.password.clone())),
    )
    .unwrap()
}

/// The repositories a release of the fixture fleet publishes (under `prefix`).
pub fn expected_repositories(prefix: &str) -> BTreeSet<String> {
    [
        "core/base",
        "core/runner",
        "agents/oracle",
        "agents/null",
        "benchmarks/rel-shared",
        "benchmarks/rel-tasks-alpha",
        "benchmarks/rel-tasks-beta",
        "evals/rel-shared--oracle",
        "evals/rel-shared--null",
        "evals/rel-tasks-alpha--oracle",
        "evals/rel-tasks-alpha--null",
        "evals/rel-tasks-beta--oracle",
        "evals/rel-tasks-beta--null",
    ]
    .iter()
    .map(|r| {
        if prefix.is_empty() {
            r.to_string()
        } else {
            format!("{prefix}/{r}")
        }
    })
    .collect()
}
