//! Harbor datasets (the Terminal-Bench 2.0 task format) opened as a fleet: Harbor's own
//! example tasks listed and planned; bad tasks left out with their file named while the
//! rest lists and builds; and, with `KILN_TEST_DOCKER=1`, the example tasks that can run
//! here built and validated for real (oracle passes, null fails) on the Docker Engine,
//! with `FROM ubuntu:24.04` mapped to the local Debian base. `KILN_TEST_BUILDKIT=1` also
//! builds one on the remote BuildKit builder.

mod fleet_support;
mod registry_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fleet_support::copy_tree;
use serde_json::Value;

const BASE: &str = "--base=ubuntu:24.04=debian:bookworm-slim";

/// The tests that run containers, one at a time: each checks that no trial container
/// or network of kiln's is left, which another test's running trial would break.
static ENGINE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn engine() -> std::sync::MutexGuard<'static, ()> {
    ENGINE.lock().unwrap_or_else(|e| e.into_inner())
}

fn examples() -> PathBuf {
    fleet_support::manifest_dir().join("../shared/fleets/harbor/examples/tasks")
}

fn gate(var: &str) -> bool {
    if std::env::var(var).as_deref() == Ok("1") {
        return true;
    }
    eprintln!("skipped: set {var}=1 to run this test");
    false
}

/// `kiln -C DIR ARGS` with this environment plus a private cache.
fn kiln(dir: &Path, cache: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.arg("-C")
        .arg(dir)
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .env_remove("REGISTRY")
        .env_remove("TAG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running kiln")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A dataset of copies of the named example tasks (kiln writes its state under the
/// dataset: never into ../shared).
fn dataset(tasks: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for t in tasks {
        copy_tree(&examples().join(t), &dir.path().join("set").join(t));
    }
    dir
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn the_examples_list_as_one_per_task_benchmark() {
    let cache = tempfile::tempdir().unwrap();
    let out = kiln(
        &examples(),
        cache.path(),
        &["list", "tasks", "tasks", "--json"],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let rows: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    // Every task.toml of the examples (nested matrices included) is one task.
    let found = walkdir::WalkDir::new(examples())
        .into_iter()
        .filter(|e| e.as_ref().unwrap().file_name() == "task.toml")
        .count();
    assert_eq!(ids.len(), found);
    for id in [
        "hello-user",
        "verifier-mode-matrix.shared-default",
        "network-policy-matrix.static.e-allowlist",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let out = kiln(
        &examples(),
        cache.path(),
        &["--layout", "harbor", "list", "benchmarks", "--json"],
        &[],
    );
    let rows: Vec<Value> = serde_json::from_str(&text(&out).0).unwrap();
    assert_eq!(rows[0]["env"], "per-task");
    assert_eq!(rows[0]["labels"]["eval.task.format"], "harbor");
}

#[test]
fn bad_tasks_are_left_out_naming_their_file_and_the_rest_still_builds() {
    let d = dataset(&["hello-user", "hello-workdir"]);
    let root = d.path().join("set");
    let cache = tempfile::tempdir().unwrap();
    // Each broken in one way.
    copy_tree(&root.join("hello-user"), &root.join("not-toml"));
    write(&root.join("not-toml/task.toml"), "[task\nname = 1\n");
    copy_tree(&root.join("hello-user"), &root.join("new-schema"));
    write(
        &root.join("new-schema/task.toml"),
        "schema_version = \"9.9\"\n",
    );
    copy_tree(&root.join("hello-user"), &root.join("no-tests"));
    std::fs::remove_file(root.join("no-tests/tests/test.sh")).unwrap();
    copy_tree(&root.join("hello-user"), &root.join("same-name"));
    copy_tree(&root.join("hello-user"), &root.join("Bad Name"));
    copy_tree(&root.join("hello-user"), &root.join("typo"));
    let toml = std::fs::read_to_string(root.join("hello-user/task.toml")).unwrap();
    write(
        &root.join("typo/task.toml"),
        &toml
            .replace("[agent]\n", "[agent]\nusr = \"x\"\n")
            .replace("name = \"harbor/hello-user\"", "name = \"harbor/typo\""),
    );

    let out = kiln(
        &root,
        cache.path(),
        &["list", "tasks", "set", "--json"],
        &[],
    );
    let (stdout, stderr) = text(&out);
    let rows: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["hello-user", "hello-workdir"], "{stderr}");
    assert!(!out.status.success(), "problems are an error: {stderr}");
    for needle in [
        "not-toml/task.toml:1:",
        "new-schema/task.toml: schema_version \"9.9\"",
        "no-tests/task.toml: left out: no no-tests/tests/test.sh",
        "same-name/task.toml: left out: task name \"harbor/hello-user\" is already the name of hello-user/task.toml",
        "Bad Name/task.toml: left out",
        "typo/task.toml:",
        "usr",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in:\n{stderr}");
    }

    let out = kiln(
        &root,
        cache.path(),
        &[
            "build",
            "benchmark",
            "set",
            "--dry-run",
            "--backend",
            "engine",
            BASE,
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let builds: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("docker build"))
        .collect();
    assert_eq!(builds.len(), 2, "{stdout}");
    assert!(
        builds[0].contains("-t kiln.local/benchmarks/set-hello-user:dev"),
        "{stdout}"
    );
    assert!(
        builds[0].contains("--label eval.task.id=hello-user"),
        "{stdout}"
    );
    // The base map rewrote FROM in kiln's cache, never in the task.
    assert!(
        builds[0].contains(&cache.path().display().to_string()),
        "{stdout}"
    );
    assert!(
        std::fs::read_to_string(root.join("hello-user/environment/Dockerfile"))
            .unwrap()
            .contains("FROM ubuntu:24.04")
    );

    let out = kiln(
        &root,
        cache.path(),
        &[
            "build",
            "benchmark",
            "set",
            "--task-id",
            "nope",
            "--dry-run",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out).1);
    assert!(text(&out).1.contains("\"nope\""), "{}", text(&out).1);
}

#[test]
fn tasks_with_the_same_dockerfile_share_one_rewritten_file() {
    let d = dataset(&["hello-world"]);
    let root = d.path().join("set");
    let toml = std::fs::read_to_string(root.join("hello-world/task.toml")).unwrap();
    for t in ["copy-1", "copy-2"] {
        copy_tree(&root.join("hello-world"), &root.join(t));
        write(
            &root.join(t).join("task.toml"),
            &toml.replace("harbor/hello-world", &format!("harbor/{t}")),
        );
    }
    // A task already on the local base needs no rewritten file.
    write(
        &root.join("copy-2/environment/Dockerfile"),
        "FROM debian:bookworm-slim\nWORKDIR /app\n",
    );
    let cache = tempfile::tempdir().unwrap();
    let dry_run = || {
        let args = [
            "build",
            "benchmark",
            "set",
            "--dry-run",
            "--backend",
            "engine",
            BASE,
        ];
        let out = kiln(&root, cache.path(), &args, &[]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        let files: Vec<String> = stdout
            .lines()
            .filter(|l| l.starts_with("docker build"))
            .map(|l| {
                l.split(" -f ")
                    .nth(1)
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        files
    };
    let files = dry_run();
    assert_eq!(files.len(), 3, "{files:?}");
    // copy-1 and hello-world: one file; copy-2: its own Dockerfile, in its context.
    assert_eq!(files[0], files[2], "{files:?}");
    assert_eq!(files[1], "copy-2/environment/Dockerfile", "{files:?}");
    let shared = Path::new(&files[0]);
    assert!(shared.starts_with(cache.path()), "{files:?}");
    assert_eq!(
        std::fs::read_to_string(shared).unwrap(),
        "FROM debian:bookworm-slim\n\nWORKDIR /app"
    );
    let written: Vec<_> = walkdir::WalkDir::new(cache.path())
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() == "Dockerfile")
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    // A second plan names the same file and leaves it as it was.
    let mtime = || std::fs::metadata(shared).unwrap().modified().unwrap();
    let before = mtime();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(dry_run(), files);
    assert_eq!(mtime(), before);
}

/// A task of kiln's own making: the solution checks that the tests are not there yet
/// and writes the solution env's value (from kiln's environment) where the tests look.
fn hidden_tests_task(root: &Path) {
    let t = root.join("hidden-tests");
    write(
        &t.join("task.toml"),
        "schema_version = \"1.4\"\n[task]\nname = \"kiln/hidden-tests\"\n[agent]\ntimeout_sec = 60\n\
         [verifier]\ntimeout_sec = 60\n[solution.env]\nANSWER = \"${KILN_TEST_ANSWER}\"\n\
         [environment]\nnetwork_mode = \"no-network\"\nworkdir = \"/app\"\n",
    );
    write(
        &t.join("instruction.md"),
        "Write the answer to /app/answer.txt.\n",
    );
    write(
        &t.join("environment/Dockerfile"),
        "FROM debian:bookworm-slim\nRUN mkdir -p /app\n",
    );
    write(
        &t.join("solution/solve.sh"),
        "#!/bin/bash\nif [ -e /tests ]; then echo leaked > /app/answer.txt; exit 0; fi\n\
         echo \"$ANSWER\" > /app/answer.txt\n",
    );
    write(
        &t.join("tests/test.sh"),
        "#!/bin/bash\nif [ \"$(cat /app/answer.txt 2>/dev/null)\" = 42-secret ]; then echo 1; else echo 0; fi \
         > /logs/verifier/reward.txt\n",
    );
}

#[test]
fn the_examples_that_run_here_validate_on_the_engine() {
    if !gate("KILN_TEST_DOCKER") {
        return;
    }
    let _engine = engine();
    let tasks = [
        "hello-user",
        "hello-workdir",
        "hello-multi-step-simple",
        "separate-verifier-environment",
        "verifier-mode-matrix/shared-default",
        "verifier-mode-matrix/separate-explicit",
        "verifier-mode-matrix/separate-implicit",
        "verifier-mode-matrix/separate-reuse-env",
        "hello-cuda",
        "hello-world-bat",
    ];
    let d = dataset(&tasks);
    let root = d.path().join("set");
    hidden_tests_task(&root);
    let cache = tempfile::tempdir().unwrap();
    let out = kiln(
        &root,
        cache.path(),
        &["validate", BASE],
        &[("KILN_TEST_ANSWER", "42-secret")],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for id in [
        "hello-user",
        "hello-workdir",
        "hello-multi-step-simple",
        "separate-verifier-environment",
        "verifier-mode-matrix.shared-default",
        "verifier-mode-matrix.separate-explicit",
        "verifier-mode-matrix.separate-implicit",
        "verifier-mode-matrix.separate-reuse-env",
        "hidden-tests",
    ] {
        assert!(
            stdout.contains(&format!("{id}: valid (oracle 1, null 0)")),
            "{id} not valid:\n{stdout}\n{stderr}"
        );
    }
    assert!(
        stdout.contains("hello-cuda: cannot run here: environment.gpus = 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("hello-world-bat: cannot run here: environment.os = \"windows\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("set: valid (9 of 9 task(s) valid, 2 cannot run here)"),
        "{stdout}"
    );
    // The solution env's value reached the container, never a printed line.
    assert!(!stdout.contains("42-secret") && !stderr.contains("42-secret"));
    // Every trial left a result.json kiln report reads, and no container is left.
    let results = walkdir::WalkDir::new(cache.path())
        .into_iter()
        .filter(|e| e.as_ref().unwrap().file_name() == "result.json")
        .count();
    assert_eq!(results, 18);
    let ps = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            "name=kiln-harbor-",
            "--format",
            "{{.Names}}",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ps.stdout).trim(), "");

    // A second validation finds every image up to date and answers from the record
    // (the dataset's .kiln/validation.json), without a trial.
    let out = kiln(
        &root,
        cache.path(),
        &["validate", BASE, "--task-id", "hello-user"],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("0 built, 1 up to date"), "{stderr}");
    assert!(
        stdout.contains("hello-user: valid (recorded: oracle 1, null 0)"),
        "{stdout}"
    );

    // A verifier that writes no reward fails the trial: never a pass.
    write(
        &root.join("hello-user/tests/test.sh"),
        "#!/bin/bash\ntrue\n",
    );
    let out = kiln(
        &root,
        cache.path(),
        &["validate", BASE, "--task-id", "hello-user"],
        &[],
    );
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("hello-user: NOT VALID: oracle got no reward"),
        "{stdout}"
    );
    assert!(stdout.contains("wrote no reward"), "{stdout}");
}

#[test]
fn a_task_builds_on_the_remote_buildkit_builder() {
    if !gate("KILN_TEST_BUILDKIT") {
        return;
    }
    let d = dataset(&["hello-workdir"]);
    let root = d.path().join("set");
    let cache = tempfile::tempdir().unwrap();
    let out = kiln(
        &root,
        cache.path(),
        &[
            "build",
            "benchmark",
            "set",
            "--backend",
            "bake",
            "--builder",
            "kiln-remote",
            BASE,
            "--force",
            "--progress",
            "plain",
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("bake backend: 1 built"), "{stderr}");
    let inspect = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{index .Config.Labels \"eval.task.id\"}}",
            "kiln.local/benchmarks/set-hello-workdir:dev",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&inspect.stdout).trim(),
        "hello-workdir"
    );
}

/// `kiln shell` in a Harbor task through a real terminal: `cmd` typed, its output read.
fn shell_session(root: &Path, cache: &Path, extra: &str, cmd: &str) -> String {
    let line = format!(
        "{} -C {} shell set --task-id hello {BASE} {extra}",
        env!("CARGO_BIN_EXE_kiln"),
        root.display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("XDG_CACHE_HOME", cache)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, format!("{cmd}; exit\n").as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_new_task_validates_and_a_shell_sees_the_tests_only_when_asked() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("set");
    std::fs::create_dir_all(&root).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = kiln(
        &root,
        cache.path(),
        &["--layout", "harbor", "new", "task", "set", "hello"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    for f in [
        "task.toml",
        "instruction.md",
        "environment/Dockerfile",
        "solution/solve.sh",
        "tests/test.sh",
    ] {
        assert!(root.join("hello").join(f).is_file(), "{f}");
    }
    // As written it lints clean (the task-quality rules included).
    let out = kiln(&root, cache.path(), &["lint"], &[]);
    assert!(out.status.success(), "{}{}", text(&out).0, text(&out).1);
    // Refused, nothing written: an existing task, an unsafe id, `new benchmark` here.
    for (args, needle) in [
        (&["new", "task", "set", "hello"][..], "already exists"),
        (&["new", "task", "set", "a;b"][..], "metacharacter"),
        (&["new", "benchmark", "other"][..], "one benchmark"),
    ] {
        let out = kiln(&root, cache.path(), args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out).1.contains(needle), "{}", text(&out).1);
    }
    let out = kiln(
        &root,
        cache.path(),
        &["shell", "set", "--task-id", "nope", "--dry-run"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("\"nope\""), "{}", text(&out).1);
    let out = kiln(
        &root,
        cache.path(),
        &[
            "shell",
            "set",
            "--task-id",
            "hello",
            "--with-tests",
            "--dry-run",
        ],
        &[],
    );
    let (stdout, _) = text(&out);
    assert!(
        stdout.starts_with("docker run --rm -it --name kiln-shell-"),
        "{stdout}"
    );
    assert!(
        stdout.contains("--network none -w /app -u agent --entrypoint /bin/sh"),
        "{stdout}"
    );
    assert!(stdout.contains("target=/tests,readonly"), "{stdout}");
    // The container's name after `kiln-shell-<pid>-`: what runs in it.
    let name = stdout
        .split_whitespace()
        .skip_while(|w| *w != "--name")
        .nth(1)
        .expect("a container name");
    let shell_rest = name
        .trim_start_matches("kiln-shell-")
        .split_once('-')
        .expect("kiln-shell-<pid>-<what>")
        .1
        .to_string();
    if !gate("KILN_TEST_DOCKER") {
        return;
    }
    let _engine = engine();
    let out = kiln(&root, cache.path(), &["validate", BASE], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("hello: valid (oracle 1, null 0)"),
        "{stdout}"
    );

    let seen = shell_session(
        &root,
        cache.path(),
        "--with-tests",
        "whoami; pwd; ls /tests",
    );
    assert!(seen.contains("test.sh"), "{seen}");
    assert!(seen.contains("agent") && seen.contains("/app"), "{seen}");
    let seen = shell_session(&root, cache.path(), "", "ls /tests || echo no-tests-here");
    assert!(
        seen.contains("no-tests-here") && !seen.contains("test.sh\r\n"),
        "{seen}"
    );
    // No shell container of this task is left (other tests' shells may be running).
    let ps = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            "name=kiln-shell-",
            "--format",
            "{{.Names}}",
        ])
        .output()
        .unwrap();
    let left: Vec<String> = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|n| n.ends_with(&format!("-{shell_rest}")))
        .map(str::to_string)
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// An allowlist task whose solution fetches `http://$TARGET/token.txt` through the
/// proxy kiln gives it, and tries the same host directly; the tests grade `expect`.
fn egress_task(root: &Path, id: &str, allowed: &str, expect_token: bool) {
    let t = root.join(id);
    write(
        &t.join("task.toml"),
        &format!(
            "schema_version = \"1.4\"\n[task]\nname = \"kiln/{id}\"\n[agent]\ntimeout_sec = 60\n\
             [verifier]\ntimeout_sec = 60\n[solution.env]\nTARGET = \"${{KILN_TEST_TARGET}}\"\n\
             [environment]\nnetwork_mode = \"allowlist\"\nallowed_hosts = [\"{allowed}\"]\n"
        ),
    );
    write(
        &t.join("instruction.md"),
        "Fetch /token.txt into /app/proxied.txt.\n",
    );
    write(
        &t.join("environment/Dockerfile"),
        "FROM debian:bookworm-slim\nRUN mkdir -p /app\n",
    );
    write(
        &t.join("solution/solve.sh"),
        "#!/bin/bash\nset -u\nproxy=${HTTP_PROXY#http://}\n\
         exec 3<>\"/dev/tcp/${proxy%:*}/${proxy##*:}\"\n\
         printf 'GET http://%s/token.txt HTTP/1.0\\r\\n\\r\\n' \"$TARGET\" >&3\n\
         cat <&3 > /app/proxied.txt\n\
         if timeout 3 bash -c \"exec 3<>/dev/tcp/${TARGET%:*}/${TARGET##*:}\" 2>/dev/null; then \
         echo reachable > /app/direct.txt; else echo blocked > /app/direct.txt; fi\n",
    );
    let check = if expect_token {
        "grep -q kiln-egress-token /app/proxied.txt"
    } else {
        "grep -q ' 403 ' /app/proxied.txt && ! grep -q kiln-egress-token /app/proxied.txt"
    };
    write(
        &t.join("tests/test.sh"),
        &format!(
            "#!/bin/bash\nif {check} && [ \"$(cat /app/direct.txt 2>/dev/null)\" = blocked ]; \
             then echo 1; else echo 0; fi > /logs/verifier/reward.txt\n"
        ),
    );
}

/// A web server in a network namespace of the test's own (never on the host's own
/// addresses), stopped on drop.
struct NsServer {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for NsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ns_server(ns: &registry_support::tls::Netns) -> NsServer {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token.txt"), "kiln-egress-token\n").unwrap();
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "python3",
            "-m",
            "http.server",
            "8080",
            "--bind",
            &ns.ip,
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    NsServer { child, _dir: dir }
}

#[test]
fn an_allowlist_lets_out_only_its_hosts_through_the_egress_proxy() {
    if !gate("KILN_TEST_DOCKER") {
        return;
    }
    if unsafe { libc::geteuid() } != 0 || which::which("ip").is_err() {
        eprintln!("skipped: network namespaces need root and iproute2's `ip`");
        return;
    }
    let _engine = engine();
    let ns = registry_support::tls::Netns::create("egress");
    let _server = ns_server(&ns);
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("set");
    egress_task(&root, "allowed", &ns.ip, true);
    egress_task(&root, "denied", "allowed.invalid", false);
    let cache = tempfile::tempdir().unwrap();
    let target = format!("{}:8080", ns.ip);
    let out = kiln(
        &root,
        cache.path(),
        &["validate"],
        &[("KILN_TEST_TARGET", &target)],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("allowed: valid (oracle 1, null 0)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("denied: valid (oracle 1, null 0)"),
        "{stdout}"
    );
    let left = Command::new("docker")
        .args([
            "network",
            "ls",
            "--filter",
            "name=kiln-harbor-",
            "--format",
            "{{.Name}}",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "");
}
