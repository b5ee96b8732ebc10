//! The runner's progress messages: stderr (stdout is reserved for the result) and
//! `<output>/runner.log`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

static LOG_FILE: Mutex<Option<File>> = Mutex::new(None);

pub fn to_file(path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(f) = OpenOptions::new().create(true).append(true).open(path) {
        *LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
    }
}

pub fn info(msg: &str) {
    let line = format!("[kiln-runner {}] {msg}\n", crate::fsutil::now());
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(f) = LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        let _ = f.write_all(line.as_bytes());
    }
}
