//! kiln: builds, labels and runs the container images of AI-agent evaluations.
//!
//! Layering, left to right; a module uses only modules to its left:
//! `kiln_bake` (crate), `error` → `naming`, `labels` → `fleet` → `plan` → `backend` → `run`, `report` → `cli`.
//! Nothing below `cli` parses arguments; `cli` only turns flags into option structs.

pub mod backend;
pub mod build;
pub mod cli;
pub mod context;
pub mod digest;
pub mod error;
pub mod fleet;
pub mod gateway;
pub mod labels;
pub mod lint;
pub mod naming;
pub mod plan;
pub mod progress;
pub mod report;
pub mod run;
pub mod store;
