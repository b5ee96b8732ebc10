//! `kiln new`: the files of a new fleet member in kiln's layout (RULES.md), made so that
//! a fresh scaffold passes `kiln lint` as it is.
//!
//! A new benchmark or task is a working trivial task (reward mode: write `hello` to
//! `answer.txt`): the oracle passes it and null fails it, so `kiln validate` shows the
//! loop works before the author replaces its files.
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

pub mod eval_containers;

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

/// The two kinds of benchmark (RULES.md, "Benchmarks: two kinds").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchmarkKind {
    /// One image holds every task.
    SharedEnv,
    /// One base image per task, from the task's `environment/Dockerfile`.
    PerTask,
}

/// Files of a new task (relative to its directory): path, text, executable.
fn task_files(id: &str, kind: BenchmarkKind) -> Vec<(String, String, bool)> {
    let mut files = vec![
        (
            "scenario.toml".to_string(),
            format!(
                r#"schema_version = "1"
id = "{id}"
title = "TODO: what the agent must do, in a line"

[agent]
timeout_sec = 600

[grading]
mode = "reward"
timeout_sec = 60

[grading.reward]
command = "grading/test.sh"
pass_threshold = 1.0
"#
            ),
            false,
        ),
        (
            "prompts/default.md".to_string(),
            "Write the word `hello` (and nothing else but a final newline) into the file\n\
             `answer.txt` in the current directory, `$WORKSPACE`.\n"
                .to_string(),
            false,
        ),
        (
            "grading/test.sh".to_string(),
            r#"#!/bin/sh
# The reward test (hidden from the agent): 1 when answer.txt says hello, else 0.
# Writes $GRADER_OUT/reward.txt (docs/scenario-format.md).
set -u
reward() { echo "$1" > "$GRADER_OUT/reward.txt"; echo "reward $1: $2"; exit 0; }
[ -f "$WORKSPACE/answer.txt" ] || reward 0 "answer.txt does not exist"
[ "$(cat "$WORKSPACE/answer.txt")" = "hello" ] || reward 0 "answer.txt does not say hello"
reward 1 "answer.txt says hello"
"#
            .to_string(),
            true,
        ),
        (
            "solution/solve.sh".to_string(),
            "#!/bin/sh\n# The reference solution (the oracle agent's; never in an image).\nset -eu\n\
             printf 'hello\\n' > \"$WORKSPACE/answer.txt\"\n"
                .to_string(),
            true,
        ),
    ];
    if kind == BenchmarkKind::PerTask {
        files.push((
            "environment/Dockerfile".to_string(),
            r#"# The task's own environment: start from the fleet's base and add what the task needs.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG TASK_ID
RUN test -n "${TASK_ID}" || { echo "build with --build-arg TASK_ID=<task id>" >&2; exit 1; }
# The task itself (never solution/): hidden under /kiln, which the runner makes 0700.
COPY scenario.toml /kiln/tasks/${TASK_ID}/scenario.toml
COPY prompts/ /kiln/tasks/${TASK_ID}/prompts/
COPY grading/ /kiln/tasks/${TASK_ID}/grading/
ENV KILN_TASK_ID=${TASK_ID}
"#
            .to_string(),
            false,
        ));
        files.push((
            ".dockerignore".to_string(),
            "# Reference solutions never enter an image.\nsolution\n".to_string(),
            false,
        ));
    }
    files
}

/// Files of a new benchmark with its first task (relative to `benchmarks/<name>`).
fn benchmark_files(
    name: &str,
    kind: BenchmarkKind,
    task: &str,
    description: &str,
) -> Vec<(String, String, bool)> {
    let quoted = serde_json::to_string(description).expect("a string serializes");
    let common_labels = format!(
        r#"    "eval.benchmark.name"                  = "{name}"
    "eval.benchmark.description"           = {quoted}
    "eval.benchmark.tasks"                 = "1"
    "eval.benchmark.data_revision"         = "1"
    "org.opencontainers.image.title"       = "benchmarks/{name}"
    "org.opencontainers.image.description" = {quoted}"#
    );
    let mut files = match kind {
        BenchmarkKind::SharedEnv => vec![
            (
                "docker-bake.hcl".to_string(),
                format!(
                    r#"# A shared-env benchmark: one image holds every task; the task is chosen when the
# eval runs. Add `"eval.benchmark.released" = "true"` once `kiln validate {name}` passes.
target "benchmark-{name}" {{
  context = "benchmarks/{name}"
  contexts = {{
    "${{REGISTRY}}/core/base:${{TAG}}" = "target:core-base"
  }}
  args = {{
    BASE_IMAGE = "${{REGISTRY}}/core/base:${{TAG}}"
  }}
  tags = ["${{REGISTRY}}/benchmarks/{name}:${{TAG}}"]
  labels = {{
    "eval.type"                            = "benchmark"
    "eval.benchmark.env"                   = "shared-env"
{common_labels}
  }}
}}
"#
                ),
                false,
            ),
            (
                "Dockerfile".to_string(),
                r#"# The benchmark's one image: what every task needs, then the tasks themselves under
# /kiln/tasks, which the runner makes 0700 (hidden from the agent).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY tasks/ /kiln/tasks/
RUN if find /kiln/tasks -name solution | grep -q .; then echo "a solution/ directory reached the image" >&2; exit 1; fi
"#
                .to_string(),
                false,
            ),
            (
                ".dockerignore".to_string(),
                "# Reference solutions never enter a benchmark image (only oracle runs get them).\n\
                 tasks/*/solution\n"
                    .to_string(),
                false,
            ),
        ],
        BenchmarkKind::PerTask => vec![(
            "docker-bake.hcl".to_string(),
            format!(
                r#"# A per-task benchmark: each task has its own environment Dockerfile and base image
# (kiln builds one with EVAL_TASK_ID=<task id>). Add `"eval.benchmark.released" = "true"`
# once `kiln validate {name}` passes.
target "benchmark-{name}" {{
  context    = "benchmarks/{name}/tasks/${{EVAL_TASK_ID}}"
  dockerfile = "environment/Dockerfile"
  contexts = {{
    "${{REGISTRY}}/core/base:${{TAG}}" = "target:core-base"
  }}
  args = {{
    BASE_IMAGE = "${{REGISTRY}}/core/base:${{TAG}}"
    TASK_ID    = EVAL_TASK_ID
  }}
  tags = [EVAL_TASK_ID == "" ? "${{REGISTRY}}/benchmarks/{name}:${{TAG}}" : "${{REGISTRY}}/benchmarks/{name}-${{lower(EVAL_TASK_ID)}}:${{TAG}}"]
  labels = {{
    "eval.type"                            = EVAL_TASK_ID == "" ? "benchmark" : "task"
    "eval.task.id"                         = EVAL_TASK_ID
    "eval.benchmark.env"                   = "per-task"
{common_labels}
  }}
}}
"#
            ),
            false,
        )],
    };
    for (rel, text, exec) in task_files(task, kind) {
        files.push((format!("tasks/{task}/{rel}"), text, exec));
    }
    files
}

/// Sets the `eval.benchmark.tasks` label of a bake file's text to `count`.
fn set_task_count(text: &str, count: usize) -> Result<String, String> {
    let key = "\"eval.benchmark.tasks\"";
    let at = text
        .find(key)
        .ok_or_else(|| "no \"eval.benchmark.tasks\" label".to_string())?;
    let line_end = text[at..].find('\n').map_or(text.len(), |e| at + e);
    let line = &text[at..line_end];
    let value_start = line
        .find('=')
        .and_then(|eq| line[eq..].find('"').map(|q| eq + q))
        .ok_or_else(|| "the \"eval.benchmark.tasks\" label is not a literal string".to_string())?;
    let value_end = line[value_start + 1..]
        .find('"')
        .map(|q| value_start + 1 + q)
        .ok_or_else(|| "the \"eval.benchmark.tasks\" label is not a literal string".to_string())?;
    let (a, b) = (at + value_start + 1, at + value_end);
    Ok(format!("{}{count}{}", &text[..a], &text[b..]))
}

/// Writes `files` (relative to `dir`, which must not exist) through a staging directory
/// beside it, then renames it into place.
fn write_new_dir(dir: &Path, files: &[(String, String, bool)]) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if dir.exists() {
        bail!("{}: already exists; choose another name", dir.display());
    }
    let parent = dir.parent().expect("a new directory has a parent");
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".kiln-new-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a directory in {}", parent.display()))?;
    for (rel, text, executable) in files {
        let path = staging.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("a file has a parent"))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        if *executable {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    let staged = staging.keep();
    std::fs::rename(&staged, dir).with_context(|| format!("creating {}", dir.display()))
}

/// Writes a new benchmark with its first task; a shared-env one is added to the root
/// bake file's `benchmarks` group. Returns the files written (relative to `root`).
pub fn write_benchmark(
    root: &Path,
    name: &str,
    kind: BenchmarkKind,
    task: &str,
    description: &str,
) -> anyhow::Result<Vec<PathBuf>> {
    naming::validate_fleet_name("benchmark", name).map_err(|e| anyhow::anyhow!("{e}"))?;
    naming::validate_task_id(task).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rel_dir = Path::new("benchmarks").join(name);
    if root.join(&rel_dir).exists() {
        bail!(
            "{}: already exists; choose another name",
            root.join(&rel_dir).display()
        );
    }
    let root_bake = root.join("docker-bake.hcl");
    let new_root = match kind {
        BenchmarkKind::SharedEnv => {
            let text = std::fs::read_to_string(&root_bake)
                .with_context(|| format!("reading {}", root_bake.display()))?;
            let target = format!("benchmark-{name}");
            Some(
                add_to_group(&text, "benchmarks", &target)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", root_bake.display()))?,
            )
        }
        BenchmarkKind::PerTask => None,
    };
    let files = benchmark_files(name, kind, task, description);
    write_new_dir(&root.join(&rel_dir), &files)?;
    let mut written: Vec<PathBuf> = files.iter().map(|(rel, ..)| rel_dir.join(rel)).collect();
    if let Some(text) = new_root {
        if let Err(e) = std::fs::write(&root_bake, text) {
            let _ = std::fs::remove_dir_all(root.join(&rel_dir));
            return Err(e).with_context(|| format!("writing {}", root_bake.display()));
        }
        written.push(PathBuf::from("docker-bake.hcl"));
    }
    Ok(written)
}

/// Writes a new task into benchmark `benchmark` (of `kind`, with `tasks` tasks so far)
/// and counts it in the benchmark's `eval.benchmark.tasks` label.
pub fn write_task(
    root: &Path,
    benchmark: &str,
    kind: BenchmarkKind,
    tasks: usize,
    id: &str,
) -> anyhow::Result<Vec<PathBuf>> {
    naming::validate_task_id(id).map_err(|e| anyhow::anyhow!("{e}"))?;
    let bench_dir = Path::new("benchmarks").join(benchmark);
    let bake = root.join(&bench_dir).join("docker-bake.hcl");
    let text =
        std::fs::read_to_string(&bake).with_context(|| format!("reading {}", bake.display()))?;
    let counted =
        set_task_count(&text, tasks + 1).map_err(|e| anyhow::anyhow!("{}: {e}", bake.display()))?;
    let rel_dir = bench_dir.join("tasks").join(id);
    let files = task_files(id, kind);
    write_new_dir(&root.join(&rel_dir), &files)?;
    if let Err(e) = std::fs::write(&bake, counted) {
        let _ = std::fs::remove_dir_all(root.join(&rel_dir));
        return Err(e).with_context(|| format!("writing {}", bake.display()));
    }
    let mut written: Vec<PathBuf> = files.iter().map(|(rel, ..)| rel_dir.join(rel)).collect();
    written.push(bench_dir.join("docker-bake.hcl"));
    Ok(written)
}

/// Writes a new Harbor task `id` into the dataset at `root` (named `dataset`): a
/// working trivial task in Harbor's format (schema 1.4). Its Dockerfile starts `FROM
/// ubuntu:24.04`, as Harbor's own tasks do; an air-gapped site maps that to a local
/// image with `--base`.
pub fn write_harbor_task(root: &Path, dataset: &str, id: &str) -> anyhow::Result<Vec<PathBuf>> {
    naming::validate_task_id(id).map_err(|e| anyhow::anyhow!("{e}"))?;
    if id.contains('.') {
        bail!("invalid task id {id:?}: a Harbor task id names one folder ('.' stands for '/' in nested ids)");
    }
    let toml = format!(
        "schema_version = \"1.4\"\n\n[task]\nname = \"{dataset}/{id}\"\nversion = \"0.1.0\"\n\
         description = \"TODO: what this task asks\"\nauthors = []\nkeywords = []\n\n\
         [metadata]\ndifficulty = \"easy\"\ncategory = \"TODO\"\n\n\
         [agent]\ntimeout_sec = 600.0\nuser = \"agent\"\n\n\
         [verifier]\ntimeout_sec = 120.0\n\n\
         [environment]\nnetwork_mode = \"no-network\"\nbuild_timeout_sec = 600.0\ncpus = 1\nmemory_mb = 2048\nworkdir = \"/app\"\n"
    );
    let files: Vec<(String, String, bool)> = vec![
        ("task.toml".into(), toml, false),
        (
            "instruction.md".into(),
            "Create the file `/app/hello.txt` holding one line: `hello`.\n".into(),
            false,
        ),
        (
            "environment/Dockerfile".into(),
            "FROM ubuntu:24.04\n# The agent works as this user, in /app (task.toml: agent.user, environment.workdir).\n\
             RUN useradd --create-home --shell /bin/bash agent && mkdir -p /app && chown agent:agent /app\n\
             WORKDIR /app\n"
                .into(),
            false,
        ),
        (
            "solution/solve.sh".into(),
            "#!/bin/bash\n# The reference solution: oracle runs it as the agent would.\nset -eu\necho hello > /app/hello.txt\n".into(),
            true,
        ),
        (
            "tests/test.sh".into(),
            "#!/bin/bash\n# Copied in after the agent finished; writes the reward (1 solved, 0 not).\n\
             if [ \"$(cat /app/hello.txt 2>/dev/null)\" = hello ]; then reward=1; else reward=0; fi\n\
             echo \"$reward\" > /logs/verifier/reward.txt\n"
                .into(),
            true,
        ),
    ];
    write_new_dir(&root.join(id), &files)?;
    Ok(files
        .iter()
        .map(|(rel, ..)| Path::new(id).join(rel))
        .collect())
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
    let files: Vec<(String, String, bool)> = agent
        .files()
        .into_iter()
        .map(|(rel, text, exec)| (rel.to_string(), text, exec))
        .collect();
    write_new_dir(&dir, &files)?;
    if let Err(e) = std::fs::write(&root_bake, new_bake) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e).with_context(|| format!("writing {}", root_bake.display()));
    }
    let mut written: Vec<PathBuf> = files
        .iter()
        .map(|(rel, ..)| agent.dir().join(rel))
        .collect();
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

    #[test]
    fn the_task_count_label_is_rewritten_in_place() {
        let text =
            "  labels = {\n    \"eval.benchmark.tasks\"       = \"2\"\n    \"x\" = \"2\"\n  }\n";
        let out = set_task_count(text, 3).unwrap();
        assert_eq!(out, text.replacen("\"2\"", "\"3\"", 1));
        assert!(set_task_count("labels = {}", 1).unwrap_err().contains("no"));
        let computed = "\"eval.benchmark.tasks\" = length(x)\n";
        assert!(set_task_count(computed, 1)
            .unwrap_err()
            .contains("not a literal"));
    }
}
