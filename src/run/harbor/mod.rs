//! One trial of a Harbor task, as Harbor runs it, through the Docker CLI: start the
//! task's environment, run the agent (oracle: `solution/solve.sh` with `solution.env`;
//! null: nothing), copy the tests in only then (hidden from the agent), run
//! `tests/test.sh` as the verifier user, and read `/logs/verifier/reward.json` or
//! `reward.txt`. A missing or unreadable reward is a failed trial, never a pass.
//!
//! Every command is a plain `docker …` line (`--dry-run` prints them). Values of the
//! env tables reach the container as `-e NAME` with the value in the docker client's
//! environment: never in an argument, a label or an image. The containers carry kiln's
//! owner labels ([`super::reap`]) and are removed at the end, on failure and on Ctrl-C.

mod docker;
mod env;
mod result;
mod trial;

pub use env::expand_env;
pub use result::{read_reward, write_result};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::fleet::layout::harbor::Task;
use crate::plan::harbor::TaskImages;

/// The two agents a dataset is validated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agent {
    Oracle,
    Null,
}

impl Agent {
    pub fn name(self) -> &'static str {
        match self {
            Agent::Oracle => "oracle",
            Agent::Null => "null",
        }
    }
}

/// What one trial needs besides the task.
pub struct Trial<'a> {
    /// The dataset root.
    pub root: &'a Path,
    pub task: &'a Task,
    pub agent: Agent,
    /// The task's environment image, and its verifiers' when they run apart.
    pub images: TaskImages,
    /// Where the trial's logs and `result.json` go.
    pub out: PathBuf,
    /// Print the commands instead of running them.
    pub dry_run: bool,
    /// Labels every container gets (kiln's owner labels).
    pub labels: Vec<(String, String)>,
}

/// How a trial ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `reward` of the reward file (or the strategy's value for a multi-step task).
    pub reward: Option<f64>,
    /// Every key of the reward file.
    pub rewards: BTreeMap<String, f64>,
    /// Why the trial failed, when it did.
    pub error: Option<String>,
    pub agent_timed_out: bool,
    pub wall_sec: f64,
}

/// The egress proxy's name and port on an allowlist task's network.
pub const EGRESS_HOST: &str = "kiln-egress";
pub const EGRESS_PORT: u16 = 3128;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Makes Ctrl-C (and a closed terminal) end the running trial with its containers removed.
pub fn catch_interrupts() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGHUP,
            on_interrupt as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_interrupt as *const () as libc::sighandler_t,
        );
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
