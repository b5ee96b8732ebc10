//! kiln: builds, labels and runs the container images of AI-agent evaluations.
//!
//! Layering, left to right; a module uses only modules to its left (never one of its
//! own group or to its right; `tests/layering.rs` checks every `crate::` path):
//!
//! `kiln_bake` (crate), `error`, `env`, `printer` → `context`, `progress`, `binary`, `stage`, `tls` → `bake_cache` → `naming` → `labels` → `fleet`, `store` → `scaffold`, `lint`, `plan` → `digest` → `backend` → `build` → `ensure` → `report`, `gateway`, `registry` → `run` → `validate`, `regrade`, `clean` → `release` → `cli`
//!
//! `backend` builds one image (or one bake request) on one tool; `build` schedules
//! them, checks labels and tags. Nothing below `cli` parses arguments; `cli` only
//! turns flags into option structs. Everything shown to a person goes through
//! `printer` (clippy's print lints are denied elsewhere).

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod backend;
pub mod bake_cache;
pub mod binary;
pub mod build;
pub mod clean;
pub mod cli;
pub mod context;
pub mod digest;
pub mod ensure;
pub mod env;
pub mod error;
pub mod fleet;
pub mod gateway;
pub mod labels;
pub mod lint;
pub mod naming;
pub mod plan;
pub mod printer;
pub mod progress;
pub mod registry;
pub mod regrade;
pub mod release;
pub mod report;
pub mod run;
pub mod scaffold;
pub mod stage;
pub mod store;
pub mod tls;
pub mod validate;
