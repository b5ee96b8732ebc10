//! Kept state (`kiln run --keep-state`, `kiln regrade`): the runner's two parts.
//!
//! - `all --keep-state`: once the agent phase is over (every agent process killed,
//!   `state/state.json` saved) and before anything is graded, the runner removes the
//!   reference solution, prints [`READY_MARKER`] and its run id on stderr, and waits
//!   until kiln writes [`go_file`]. In between kiln commits the container: the image
//!   holds the filesystem exactly as the agent left it, before any grader ran (a
//!   grader runs as root and may change what it grades).
//! - `regrade`: a fresh container of that image, with the task definitions of the
//!   current fleet given by `--tasks-dir`. No agent runs; the services start again
//!   from what they left on disk (a commit keeps files, not processes), then the
//!   grade phase runs as it did in the original run, with the state it saved.

use std::fs;
use std::path::PathBuf;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::layout::Layout;
use crate::log;
use crate::process;
use crate::result::RunResult;
use crate::run::Run;

/// The line (followed by the run id and `====`) that tells kiln the state is ready.
pub const READY_MARKER: &str = "==== KILN STATE READY";

/// How long the runner waits for kiln before it grades without: a commit of a large
/// container takes a while, but a kiln that is gone must not hold the run forever.
const WAIT: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_millis(100);

/// The file kiln writes once it has committed the container (its text says how that
/// went); the agent cannot have planted it: every agent process is gone by then and
/// the runner removes it before it asks.
pub fn go_file(layout: &Layout) -> PathBuf {
    layout.run_dir().join("state-kept")
}

/// The marker line for run `run_id`.
pub fn ready_line(run_id: &str) -> String {
    format!("{READY_MARKER} {run_id} ====")
}

impl Run {
    /// Hands the post-agent filesystem to kiln (`all --keep-state`) and waits until it
    /// is kept, or [`WAIT`] passed, or the runner is interrupted.
    pub fn offer_state(&mut self) {
        let layout = self.settings.layout.clone();
        // A kept image never holds the reference solution: nothing grades with it.
        for dir in [
            layout.run_dir().join("solution"),
            layout.solution_dir(self.task.id()),
        ] {
            if dir.exists() {
                if let Err(e) = fs::remove_dir_all(&dir) {
                    self.state
                        .warn(format!("keep-state: cannot remove {}: {e}", dir.display()));
                }
            }
        }
        let go = go_file(&layout);
        let _ = fs::remove_file(&go);
        // kiln's tar holds only the file: its folder must be there (a null agent's run
        // made nothing under it).
        if let Some(dir) = go.parent() {
            if let Err(e) = fs::create_dir_all(dir) {
                self.state
                    .warn(format!("keep-state: cannot create {}: {e}", dir.display()));
            }
        }
        log::info("keep-state: waiting for kiln to keep the filesystem the agent left");
        eprintln!("{}", ready_line(&self.state.run_id));
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(answer) = fs::read_to_string(&go) {
                let _ = fs::remove_file(&go);
                log::info(&format!("keep-state: {}", answer.trim()));
                return;
            }
            if process::interrupted() {
                return;
            }
            if Instant::now() >= deadline {
                log::info(&format!(
                    "keep-state: no answer from kiln within {} s; grading without",
                    WAIT.as_secs()
                ));
                return;
            }
            sleep(POLL);
        }
    }

    /// Grades a kept state (`regrade`): the services started again, then the grade phase.
    pub fn regrade(&mut self) -> RunResult {
        log::info(&format!(
            "regrade: task {} from {}",
            self.task.id(),
            self.task.dir.display()
        ));
        // A committed container keeps files, not processes: no service runs yet. One
        // that cannot start is what the graders find, as at grade time in a run.
        if let Err(e) = self.services.start_all() {
            self.state.warn(format!("regrade: {e}"));
        }
        self.grade()
    }
}
