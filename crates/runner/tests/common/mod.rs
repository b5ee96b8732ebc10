//! Builds a fake image root in a temp dir and runs the real runner binary on it.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub const RUNNER: &str = env!("CARGO_BIN_EXE_kiln-runner");

pub fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

pub fn write(path: &Path, text: &str, exec: bool) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    let mode = if exec { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Validates a result against docs/result.schema.json, panicking with every violation.
pub fn assert_schema_valid(result: &Value) {
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/result.schema.json");
    let schema: Value = serde_json::from_str(&fs::read_to_string(&schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema itself is valid");
    let errors: Vec<String> = validator
        .iter_errors(result)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "result.json violates the schema:\n{}\n{}",
        errors.join("\n"),
        serde_json::to_string_pretty(result).unwrap()
    );
}

pub struct Image {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    /// A uid no other test (or process) uses: the runner kills every process of it.
    pub uid: u32,
}

impl Image {
    pub fn new(uid: u32) -> Image {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        Image {
            _tmp: tmp,
            root,
            uid,
        }
    }

    pub fn task_dir(&self, id: &str) -> PathBuf {
        self.root.join("kiln/tasks").join(id)
    }

    pub fn task_file(&self, id: &str, rel: &str, text: &str, exec: bool) {
        write(&self.task_dir(id).join(rel), text, exec);
    }

    pub fn agent(&self, script: &str) {
        write(&self.root.join("opt/agent/run"), script, true);
    }

    pub fn output(&self) -> PathBuf {
        self.root.join("output")
    }

    pub fn workspace(&self) -> PathBuf {
        self.root.join("workspace")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(RUNNER);
        cmd.args(args)
            .arg("--unsafe-test-root")
            .arg(&self.root)
            .env_remove("KILN_TASK_ID");
        if is_root() {
            cmd.arg("--unsafe-test-agent-uid").arg(self.uid.to_string());
        } else {
            // Switching users needs root; the privilege tests say so and return early.
            cmd.arg("--no-drop-privileges");
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// result.json, checked against the schema and against the copy printed on stdout.
    pub fn result(&self, out: &Output) -> Value {
        let text = fs::read_to_string(self.output().join("result.json")).unwrap_or_else(|e| {
            panic!(
                "no result.json ({e}); stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_schema_valid(&value);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let printed =
            kiln_runner::result::extract(&stdout).expect("result printed between the markers");
        assert_eq!(
            serde_json::from_str::<Value>(printed).unwrap(),
            value,
            "stdout and result.json differ"
        );
        value
    }
}

pub fn check<'a>(result: &'a Value, id: &str) -> &'a Value {
    result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {result:#}"))
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}
