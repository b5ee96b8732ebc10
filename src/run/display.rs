//! What a person sees while a matrix runs: on a terminal one indicatif bar (done/total,
//! passed, failed to run, remaining, elapsed, ETA) with a line above it per finished run; plain
//! timestamped lines otherwise; only failures with `quiet`. Everything goes to stderr.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::printer::{self, errln, Mode};

pub struct Board {
    mode: Mode,
    start: Instant,
    bar: Option<ProgressBar>,
    total: usize,
    done: AtomicUsize,
    passed: AtomicUsize,
    failed: AtomicUsize,
}

impl Board {
    /// `total` runs to do (kept ones already counted out).
    pub fn new(mode: Mode, total: usize) -> Board {
        let mode = printer::resolve(mode);
        let bar = (mode == Mode::Tty).then(|| {
            let bar = printer::multi().add(ProgressBar::new(total as u64));
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30.cyan/blue} {pos}/{len} {msg}  {elapsed_precise} elapsed, ETA {eta}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let board = Board {
            mode,
            start: Instant::now(),
            bar,
            total,
            done: AtomicUsize::new(0),
            passed: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
        };
        board.refresh();
        board
    }

    fn refresh(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "passed {}, failed to run {}, {} remaining",
                self.passed.load(Ordering::Relaxed),
                self.failed.load(Ordering::Relaxed),
                self.total.saturating_sub(self.done.load(Ordering::Relaxed))
            ));
        }
    }

    /// A line above the bar (or a plain line), always shown unless quiet.
    pub fn line(&self, text: &str) {
        if self.mode == Mode::Quiet {
            return;
        }
        self.print(text);
    }

    fn print(&self, text: &str) {
        errln!("[{:>6.1}s] {text}", self.start.elapsed().as_secs_f64());
    }

    pub fn started(&self, what: &str) {
        if self.mode == Mode::Plain {
            self.print(&format!("{what}: started"));
        }
    }

    /// A run that completed (whatever its score).
    pub fn completed(&self, what: &str, passed: bool, detail: &str) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if passed {
            self.passed.fetch_add(1, Ordering::Relaxed);
        }
        self.refresh();
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
        }
        self.line(&format!("{done}/{} {what}: {detail}", self.total));
    }

    /// A run that could not complete: always shown.
    pub fn failed(&self, what: &str, why: &str) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.refresh();
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
        }
        self.print(&format!(
            "{done}/{} {what}: FAILED TO RUN: {why}",
            self.total
        ));
    }

    /// Always shown (interrupts, clean-up).
    pub fn note(&self, text: &str) {
        self.print(text);
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}
