//! `kiln run --keep-state` on an eval-containers fleet: the eval container committed
//! (`docker commit --pause`) after the agent and before the grader, in the run itself.
//!
//! Upstream's `/usr/local/bin/run` runs `run-agent`, then `bash /grade.sh`, then
//! `write-result`, in one shell kiln cannot stop in between. So a kept run starts with a
//! wrapper ([`WRAPPER`]) that sets the image's `/grade.sh` aside and puts a gate there
//! ([`GATE`]), then execs upstream's `run` as the image's command would. When `run`
//! reaches the grader, the gate puts the real `/grade.sh` back, tells kiln (a file in a
//! host directory bind-mounted at [`GATE_DIR`], which only root can write), and waits;
//! kiln commits the container, which is then exactly what the grader would have seen,
//! and lets the gate go on: it execs the real grader, and the run ends as any run does.
//! The bind mount is not part of the commit (its empty mount point is).
//!
//! The image is named and labelled as every kept state is ([`kept_state`]): owner labels
//! and the values of `--pass-env` variables blanked, and its command `/grade.sh` (`docker
//! run IMAGE` grades it with the grader it holds, behind the image's entrypoint).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Context as _};

use crate::run::kept_state::{self, Kept, LABEL, LABEL_TASK, TYPE};

/// Where the gate directory is mounted in the container.
pub const GATE_DIR: &str = "/run/kiln-gate";
/// The image's grader while the gate stands in for it.
#[cfg(test)]
const ASIDE: &str = "/.kiln-grade.sh";

/// Run instead of the image's command (`/usr/local/bin/run`, the combination's CMD)
/// behind its entrypoint.
pub const WRAPPER: &str = r#"set -e
mv /grade.sh /.kiln-grade.sh
cp /run/kiln-gate/gate.sh /grade.sh
chmod 0700 /grade.sh
exec /usr/local/bin/run"#;

/// What `run` runs as `bash /grade.sh` (bash has it open: renaming the real grader over
/// it does not change what it reads).
const GATE: &str = r#"#!/bin/bash
# kiln run --keep-state: the agent is done. The real grader back in place, kiln commits
# the container, then grading goes on.
mv -f /.kiln-grade.sh /grade.sh
: > /run/kiln-gate/agent-done
while [ ! -e /run/kiln-gate/go ]; do sleep 0.1; done
exec bash /grade.sh
"#;

/// A kept run's gate: its host directory (removed on drop).
pub struct Gate {
    dir: tempfile::TempDir,
}

impl Gate {
    pub fn new() -> anyhow::Result<Gate> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::Builder::new()
            .prefix("kiln-gate-")
            .tempdir()
            .context("creating the keep-state gate directory")?;
        // Root in the container writes it; the agent's uid cannot even look.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
        std::fs::write(dir.path().join("gate.sh"), GATE)?;
        Ok(Gate { dir })
    }

    /// The `docker create` options the gate needs.
    pub fn mount_args(&self) -> Vec<String> {
        vec![
            "--mount".into(),
            format!(
                "type=bind,source={},target={GATE_DIR}",
                self.dir.path().display()
            ),
        ]
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// What one run keeps: the image's name and labels.
pub struct Keep<'a> {
    pub image: String,
    pub run_id: String,
    pub task: &'a str,
    /// The labels naming this kiln process, blanked in the image.
    pub owner_labels: Vec<String>,
    /// `--pass-env` names, blanked in the image.
    pub secret_names: &'a [String],
}

impl Keep<'_> {
    /// The `docker commit` arguments.
    fn commit_args(&self, container: &str) -> Vec<String> {
        let mut changes = vec![
            format!("LABEL {LABEL}={:?}", self.run_id),
            format!("LABEL {LABEL_TASK}={:?}", self.task),
            format!("LABEL {}={TYPE:?}", crate::labels::TYPE),
            format!("LABEL {}=\"\"", crate::labels::BENCHMARK_RELEASED),
            "CMD [\"/grade.sh\"]".to_string(),
        ];
        changes.extend(self.owner_labels.iter().map(|k| format!("LABEL {k}=\"\"")));
        changes.extend(self.secret_names.iter().map(|k| format!("ENV {k}=\"\"")));
        let mut args: Vec<String> = [
            "commit",
            "--pause=true",
            "-m",
            "kiln run --keep-state: the filesystem as the agent left it",
        ]
        .map(String::from)
        .into();
        for c in changes {
            args.extend(["--change".into(), c]);
        }
        args.extend([container.to_string(), self.image.clone()]);
        args
    }
}

/// Runs `docker start --attach` of `container` to its end, committing it as `keep`
/// when its gate opens; the run's output, and what was kept (or why nothing was).
pub fn start_and_keep(
    container: &str,
    gate: &Gate,
    keep: &Keep,
) -> anyhow::Result<(std::process::Output, Kept)> {
    let handle = duct::cmd("docker", ["start", "--attach", container])
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .start()
        .context("running docker start")?;
    let mut kept = None;
    loop {
        if handle.try_wait()?.is_some() {
            break;
        }
        if kept.is_none() && gate.path("agent-done").exists() {
            let k = commit(container, keep);
            // Whatever the commit did, the run goes on to its grader.
            std::fs::write(gate.path("go"), b"")?;
            kept = Some(k);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = handle.into_output()?;
    let kept = kept.unwrap_or_else(|| {
        Kept::failed("the run ended before its grader started: nothing was kept")
    });
    Ok((out, kept))
}

fn commit(container: &str, keep: &Keep) -> Kept {
    let args = keep.commit_args(container);
    let out = duct::cmd("docker", &args)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run();
    match out {
        Ok(o) if o.status.success() => Kept {
            image: Some(keep.image.clone()),
            image_id: Some(String::from_utf8_lossy(&o.stdout).trim().to_string())
                .filter(|i| !i.is_empty()),
            run_id: Some(keep.run_id.clone()),
            error: None,
        },
        Ok(o) => Kept::failed(format!(
            "docker commit: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Kept::failed(format!("docker commit: {e}")),
    }
}

/// Whether Docker's store holds `image` as kept state: `Some(true)` kept state,
/// `Some(false)` another image, `None` not there.
pub fn is_kept_state(image: &str) -> Option<bool> {
    let out = duct::cmd!(
        "docker",
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        image
    )
    .stdout_capture()
    .stderr_null()
    .unchecked()
    .run()
    .ok()
    .filter(|o| o.status.success())?;
    let labels: Option<std::collections::HashMap<String, String>> =
        serde_json::from_slice(&out.stdout).ok()?;
    Some(labels.is_some_and(|l| l.contains_key(LABEL)))
}

/// Removes the kept state the run in `dir` recorded (a new run of the cell replaces
/// it); an image without [`LABEL`] is left alone.
pub fn remove_recorded(dir: &std::path::Path) {
    let Some(image) = kept_state::recorded(dir).and_then(|k| k.image) else {
        return;
    };
    if is_kept_state(&image) == Some(true) {
        let _ = duct::cmd!("docker", "image", "rm", &image)
            .stdout_null()
            .stderr_null()
            .unchecked()
            .run();
    }
}

/// A run id for result.json and the image's tag: time and process, unique per run.
pub fn run_id(repeat: u32) -> String {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{:x}{:x}-{repeat}", since.as_millis(), std::process::id())
}

/// The kept-state image of a run.
pub fn image_name(benchmark: &str, task: &str, agent: &str, run_id: &str) -> String {
    kept_state::image_name(benchmark, task, agent, run_id)
}

/// Refuses a run whose image is not an eval image of this layout's kind (one whose
/// command is upstream's `run`): keeping its state would stop nowhere.
pub fn check_image(image: &str) -> anyhow::Result<()> {
    let out = duct::cmd!(
        "docker",
        "image",
        "inspect",
        "--format",
        "{{json .Config.Cmd}}",
        image
    )
    .stdout_capture()
    .stderr_null()
    .unchecked()
    .run()?;
    let cmd = String::from_utf8_lossy(&out.stdout);
    if !cmd.contains("/usr/local/bin/run") {
        return Err(anyhow!(
            "{image} does not run upstream's /usr/local/bin/run ({}): --keep-state cannot stop it between agent and grader",
            cmd.trim()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_blanks_owners_and_secrets_and_grades_by_default() {
        let secrets = vec!["API_KEY".to_string()];
        let keep = Keep {
            image: "kiln.local/kept-state/b--a:0-1".into(),
            run_id: "1".into(),
            task: "0",
            owner_labels: vec!["kiln.pid".into()],
            secret_names: &secrets,
        };
        let args = keep.commit_args("c").join(" ");
        assert!(args.starts_with("commit --pause=true -m"), "{args}");
        for want in [
            "--change LABEL kiln.kept-state=\"1\"",
            "--change LABEL kiln.pid=\"\"",
            "--change ENV API_KEY=\"\"",
            "--change CMD [\"/grade.sh\"]",
        ] {
            assert!(args.contains(want), "{want}: {args}");
        }
        assert!(
            args.ends_with(" c kiln.local/kept-state/b--a:0-1"),
            "{args}"
        );
    }

    #[test]
    fn the_gate_is_private_and_holds_its_script() {
        use std::os::unix::fs::PermissionsExt as _;
        let g = Gate::new().unwrap();
        let mode = std::fs::metadata(g.dir.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(std::fs::read_to_string(g.path("gate.sh"))
            .unwrap()
            .contains("exec bash /grade.sh"));
        assert!(!g.path("agent-done").exists());
        assert!(g.mount_args()[1].ends_with("target=/run/kiln-gate"));
        assert_eq!(ASIDE, "/.kiln-grade.sh");
        assert!(WRAPPER.contains(ASIDE) && GATE.contains(ASIDE));
    }
}
