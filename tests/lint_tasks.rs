//! `kiln lint`'s task-quality rules: a Harbor dataset of small tasks, each written to
//! break one rule, reports each finding with its rule, file and line (`--json`); a task
//! allows a rule in `[metadata] kiln_lint_allow`; kiln's own benchmarks get the same
//! rules (and the shipped ones lint clean); the eval-containers fleet's Dockerfiles get
//! the image rules.

mod fleet_support;

use std::path::Path;

use fleet_support::*;
use serde_json::Value;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

const TASK_TOML: &str = "[task]\nname = \"t/NAME\"\n\n[agent]\ntimeout_sec = 60.0\nuser = \"agent\"\n\n[verifier]\ntimeout_sec = 60.0\n";
const DOCKERFILE: &str = "FROM ubuntu:24.04\nRUN useradd agent\nUSER agent\nWORKDIR /app\n";
const TEST_SH: &str = "#!/bin/bash\nif grep -q hello /app/hello.txt; then echo 1; else echo 0; fi > /logs/verifier/reward.txt\n";

/// A task that breaks no rule, with `changes` written over its files (`""` removes one).
fn task(root: &Path, name: &str, changes: &[(&str, &str)]) {
    let files = [
        ("task.toml", TASK_TOML.replace("NAME", name)),
        (
            "instruction.md",
            "Write `hello` to /app/hello.txt.\n".into(),
        ),
        ("environment/Dockerfile", DOCKERFILE.into()),
        ("tests/test.sh", TEST_SH.into()),
        (
            "solution/solve.sh",
            "#!/bin/bash\necho hello > /app/hello.txt\n".into(),
        ),
    ];
    for (rel, text) in files {
        write(&root.join(name), rel, &text);
    }
    for (rel, text) in changes {
        let p = root.join(name).join(rel);
        if text.is_empty() {
            std::fs::remove_file(p).unwrap();
        } else {
            write(&root.join(name), rel, text);
        }
    }
}

/// `kiln lint --json` as (rule, path, line), and the exit code.
fn findings(root: &Path) -> (Vec<(String, String, u64)>, Option<i32>, Value) {
    let out = kiln(root, &["lint", "--json"], &[]);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", transcript(&["lint", "--json"], &out)));
    let list = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect();
    (list, out.status.code(), v)
}

#[test]
fn a_clean_task_has_no_findings() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ds");
    task(&root, "clean", &[]);
    let (found, code, _) = findings(&root);
    assert_eq!((found, code), (vec![], Some(0)));
}

#[test]
fn each_rule_reports_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ds");
    task(&root, "a-clean", &[]);
    task(&root, "bad-toml", &[("task.toml", "[task\nname = 1\n")]);
    task(
        &root,
        "unknown-field",
        &[("task.toml", "[agent]\ntimeout_sec = 1.0\nusr = \"agent\"\n")],
    );
    task(&root, "no-instruction", &[("instruction.md", "")]);
    task(
        &root,
        "unpinned-image",
        &[(
            "environment/Dockerfile",
            "FROM ubuntu\nCOPY --from=ghcr.io/astral-sh/uv:latest /uv /bin/\nFROM ubuntu:24.04\nUSER agent\n",
        )],
    );
    task(
        &root,
        "prebuilt",
        &[
            ("environment/Dockerfile", ""),
            (
                "task.toml",
                "[agent]\ntimeout_sec = 60.0\nuser = \"agent\"\n[verifier]\ntimeout_sec = 60.0\n[environment]\ndocker_image = \"python:latest\"\n",
            ),
        ],
    );
    task(
        &root,
        "python",
        &[
            (
                "environment/Dockerfile",
                "FROM ubuntu:24.04\nRUN pip install --no-cache-dir requests numpy==2.0.2\nUSER agent\n",
            ),
            ("solution/solve.sh", "#!/bin/bash\nuv pip install --system rich\necho hello > /app/hello.txt\n"),
        ],
    );
    task(
        &root,
        "runtime",
        &[(
            "tests/test.sh",
            "#!/bin/bash\napt-get update\napt-get install -y curl\ncurl -LsSf https://astral.sh/uv/0.9.7/install.sh | sh\nuvx --with pytest==8.4.1 pytest /tests/test_state.py\n",
        )],
    );
    task(
        &root,
        "download",
        &[(
            "tests/test.sh",
            "#!/bin/bash\ncurl -fsSL -o /tmp/want.json https://example.com/want.json\ncurl -s http://localhost:8080/health\ncmp /tmp/want.json /app/hello.txt\n",
        )],
    );
    task(
        &root,
        "leak",
        &[
            ("tests/test_outputs.py", "assert open('/app/hello.txt').read() == 'hello'\n"),
            ("environment/helpers.py", "assert open('/app/hello.txt').read() == 'hello'\n"),
            ("environment/app/tests/test_app.py", "assert app() == 1\n"),
            (
                "environment/Dockerfile",
                "FROM ubuntu:24.04\nUSER agent\nCOPY app/ /app/\nCOPY helpers.py /app/\nCOPY answer /answer\n",
            ),
        ],
    );
    std::os::unix::fs::symlink("../solution/solve.sh", root.join("leak/environment/answer"))
        .unwrap();
    task(
        &root,
        "root",
        &[
            (
                "environment/Dockerfile",
                "FROM ubuntu:24.04\nWORKDIR /app\n",
            ),
            (
                "task.toml",
                "[agent]\ntimeout_sec = 60.0\n[verifier]\ntimeout_sec = 60.0\n",
            ),
        ],
    );
    task(
        &root,
        "root-user",
        &[(
            "task.toml",
            "[agent]\ntimeout_sec = 60.0\nuser = \"root\"\n[verifier]\ntimeout_sec = 60.0\n",
        )],
    );
    task(
        &root,
        "root-allowed",
        &[
            ("environment/Dockerfile", "FROM ubuntu:24.04\n"),
            (
                "task.toml",
                "[metadata]\nkiln_lint_allow = [\"root-agent\"]\n[agent]\ntimeout_sec = 60.0\n[verifier]\ntimeout_sec = 60.0\n",
            ),
        ],
    );
    task(
        &root,
        "bad-allow",
        &[(
            "task.toml",
            "[metadata]\nkiln_lint_allow = [\"root\"]\n[agent]\ntimeout_sec = 60.0\nuser = \"agent\"\n[verifier]\ntimeout_sec = 60.0\n",
        )],
    );
    task(
        &root,
        "mention",
        &[(
            "tests/test.sh",
            "#!/bin/bash\nset -e\ntest -f /app/hello.txt\npython3 -c 'import json; json.load(open(\"/app/report.json\"))'\necho x > /app/scratch.txt\n",
        )],
    );
    task(
        &root,
        "no-timeout",
        &[("task.toml", "[agent]\nuser = \"agent\"\n")],
    );

    let (found, code, v) = findings(&root);
    assert_eq!(code, Some(1));
    let want: Vec<(&str, &str, u64)> = vec![
        ("invalid-task-config", "bad-allow/task.toml", 2),
        ("invalid-task-config", "bad-toml/task.toml", 1),
        ("verifier-network-download", "download/tests/test.sh", 2),
        ("agent-image-test-leak", "leak/environment/Dockerfile", 4),
        ("agent-image-test-leak", "leak/environment/Dockerfile", 5),
        ("file-reference-mentioned", "mention/tests/test.sh", 4),
        ("invalid-task-files", "no-instruction/task.toml", 1),
        ("missing-timeout", "no-timeout/task.toml", 1),
        ("missing-timeout", "no-timeout/task.toml", 1),
        ("unpinned-image", "prebuilt/task.toml", 7),
        (
            "unpinned-python-dependency",
            "python/environment/Dockerfile",
            2,
        ),
        ("unpinned-python-dependency", "python/solution/solve.sh", 2),
        ("root-agent", "root/task.toml", 1),
        ("root-agent", "root-user/task.toml", 3),
        ("verifier-runtime-install", "runtime/tests/test.sh", 3),
        ("verifier-network-download", "runtime/tests/test.sh", 4),
        ("verifier-runtime-install", "runtime/tests/test.sh", 4),
        ("verifier-runtime-install", "runtime/tests/test.sh", 5),
        ("unknown-config-field", "unknown-field/task.toml", 3),
        ("unpinned-image", "unpinned-image/environment/Dockerfile", 1),
        ("unpinned-image", "unpinned-image/environment/Dockerfile", 2),
    ];
    let want: Vec<(String, String, u64)> = want
        .into_iter()
        .map(|(r, p, l)| (r.to_string(), p.to_string(), l))
        .collect();
    assert_eq!(found, want, "{v:#}");
    // Every finding is {rule, path, line, message} and nothing else.
    for f in v.as_array().unwrap() {
        let mut keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["line", "message", "path", "rule"]);
        assert!(!f["message"].as_str().unwrap().is_empty());
    }
    let message = |rule: &str, path: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == rule && f["path"] == path)
            .map(|f| f["message"].as_str().unwrap().to_string())
            .unwrap()
    };
    let leak = message("agent-image-test-leak", "leak/environment/Dockerfile");
    assert!(
        leak.contains("byte-identical to leak/tests/test_outputs.py"),
        "{leak}"
    );
    assert!(message("unknown-config-field", "unknown-field/task.toml").contains("usr"));
    assert!(
        message("file-reference-mentioned", "mention/tests/test.sh").contains("/app/report.json")
    );
    assert!(message(
        "unpinned-python-dependency",
        "python/environment/Dockerfile"
    )
    .contains("requests"));

    // The text output: one `file:line: message [rule]` per finding.
    let out = kiln(&root, &["lint"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), found.len(), "{text}");
    assert!(
        text.lines().any(
            |l| l.starts_with("root/task.toml:1: the agent runs as root")
                && l.ends_with(" [root-agent]")
        ),
        "{text}"
    );
}

#[test]
fn harbors_own_ignore_list_is_honoured_for_the_rules_kiln_shares() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ds");
    task(
        &root,
        "ignored",
        &[
            ("environment/Dockerfile", "FROM ubuntu:24.04\n"),
            (
                "task.toml",
                "[metadata.harbor.lint]\nignore = [\"root-agent\", \"shared-verifier\"]\n[agent]\ntimeout_sec = 60.0\n[verifier]\ntimeout_sec = 60.0\n",
            ),
        ],
    );
    let (found, code, _) = findings(&root);
    assert_eq!((found, code), (vec![], Some(0)));
}

#[test]
fn ignore_leaves_a_rule_out_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ds");
    let as_root = [
        ("environment/Dockerfile", "FROM ubuntu:24.04\n"),
        (
            "task.toml",
            "[agent]\ntimeout_sec = 60.0\n[verifier]\ntimeout_sec = 60.0\n",
        ),
    ];
    task(&root, "one", &as_root);
    task(&root, "two", &as_root);
    let (found, code, _) = findings(&root);
    assert_eq!((found.len(), code), (2, Some(1)));
    let out = kiln(&root, &["lint", "--ignore", "root-agent"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        transcript(&["lint"], &out)
    );
    // An id kiln does not know is refused, naming the ones it does.
    let out = kiln(&root, &["lint", "--ignore", "root-agnet"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("root-agent"));
}

#[test]
fn kilns_own_benchmarks_get_the_task_rules() {
    let dir = fleet_copy();
    let root = dir.path();
    let task_dir = root.join("benchmarks/terminal-lite/tasks/count-lines");
    let scenario = std::fs::read_to_string(task_dir.join("scenario.toml")).unwrap();
    std::fs::write(
        task_dir.join("scenario.toml"),
        scenario.replace(
            "mode = \"reward\"\ntimeout_sec = 60\n",
            "mode = \"reward\"\n",
        ),
    )
    .unwrap();
    let test_sh = task_dir.join("grading/test.sh");
    let grader = std::fs::read_to_string(&test_sh).unwrap();
    let grader_lines = grader.lines().count() as u64;
    std::fs::write(
        &test_sh,
        format!("{grader}pip install requests\ncat \"$WORKSPACE/summary.txt\"\n"),
    )
    .unwrap();
    // The solution, byte for byte, among the files the image copies; graders outside /kiln.
    std::fs::copy(
        task_dir.join("solution/solve.sh"),
        task_dir.join("environment/corpus/notes/solve.txt"),
    )
    .unwrap();
    let df = task_dir.join("environment/Dockerfile");
    let text = std::fs::read_to_string(&df).unwrap();
    let df_lines = text.lines().count() as u64;
    std::fs::write(
        &df,
        format!("{text}COPY grading/test.sh /usr/local/bin/check\n"),
    )
    .unwrap();
    // Allowed in another task's scenario.toml.
    let other = root.join("benchmarks/terminal-lite/tasks/parse-log/scenario.toml");
    let s = std::fs::read_to_string(&other).unwrap();
    let s = s.replacen("[agent]\ntimeout_sec = 600\n", "[agent]\n", 1);
    let s = s.replacen(
        "[metadata]\n",
        "[metadata]\nkiln_lint_allow = [\"missing-timeout\"]\n",
        1,
    );
    std::fs::write(&other, s).unwrap();

    // What the runner would refuse: a typo'd key (line 10), and, in a valid file, a value.
    let fix = root.join("benchmarks/terminal-lite/tasks/Fix.Config/scenario.toml");
    let s = std::fs::read_to_string(&fix).unwrap();
    std::fs::write(
        &fix,
        s.replacen("timeout_sec = 600\n", "timout_sec = 600\n", 1),
    )
    .unwrap();
    let parse = root.join("benchmarks/terminal-lite/tasks/parse-log/scenario.toml");
    let s = std::fs::read_to_string(&parse).unwrap();
    std::fs::write(
        &parse,
        s.replacen("id = \"parse-log\"", "id = \"parse-logs\"", 1),
    )
    .unwrap();

    let (found, code, v) = findings(root);
    assert_eq!(code, Some(1), "{v:#}");
    let at = |rule: &str, path: &str| -> Vec<u64> {
        found
            .iter()
            .filter(|(r, p, _)| r == rule && p == path)
            .map(|(_, _, l)| *l)
            .collect()
    };
    let grading = "benchmarks/terminal-lite/tasks/count-lines/grading/test.sh";
    let dockerfile = "benchmarks/terminal-lite/tasks/count-lines/environment/Dockerfile";
    let scenario = "benchmarks/terminal-lite/tasks/count-lines/scenario.toml";
    assert_eq!(
        at("unpinned-python-dependency", grading),
        [grader_lines + 1]
    );
    assert_eq!(at("verifier-runtime-install", grading), [grader_lines + 1]);
    assert_eq!(at("file-reference-mentioned", grading), [grader_lines + 2]);
    assert_eq!(at("missing-timeout", scenario).len(), 1);
    let leaks = at("agent-image-test-leak", dockerfile);
    assert_eq!(leaks.len(), 2, "{v:#}");
    assert!(leaks.contains(&(df_lines + 1)), "{v:#}");
    assert_eq!(
        at(
            "unknown-config-field",
            "benchmarks/terminal-lite/tasks/Fix.Config/scenario.toml"
        ),
        [10]
    );
    assert_eq!(
        at(
            "invalid-task-config",
            "benchmarks/terminal-lite/tasks/parse-log/scenario.toml"
        ),
        [2]
    );
    assert_eq!(found.len(), 8, "{v:#}");
}

#[test]
fn the_shipped_benchmarks_lint_clean_as_json() {
    let (found, code, _) = findings(&manifest_dir());
    assert_eq!((found, code), (vec![], Some(0)));
}

#[test]
fn eval_containers_dockerfiles_get_the_image_rules() {
    let upstream = manifest_dir().join("../shared/fleets/eval-containers");
    let (found, _, v) = findings(&upstream);
    let has = |rule: &str, path: &str, line: u64| {
        found
            .iter()
            .any(|(r, p, l)| r == rule && p == path && *l == line)
    };
    assert!(
        has(
            "unpinned-python-dependency",
            "containers/core/llm-bridge/Dockerfile",
            10
        ),
        "{v:#}"
    );
    assert!(
        has(
            "unpinned-image",
            "containers/benchmarks/appworld/Dockerfile",
            10
        ),
        "{v:#}"
    );
    // In-fleet images (`${REGISTRY}/…:latest`) are the fleet's own builds, not pulls.
    assert!(
        !found
            .iter()
            .any(|(r, p, _)| r == "unpinned-image" && p.contains("/agents/")),
        "{v:#}"
    );
}
