//! Why a task of a dataset cannot be read, by kind: every command names the file, and
//! `kiln lint` reports each kind under its own rule.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// `task.toml` cannot be read, is not TOML, or holds a value that is wrong.
    Config,
    /// `task.toml` holds a field the schema does not have (a typo kiln would ignore).
    UnknownField,
    /// A file the task needs is missing (`instruction.md`, `tests/test.sh`).
    Files,
    /// kiln's naming: a task id or folder that cannot name an image, a `[task].name`
    /// another task already has.
    Naming,
}

/// A task left out of its dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The file it is about, relative to the dataset root (the task's `task.toml`).
    pub file: PathBuf,
    /// 1-based, where TOML says.
    pub line: Option<usize>,
    pub message: String,
}

impl Problem {
    pub fn new(kind: ProblemKind, file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Problem {
            kind,
            file: file.into(),
            line: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for Problem {}
