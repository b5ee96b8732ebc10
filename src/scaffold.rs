//! `kiln new`: the files of a new fleet member in kiln's layout (RULES.md), made so that
//! a fresh scaffold passes `kiln lint` as it is.
//!
//! An agent installed from PyPI gets the layout `mini-swe-agent` has: Debian's Python
//! and a venv with the pinned package under `/opt/agent/` (the only directory the eval
//! recipe copies), the CA bundle as a build secret for the pip step, and an
//! `/opt/agent/run` that runs the user's command line with the gateway's endpoints.
//!
//! Nothing is written when anything is wrong: the name, the pin, a directory that
//! exists, a root bake file without an `agents` group. The files go to a temporary
//! directory beside the target first and are renamed into place, and the root file's
//! group is rewritten last.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use crate::naming;

/// Which API the agent speaks to the gateway (what its run script exports first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    OpenAi,
    Anthropic,
}

/// A new agent installed from PyPI.
#[derive(Debug, Clone)]
pub struct PipAgent {
    pub name: String,
    /// The distribution name on PyPI.
    pub package: String,
    /// The pinned version.
    pub version: String,
    /// The shell command line that runs the agent on the task (`$PROMPT_FILE` holds the
    /// prompt, `$MODEL` the model, `$OPENAI_BASE_URL`/`$ANTHROPIC_BASE_URL` the gateway).
    pub command: String,
    pub api: Api,
    pub description: String,
}

impl PipAgent {
    /// Checks the name and splits `PACKAGE==VERSION`; an unpinned requirement is refused
    /// (an agent that changes under a benchmark is not the agent that was measured).
    pub fn new(name: &str, pip: &str, command: &str, api: Api) -> anyhow::Result<PipAgent> {
        naming::validate_fleet_name("agent", name).map_err(|e| anyhow::anyhow!("{e}"))?;
        let Some((package, version)) = pip.split_once("==") else {
            bail!("--pip {pip:?}: pin one version, as PACKAGE==VERSION");
        };
        let (package, version) = (package.trim(), version.trim());
        let valid_package = !package.is_empty()
            && package
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_package {
            bail!("--pip {pip:?}: {package:?} is not a PyPI distribution name");
        }
        let valid_version = !version.is_empty()
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '!'));
        if !valid_version {
            bail!("--pip {pip:?}: {version:?} is not one exact version");
        }
        if command.trim().is_empty() {
            bail!("--cmd: the command line that runs the agent is empty");
        }
        Ok(PipAgent {
            name: name.to_string(),
            package: package.to_string(),
            version: version.to_string(),
            command: command.trim().to_string(),
            api,
            description: format!("{package} {version} (PyPI)"),
        })
    }

    /// The agent's directory, relative to the repository root.
    pub fn dir(&self) -> PathBuf {
        Path::new("containers/agents").join(&self.name)
    }

    /// The upstream page of the pinned release.
    pub fn url(&self) -> String {
        format!(
            "https://pypi.org/project/{}/{}/",
            self.package, self.version
        )
    }

    /// Every file of the agent: path relative to its directory, text, executable.
    pub fn files(&self) -> Vec<(&'static str, String, bool)> {
        vec![
            ("docker-bake.hcl", self.bake_file(), false),
            ("Dockerfile", self.dockerfile(), false),
            ("agent/run", self.run_script(), true),
            ("agent/name", format!("{}\n", self.name), false),
        ]
    }

    fn bake_file(&self) -> String {
        let name = &self.name;
        let quoted = |s: &str| serde_json::to_string(s).expect("a string serializes");
        format!(
            r#"# {package} from PyPI, pinned. Built FROM Debian, not FROM core/base: the pip step
# needs the build secret `ca-bundle` (kiln build --ca-bundle FILE), and Docker 20.10's
# BuildKit cannot combine that with a `target:` context.
target "agent-{name}" {{
  context = "containers/agents/{name}"
  args = {{
    BASE_IMAGE      = "debian:bookworm-slim"
    AGENT_PACKAGE   = "{package}"
    AGENT_VERSION   = "{version}"
  }}
  tags = ["${{REGISTRY}}/agents/{name}:${{TAG}}"]
  labels = {{
    "eval.type"                            = "agent"
    "eval.agent.name"                      = "{name}"
    "eval.agent.version"                   = "{version}"
    "eval.agent.url"                       = "{url}"
    "org.opencontainers.image.title"       = "agents/{name}"
    "org.opencontainers.image.description" = {description}
  }}
}}
"#,
            package = self.package,
            version = self.version,
            url = self.url(),
            description = quoted(&self.description),
        )
    }

    fn dockerfile(&self) -> String {
        format!(
            r#"# {package} (PyPI, pinned) as a kiln agent. The eval recipe copies only /opt/agent/
# onto the benchmark image, so everything the agent needs lives there: Debian's Python
# (binary, standard library, the shared libraries it loads) and a venv with the package,
# apart from the task's own Python.
ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null \
    && rm -rf /var/lib/apt/lists/*
ARG AGENT_PACKAGE
ARG AGENT_VERSION
# PyPI behind a TLS-intercepting proxy: the CA bundle is a build secret, mounted for
# this step only; it never lands in a layer or the history.
RUN --mount=type=secret,id=ca-bundle \
    set -eu; \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi; \
    python3 -m venv --copies /opt/agent/venv; \
    /opt/agent/venv/bin/pip install -q --no-cache-dir --disable-pip-version-check "${{AGENT_PACKAGE}}==${{AGENT_VERSION}}"
# Self-contained: the standard library beside the venv and the shared libraries the
# interpreter and its extension modules load (glibc aside: kiln's bases are Debian 12).
RUN set -eu; \
    mkdir -p /opt/agent/python/lib /opt/agent/lib; \
    cp -a /usr/lib/python3.11 /opt/agent/python/lib/; \
    ldd /opt/agent/venv/bin/python3 /usr/lib/python3.11/lib-dynload/*.so \
      | awk '$3 ~ /^\// {{ print $3 }}' | sort -u \
      | grep -Ev '/(libc|libm|libpthread|libdl|librt|ld-linux-x86-64)\.so' \
      | xargs -r cp -L -t /opt/agent/lib
COPY agent/ /opt/agent/
RUN chmod 0755 /opt/agent/run \
    && PYTHONHOME=/opt/agent/python LD_LIBRARY_PATH=/opt/agent/lib /opt/agent/venv/bin/pip show -q "${{AGENT_PACKAGE}}"
"#,
            package = self.package
        )
    }

    fn run_script(&self) -> String {
        let (first, second) = match self.api {
            Api::OpenAi => ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"),
            Api::Anthropic => ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"),
        };
        format!(
            r#"#!/bin/sh
# kiln's entry point for {package} {version}. The runner gives: PROMPT_FILE (the
# task's prompt), MODEL, {first} (kiln's model gateway; {second} too),
# AGENT_OUTPUT_DIR (kept with the results). The working directory is the task's.
set -eu
: "${{MODEL:?MODEL is not set (kiln run --model)}}"
: "${{{first}:?{first} is not set (kiln run --replay/--record starts the gateway)}}"
export PYTHONHOME=/opt/agent/python LD_LIBRARY_PATH=/opt/agent/lib
export PATH="/opt/agent/venv/bin:$PATH"
# Placeholders: the gateway holds the real key, when there is one.
export OPENAI_API_KEY="${{OPENAI_API_KEY:-kiln-placeholder}}"
export ANTHROPIC_API_KEY="${{ANTHROPIC_API_KEY:-kiln-placeholder}}"
export TERM=dumb NO_COLOR=1
{command}
"#,
            package = self.package,
            version = self.version,
            command = self.command,
        )
    }
}

/// Adds `target` to the `targets` list of group `group` in the bake file text, keeping
/// everything else as written.
pub fn add_to_group(text: &str, group: &str, target: &str) -> Result<String, String> {
    let header = format!("group \"{group}\"");
    let start = text
        .find(&header)
        .ok_or_else(|| format!("no group {group:?}"))?;
    let body = &text[start..];
    let list = body
        .find("targets")
        .and_then(|t| body[t..].find('[').map(|b| t + b))
        .ok_or_else(|| format!("group {group:?} has no targets list"))?;
    let close = body[list..]
        .find(']')
        .map(|c| list + c)
        .ok_or_else(|| format!("group {group:?}: the targets list is not closed"))?;
    let inner = &body[list + 1..close];
    let quoted = format!("\"{target}\"");
    if inner.contains(&quoted) {
        return Err(format!("group {group:?} already lists {target:?}"));
    }
    let trimmed = inner.trim_end();
    let sep = if trimmed.trim().is_empty() {
        ""
    } else if trimmed.ends_with(',') {
        " "
    } else {
        ", "
    };
    let at = start + list + 1 + trimmed.len();
    Ok(format!("{}{sep}{quoted}{}", &text[..at], &text[at..]))
}

/// Writes a new agent into the repository at `root` and lists it in the root bake
/// file's `agents` group; returns the files written (relative to `root`).
pub fn write_agent(root: &Path, agent: &PipAgent) -> anyhow::Result<Vec<PathBuf>> {
    let dir = root.join(agent.dir());
    if dir.exists() {
        bail!("{}: already exists; choose another name", dir.display());
    }
    let root_bake = root.join("docker-bake.hcl");
    let bake_text = std::fs::read_to_string(&root_bake)
        .with_context(|| format!("reading {}", root_bake.display()))?;
    let new_bake = add_to_group(&bake_text, "agents", &naming::agent_target(&agent.name))
        .map_err(|e| anyhow::anyhow!("{}: {e}", root_bake.display()))?;
    let parent = dir.parent().expect("containers/agents/<name> has a parent");
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".kiln-new-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a directory in {}", parent.display()))?;
    let mut written = Vec::new();
    for (rel, text, executable) in agent.files() {
        let path = staging.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("a file has a parent"))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        if executable {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
        written.push(agent.dir().join(rel));
    }
    let staged = staging.keep();
    std::fs::rename(&staged, &dir).with_context(|| format!("creating {}", dir.display()))?;
    if let Err(e) = std::fs::write(&root_bake, new_bake) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e).with_context(|| format!("writing {}", root_bake.display()));
    }
    written.push(PathBuf::from("docker-bake.hcl"));
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_and_names_are_checked() {
        let ok = PipAgent::new("aider", "aider-chat==0.86.2", "aider --yes", Api::OpenAi).unwrap();
        assert_eq!(
            (ok.package.as_str(), ok.version.as_str()),
            ("aider-chat", "0.86.2")
        );
        assert_eq!(ok.url(), "https://pypi.org/project/aider-chat/0.86.2/");
        for (name, pip, cmd, want) in [
            ("aider", "aider-chat", "x", "pin one version"),
            ("aider", "aider-chat>=0.86", "x", "pin one version"),
            (
                "aider",
                "aider chat==1",
                "x",
                "not a PyPI distribution name",
            ),
            ("aider", "aider-chat==1.*", "x", "not one exact version"),
            ("Aider", "aider-chat==1", "x", "Aider"),
            ("a--b", "aider-chat==1", "x", "a--b"),
            ("aider", "aider-chat==1", "  ", "--cmd"),
        ] {
            let err = PipAgent::new(name, pip, cmd, Api::OpenAi)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{name} {pip}: {err}");
        }
    }

    #[test]
    fn groups_gain_the_target_and_keep_their_form() {
        let text = "group \"core\" {\n  targets = [\"core-base\"]\n}\n\ngroup \"agents\" {\n  targets = [\"agent-oracle\", \"agent-null\"]\n}\n";
        let out = add_to_group(text, "agents", "agent-aider").unwrap();
        assert!(
            out.contains("targets = [\"agent-oracle\", \"agent-null\", \"agent-aider\"]"),
            "{out}"
        );
        assert!(out.starts_with("group \"core\" {\n  targets = [\"core-base\"]\n}"));
        let multi = "group \"agents\" {\n  targets = [\n    \"agent-a\",\n  ]\n}\n";
        let out = add_to_group(multi, "agents", "agent-b").unwrap();
        assert!(out.contains("\"agent-a\", \"agent-b\"\n  ]"), "{out}");
        let empty = "group \"agents\" {\n  targets = []\n}\n";
        assert!(add_to_group(empty, "agents", "agent-b")
            .unwrap()
            .contains("[\"agent-b\"]"));
        assert!(add_to_group(text, "agents", "agent-null")
            .unwrap_err()
            .contains("already"));
        assert!(add_to_group(text, "benchmarks", "x")
            .unwrap_err()
            .contains("no group"));
    }
}
