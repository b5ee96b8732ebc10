//! The `shell` phase (`kiln shell`): a person's shell in the agent's place.

use super::Run;
use crate::{log, process};

impl Run {
    /// The `shell` phase after a successful prepare: replaces this process with `argv`
    /// run as the agent would be (same user, cwd, environment, solution, hidden graders)
    /// but on the runner's own stdin/stdout/stderr, for a person at a terminal
    /// (`kiln shell`). The services keep running under it; the container ends with it.
    /// Returns only when that could not be done, with the reason.
    pub fn exec_shell(&mut self, argv: &[String]) -> String {
        let launch = match self.agent_launch() {
            Ok(l) => l,
            Err(e) => return e,
        };
        self.save_state();
        self.services.detach();
        let Some((program, args)) = argv.split_first() else {
            return "shell: no command to run".into();
        };
        log::info(&format!(
            "shell: {program} as {} in {}",
            match self.settings.agent_user {
                Some((uid, gid)) => format!("uid {uid} gid {gid}"),
                None => "the runner's own user".into(),
            },
            self.workspace.display()
        ));
        let err = process::exec_as(
            program,
            args,
            &self.workspace,
            &launch.env,
            self.settings.agent_user,
        );
        format!("shell: cannot run {program}: {err}")
    }
}
