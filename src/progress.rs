//! Build progress, drawn here and nowhere else: one indicatif line per image on a
//! terminal; one log line per event otherwise (`--progress plain`, or stderr is not
//! a terminal); only errors and the summary with `--progress quiet`. Everything
//! goes to stderr, so stdout stays for data.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::printer::{self, errln, Mode};

/// The reporter a build run draws through; shared by all build jobs.
pub struct Progress {
    mode: Mode,
    start: Instant,
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

fn fmt_secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        let mode = printer::resolve(mode);
        let multi = (mode == Mode::Tty).then(|| printer::multi().clone());
        Progress {
            mode,
            start: Instant::now(),
            multi,
            bars: Mutex::new(HashMap::new()),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn log(&self, line: &str) {
        let stamp = fmt_secs(self.start.elapsed());
        errln!("[{stamp:>6}] {line}");
    }

    fn bar(&self, name: &str) -> Option<ProgressBar> {
        let multi = self.multi.as_ref()?;
        let mut bars = self.bars.lock().unwrap();
        Some(
            bars.entry(name.to_string())
                .or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} {prefix:<40!} {elapsed:>4} {wide_msg}",
                        )
                        .expect("a valid template"),
                    );
                    bar.set_prefix(name.to_string());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                })
                .clone(),
        )
    }

    fn finish(&self, name: &str, msg: String) {
        if let Some(bar) = self.bar(name) {
            bar.set_style(
                ProgressStyle::with_template("  {prefix:<40!} {elapsed:>4} {wide_msg}")
                    .expect("template"),
            );
            bar.finish_with_message(msg);
        }
    }

    /// A free-standing message (backend choice, fallback cause); not shown when quiet.
    pub fn note(&self, msg: &str) {
        if self.mode != Mode::Quiet {
            self.log(msg);
        }
    }

    pub fn waiting(&self, name: &str, why: &str) {
        match self.mode {
            Mode::Tty => {
                if let Some(b) = self.bar(name) {
                    b.set_message(format!("waiting: {why}"));
                }
            }
            Mode::Plain => self.log(&format!("{name}: waiting for {why}")),
            _ => {}
        }
    }

    pub fn started(&self, name: &str, what: &str) {
        match self.mode {
            Mode::Tty => {
                if let Some(b) = self.bar(name) {
                    b.reset_elapsed();
                    b.set_message(what.to_string());
                }
            }
            Mode::Plain => self.log(&format!("{name}: {what}")),
            _ => {}
        }
    }

    /// The build's current step (`Step 2/5 : COPY …`, `STEP 2/5: …`).
    pub fn step(&self, name: &str, step: &str) {
        let step = match step.char_indices().nth(120) {
            Some((at, _)) => format!("{}…", &step[..at]),
            None => step.to_string(),
        };
        let step = step.as_str();
        match self.mode {
            Mode::Tty => {
                if let Some(b) = self.bar(name) {
                    b.set_message(step.to_string());
                }
            }
            Mode::Plain => self.log(&format!("{name}: {step}")),
            _ => {}
        }
    }

    pub fn up_to_date(&self, name: &str, image: &str) {
        match self.mode {
            Mode::Tty => self.finish(name, format!("up to date ({image})")),
            Mode::Plain => self.log(&format!("{name}: up to date ({image})")),
            _ => {}
        }
    }

    pub fn built(&self, name: &str, image: &str, took: Duration) {
        match self.mode {
            Mode::Tty => self.finish(name, format!("built {image} in {}", fmt_secs(took))),
            Mode::Plain => self.log(&format!("{name}: built {image} in {}", fmt_secs(took))),
            _ => {}
        }
    }

    /// A failure: always shown, quiet or not.
    pub fn failed(&self, name: &str, msg: &str) {
        if self.mode == Mode::Tty {
            self.finish(name, "FAILED".to_string());
        }
        self.log(&format!("{name}: FAILED: {msg}"));
    }

    pub fn skipped(&self, name: &str, why: &str) {
        match self.mode {
            Mode::Tty => self.finish(name, format!("not built: {why}")),
            Mode::Plain => self.log(&format!("{name}: not built: {why}")),
            _ => {}
        }
    }

    /// The closing summary; always shown.
    pub fn summary(&self, lines: &[String]) {
        if let Some(m) = &self.multi {
            m.clear().ok();
        }
        for line in lines {
            errln!("{line}");
        }
    }
}
