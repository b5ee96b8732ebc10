//! Staging the runner binary into the `core-runner` build context.
//!
//! `containers/core/runner/Dockerfile` copies `bin/` to `/opt/kiln/`, so the static
//! `kiln-runner` must sit at `containers/core/runner/bin/runner` before that image is
//! built. It is a build product, not source: git ignores it, and kiln copies it there
//! from cargo's output (or `$KILN_RUNNER`) before every build that may need it. The
//! copy happens only when the bytes differ, and the input digest of `core-runner`
//! covers the binary, so a rebuilt runner rebuilds the images that contain it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// Where the staged binary goes, relative to the repository root.
pub const STAGED: &str = "containers/core/runner/bin/runner";

/// How to build the binary kiln looks for.
pub const BUILD_HINT: &str = "RUSTFLAGS='-C target-feature=+crt-static' \
     cargo build -p kiln-runner --release --target x86_64-unknown-linux-gnu";

/// The runner binaries kiln would use, in order of preference.
fn candidates(repo: &Path) -> Vec<PathBuf> {
    if let Some(path) = crate::env::RUNNER.path() {
        return vec![path];
    }
    let target_dir = crate::env::CARGO_TARGET_DIR
        .path()
        .unwrap_or_else(|| repo.join("target"));
    let mut out = vec![
        target_dir.join("x86_64-unknown-linux-gnu/release/kiln-runner"),
        target_dir.join("x86_64-unknown-linux-musl/release/kiln-runner"),
    ];
    // An installed kiln ships the runner beside itself.
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        out.push(dir.join("kiln-runner"));
    }
    out
}

/// Whether `bytes` is a 64-bit little-endian ELF executable without an interpreter
/// (`PT_INTERP`), i.e. one that runs in an image with no libc.
pub fn is_static_elf(bytes: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().expect("8 bytes")) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    if phentsize < 4 {
        return false;
    }
    (0..phnum).all(|i| {
        let at = phoff + i * phentsize;
        bytes
            .get(at..at + 4)
            .is_some_and(|t| u32::from_le_bytes(t.try_into().expect("4 bytes")) != PT_INTERP)
    })
}

/// Copies the runner into the `core-runner` context (when its bytes changed) and
/// returns the path it came from.
pub fn stage_runner(repo: &Path) -> anyhow::Result<PathBuf> {
    let tried = candidates(repo);
    let Some(source) = tried.iter().find(|p| p.is_file()) else {
        bail!(
            "no kiln-runner binary to put into the eval images (looked at {}); build it with `{BUILD_HINT}` \
             or set KILN_RUNNER to its path",
            tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    };
    let bytes = std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
    if !is_static_elf(&bytes) {
        bail!(
            "{} is not a static x86-64 executable (it needs a dynamic loader, which an image may lack); \
             build it with `{BUILD_HINT}`",
            source.display()
        );
    }
    let dest = repo.join(STAGED);
    if std::fs::read(&dest).ok().as_deref() != Some(bytes.as_slice()) {
        let dir = dest.parent().expect("STAGED has a parent");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join(".runner.partial");
        std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, &dest).with_context(|| format!("writing {}", dest.display()))?;
    }
    Ok(source.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(program_types: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56 * program_types.len()];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&(program_types.len() as u16).to_le_bytes());
        for (i, t) in program_types.iter().enumerate() {
            b[64 + i * 56..64 + i * 56 + 4].copy_from_slice(&t.to_le_bytes());
        }
        b
    }

    #[test]
    fn static_means_no_interpreter() {
        assert!(is_static_elf(&elf(&[1, 1, 7])));
        assert!(!is_static_elf(&elf(&[6, 3, 1])));
        assert!(!is_static_elf(b"#!/bin/sh\n"));
        assert!(!is_static_elf(&[]));
    }

    #[test]
    fn this_test_binary_is_dynamic() {
        // Test binaries link glibc dynamically: the check must see the interpreter.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(!is_static_elf(&me));
    }
}
