//! kiln-runner: the scenario runner inside every kiln eval image.
//! The format it implements is documented in docs/scenario-format.md.

pub mod check;
pub mod cli;
pub mod core_checks;
pub mod fsutil;
pub mod kept_state;
pub mod layout;
pub mod log;
pub mod process;
pub mod result;
pub mod run;
pub mod scenario;
pub mod score;
pub mod services;
pub mod state;
