//! `kiln release` of a Harbor dataset against a real registry (Debian's
//! `docker-registry`, htpasswd basic auth, on a free 127.0.0.1 port, logged into through
//! a `DOCKER_CONFIG` written the way `docker login` writes it), with the real engine.
//! The dataset is a git repository of copies of Harbor's `hello-user` and
//! `hello-workdir` examples and a third task whose solution is wrong, with
//! `FROM ubuntu:24.04` mapped to the local Debian base (nothing can be pulled here).
//! Opt-in: `KILN_TEST_DOCKER=1`.

mod fleet_support;
mod registry_support;
mod release_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use registry_support::TestRegistry;
use release_support::{client, git, read_manifest, text};

const BASE: &str = "--base=ubuntu:24.04=debian:bookworm-slim";
const VERSION: &str = "v1.0.0";
const TASKS: [&str; 3] = ["hello-broken", "hello-user", "hello-workdir"];

/// A dataset (`<tmp>/hrel`, a git repository) and the private cache kiln writes to.
struct Dataset {
    dir: tempfile::TempDir,
    cache: tempfile::TempDir,
    /// The unique registry root of the images this test builds (`REGISTRY`).
    root: String,
}

impl Dataset {
    fn new(unique: &str) -> Dataset {
        let examples = fleet_support::manifest_dir().join("../shared/fleets/harbor/examples/tasks");
        let dir = tempfile::tempdir().unwrap();
        let set = dir.path().join("hrel");
        for t in ["hello-user", "hello-workdir"] {
            fleet_support::copy_tree(&examples.join(t), &set.join(t));
        }
        // A comment in the table the pin goes into, which the pin must keep.
        let workdir_toml = set.join("hello-workdir/task.toml");
        let text = std::fs::read_to_string(&workdir_toml).unwrap();
        std::fs::write(
            &workdir_toml,
            text.replace(
                "[environment]\n",
                "[environment]\n# The machine each trial gets (kiln keeps this comment).\n",
            )
            // Its agent runs as root, on purpose (lint's root-agent): allowed for this task.
            .replace(
                "[metadata]\n",
                "[metadata]\nkiln_lint_allow = [\"root-agent\"]\n",
            ),
        )
        .unwrap();
        // hello-broken: hello-user with a wrong solution (oracle fails: not valid).
        fleet_support::copy_tree(&examples.join("hello-user"), &set.join("hello-broken"));
        let toml = set.join("hello-broken/task.toml");
        let text = std::fs::read_to_string(&toml).unwrap();
        std::fs::write(
            &toml,
            text.replace("harbor/hello-user", "harbor/hello-broken"),
        )
        .unwrap();
        std::fs::write(
            set.join("hello-broken/solution/solve.sh"),
            "#!/bin/bash\necho nothing > /app/hello.txt\n",
        )
        .unwrap();
        git(&set, &["init", "-q"]);
        git(&set, &["add", "-A"]);
        git(&set, &["commit", "-qm", "dataset"]);
        Dataset {
            dir,
            cache: tempfile::tempdir().unwrap(),
            root: format!("kiln-test.local/harbor-{unique}"),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("hrel")
    }

    fn kiln(&self, docker_config: &Path, args: &[&str]) -> Output {
        let start = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("-C")
            .arg(self.path())
            .args(args)
            .current_dir(self.path())
            .env("DOCKER_CONFIG", docker_config)
            .env("XDG_CACHE_HOME", self.cache.path())
            .env("REGISTRY", &self.root)
            .env_remove("TAG")
            .env("KILN_VERSION", VERSION)
            .env("KILN_SOURCE", "https://example.invalid/kiln-harbor-fixture")
            .output()
            .expect("kiln runs");
        eprintln!(
            "timing: kiln {} took {:.1?}",
            args.join(" "),
            start.elapsed()
        );
        out
    }

    /// Every task.toml's bytes.
    fn task_files(&self) -> BTreeMap<&'static str, String> {
        TASKS
            .iter()
            .map(|t| {
                let f = self.path().join(t).join("task.toml");
                (*t, std::fs::read_to_string(f).unwrap())
            })
            .collect()
    }

    /// The image id of the local environment image of `task`.
    fn local_id(&self, task: &str) -> String {
        let out = Command::new("docker")
            .args(["image", "inspect", "-f", "{{.Id}}"])
            .arg(format!("{}/benchmarks/hrel-{task}:dev", self.root))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Dataset {
    fn drop(&mut self) {
        // Remove every image this test built (by its unique registry root).
        let out = Command::new("docker")
            .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .output();
        if let Ok(out) = out {
            let mine: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with(&self.root))
                .map(str::to_string)
                .collect();
            if !mine.is_empty() {
                let _ = Command::new("docker").arg("rmi").args(&mine).output();
            }
        }
    }
}

/// The manifest digest `skopeo inspect` reads for `reference` (a second client).
fn skopeo_digest(reg: &TestRegistry, reference: &str) -> String {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--creds"])
        .arg(format!("{}:{}", registry_support::USER, reg.password))
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo runs (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["Digest"].as_str().unwrap().to_string()
}

/// The whole story on one dataset and one registry, in order (the images are built
/// once): the release publishes the two valid tasks and not the broken one; `--pin
/// --dry-run` prints the edits and writes nothing; a registry that cannot be reached
/// or refuses the login is a clear error and nothing is pinned; `--pin` writes the
/// registry's digests in place; a second `--pin` release changes nothing anywhere.
#[test]
fn a_harbor_dataset_is_published_pinned_and_re_released_as_a_no_op() {
    if !registry_support::gate() {
        return;
    }
    let reg = TestRegistry::start();
    let ds = Dataset::new(&reg.port.to_string());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let conf = reg.docker_config();
    let host = reg.host();
    let manifest = ds.path().join("release-manifest.json");
    let mut outputs = String::new();
    let original = ds.task_files();
    let release = ["release", "--registry", host.as_str(), BASE, "--jobs", "2"];

    // 1. The release: both valid tasks published, the broken one blocked by validation.
    let out = ds.kiln(&conf, &release);
    let all = text(&out);
    outputs.push_str(&all);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("hello-user: valid"), "{all}");
    assert!(all.contains("hello-workdir: valid"), "{all}");
    assert!(
        all.contains("task hello-broken is blocked")
            && all.contains("gate `validation` failed: oracle's reward is 0"),
        "{all}"
    );
    let c = client(&reg);
    let catalog: BTreeSet<String> = rt.block_on(c.catalog()).unwrap().into_iter().collect();
    let expected: BTreeSet<String> = [
        "benchmarks/hrel-hello-user",
        "benchmarks/hrel-hello-workdir",
    ]
    .map(String::from)
    .into();
    assert_eq!(catalog, expected, "{all}");
    let m = read_manifest(&manifest);
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            fleet_support::manifest_dir().join("docs/release-manifest.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let problems: Vec<String> = validator.iter_errors(&m).map(|e| e.to_string()).collect();
    assert!(problems.is_empty(), "{problems:?}: {m}");
    assert_eq!(m["complete"], false);
    let dataset = &m["benchmarks"][0];
    assert_eq!(dataset["name"], "hrel");
    assert_eq!(dataset["status"], "published");
    assert_eq!(dataset["not_published"][0]["task"], "hello-broken", "{m}");
    let mut digests: BTreeMap<String, String> = BTreeMap::new();
    for image in m["images"].as_array().unwrap() {
        let reference = image["reference"].as_str().unwrap();
        assert_eq!(image["kind"], "task");
        assert_eq!(image["status"], "pushed");
        assert_eq!(image["validation"]["valid"], true);
        let r = kiln::registry::Reference::parse(reference).unwrap();
        let served = rt
            .block_on(c.manifest_digest(&r.repository, &r.tag))
            .unwrap();
        assert_eq!(served.as_deref(), image["digest"].as_str(), "{reference}");
        assert_eq!(
            skopeo_digest(&reg, reference),
            image["digest"].as_str().unwrap()
        );
        digests.insert(
            image["task"].as_str().unwrap().to_string(),
            image["digest"].as_str().unwrap().to_string(),
        );
    }
    assert_eq!(digests.len(), 2, "{m}");
    assert_eq!(
        ds.task_files(),
        original,
        "a release without --pin edited a task.toml"
    );
    let ids: Vec<String> = ["hello-user", "hello-workdir"]
        .map(|t| ds.local_id(t))
        .into();

    // 2. --pin --dry-run: one diff per task.toml, nothing written, no registry contact.
    let mut dry = release.to_vec();
    dry.extend(["--pin", "--dry-run"]);
    let out = ds.kiln(&conf, &dry);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    outputs.push_str(&text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for task in ["hello-user", "hello-workdir"] {
        let pin = format!("{host}/benchmarks/hrel-{task}@{}", digests[task]);
        assert!(
            stdout.contains(&format!("--- a/{task}/task.toml\n+++ b/{task}/task.toml\n"))
                && stdout.contains(&format!("+docker_image = \"{pin}\"\n")),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("# task hello-broken: pinned after its images are published"),
        "{stdout}"
    );
    assert_eq!(ds.task_files(), original, "--dry-run wrote a task.toml");

    // 3. Bad input: a registry nobody listens on, and a refused login: a clear error
    //    naming the registry, exit 1, nothing pinned, no password in the output.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let out = ds.kiln(&conf, &["release", "--registry", &nobody, BASE, "--pin"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("gate `registry login` failed") && all.contains(&nobody),
        "{all}"
    );
    assert_eq!(ds.task_files(), original, "a failed release pinned a task");
    let out = ds.kiln(
        &reg.wrong_docker_config(),
        &["release", "--registry", &host, BASE, "--pin"],
    );
    let all = text(&out);
    outputs.push_str(&all);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&host) && all.contains("refused the login"),
        "{all}"
    );
    assert!(
        !all.contains("not-the-password"),
        "a password leaked: {all}"
    );
    assert_eq!(ds.task_files(), original, "a refused release pinned a task");

    // 4. --pin: the registry's digests written in place; nothing rebuilt or pushed.
    let mut pin = release.to_vec();
    pin.push("--pin");
    let out = ds.kiln(&conf, &pin);
    let all = text(&out);
    outputs.push_str(&all);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("0 pushed now, 2 already there"), "{all}");
    assert!(all.contains("hello-user: valid (recorded"), "{all}");
    let pinned = ds.task_files();
    assert_eq!(pinned["hello-broken"], original["hello-broken"]);
    for task in ["hello-user", "hello-workdir"] {
        let served = rt
            .block_on(c.manifest_digest(&format!("benchmarks/hrel-{task}"), VERSION))
            .unwrap()
            .unwrap();
        let line = format!("docker_image = \"{host}/benchmarks/hrel-{task}@{served}\"");
        assert!(
            pinned[task].contains(&format!("\n{line}\n")),
            "{}",
            pinned[task]
        );
        // Everything else is byte for byte as it was: one line added.
        let without: Vec<&str> = pinned[task].lines().filter(|l| *l != line).collect();
        assert_eq!(without, original[task].lines().collect::<Vec<_>>());
    }
    assert!(pinned["hello-workdir"]
        .contains("# The machine each trial gets (kiln keeps this comment).\n"));
    assert_eq!(
        ["hello-user", "hello-workdir"]
            .map(|t| ds.local_id(t))
            .to_vec(),
        ids,
        "a pinned task was rebuilt (kiln must build it from its Dockerfile, not FROM its pin)"
    );

    // 5. The same release again: nothing rebuilt, pushed or edited (the pins are kiln's
    //    own change: the clean-tree gate does not count them).
    let before = ds.task_files();
    let mtimes: Vec<_> = TASKS
        .iter()
        .map(|t| {
            std::fs::metadata(ds.path().join(t).join("task.toml"))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();
    let out = ds.kiln(&conf, &pin);
    let all = text(&out);
    outputs.push_str(&all);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(!all.contains("gate `clean work tree` failed"), "{all}");
    assert!(all.contains("0 pushed now, 2 already there"), "{all}");
    assert!(
        all.contains("hello-user/task.toml is already pinned"),
        "{all}"
    );
    assert_eq!(ds.task_files(), before);
    let after: Vec<_> = TASKS
        .iter()
        .map(|t| {
            std::fs::metadata(ds.path().join(t).join("task.toml"))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();
    assert_eq!(after, mtimes, "a task.toml was rewritten");
    assert_eq!(
        ["hello-user", "hello-workdir"]
            .map(|t| ds.local_id(t))
            .to_vec(),
        ids
    );
    let m = read_manifest(&manifest);
    assert!(m["images"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["status"] == "already-published"));
    assert!(
        !outputs.contains(&reg.password),
        "the password appeared in kiln's output"
    );
}
