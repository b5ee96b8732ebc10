//! kiln-runner: the scenario runner inside every kiln eval image.
//! The format it implements is documented in docs/scenario-format.md.

pub mod check;
pub mod score;
