//! Which kiln binary is running, cheaply: its version, size and modification time. A
//! rebuilt kiln is a new file, so whatever it made (a cached bake answer, the model
//! gateway's image) is made again rather than reused from another build.

/// `<version> <size> <mtime>` of the running binary, or None when it cannot be read.
pub fn identity() -> Option<String> {
    let meta = std::fs::metadata(std::env::current_exe().ok()?).ok()?;
    let t = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!(
        "{} {} {}.{}",
        env!("CARGO_PKG_VERSION"),
        meta.len(),
        t.as_secs(),
        t.subsec_nanos()
    ))
}
