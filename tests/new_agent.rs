//! `kiln new agent`: the scaffold of a PyPI agent passes `kiln lint` in a copy of the
//! shipped fleet and plans like any agent; bad names, unpinned packages and existing
//! agents are refused with nothing written.

mod fleet_support;

use std::path::Path;

use fleet_support::{fleet_copy, kiln};

fn snapshot(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(root)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            (rel, std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

const CMD: &str = r#"exec smolagent "$(cat "$PROMPT_FILE")" --model-type OpenAIServerModel --model-id "$MODEL" --api-base "$OPENAI_BASE_URL""#;

#[test]
fn a_scaffolded_agent_lints_clean_and_plans() {
    let fleet = fleet_copy();
    let root = fleet.path();
    let out = kiln(
        root,
        &[
            "new",
            "agent",
            "smolagents",
            "--pip",
            "smolagents==1.26.0",
            "--cmd",
            CMD,
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = std::fs::read_to_string(root.join("containers/agents/smolagents/agent/run")).unwrap();
    assert!(run.ends_with(&format!("{CMD}\n")), "{run}");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(root.join("containers/agents/smolagents/agent/run"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111);
    let lint = kiln(root, &["lint"], &[]);
    assert!(
        lint.status.success(),
        "{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    // The agent is a fleet member: listed with its version, and planned for bake with
    // the package pinned and the CA bundle as a secret.
    let list = kiln(root, &["list", "agents", "--json"], &[]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("smolagents") && text.contains("1.26.0"),
        "{text}"
    );
    let plan = kiln(
        root,
        &[
            "build",
            "agent",
            "smolagents",
            "--dry-run",
            "--backend",
            "podman",
            "--ca-bundle",
            "/etc/ssl/certs/ca-certificates.crt",
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(text.contains("AGENT_VERSION=1.26.0"), "{text}");
    assert!(
        text.contains("eval.agent.url=https://pypi.org/project/smolagents/1.26.0/"),
        "{text}"
    );
    assert!(text.contains("--secret"), "{text}");
}

#[test]
fn refusals_write_nothing() {
    let fleet = fleet_copy();
    let root = fleet.path();
    let before = snapshot(root);
    for (args, want) in [
        (
            vec![
                "new",
                "agent",
                "aider",
                "--pip",
                "aider-chat",
                "--cmd",
                "aider",
            ],
            "pin one version",
        ),
        (
            vec![
                "new",
                "agent",
                "Aider",
                "--pip",
                "aider-chat==0.86.2",
                "--cmd",
                "aider",
            ],
            "Aider",
        ),
        (
            vec!["new", "agent", "null", "--pip", "x==1", "--cmd", "x"],
            "already exists",
        ),
        (
            vec![
                "new",
                "agent",
                "aider",
                "--pip",
                "aider-chat==0.86.2",
                "--cmd",
                " ",
            ],
            "--cmd",
        ),
    ] {
        let out = kiln(root, &args, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // A root bake file without an `agents` group: refused, no directory left behind.
    std::fs::write(root.join("docker-bake.hcl"), "variable \"REGISTRY\" {}\n").unwrap();
    let before_group = snapshot(root);
    let out = kiln(
        root,
        &[
            "new",
            "agent",
            "aider",
            "--pip",
            "aider-chat==0.86.2",
            "--cmd",
            "aider",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no group \"agents\""));
    assert_eq!(snapshot(root), before_group);
    assert_ne!(before, before_group);
}
