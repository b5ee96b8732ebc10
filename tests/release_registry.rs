//! `kiln release` and `kiln validate` against a real registry (Debian's
//! `docker-registry`, htpasswd basic auth, on a free 127.0.0.1 port, logged into
//! through a `DOCKER_CONFIG` written the way `docker login` writes it), with the real
//! engine, on the small fleet of `tests/fixtures/release/fleet` (two released
//! benchmarks — one shared-env, one per-task with two tasks — and one not released).
//! Opt-in: `KILN_TEST_DOCKER=1`.
//!
//! Images are named under a registry root unique to the test (`REGISTRY=…`), so the
//! shipped fleet's `kiln.local/…:dev` images are never touched, and removed at the end.

mod fleet_support;
mod registry_support;
mod release_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use registry_support::TestRegistry;
use release_support::*;
use serde_json::Value;

/// Refusals that need no image: a dry run leaves the catalog empty, wrong credentials
/// are a clear exit-1 error without the password, `--only` an unreleased benchmark is refused.
#[test]
fn release_refusals_and_dry_run() {
    if !registry_support::gate() {
        return;
    }
    let reg = TestRegistry::start();
    let fleet = Fleet::new(&format!("refusals-{}", reg.port));
    let rt = tokio::runtime::Runtime::new().unwrap();

    let out = fleet.kiln(
        &reg.docker_config(),
        "v1.0.0",
        &[
            "release",
            "--registry",
            &reg.host(),
            "--dry-run",
            "--tag",
            "latest",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pushes: BTreeSet<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("docker push "))
        .map(|r| r.to_string())
        .collect();
    let expected: BTreeSet<String> = expected_repositories("")
        .iter()
        .flat_map(|r| ["v1.0.0", "latest"].map(|t| format!("{}/{r}:{t}", reg.host())))
        .collect();
    assert_eq!(pushes, expected, "{stdout}");
    assert!(stdout.contains("# gates"), "{stdout}");
    assert!(
        stdout.contains("validation: rel-tasks is valid"),
        "{stdout}"
    );
    assert!(stdout.contains("never pushed: rel-draft"), "{stdout}");
    assert!(!stdout.contains("rel-draft-only"), "{stdout}");
    assert!(
        !fleet.path().join("release-manifest.json").exists(),
        "a dry run wrote a manifest"
    );
    assert_eq!(
        rt.block_on(client(&reg).catalog()).unwrap(),
        Vec::<String>::new(),
        "a dry run pushed something"
    );

    let out = fleet.kiln(
        &reg.wrong_docker_config(),
        "v1.0.0",
        &["release", "--registry", &reg.host()],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&reg.host()) && all.contains("refused the login"),
        "{all}"
    );
    assert!(
        !all.contains("not-the-password") && !all.contains(&reg.password),
        "a password leaked: {all}"
    );

    let out = fleet.kiln(
        &reg.docker_config(),
        "v1.0.0",
        &["release", "--registry", &reg.host(), "--only", "rel-draft"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("eval.benchmark.released"),
        "{}",
        text(&out)
    );
    assert_eq!(
        rt.block_on(client(&reg).catalog()).unwrap(),
        Vec::<String>::new()
    );
}

/// The whole release story on one fleet and one registry, in order (the images are
/// built once): a failing oracle blocks only its benchmark; the full release publishes
/// exactly the expected set with the digests the registry serves; a second release
/// pushes nothing; a version tag that would change is refused; a registry stopped
/// mid-release leaves a manifest of verified images only, and a re-run completes.
#[test]
fn release_publishes_verifies_and_restarts() {
    if !registry_support::gate() {
        return;
    }
    let mut reg = TestRegistry::start();
    let fleet = Fleet::new(&format!("story-{}", reg.port));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let conf = reg.docker_config();
    let manifest = fleet.path().join("release-manifest.json");
    let host = reg.host();
    let mut outputs = String::new();

    // 1. rel-shared's oracle fails (its reference solution is wrong): rel-shared is
    //    blocked, nothing of it is pushed; rel-tasks, agents and core are published.
    let solve = fleet
        .path()
        .join("benchmarks/rel-shared/tasks/answer/solution/solve.sh");
    let good = std::fs::read_to_string(&solve).unwrap();
    std::fs::write(&solve, good.replace("42", "41")).unwrap();
    fleet.commit("break rel-shared's solution");
    let out = fleet.kiln(
        &conf,
        "v1.0.0",
        &["release", "--registry", &host, "--jobs", "2"],
    );
    outputs.push_str(&text(&out));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("rel-shared is blocked")
            && text(&out).contains("gate `validation` failed"),
        "{}",
        text(&out)
    );
    let catalog: BTreeSet<String> = rt
        .block_on(client(&reg).catalog())
        .unwrap()
        .into_iter()
        .collect();
    let without_shared: BTreeSet<String> = expected_repositories("")
        .into_iter()
        .filter(|r| !r.contains("rel-shared"))
        .collect();
    assert_eq!(catalog, without_shared);
    let m = read_manifest(&manifest);
    assert_eq!(m["complete"], false);
    let shared = m["benchmarks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "rel-shared")
        .unwrap()
        .clone();
    assert_eq!(shared["status"], "blocked", "{m}");

    // 2. Fixed: the release completes and publishes exactly the expected set.
    std::fs::write(&solve, &good).unwrap();
    fleet.commit("fix rel-shared's solution");
    let out = fleet.kiln(
        &conf,
        "v1.0.0",
        &["release", "--registry", &host, "--jobs", "2"],
    );
    outputs.push_str(&text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let c = client(&reg);
    let catalog: BTreeSet<String> = rt.block_on(c.catalog()).unwrap().into_iter().collect();
    assert_eq!(
        catalog,
        expected_repositories(""),
        "the registry holds other repositories than the release's"
    );
    for repo in &catalog {
        assert_eq!(
            rt.block_on(c.tags(repo)).unwrap(),
            vec!["v1.0.0".to_string()],
            "{repo}"
        );
    }
    let m = read_manifest(&manifest);
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("docs/release-manifest.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let problems: Vec<String> = validator.iter_errors(&m).map(|e| e.to_string()).collect();
    assert!(
        problems.is_empty(),
        "the manifest does not follow docs/release-manifest.schema.json: {problems:?}"
    );
    assert_eq!(m["complete"], true);
    assert_eq!(m["version"], "v1.0.0");
    let images = m["images"].as_array().unwrap();
    assert_eq!(images.len(), 13);
    for image in images {
        let reference = image["reference"].as_str().unwrap();
        let r = kiln::registry::Reference::parse(reference).unwrap();
        let served = rt
            .block_on(c.manifest_digest(&r.repository, &r.tag))
            .unwrap();
        assert_eq!(served.as_deref(), image["digest"].as_str(), "{reference}");
        let status = image["status"].as_str().unwrap();
        let from_first = !reference.contains("rel-shared");
        assert_eq!(
            status,
            if from_first {
                "already-published"
            } else {
                "pushed"
            },
            "{reference}"
        );
        assert!(image["inputs_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
        assert_eq!(image["version"], "v1.0.0");
    }
    let first_digests: Vec<(String, String)> = images
        .iter()
        .map(|i| {
            (
                i["reference"].as_str().unwrap().to_string(),
                i["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();

    // 3. A second release with nothing changed pushes nothing.
    let out = fleet.kiln(&conf, "v1.0.0", &["release", "--registry", &host]);
    outputs.push_str(&text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("0 pushed now, 13 already there"),
        "{}",
        text(&out)
    );
    let m = read_manifest(&manifest);
    assert!(m["images"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["status"] == "already-published"));

    // 4. A change under the same version: refused, naming the reference and both digests.
    let prompt = fleet
        .path()
        .join("benchmarks/rel-tasks/tasks/beta/prompts/default.md");
    std::fs::write(&prompt, "Write 42 to $WORKSPACE/answer.txt, please.\n").unwrap();
    fleet.commit("reword beta");
    let out = fleet.kiln(
        &conf,
        "v1.0.0",
        &[
            "release",
            "--registry",
            &host,
            "--only",
            "rel-tasks",
            "--only",
            "oracle",
            "--only",
            "null",
        ],
    );
    outputs.push_str(&text(&out));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    let beta = format!("{host}/benchmarks/rel-tasks-beta:v1.0.0");
    assert!(all.contains(&beta) && all.contains("immutable"), "{all}");
    let old = &first_digests.iter().find(|(r, _)| *r == beta).unwrap().1;
    assert!(
        all.contains(old.as_str()),
        "the refusal does not name the registry's digest {old}: {all}"
    );
    let served = rt
        .block_on(c.manifest_digest("benchmarks/rel-tasks-beta", "v1.0.0"))
        .unwrap();
    assert_eq!(
        served.as_ref(),
        Some(old),
        "the refused release changed the tag"
    );

    // 5. The registry stops in the middle of a release (a new version under a new
    //    prefix, one push at a time): non-zero exit, a manifest of verified images
    //    only; after a restart a re-run completes.
    let target = format!("{host}/second");
    let _ = std::fs::remove_file(&manifest);
    let child = fleet
        .command(
            &conf,
            "v1.1.0",
            &["release", "--registry", &target, "--jobs", "1"],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let listed = std::fs::read_to_string(&manifest)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .map_or(0, |m| m["images"].as_array().map_or(0, |a| a.len()));
        if listed >= 1 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "the release published nothing in 4 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    reg.stop();
    let out = child.wait_with_output().unwrap();
    outputs.push_str(&text(&out));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    reg.resume();
    let partial = read_manifest(&manifest);
    let listed = partial["images"].as_array().unwrap();
    assert!(!listed.is_empty() && listed.len() < 13, "{partial}");
    assert_eq!(partial["complete"], false);
    let c = client(&reg);
    for image in listed {
        let r = kiln::registry::Reference::parse(image["reference"].as_str().unwrap()).unwrap();
        let served = rt
            .block_on(c.manifest_digest(&r.repository, &r.tag))
            .unwrap();
        assert_eq!(
            served.as_deref(),
            image["digest"].as_str(),
            "the manifest lists {r}, which the registry does not serve as listed"
        );
    }
    let out = fleet.kiln(
        &conf,
        "v1.1.0",
        &["release", "--registry", &target, "--jobs", "2"],
    );
    outputs.push_str(&text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let m = read_manifest(&manifest);
    assert_eq!(m["complete"], true);
    assert_eq!(m["images"].as_array().unwrap().len(), 13);
    let catalog: BTreeSet<String> = rt
        .block_on(c.catalog())
        .unwrap()
        .into_iter()
        .filter(|r| r.starts_with("second/"))
        .collect();
    assert_eq!(catalog, expected_repositories("second"));

    // 6. kiln validate answers from its record for unchanged images, and exits 1 for
    //    a benchmark whose oracle fails (the solution is part of the verdict's key).
    //    Before anything, it removes the container a killed kiln left behind.
    let dead = {
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        gone.wait().unwrap();
        gone.id()
    };
    let leftover = format!("kiln-test-leftover-{}", std::process::id());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let created = std::process::Command::new("docker")
        .args(["create", "--name", &leftover, "--label", "kiln.run=true"])
        .args([
            "--label",
            &format!("kiln.pid={dead}"),
            "--label",
            "kiln.pid-start=1",
        ])
        .args(["--label", &format!("kiln.host={}", host.trim())])
        .args([
            "--label",
            "kiln.run-id=leftover",
            "debian:bookworm-slim",
            "true",
        ])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let out = fleet.kiln(&conf, "v1.1.0", &["validate", "rel-tasks", "rel-shared"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("removed container {leftover}")),
        "{}",
        text(&out)
    );
    let still = std::process::Command::new("docker")
        .args(["container", "inspect", &leftover])
        .output()
        .unwrap();
    assert!(!still.status.success(), "{leftover} is still there");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(stdout.matches("valid (recorded)").count(), 3, "{stdout}");
    std::fs::write(&solve, good.replace("42", "41")).unwrap();
    let out = fleet.kiln(&conf, "v1.1.0", &["validate", "rel-shared"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("NOT VALID: the oracle scored 0.0000"),
        "{}",
        text(&out)
    );
    std::fs::write(&solve, &good).unwrap();

    assert!(
        !outputs.contains(&reg.password),
        "the password appeared in kiln's output"
    );
    assert!(!std::fs::read_to_string(&manifest)
        .unwrap()
        .contains(&reg.password));
}
