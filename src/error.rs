//! The error that carries its own exit status. It lives below every other module so
//! that the library (backends, build, run) can say "exit 3: no backend" without
//! depending on the command layer; `cli::main` maps it to the process exit status.

/// An error that carries its own exit status (2 for refused input, 3 for no backend).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// Input refused before anything ran (exit status 2).
    pub fn usage(message: impl Into<String>) -> anyhow::Error {
        Failure {
            code: 2,
            message: message.into(),
        }
        .into()
    }

    /// Stopped by Ctrl-C (exit status 130, as a shell reports SIGINT).
    pub fn interrupted(message: impl Into<String>) -> anyhow::Error {
        Failure {
            code: 130,
            message: message.into(),
        }
        .into()
    }
}
