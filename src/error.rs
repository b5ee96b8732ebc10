//! kiln's exit statuses ([`Exit`], the one place they are defined) and the error that
//! carries one. It lives below every other module so that the library (backends,
//! build, run) can say "exit 3: no backend" without depending on the command layer;
//! `cli::main` maps it to the process exit status.

/// Every exit status kiln uses (README, `kiln --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command did what was asked (for runs: every run completed, whatever its score).
    Success = 0,
    /// A build, check, run, push or resolution failed.
    Failed = 1,
    /// Bad usage or input, refused before anything ran.
    Usage = 2,
    /// No backend (engine, buildx, podman) able to do the work.
    NoBackend = 3,
    /// Stopped by Ctrl-C (SIGINT) or SIGTERM, what was started removed.
    Interrupted = 130,
}

impl Exit {
    pub const fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

/// An error that carries its own exit status ([`Exit`]).
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
            code: Exit::Usage.code(),
            message: message.into(),
        }
        .into()
    }

    /// No backend can do the work (exit status 3).
    pub fn no_backend(message: impl Into<String>) -> anyhow::Error {
        Failure {
            code: Exit::NoBackend.code(),
            message: message.into(),
        }
        .into()
    }

    /// Stopped by Ctrl-C (exit status 130, as a shell reports SIGINT).
    pub fn interrupted(message: impl Into<String>) -> anyhow::Error {
        Failure {
            code: Exit::Interrupted.code(),
            message: message.into(),
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exit_status_is_documented_where_users_read_it() {
        let readme = include_str!("../README.md").replace('\n', " ");
        for (exit, words) in [
            (Exit::Success, "0 success"),
            (Exit::Failed, "1 a build, check, run, push"),
            (Exit::Usage, "2 bad usage"),
            (Exit::NoBackend, "3 no backend"),
            (Exit::Interrupted, "130 interrupted"),
        ] {
            assert!(words.starts_with(&exit.code().to_string()));
            assert!(readme.contains(words), "README lacks {words:?}");
        }
        let f = Failure::no_backend("x").downcast::<Failure>().unwrap();
        assert_eq!(f.code, 3);
    }
}
