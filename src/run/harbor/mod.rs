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

/// Who works on the task: oracle and null (what a dataset is validated with), or an
/// agent of a kiln repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agent<'a> {
    Oracle,
    Null,
    Kiln(&'a KilnAgent),
}

impl<'a> Agent<'a> {
    pub fn name(self) -> &'a str {
        match self {
            Agent::Oracle => "oracle",
            Agent::Null => "null",
            Agent::Kiln(a) => &a.name,
        }
    }
}

/// A kiln agent's side of one trial. Its image is the task's environment with the
/// agent's `/opt/agent/` added ([`crate::plan::harbor`]); it runs `/opt/agent/run` with
/// the instruction in `PROMPT_FILE`, as in kiln's own evals (docs/agents.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KilnAgent {
    pub name: String,
    /// The network of the trial's model gateway ([`crate::run::model`]), joined by the
    /// agent's container besides what the task's `network_mode` gives it.
    pub network: Option<String>,
    /// What the agent gets (`MODEL`, the gateway's URLs, `--pass-env` values): handed
    /// as `-e NAME`, each value in the docker client's environment only.
    pub env: Vec<(String, String)>,
}

/// What one trial needs besides the task.
pub struct Trial<'a> {
    /// The dataset root.
    pub root: &'a Path,
    pub task: &'a Task,
    pub agent: Agent<'a>,
    /// The task's environment image, and its verifiers' when they run apart.
    pub images: TaskImages,
    /// Where the trial's logs and `result.json` go.
    pub out: PathBuf,
    /// Print the commands instead of running them.
    pub dry_run: bool,
    /// Labels every container gets (kiln's owner labels).
    pub labels: Vec<(String, String)>,
    /// `kiln run --keep-state`: commit the container as the agent left it, as this.
    pub keep: Option<Keep>,
}

/// Where a trial's kept state goes ([`crate::run::kept_state`]: the same image names
/// and labels as kiln's own runs, so `kiln regrade` and `kiln clean` treat both alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keep {
    pub image: String,
    pub run_id: String,
}

/// How a trial ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// `reward` of the reward file (or the strategy's value for a multi-step task).
    pub reward: Option<f64>,
    /// Every key of the reward file.
    pub rewards: BTreeMap<String, f64>,
    /// Why the trial failed, when it did.
    pub error: Option<String>,
    pub agent_timed_out: bool,
    pub wall_sec: f64,
    /// What `keep` made, or why nothing.
    pub kept: Option<crate::run::kept_state::Kept>,
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
