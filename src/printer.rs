//! The one place kiln writes to the terminal. Results and data (tables, JSON, the plain
//! commands of `--dry-run`) go to stdout through [`outln!`]; everything said about the
//! work (notes, warnings, errors, progress) goes to stderr through [`errln!`], drawn
//! around whatever progress bars the reporters (build `progress`, the run board,
//! release's counter) keep on the terminal's one [`multi`] display. The rest of the
//! library prints nothing itself: `src/lib.rs` denies clippy's print lints everywhere
//! but here.
//!
//! Writes never panic: a closed pipe or a terminal gone after SIGHUP loses the line, not
//! the cleanup that is still to run.

use std::fmt;
use std::io::{IsTerminal as _, Write as _};
use std::sync::OnceLock;

use indicatif::{MultiProgress, ProgressDrawTarget};

/// How progress is shown (`--progress`): decided once per reporter by [`resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// `tty` on a terminal, `plain` otherwise.
    #[default]
    Auto,
    Tty,
    Plain,
    Quiet,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Mode::Auto),
            "tty" => Ok(Mode::Tty),
            "plain" => Ok(Mode::Plain),
            "quiet" => Ok(Mode::Quiet),
            other => Err(format!(
                "unknown progress mode {other:?}: expected auto, tty, plain or quiet"
            )),
        }
    }
}

/// `Auto` made concrete: bars when stderr is a terminal, lines otherwise.
pub fn resolve(mode: Mode) -> Mode {
    match mode {
        Mode::Auto if std::io::stderr().is_terminal() => Mode::Tty,
        Mode::Auto => Mode::Plain,
        m => m,
    }
}

/// The terminal's progress display: reporters add their bars here, so lines written
/// through [`err`] land above the bars instead of through them.
pub fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// One line on stdout.
pub fn out(line: fmt::Arguments) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_fmt(line).and_then(|()| o.write_all(b"\n"));
}

/// Text on stdout as it is (it brings its own line ends).
pub fn out_text(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Stdout for a writer that streams many lines (`--dry-run` scripts).
pub fn stdout() -> std::io::StdoutLock<'static> {
    std::io::stdout().lock()
}

/// One line on stderr, above any progress bars.
pub fn err(line: fmt::Arguments) {
    multi().suspend(|| {
        let mut e = std::io::stderr().lock();
        let _ = e.write_fmt(line).and_then(|()| e.write_all(b"\n"));
    });
}

/// Bytes on stderr as they come (a container's own progress output).
pub fn err_bytes(bytes: &[u8]) {
    let _ = std::io::stderr().lock().write_all(bytes);
}

/// `println!` through the printer.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::printer::out(format_args!($($arg)*)) };
}

/// `eprintln!` through the printer.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::printer::err(format_args!($($arg)*)) };
}

pub(crate) use {errln, outln};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_resolve() {
        assert_eq!("quiet".parse::<Mode>(), Ok(Mode::Quiet));
        assert!("loud".parse::<Mode>().unwrap_err().contains("auto, tty"));
        // Given modes stay; only `auto` looks at the terminal.
        for m in [Mode::Tty, Mode::Plain, Mode::Quiet] {
            assert_eq!(resolve(m), m);
        }
        assert_ne!(resolve(Mode::Auto), Mode::Auto);
    }
}
